//! The key store: per-case data keys, wrapped, in a database of their own.
//! See [`KeyStore`].

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use zeroize::Zeroizing;

use crate::blind;
use crate::crypto;
use crate::error::KeyError;
use crate::kek::{sync_dir, KeyEncryptionKeys, Wrapped};
use crate::seal::CaseKey;

/// The name of the blind index's key in `deployment_keys`.
const INDEX_KEY: &str = "blind_index";

/// The associated data a case's wrapped key is bound to.
fn case_aad(case_id: &str) -> Vec<u8> {
    format!("verkosto-keys|case|{case_id}").into_bytes()
}

/// The associated data the deployment's key `name` is bound to.
fn deployment_aad(name: &str) -> Vec<u8> {
    format!("verkosto-keys|deployment|{name}").into_bytes()
}

/// Which database holds the key store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file of its own.
    Sqlite,
    /// The schema `verkosto_keys` of a PostgreSQL database.
    Postgres,
}

/// Settings of [`KeyStore::open_with`]; [`Default`] is what
/// [`KeyStore::open`] uses.
#[derive(Clone, Debug)]
pub struct KeyStoreOptions {
    /// Unwrapped keys kept in memory at most (10 000). When full, expired
    /// entries go, and if that is not enough, all of them.
    pub cache_capacity: usize,
    /// How long an unwrapped key is used from memory before it is read again
    /// (60 s): the longest that another process sharing the store may go on
    /// using a key this one destroyed, unless it is told to
    /// [`evict`](KeyStore::evict) it.
    pub cache_ttl: Duration,
    /// Connections to PostgreSQL at most (4). SQLite always has one.
    pub max_connections: u32,
}

impl Default for KeyStoreOptions {
    fn default() -> Self {
        KeyStoreOptions {
            cache_capacity: 10_000,
            cache_ttl: Duration::from_secs(60),
            max_connections: 4,
        }
    }
}

/// The unwrapped keys in memory.
struct Cache {
    /// Each case's key and when it was read.
    entries: HashMap<String, (CaseKey, Instant)>,
    /// Bumped by every eviction: a key read before one is not cached after it.
    epoch: u64,
    /// Entries at most.
    capacity: usize,
    /// How long an entry is used.
    ttl: Duration,
}

impl Cache {
    fn get(&mut self, case_id: &str) -> Option<CaseKey> {
        let (key, at) = self.entries.get(case_id)?;
        if at.elapsed() <= self.ttl {
            return Some(key.clone());
        }
        self.entries.remove(case_id);
        None
    }

    /// Keeps `key` unless an eviction happened since `epoch`.
    fn put(&mut self, epoch: u64, key: &CaseKey) {
        if epoch != self.epoch || self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity {
            let ttl = self.ttl;
            self.entries.retain(|_, (_, at)| at.elapsed() <= ttl);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries
            .insert(key.case_id().to_string(), (key.clone(), Instant::now()));
    }

    fn evict(&mut self, case_id: &str) {
        self.epoch += 1;
        self.entries.remove(case_id);
    }
}

/// What the store shares between its clones.
struct Inner {
    /// Which database.
    backend: Backend,
    /// Its connections (one on SQLite).
    pool: AnyPool,
    /// The provider that wraps new keys; [`KeyStore::rotate`] replaces it.
    kek: RwLock<Arc<dyn KeyEncryptionKeys>>,
    /// The blind index's HMAC key, unwrapped at open.
    index_key: Zeroizing<[u8; 32]>,
    /// Unwrapped data keys.
    cache: Mutex<Cache>,
    /// Held shared while a new key is wrapped and stored, exclusively by a
    /// rotation: no key of this process is wrapped under a KEK being
    /// rotated away from.
    rotation: tokio::sync::RwLock<()>,
}

/// The key store: a database of per-case data keys, each wrapped by the
/// key-encryption key, with an in-process cache of unwrapped keys, and the
/// blind index.
///
/// It is a database apart from the event log. On SQLite, a file of its own
/// opened with `secure_delete = ON` (deleted content is overwritten),
/// `journal_mode = DELETE` (a rollback journal removed at each commit, not a
/// WAL where a destroyed key would linger) and `synchronous = FULL`. On
/// PostgreSQL, the schema `verkosto_keys`, made by the crate's own
/// migrations (`migrations/postgres`): closed to PUBLIC and, where the
/// connecting role may create roles, owned by a NOLOGIN role
/// `verkosto_keys` of which the connecting role is made a member (elsewhere
/// the connecting role owns it). Its migrations are version 9001 onwards in
/// sqlx's bookkeeping table, beside the other crates'.
///
/// A case's row stays when its key is destroyed, as a tombstone (no key,
/// `destroyed_at` set): an erased case never gets a new key. A key is
/// committed before [`KeyStore::case_key`] returns it (SQLite:
/// `synchronous = FULL`; PostgreSQL: as durable as the server's
/// `synchronous_commit`, on by default). Unwrapped keys are cached in the
/// process for [`KeyStoreOptions::cache_ttl`]; a process that destroys a
/// key evicts it from its own cache only, so the others sharing the store
/// should be told (e.g. by the erasure's event) to [`KeyStore::evict`] it.
///
/// Cheap to clone: the clones share connections, cache and KEK.
#[derive(Clone)]
pub struct KeyStore {
    /// The shared state.
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("backend", &self.inner.backend)
            .field("kek", &self.current_kek_id())
            .finish_non_exhaustive()
    }
}

