//! What can go wrong: with keys ([`KeyError`]), opening a sealed value
//! ([`SealError`]), or sealing a payload by path ([`PathError`]).

/// A failure of the key store or of a key-encryption-key provider.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key is wrapped under a key-encryption key that the provider does not
    /// hold (an old KEK after a finished rotation, or a backup from before
    /// one). Carries the KEK id.
    #[error("key-encryption key {0} is not held: the key wrapped under it cannot be unwrapped")]
    UnknownKek(String),
    /// The database refused or failed.
    #[error("key store database: {0}")]
    Database(#[from] sqlx::Error),
    /// Stored key material does not authenticate or has the wrong shape: a
    /// wrapped key that fails to unwrap under the KEK it names, a malformed
    /// key file.
    #[error("corrupt key material: {0}")]
    Corrupt(String),
    /// A wrong setting: a URL of an unknown kind, a key file that exists
    /// where a new one is to be written, an operation the backend does not
    /// offer.
    #[error("key store configuration: {0}")]
    Config(String),
    /// A file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The case's data key was destroyed: the case is erased, and no new key
    /// is ever made for it. Carries the case id.
    #[error("the data key of case {0} was destroyed")]
    Destroyed(String),
    /// The case has no data key (none was made, or it was destroyed), so
    /// nothing can be indexed for it. Carries the case id.
    #[error("case {0} has no data key")]
    NoKey(String),
}

impl KeyError {
    /// An [`KeyError::Io`] for `path`.
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> KeyError {
        KeyError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Why a sealed value could not be opened. Never a panic: any string may be
/// handed to [`CaseKey::open`](super::CaseKey::open).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The string is not a sealed value (it does not start `vks1.`).
    #[error("not a sealed value")]
    NotSealed,
    /// It starts like a sealed value but its parts are not well formed (no
    /// context separator, bad base64, too short, plaintext not UTF-8).
    #[error("malformed sealed value")]
    Malformed,
    /// Authentication failed: another case's key, a destroyed key replaced,
    /// or the ciphertext or its context was altered.
    #[error("sealed value refused: wrong key or altered")]
    Refused,
}

/// A path of [`seal_paths`](super::seal_paths) that does not fit the payload
/// (or is not a path): a programming error for the caller to surface.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seal path {path}: {problem}")]
pub struct PathError {
    /// The path as the caller gave it.
    pub path: String,
    /// What was found instead of what the path expects.
    pub problem: String,
}
