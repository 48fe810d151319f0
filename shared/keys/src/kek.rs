//! Key-encryption keys: the keys that wrap the data keys in the key store.
//!
//! [`KeyEncryptionKeys`] is the seam for where the KEK lives. [`FileKeys`]
//! keeps it in a file (or an environment variable's value); a KMS or HSM
//! provider implements the same trait later, which is why its methods are
//! async (a network call each) and why a wrapped key carries the id of the
//! KEK it was wrapped under (a KMS key version).
//!
//! # Rotating a file KEK
//!
//! 1. [`FileKeys::prepare_rotation`]`(path)` writes `<path>.next`, a new
//!    random KEK, and returns a provider whose current KEK is the new one
//!    and which still holds the old one for unwrapping. From now on every
//!    process that loads `path` gets the same pair ([`FileKeys::load`] reads
//!    `<path>.next` too): restart the processes that share the key store so
//!    that none wraps a new data key under the old KEK.
//! 2. [`KeyStore::rotate`](super::KeyStore::rotate)`(new)` re-wraps every
//!    data key and the index key under the new KEK, in one transaction.
//!    [`KeyStore::kek_usage`](super::KeyStore::kek_usage) then shows only
//!    the new KEK's id.
//! 3. [`FileKeys::finish_rotation`]`(path)` renames `<path>.next` over
//!    `path`: the old KEK is gone, and with it the use of every copy of a
//!    wrapped key made before step 2 (backups, PostgreSQL's WAL, a
//!    destroyed key a backup still holds).
//!
//! A crash anywhere in between is safe: until step 3, loading `path` holds
//! both KEKs, and steps 1 and 2 may be run again.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::KeyError;

/// What a key file holds before the key's hex: the format and its version.
pub const KEY_FILE_PREFIX: &str = "verkosto-kek-v1:";

/// A data key wrapped (encrypted) under a key-encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapped {
    /// The id of the KEK that wrapped it; unwrapping needs that KEK.
    pub kek_id: String,
    /// The provider's ciphertext (for [`FileKeys`]: a 24-byte nonce, the
    /// encrypted key and a 16-byte tag, 72 bytes).
    pub bytes: Vec<u8>,
}

/// Where the key-encryption keys live: they wrap and unwrap the data keys,
/// and never leave the provider.
///
/// The methods are async so that a KMS or HSM provider (one network call per
/// wrap or unwrap, the KEK staying in the KMS) fits the same seam as
/// [`FileKeys`]. `aad` binds a wrapped key to its place (the key store passes
/// the case id), so that a wrapped key moved to another row does not unwrap;
/// a provider must authenticate it (a KMS's "encryption context").
#[async_trait::async_trait]
pub trait KeyEncryptionKeys: Send + Sync {
    /// The id of the KEK that [`wrap`](Self::wrap) uses now.
    fn current_id(&self) -> String;

    /// Whether this provider can unwrap keys wrapped under `kek_id`.
    fn holds(&self, kek_id: &str) -> bool;

    /// Wraps `key` under the current KEK, binding `aad`.
    async fn wrap(&self, key: &[u8; 32], aad: &[u8]) -> Result<Wrapped, KeyError>;