/// A row's `(kek_id, wrapped)`, both null for a destroyed key.
type KeyRow = (Option<String>, Option<Vec<u8>>);

impl KeyStore {
    /// Opens the key store at `url` (`sqlite://path` or `postgres://…`)
    /// with [`KeyStoreOptions::default`]; see [`KeyStore::open_with`].
    pub async fn open(url: &str, kek: Arc<dyn KeyEncryptionKeys>) -> Result<KeyStore, KeyError> {
        KeyStore::open_with(url, kek, KeyStoreOptions::default()).await
    }

    /// Opens the key store at `url`: `sqlite://path` (the file and its
    /// folder are made if missing) or `postgres://…` / `postgresql://…`.
    /// Applies the store's migrations, and makes the deployment's blind-index
    /// key on first open.
    ///
    /// The index key is unwrapped here, so a KEK that does not fit the store
    /// is found at once: [`KeyError::UnknownKek`].
    pub async fn open_with(
        url: &str,
        kek: Arc<dyn KeyEncryptionKeys>,
        options: KeyStoreOptions,
    ) -> Result<KeyStore, KeyError> {
        sqlx::any::install_default_drivers();
        let (backend, pool) = if url.starts_with("sqlite:") {
            (Backend::Sqlite, connect_sqlite(url).await?)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            (Backend::Postgres, pool)
        } else {
            return Err(KeyError::Config(format!(
                "a key store url must start with sqlite: or postgres: (got {}:)",
                url.split(':').next().unwrap_or("")
            )));
        };
        let mut migrator = match backend {
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
        };
        // Other crates' migrations may share the bookkeeping table.
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await.map_err(sqlx::Error::from)?;
        let index_key = deployment_key(backend, &pool, kek.as_ref(), INDEX_KEY).await?;
        Ok(KeyStore {
            inner: Arc::new(Inner {
                backend,
                pool,
                kek: RwLock::new(kek),
                index_key,
                cache: Mutex::new(Cache {
                    entries: HashMap::new(),
                    epoch: 0,
                    capacity: options.cache_capacity,
                    ttl: options.cache_ttl,
                }),
                rotation: tokio::sync::RwLock::new(()),
            }),
        })
    }

    /// Which database holds the store.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The id of the KEK that wraps new keys.
    pub fn current_kek_id(&self) -> String {
        self.kek().current_id()
    }

    /// Closes the connections (waiting for those in use). The store is not
    /// usable afterwards.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// The case's data key; made (32 random bytes), wrapped and committed
    /// before it is returned if the case has none yet. Calls for the same
    /// new case at the same time, in this process or others, all get the
    /// one key that was stored first.
    ///
    /// A case whose key was [destroyed](KeyStore::destroy) never gets
    /// another: [`KeyError::Destroyed`].
    pub async fn case_key(&self, case_id: &str) -> Result<CaseKey, KeyError> {
        let epoch = match self.cached(case_id) {
            Ok(key) => return Ok(key),
            Err(epoch) => epoch,
        };
        let key = match self.key_row(case_id).await? {
            Some((Some(kek_id), Some(bytes))) => self.unwrap_case(case_id, kek_id, bytes).await?,
            Some(_) => return Err(KeyError::Destroyed(case_id.to_string())),
            None => self.make_key(case_id).await?,
        };
        self.cache().put(epoch, &key);
        Ok(key)
    }

