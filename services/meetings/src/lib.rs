//! The meetings service: scheduling, attendance, minutes and calendar feeds
//! for network meetings. (Being built: see its issue.)

use std::time::Duration;

use axum::extract::FromRef;
use axum::Router;
use sqlx::AnyConnection;
use verkosto_eventlog::{ApplyError, Error, EventLog, Progress, Projection, RecordedEvent};
use verkosto_guard::Guard;
use verkosto_http::AuthState;

/// The meetings service.
#[derive(Clone)]
pub struct Meetings {
    pub log: EventLog,
    /// The `meetings_*` read model's progress.
    pub progress: Progress,
    pub guard: Guard,
    pub auth: AuthState,
    /// How long before a meeting an interpreter must be booked.
    pub interpreter_lead_time: Duration,
}

impl FromRef<Meetings> for AuthState {
    fn from_ref(m: &Meetings) -> AuthState {
        m.auth.clone()
    }
}

pub fn router(meetings: Meetings) -> Router {
    Router::new().with_state(meetings)
}

/// The meetings read model.
pub struct MeetingsProjection;

#[async_trait::async_trait]
impl Projection for MeetingsProjection {
    fn name(&self) -> &'static str {
        "meetings"
    }

    fn handles(&self, _event: &RecordedEvent) -> bool {
        false
    }

    async fn apply(
        &self,
        _conn: &mut AnyConnection,
        _event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        Ok(())
    }

    async fn reset(&self, _conn: &mut AnyConnection) -> Result<(), Error> {
        Ok(())
    }
}

/// Creates the meetings service's tables.
pub async fn migrate(_db: &verkosto_eventlog::Db) -> Result<(), Error> {
    Ok(())
}
