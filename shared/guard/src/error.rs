//! The guard's errors, and how every service answers them: as problem
//! JSON, in one place.

use verkosto_http::Problem;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Log(#[from] verkosto_eventlog::Error),
    #[error("the access log could not be written: {0}")]
    AccessLog(String),
    /// No such case, or the reader's agency is not in its network.
    #[error("no case {0} in the reader's network")]
    NotFound(String),
    /// The case's network cannot be read (an unreadable case event): no
    /// one can be shown to be a member, so nothing is read.
    #[error("the network of case {0} cannot be read")]
    NetworkUnreadable(String),
    /// The case was erased: every read and write of it answers 410.
    #[error("case {0} was erased")]
    Gone(String),
    /// The case's keys cannot be read: its text cannot be opened.
    #[error("the key store: {0}")]
    Keys(#[from] verkosto_keys::KeyError),
}

impl From<sqlx::Error> for GuardError {
    fn from(e: sqlx::Error) -> Self {
        GuardError::Log(e.into())
    }
}

/// The guard's errors as problem JSON, in one place.
impl From<GuardError> for Problem {
    fn from(e: GuardError) -> Problem {
        match e {
            GuardError::NotFound(case_id) => Problem::not_found(format!("no case {case_id}")),
            GuardError::Gone(case_id) => Problem::gone(&case_id),
            GuardError::NetworkUnreadable(_) => {
                tracing::error!(error = %e, "consent guard failed");
                Problem::unavailable(
                    "the case's network cannot be read by this version; nothing was read",
                )
            }
            GuardError::Log(_) | GuardError::AccessLog(_) | GuardError::Keys(_) => {
                tracing::error!(error = %e, "consent guard failed");
                Problem::unavailable(
                    "the consent state or the access log is unavailable; nothing was read",
                )
            }
        }
    }
}

impl GuardError {
    /// As problem JSON, with `missing` for a read the reader may not make
    /// (a meeting's or task's own 404, which does not name the case).
    pub fn or_not_found(self, missing: impl FnOnce() -> Problem) -> Problem {
        match self {
            GuardError::NotFound(_) => missing(),
            e => e.into(),
        }
    }
}
