//! Keys and sealing for crypto-shredding: each case's text is stored sealed
//! under the case's own data key, so that destroying the key erases the case
//! while the event log, which is never rewritten, stays intact.
//!
//! - [`KeyEncryptionKeys`]: where the key-encryption key (KEK) lives, which
//!   wraps every data key; [`FileKeys`] keeps it in a file or an environment
//!   variable, and rotates it (see [`kek`]).
//! - [`KeyStore`]: the data keys, wrapped, in a database apart from the event
//!   log (a SQLite file of its own, or the PostgreSQL schema
//!   `verkosto_keys`), with a cache of unwrapped keys, [`KeyStore::destroy`]
//!   for erasure, [`KeyStore::rotate`] for a new KEK, and a blind index to
//!   find a case by a name without storing the name.
//! - [`CaseKey`]: seals and opens text, `vks1.<case>.<context>.<base64url>`
//!   (XChaCha20-Poly1305, bound to the case and to the record it belongs
//!   to); [`seal_paths`] and [`open_all`] do it for JSON payloads.
//!
//! What erasure does and does not cover: once [`KeyStore::destroy`] has run,
//! no sealed value of the case opens through the store, and the SQLite file
//! keeps no copy of the key (`secure_delete`, no WAL); PostgreSQL is
//! vacuumed. A backup of the key store, or PostgreSQL's WAL, may still hold
//! the key *wrapped*: it opens nothing once the KEK that wrapped it is
//! rotated away. So rotate the KEK on a schedule that matches how long such
//! copies are kept, and keep key-store backups apart from event-log backups.

#![warn(missing_docs)]

pub mod kek;

mod blind;
mod crypto;
mod error;
mod json;
mod seal;
mod store;

pub use blind::normalize;
pub use error::{KeyError, PathError, SealError};
pub use json::{open_all, open_all_with, open_known, seal_paths, sealed_strings};
pub use kek::{FileKeys, KeyEncryptionKeys, Wrapped, KEY_FILE_PREFIX};
pub use seal::{is_sealed, sealed_case, sealed_context, CaseKey, SEALED_PREFIX};
pub use store::{Backend, KeyStore, KeyStoreOptions};

/// Re-exported: the wrapper that wipes key material on drop, as
/// [`KeyEncryptionKeys::unwrap`] returns it and [`CaseKey::new`] takes it.
pub use zeroize::Zeroizing;
