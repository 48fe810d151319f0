//! Why an aggregate refused a command, in the domain's words. The HTTP
//! layer maps each kind to a status and a problem answer in one place
//! (`verkosto_http`'s `From<Refusal> for Problem`), so no domain code picks
//! a status.

/// A command refused by an aggregate. Every aggregate's `Error`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A field of the command is not acceptable as it is.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    /// The command does not fit what has happened so far: done already,
    /// not in a state for it, or made against an older view.
    #[error("{0}")]
    Conflict(String),
    /// The caller's agency may not give this command.
    #[error("{0}")]
    NotAllowed(String),
    /// What the command is about does not exist, or is not the caller's to
    /// know about.
    #[error("{0}")]
    Unknown(String),
    /// The case the command is about was erased (its id): nothing of it
    /// can be changed or read again.
    #[error("case {0} was erased; its data no longer exists")]
    Gone(String),
}

impl Refusal {
    pub fn invalid(field: &str, detail: impl Into<String>) -> Refusal {
        Refusal::Invalid {
            field: field.to_string(),
            detail: detail.into(),
        }
    }

    pub fn conflict(detail: impl Into<String>) -> Refusal {
        Refusal::Conflict(detail.into())
    }

    pub fn not_allowed(detail: impl Into<String>) -> Refusal {
        Refusal::NotAllowed(detail.into())
    }

    pub fn unknown(detail: impl Into<String>) -> Refusal {
        Refusal::Unknown(detail.into())
    }

    /// The case `case_id` was erased.
    pub fn gone(case_id: impl Into<String>) -> Refusal {
        Refusal::Gone(case_id.into())
    }
}