    /// Unwraps `wrapped` under the KEK it names, checking `aad`.
    /// [`KeyError::UnknownKek`] when that KEK is not held,
    /// [`KeyError::Corrupt`] when it does not authenticate.
    async fn unwrap(&self, wrapped: &Wrapped, aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError>;
}

/// One key-encryption key and its id.
struct Kek {
    /// The first 16 hex characters of the SHA-256 of the key.
    id: String,
    /// The key, wiped on drop.
    key: Zeroizing<[u8; 32]>,
}

impl Kek {
    fn new(key: Zeroizing<[u8; 32]>) -> Kek {
        Kek {
            id: kek_id(&key),
            key,
        }
    }
}

/// The id of a KEK: the first 16 hex characters of SHA-256 of its bytes.
fn kek_id(key: &[u8; 32]) -> String {
    let digest = Sha256::digest(key);
    hex::encode(&digest[..8])
}

/// Key-encryption keys kept in a file: one line `verkosto-kek-v1:<64 hex>`,
/// mode 0600, or the same line as an environment variable's value.
///
/// Holds a current KEK, which wraps, and during a rotation the previous one,
/// which still unwraps (see the [module documentation](self)). Wrapping is
/// XChaCha20-Poly1305 under the KEK, associated data `vkw1|<kek id>|<aad>`.
/// The file is read once, when loaded; file I/O is blocking (call these at
/// startup or from a blocking task).
pub struct FileKeys {
    /// The KEK that wraps.
    current: Kek,
    /// Older KEKs that still unwrap (the one being rotated away from).
    older: Vec<Kek>,
}

impl std::fmt::Debug for FileKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeys")
            .field("current", &self.current.id)
            .field(
                "older",
                &self.older.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl FileKeys {
    /// A provider holding one new random KEK in memory only: for tests and
    /// throwaway stores (its keys are lost with the process).
    pub fn random() -> FileKeys {
        FileKeys {
            current: Kek::new(crypto::random_key()),
            older: Vec::new(),
        }
    }

    /// Parses a key line (`verkosto-kek-v1:<64 hex>`, surrounding whitespace
    /// ignored), e.g. an environment variable's value.
    pub fn parse(value: &str) -> Result<FileKeys, KeyError> {
        Ok(FileKeys {
            current: parse_line(value)?,
            older: Vec::new(),
        })
    }

    /// Writes a new random KEK to `path` (which must not exist) with mode
    /// 0600, flushed to disk with its directory entry, and returns it.
    pub fn generate(path: impl AsRef<Path>) -> Result<FileKeys, KeyError> {
        let path = path.as_ref();
        let kek = Kek::new(crypto::random_key());
        write_key_file(path, &kek)?;
        Ok(FileKeys {
            current: kek,
            older: Vec::new(),
        })
    }

    /// Reads the KEK in `path`. If `<path>.next` exists (a rotation in
    /// progress), its KEK is the current one and the KEK in `path` is held
    /// for unwrapping only.
    ///
    /// A file that others than its owner may read is loaded, with a warning.
    pub fn load(path: impl AsRef<Path>) -> Result<FileKeys, KeyError> {
        let path = path.as_ref();
        let main = read_key_file(path)?;
        let next = next_path(path);
        match std::fs::symlink_metadata(&next) {
            Ok(_) => Ok(FileKeys {
                current: read_key_file(&next)?,
                older: vec![main],
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileKeys {
                current: main,
                older: Vec::new(),
            }),
            Err(e) => Err(KeyError::io(&next, e)),
        }
    }

    /// Starts a rotation: writes `<path>.next` with a new random KEK (mode
    /// 0600, flushed with its directory entry) and returns the provider for
    /// [`KeyStore::rotate`](super::KeyStore::rotate): current KEK the new
    /// one, the one in `path` still held for unwrapping.
    ///
    /// If `<path>.next` exists already (a rotation interrupted before
    /// [`FileKeys::finish_rotation`]), it is kept and used, so that running
    /// the rotation again resumes it.
    pub fn prepare_rotation(path: impl AsRef<Path>) -> Result<FileKeys, KeyError> {
        let path = path.as_ref();
        // The old KEK must be there before a new one is written beside it.
        read_key_file(path)?;
        let next = next_path(path);
        if !next.exists() {
            write_key_file(&next, &Kek::new(crypto::random_key()))?;
        }
        FileKeys::load(path)
    }

    /// Ends a rotation: renames `<path>.next` over `path` atomically and
    /// flushes the directory. The old KEK is gone for good: call this only
    /// after [`KeyStore::rotate`](super::KeyStore::rotate) succeeded for
    /// every key store wrapped under it
    /// ([`KeyStore::kek_usage`](super::KeyStore::kek_usage) shows only the
    /// new id).
    ///
    /// The old file's blocks may stay on the disk until overwritten, as with
    /// any deleted file: keep key files on an encrypted volume.
    pub fn finish_rotation(path: impl AsRef<Path>) -> Result<(), KeyError> {
        let path = path.as_ref();
        let next = next_path(path);
        // Refuse to put something that is not a key file in place.
        read_key_file(&next)?;
        std::fs::rename(&next, path).map_err(|e| KeyError::io(path, e))?;
        sync_dir(path)
    }

    /// The file a rotation writes the new KEK to: `<path>.next`.
    pub fn next_path(path: impl AsRef<Path>) -> PathBuf {
        next_path(path.as_ref())
    }

    /// The ids of the KEKs held, the current one first.
    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .map(|k| k.id.clone())
            .collect()
    }

    fn find(&self, kek_id: &str) -> Option<&Kek> {
        std::iter::once(&self.current)
            .chain(&self.older)
            .find(|k| k.id == kek_id)
    }
}

/// The associated data a [`FileKeys`] KEK authenticates: the format, the
/// KEK's id and the caller's `aad`.
fn wrap_aad(kek_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + kek_id.len() + aad.len());
    out.extend_from_slice(b"vkw1|");
    out.extend_from_slice(kek_id.as_bytes());
    out.push(b'|');
    out.extend_from_slice(aad);
    out
}

#[async_trait::async_trait]
impl KeyEncryptionKeys for FileKeys {
    fn current_id(&self) -> String {
        self.current.id.clone()
    }

