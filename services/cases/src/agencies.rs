//! The agencies the cases service needs to know: which exist (an invitation
//! names one) and which are child welfare (the minor's warning). Its own
//! read model, fed from the directory's `AgencyRegistered` events on the
//! shared stream, so the cases service never reads the directory's tables.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Deserialize;
use sqlx::AnyConnection;
use verkosto_eventlog::{bulk, ApplyError, Error, EventLog, Progress, Projection, RecordedEvent};

pub struct AgenciesProjection;

pub const NAME: &str = "cases-agencies";

/// The directory's event as this service reads it: only the fields it
/// needs, and any others ignored (a tolerant reader of another service's
/// contract, `proto/agency.schema.json`).
#[derive(Deserialize)]
struct AgencyRegistered {
    /// The agency's id, as invitations name it.
    id: String,
    /// Its kind on the wire (`child_welfare` matters here).
    kind: String,
}

#[async_trait::async_trait]
impl Projection for AgenciesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "agency" && event.event_type == "AgencyRegistered"
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let registered = AgencyRegistered::deserialize(&event.payload["AgencyRegistered"])
            .map_err(|e| ApplyError::Poison(format!("AgencyRegistered does not read: {e}")))?;
        sqlx::query(
            "INSERT INTO cases_agencies (id, kind) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind",
        )
        .bind(registered.id)
        .bind(registered.kind)
        .execute(&mut *conn)
        .await
        .map_err(Error::from)?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        sqlx::query("DELETE FROM cases_agencies")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Reads of the agencies read model.
#[derive(Clone)]
pub struct Agencies {
    /// The event log: the `agency` stream, and the `cases_agencies` table.
    pub log: EventLog,
    /// How far this read model has got, to wait for an agency registered a
    /// moment ago.
    pub progress: Progress,
}

/// How long a lookup waits for an agency the log has and this read model
/// has not applied yet (registered a moment ago).
const CATCH_UP: Duration = Duration::from_secs(5);

impl Agencies {
    /// Whether `id` is a registered agency. One the log holds but this read
    /// model has not reached yet is waited for, so an agency registered a
    /// moment ago can be invited at once.
    pub async fn is_known(&self, id: &str) -> Result<bool, Error> {
        if self.kind(id).await?.is_some() {
            return Ok(true);
        }
        match self.log.latest_cursor(&["agency"], id).await? {
            None => Ok(false),
            Some(cursor) => {
                self.progress.wait_for(cursor, CATCH_UP).await;
                Ok(self.kind(id).await?.is_some())
            }
        }
    }

    /// Whether any of `ids` is a child welfare agency: one query, whatever
    /// their number (a case's network is far below the parameter limits).
    pub async fn any_child_welfare(&self, ids: &BTreeSet<String>) -> Result<bool, Error> {
        if ids.is_empty() {
            return Ok(false);
        }
        let db = self.log.db();
        let sql = format!(
            "SELECT id FROM cases_agencies WHERE kind = 'child_welfare' AND id IN {} LIMIT 1",
            bulk::values(db.kind(), 1, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for id in ids {
            query = query.bind(id.as_str());
        }
        Ok(query.fetch_optional(db.reader()).await?.is_some())
    }

    async fn kind(&self, id: &str) -> Result<Option<String>, Error> {
        let kind: Option<(String,)> =
            sqlx::query_as("SELECT kind FROM cases_agencies WHERE id = $1")
                .bind(id)
                .fetch_optional(self.log.db().reader())
                .await?;
        Ok(kind.map(|(k,)| k))
    }
}