    /// The case's data key if it has one: `None` when none was made or it
    /// was destroyed. Never makes one.
    pub async fn existing_case_key(&self, case_id: &str) -> Result<Option<CaseKey>, KeyError> {
        let epoch = match self.cached(case_id) {
            Ok(key) => return Ok(Some(key)),
            Err(epoch) => epoch,
        };
        match self.key_row(case_id).await? {
            Some((Some(kek_id), Some(bytes))) => {
                let key = self.unwrap_case(case_id, kek_id, bytes).await?;
                self.cache().put(epoch, &key);
                Ok(Some(key))
            }
            _ => Ok(None),
        }
    }

    /// Destroys the case's data key, erasing every value sealed under it,
    /// and its blind-index entries, in one transaction; evicts it from this
    /// process's cache. True if there was a key to destroy. The case keeps a
    /// tombstone: [`KeyStore::case_key`] refuses it from then on.
    ///
    /// On SQLite `secure_delete` overwrites the old row. On PostgreSQL the
    /// old row version lingers as a dead tuple until vacuumed, so `VACUUM`
    /// runs on the store's tables right after the commit (a failure is
    /// logged, not returned: the key is destroyed either way); a transaction
    /// open elsewhere since before the destroy keeps VACUUM from removing
    /// it. Copies of the wrapped key in PostgreSQL's WAL or in backups stay
    /// until they expire: they cannot be unwrapped once the KEK that wrapped
    /// them is rotated away ([`KeyStore::rotate`]).
    ///
    /// Other processes sharing the store may use a key they cached for up
    /// to [`KeyStoreOptions::cache_ttl`], unless told to evict it.
    pub async fn destroy(&self, case_id: &str) -> Result<bool, KeyError> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let had_key = sqlx::query(&format!(
            "UPDATE {} SET kek_id = NULL, wrapped = NULL, destroyed_at = {now} \
             WHERE case_id = $1 AND wrapped IS NOT NULL",
            self.table("data_keys")
        ))
        .bind(case_id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        // The tombstone; on PostgreSQL this also waits for a key being made
        // for the case at this moment, and destroys it too.
        sqlx::query(&format!(
            "INSERT INTO {t} (case_id, destroyed_at) VALUES ($1, {now}) \
             ON CONFLICT (case_id) DO UPDATE SET kek_id = NULL, wrapped = NULL, \
             destroyed_at = excluded.destroyed_at WHERE {t}.wrapped IS NOT NULL",
            t = self.table("data_keys")
        ))
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM {} WHERE case_id = $1",
            self.table("blind_index")
        ))
        .bind(case_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.evict(case_id);
        if self.inner.backend == Backend::Postgres {
            for table in ["data_keys", "blind_index"] {
                let sql = format!("VACUUM {}", self.table(table));
                if let Err(e) = self.inner.pool.execute(sql.as_str()).await {
                    tracing::warn!(error = %e, table, "VACUUM after destroying a data key failed: the old row may linger until autovacuum");
                }
            }
        }
        Ok(had_key)
    }

    /// Forgets the case's unwrapped key in this process (another process
    /// destroyed it, say). The next use reads it again.
    pub fn evict(&self, case_id: &str) {
        self.cache().evict(case_id);
    }

    /// Re-wraps every data key and the index key that are not under `new`'s
    /// current KEK, in one transaction, and returns how many it re-wrapped;
    /// from then on the store wraps new keys with `new`.
    ///
    /// A key is unwrapped by `new` if it holds the key's KEK (a
    /// [`FileKeys::prepare_rotation`](crate::FileKeys::prepare_rotation)
    /// provider holds both), else by the store's provider. Keys this process
    /// makes meanwhile wait for the rotation; should another process store a
    /// key under the old KEK during it, a further pass re-wraps that too.
    /// See [`crate::kek`] for the whole rotation.
    pub async fn rotate(&self, new: Arc<dyn KeyEncryptionKeys>) -> Result<usize, KeyError> {
        let _exclusive = self.inner.rotation.write().await;
        let old = self.kek();
        let target = new.current_id();
        let mut total = 0;
        for _pass in 0..5 {
            let cases: Vec<(String, String, Vec<u8>)> = sqlx::query_as(&format!(
                "SELECT case_id, kek_id, wrapped FROM {} \
                 WHERE wrapped IS NOT NULL AND kek_id <> $1 ORDER BY case_id",
                self.table("data_keys")
            ))
            .bind(&target)
            .fetch_all(&self.inner.pool)
            .await?;
            let deployment: Vec<(String, String, Vec<u8>)> = sqlx::query_as(&format!(
                "SELECT name, kek_id, wrapped FROM {} WHERE kek_id <> $1 ORDER BY name",
                self.table("deployment_keys")
            ))
            .bind(&target)
            .fetch_all(&self.inner.pool)
            .await?;
            if cases.is_empty() && deployment.is_empty() {
                break;
            }
            // Unwrapping and wrapping (KMS calls, maybe) before the
            // transaction; each update checks that the row is unchanged.
            let mut updates = Vec::with_capacity(cases.len() + deployment.len());
            for (table, rows, aad) in [
                ("data_keys", cases, case_aad as fn(&str) -> Vec<u8>),
                ("deployment_keys", deployment, deployment_aad),
            ] {
                for (id, kek_id, bytes) in rows {
                    let wrapped = Wrapped { kek_id, bytes };
                    let unwrapper = if new.holds(&wrapped.kek_id) {
                        &new
                    } else {
                        &old
                    };
                    let key = unwrapper.unwrap(&wrapped, &aad(&id)).await?;
                    let rewrapped = new.wrap(&key, &aad(&id)).await?;
                    updates.push((table, id, wrapped, rewrapped));
                }
            }
            let mut tx = self.begin().await?;
            for (table, id, before, after) in &updates {
                let column = if *table == "data_keys" {
                    "case_id"
                } else {
                    "name"
                };
                let done = sqlx::query(&format!(
                    "UPDATE {} SET kek_id = $1, wrapped = $2 \
                     WHERE {column} = $3 AND kek_id = $4 AND wrapped = $5",
                    self.table(table)
                ))
                .bind(after.kek_id.clone())
                .bind(after.bytes.clone())
                .bind(id.clone())
                .bind(before.kek_id.clone())
                .bind(before.bytes.clone())
                .execute(&mut *tx)
                .await?;
                total += done.rows_affected() as usize;
            }
            tx.commit().await?;
        }
        *self.inner.kek.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(total)
    }

    /// How many keys (data keys and the index key) are wrapped under each
    /// KEK id. After a rotation only the new KEK's id should be left; check
    /// before [`FileKeys::finish_rotation`](crate::FileKeys::finish_rotation).
    pub async fn kek_usage(&self) -> Result<BTreeMap<String, u64>, KeyError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT kek_id, COUNT(*) FROM {} WHERE kek_id IS NOT NULL GROUP BY kek_id \
             UNION ALL SELECT kek_id, COUNT(*) FROM {} GROUP BY kek_id",
            self.table("data_keys"),
            self.table("deployment_keys")
        ))
        .fetch_all(&self.inner.pool)
        .await?;
        let mut usage = BTreeMap::new();
        for (kek_id, n) in rows {
            *usage.entry(kek_id).or_insert(0) += n as u64;
        }
        Ok(usage)
    }

    /// The blind-index token of `text` in `field`: HMAC-SHA256 under the
    /// deployment's index key of the field and the [normalized](crate::normalize)
    /// text (NFKC, lowercased, whitespace trimmed and collapsed), 64 hex
    /// digits. The same name gives the same token in every case, so it finds
    /// cases, but says nothing of the name without the key.
    pub fn index_token(&self, field: &str, text: &str) -> String {
        blind::token(&self.inner.index_key, field, text)
    }

    /// Records that case `case_id` has `text` in `field` (a client's name,
    /// say), for [`KeyStore::find`]. Indexing the same again does nothing;
    /// text that normalizes to nothing is not indexed. The case must have a
    /// data key ([`KeyError::NoKey`] otherwise): the entries go with it when
    /// it is destroyed.
    pub async fn index(&self, case_id: &str, field: &str, text: &str) -> Result<(), KeyError> {
        if blind::normalize(text).is_empty() {
            return Ok(());
        }
        let token = self.index_token(field, text);
        let mut tx = self.begin().await?;
        // On PostgreSQL the key's row stays locked until the commit, so a
        // destroy at the same moment waits and then deletes this entry too.
        let lock = match self.inner.backend {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        let live: Option<String> = sqlx::query_scalar(&format!(
            "SELECT case_id FROM {} WHERE case_id = $1 AND wrapped IS NOT NULL{lock}",
            self.table("data_keys")
        ))
        .bind(case_id)
        .fetch_optional(&mut *tx)
        .await?;
        if live.is_none() {
            return Err(KeyError::NoKey(case_id.to_string()));
        }
        sqlx::query(&format!(
            "INSERT INTO {} (case_id, field, token) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            self.table("blind_index")
        ))
        .bind(case_id)
        .bind(field)
        .bind(token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes what [`KeyStore::index`] recorded (a name corrected, say);
    /// true if there was such an entry.
    pub async fn unindex(&self, case_id: &str, field: &str, text: &str) -> Result<bool, KeyError> {
        let done = sqlx::query(&format!(
            "DELETE FROM {} WHERE field = $1 AND token = $2 AND case_id = $3",
            self.table("blind_index")
        ))
        .bind(field)
        .bind(self.index_token(field, text))
        .bind(case_id)
        .execute(&self.inner.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The cases indexed with `text` in `field` (after normalization, so
    /// `"  Anna  K "` finds `"anna k"`), in case id order.
    pub async fn find(&self, field: &str, text: &str) -> Result<Vec<String>, KeyError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT case_id FROM {} WHERE field = $1 AND token = $2 ORDER BY case_id",
            self.table("blind_index")
        ))
        .bind(field)
        .bind(self.index_token(field, text))
        .fetch_all(&self.inner.pool)
        .await?)
    }

    /// Writes a consistent copy of the store, taken online, to
    /// `<dir>/keys.db` (mode 0600; `dir` is made if missing, the file must
    /// not exist) and returns its path. SQLite only (`VACUUM INTO`): on
    /// PostgreSQL back the store up with `pg_dump --schema=verkosto_keys`.
    ///
    /// The copy holds every live key, wrapped: keep it apart from the event
    /// log's backups, and know that a case destroyed after it is readable
    /// again from it until the KEK is rotated away.
    pub async fn backup(&self, dir: &Path) -> Result<PathBuf, KeyError> {
        if self.inner.backend == Backend::Postgres {
            return Err(KeyError::Config(
                "a PostgreSQL key store is backed up with `pg_dump --schema=verkosto_keys`".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| KeyError::io(dir, e))?;
        let path = dir.join("keys.db");
        let text = path.to_str().ok_or_else(|| {
            KeyError::Config(format!("backup path {} is not UTF-8", path.display()))
        })?;
        // Made empty with its mode first: VACUUM INTO fills an empty file.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| KeyError::io(&path, e))?;
        let copied = sqlx::query("VACUUM INTO $1")
            .bind(text)
            .execute(&self.inner.pool)
            .await;
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| KeyError::io(&path, e))?;
        sync_dir(&path)?;
        Ok(path)
    }

    fn kek(&self) -> Arc<dyn KeyEncryptionKeys> {
        self.inner
            .kek
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached key, or the cache's epoch to [`Cache::put`] it with later.
    fn cached(&self, case_id: &str) -> Result<CaseKey, u64> {
        let mut cache = self.cache();
        cache.get(case_id).ok_or(cache.epoch)
    }

    fn table(&self, name: &str) -> String {
        match self.inner.backend {
            Backend::Postgres => format!("verkosto_keys.{name}"),
            Backend::Sqlite => name.to_string(),
        }
    }

    /// The SQL for the current time, as the backend stores it.
    fn now(&self) -> &'static str {
        match self.inner.backend {
            Backend::Postgres => "now()",
            Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        }
    }

    /// A write transaction; on SQLite it takes the write lock at once.
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, KeyError> {
        Ok(match self.inner.backend {
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.inner.pool.begin().await?,
        })
    }

    async fn key_row(&self, case_id: &str) -> Result<Option<KeyRow>, KeyError> {
        Ok(sqlx::query_as(&format!(
            "SELECT kek_id, wrapped FROM {} WHERE case_id = $1",
            self.table("data_keys")
        ))
        .bind(case_id)
        .fetch_optional(&self.inner.pool)
        .await?)
    }

    async fn unwrap_case(
        &self,
        case_id: &str,
        kek_id: String,
        bytes: Vec<u8>,
    ) -> Result<CaseKey, KeyError> {
        let wrapped = Wrapped { kek_id, bytes };
        let key = self.kek().unwrap(&wrapped, &case_aad(case_id)).await?;
        Ok(CaseKey::new(case_id, key))
    }

    /// Makes, wraps and stores a key for a case that had none, unless
    /// another call stored one first (then that one is returned).
    async fn make_key(&self, case_id: &str) -> Result<CaseKey, KeyError> {
        let _shared = self.inner.rotation.read().await;
        let kek = self.kek();
        let raw = crypto::random_key();
        let wrapped = kek.wrap(&raw, &case_aad(case_id)).await?;
        sqlx::query(&format!(
            "INSERT INTO {} (case_id, kek_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (case_id) DO NOTHING",
            self.table("data_keys")
        ))
        .bind(case_id)
        .bind(wrapped.kek_id.clone())
        .bind(wrapped.bytes.clone())
        .execute(&self.inner.pool)
        .await?;
        match self.key_row(case_id).await? {
            Some((Some(kek_id), Some(bytes))) => {
                if kek_id == wrapped.kek_id && bytes == wrapped.bytes {
                    Ok(CaseKey::new(case_id, raw))
                } else {
                    self.unwrap_case(case_id, kek_id, bytes).await
                }
            }
            Some(_) => Err(KeyError::Destroyed(case_id.to_string())),
            None => Err(KeyError::Corrupt(format!(
                "the key stored for case {case_id} is not there"
            ))),
        }
    }
}

/// Reads a deployment key, making and storing it first if there is none.
async fn deployment_key(
    backend: Backend,
    pool: &AnyPool,
    kek: &dyn KeyEncryptionKeys,
    name: &str,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let table = match backend {
        Backend::Postgres => "verkosto_keys.deployment_keys",
        Backend::Sqlite => "deployment_keys",
    };
    let select = format!("SELECT kek_id, wrapped FROM {table} WHERE name = $1");
    let aad = deployment_aad(name);
    let mut row: Option<(String, Vec<u8>)> = sqlx::query_as(&select)
        .bind(name)
        .fetch_optional(pool)
        .await?;
    if row.is_none() {
        let key = crypto::random_key();
        let wrapped = kek.wrap(&key, &aad).await?;
        sqlx::query(&format!(
            "INSERT INTO {table} (name, kek_id, wrapped) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING"
        ))
        .bind(name)
        .bind(wrapped.kek_id)
        .bind(wrapped.bytes)
        .execute(pool)
        .await?;
        row = sqlx::query_as(&select)
            .bind(name)
            .fetch_optional(pool)
            .await?;
    }
    let (kek_id, bytes) = row.ok_or_else(|| {
        KeyError::Corrupt(format!("the deployment key {name} stored is not there"))
    })?;
    kek.unwrap(&Wrapped { kek_id, bytes }, &aad).await
}

/// Opens the store's own SQLite file, with the settings [`KeyStore`] names.
async fn connect_sqlite(url: &str) -> Result<AnyPool, KeyError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| KeyError::io(dir, e))?;
        }
    }
    let url = if url.contains('?') {
        url.to_string()
    } else {
        format!("{url}?mode=rwc")
    };
    let options = AnyConnectOptions::from_str(&url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                conn.execute(
                    "PRAGMA secure_delete = ON; PRAGMA journal_mode = DELETE; \
                     PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    // journal_mode cannot leave WAL while another connection has the file open.
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await?;
    let secure: i64 = sqlx::query_scalar("PRAGMA secure_delete")
        .fetch_one(&pool)
        .await?;
    if !journal.eq_ignore_ascii_case("delete") || secure != 1 {
        pool.close().await;
        return Err(KeyError::Config(format!(
            "the key store {path} must run with journal_mode=DELETE and secure_delete=ON \
             (it has journal_mode={journal}, secure_delete={secure}); is another program \
             holding it open in WAL mode?"
        )));
    }
    Ok(pool)
}