    fn holds(&self, kek_id: &str) -> bool {
        self.find(kek_id).is_some()
    }

    async fn wrap(&self, key: &[u8; 32], aad: &[u8]) -> Result<Wrapped, KeyError> {
        let kek = &self.current;
        Ok(Wrapped {
            kek_id: kek.id.clone(),
            bytes: crypto::encrypt(&kek.key, &wrap_aad(&kek.id, aad), key),
        })
    }

    async fn unwrap(&self, wrapped: &Wrapped, aad: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let kek = self
            .find(&wrapped.kek_id)
            .ok_or_else(|| KeyError::UnknownKek(wrapped.kek_id.clone()))?;
        let plain = crypto::decrypt(&kek.key, &wrap_aad(&kek.id, aad), &wrapped.bytes).ok_or_else(
            || {
                KeyError::Corrupt(format!(
                    "a key wrapped under KEK {} does not authenticate",
                    kek.id
                ))
            },
        )?;
        let mut key = Zeroizing::new([0u8; 32]);
        if plain.len() != key.len() {
            return Err(KeyError::Corrupt(format!(
                "a key wrapped under KEK {} is {} bytes, not 32",
                kek.id,
                plain.len()
            )));
        }
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

fn next_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// A key line's KEK; the error never shows the line (it may hold the key).
fn parse_line(text: &str) -> Result<Kek, KeyError> {
    let hex_part = text.trim().strip_prefix(KEY_FILE_PREFIX).ok_or_else(|| {
        KeyError::Corrupt(format!(
            "a KEK must be one line `{KEY_FILE_PREFIX}<64 hex digits>`"
        ))
    })?;
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_part, key.as_mut())
        .map_err(|_| KeyError::Corrupt("a KEK must have exactly 64 hex digits".into()))?;
    Ok(Kek::new(key))
}

fn read_key_file(path: &Path) -> Result<Kek, KeyError> {
    let file = File::open(path).map_err(|e| KeyError::io(path, e))?;
    let mode = file
        .metadata()
        .map_err(|e| KeyError::io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the key-encryption key file can be read by others than its owner: chmod 600 it"
        );
    }
    let text = Zeroizing::new(std::io::read_to_string(file).map_err(|e| KeyError::io(path, e))?);
    parse_line(&text).map_err(|e| match e {
        KeyError::Corrupt(why) => KeyError::Corrupt(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// Creates `path` (refusing an existing file) with mode 0600, writes the
/// key line, and flushes the file and its directory.
fn write_key_file(path: &Path, kek: &Kek) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| KeyError::io(path, e))?;
    let line = Zeroizing::new(format!("{KEY_FILE_PREFIX}{}\n", hex::encode(*kek.key)));
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| KeyError::io(path, e))?;
    sync_dir(path)
}

/// Flushes the directory holding `path`, so that a created or renamed
/// entry survives a crash.
pub(crate) fn sync_dir(path: &Path) -> Result<(), KeyError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| KeyError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_file_round_trips_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let made = FileKeys::generate(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(KEY_FILE_PREFIX) && text.ends_with('\n'));
        assert_eq!(text.trim().len(), KEY_FILE_PREFIX.len() + 64);
        // The id is SHA-256's first 16 hex digits.
        let key = hex::decode(text.trim().strip_prefix(KEY_FILE_PREFIX).unwrap()).unwrap();
        assert_eq!(made.current_id(), hex::encode(&Sha256::digest(&key)[..8]));
        // Never over an existing file.
        assert!(matches!(
            FileKeys::generate(&path),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists
        ));

