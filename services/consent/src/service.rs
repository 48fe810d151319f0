//! The consent service's state.

use axum::extract::FromRef;
use verkosto_eventlog::EventLog;
use verkosto_guard::Guard;
use verkosto_http::AuthState;

/// The consent service.
#[derive(Clone)]
pub struct ConsentService {
    pub log: EventLog,
    pub guard: Guard,
    pub auth: AuthState,
}

impl FromRef<ConsentService> for AuthState {
    fn from_ref(c: &ConsentService) -> AuthState {
        c.auth.clone()
    }
}
