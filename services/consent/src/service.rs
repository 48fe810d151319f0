//! The consent service's state.

use axum::extract::FromRef;
use verkosto_eventlog::EventLog;
use verkosto_guard::Guard;
use verkosto_http::AuthState;

/// The consent service.
#[derive(Clone)]
pub struct ConsentService {
    /// The event log: the consent streams, and the case streams audits replay.
    pub log: EventLog,
    /// Fresh views of cases: membership, the network and the case's facts.
    pub guard: Guard,
    /// Token verification for the `Caller` extractor.
    pub auth: AuthState,
}

impl FromRef<ConsentService> for AuthState {
    fn from_ref(c: &ConsentService) -> AuthState {
        c.auth.clone()
    }
}
