//! Destroying a case's data key (crypto-shredding), for every path that
//! erases: a person's erasure, the retention sweep, and the reaction that
//! finishes an erasure whose process died after `CaseErased`.

use sqlx::AnyConnection;
use verkosto_eventlog::{ApplyError, Error, EventLog, Projection, RecordedEvent};

/// Destroys the data key of `case_id` (and its blind-index entries).
pub(crate) async fn destroy_keys(log: &EventLog, case_id: &str) -> Result<(), Error> {
    let keys = log
        .keys()
        .ok_or_else(|| Error::Config("no key store: nothing can be erased".into()))?;
    if keys.destroy(case_id).await.map_err(Error::Keys)? {
        tracing::info!(case_id, "the case's data key is destroyed");
    }
    Ok(())
}

/// Destroys the key of every erased case, from its checkpoint: finishes an
/// erasure whose process died between `CaseErased` and the key.
pub struct ErasedKeys {
    /// Whose key store it destroys keys in.
    pub log: EventLog,
}

/// The reaction's name (its checkpoint).
pub const ERASED_KEYS: &str = "cases-erased-keys";

#[async_trait::async_trait]
impl Projection for ErasedKeys {
    fn name(&self) -> &'static str {
        ERASED_KEYS
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case" && event.event_type == "CaseErased"
    }

    async fn apply(
        &self,
        _conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        Ok(destroy_keys(&self.log, &event.stream_id).await?)
    }

    async fn reset(&self, _conn: &mut AnyConnection) -> Result<(), Error> {
        Ok(())
    }
}