        let loaded = FileKeys::load(&path).unwrap();
        assert_eq!(loaded.ids(), vec![made.current_id()]);
        let from_env = FileKeys::parse(&format!("  {}  ", text.trim())).unwrap();
        assert_eq!(from_env.current_id(), made.current_id());

        let key = crypto::random_key();
        let wrapped = made.wrap(&key, b"case-1").await.unwrap();
        assert_eq!(wrapped.kek_id, made.current_id());
        assert_eq!(wrapped.bytes.len(), 72);
        assert_eq!(*loaded.unwrap(&wrapped, b"case-1").await.unwrap(), *key);
        // The aad is bound.
        assert!(matches!(
            loaded.unwrap(&wrapped, b"case-2").await,
            Err(KeyError::Corrupt(_))
        ));
        // Another KEK does not know it.
        assert!(matches!(
            FileKeys::random().unwrap(&wrapped, b"case-1").await,
            Err(KeyError::UnknownKek(id)) if id == made.current_id()
        ));
    }

    #[test]
    fn malformed_key_lines_are_refused_without_showing_them() {
        for bad in [
            "",
            "verkosto-kek-v1:",
            "verkosto-kek-v1:abc",
            &format!("verkosto-kek-v2:{}", "ab".repeat(32)),
            &format!("verkosto-kek-v1:{}", "zz".repeat(32)),
            &format!("verkosto-kek-v1:{}00", "ab".repeat(32)),
        ] {
            match FileKeys::parse(bad) {
                Err(KeyError::Corrupt(why)) => assert!(!why.contains("abab"), "{why}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        assert!(FileKeys::parse(&format!("verkosto-kek-v1:{}", "AB".repeat(32))).is_ok());
    }

    #[test]
    fn debug_shows_ids_only() {
        let keys = FileKeys::random();
        let text = format!("{keys:?}");
        assert!(text.contains(&keys.current_id()));
        assert!(!text.contains(&hex::encode(*keys.current.key)));
    }

    #[tokio::test]
    async fn a_rotation_holds_both_keks_until_it_is_finished() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let old = FileKeys::generate(&path).unwrap();
        let key = crypto::random_key();
        let under_old = old.wrap(&key, b"a").await.unwrap();

        let next = FileKeys::prepare_rotation(&path).unwrap();
        assert_ne!(next.current_id(), old.current_id());
        assert_eq!(next.ids()[1], old.current_id());
        let mode = std::fs::metadata(FileKeys::next_path(&path))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Preparing again resumes the same rotation.
        let again = FileKeys::prepare_rotation(&path).unwrap();
        assert_eq!(again.ids(), next.ids());
        // Loading during the rotation: the new KEK wraps, both unwrap.
        let loaded = FileKeys::load(&path).unwrap();
        assert_eq!(loaded.ids(), next.ids());
        assert_eq!(*loaded.unwrap(&under_old, b"a").await.unwrap(), *key);
        let under_new = loaded.wrap(&key, b"a").await.unwrap();
        assert_eq!(under_new.kek_id, next.current_id());

        FileKeys::finish_rotation(&path).unwrap();
        assert!(!FileKeys::next_path(&path).exists());
        let after = FileKeys::load(&path).unwrap();
        assert_eq!(after.ids(), vec![next.current_id()]);
        assert_eq!(*after.unwrap(&under_new, b"a").await.unwrap(), *key);
        assert!(matches!(
            after.unwrap(&under_old, b"a").await,
            Err(KeyError::UnknownKek(_))
        ));
        // Nothing to finish now.
        assert!(FileKeys::finish_rotation(&path).is_err());
        assert_eq!(FileKeys::load(&path).unwrap().ids(), after.ids());
    }
}
