//! Appending to and reading from the log.

use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use tokio::sync::watch;

use crate::db::{is_unique_violation, Db, DbKind};
use crate::hash::{event_hash, HashInput, GENESIS};
use crate::idempotency::{IdempotencyWrite, StoredAnswer};
use crate::model::{
    format_time, Actor, Appended, CommandMeta, Cursor, ExpectedVersion, NewEvent, RecordedEvent,
};
use crate::Error;

/// The event log. Cheap to clone; every clone shares the commit notifier.
#[derive(Clone, Debug)]
pub struct EventLog {
    /// Shared by every clone.
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The database holding the log.
    db: Db,
    /// Wakes in-process subscribers after each commit (the embedded bus).
    commits: watch::Sender<Cursor>,
    /// Events each consumer moved past in this process (for `/metrics`: the
    /// sum over a service's processes shows each event was handled once).
    applied: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Stream heads (version, hash) this process committed last. Only
    /// committed heads go in, and the log is append-only, so an entry is
    /// right or behind; appending after one that is behind hits the unique
    /// version key, and the head is then read.
    heads: std::sync::Mutex<std::collections::HashMap<String, (i64, String)>>,
    /// Stream messages this process refused as not the log's (`/metrics`).
    refused_copies: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// The data keys that seal client text; none: this log takes no event
    /// with sealed fields (a log of the directory alone, a test).
    keys: Option<verkosto_keys::KeyStore>,
}

/// How many stream heads [`Inner::heads`] keeps before it starts over.
const HEADS_LIMIT: usize = 10_000;

pub(crate) const COLUMNS: &str =
    "position, stream_type, stream_id, version, event_id, event_type, \
    schema_version, occurred_at, actor_user, actor_agency, correlation_id, causation_id, \
    payload, prev_hash, hash";

impl EventLog {
    /// A log that seals nothing: an event with sealed fields is refused.
    pub fn new(db: Db) -> EventLog {
        Self::build(db, None)
    }

    /// A log whose client text is sealed under the case keys of `keys`.
    pub fn with_keys(db: Db, keys: verkosto_keys::KeyStore) -> EventLog {
        Self::build(db, Some(keys))
    }

    fn build(db: Db, keys: Option<verkosto_keys::KeyStore>) -> EventLog {
        let (commits, _) = watch::channel(Cursor::START);
        EventLog {
            inner: Arc::new(Inner {
                db,
                commits,
                applied: Default::default(),
                heads: Default::default(),
                refused_copies: Default::default(),
                keys,
            }),
        }
    }

    pub async fn connect(url: &str) -> Result<EventLog, Error> {
        Ok(EventLog::new(Db::connect(url).await?))
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The key store that seals client text, if this log has one.
    pub fn keys(&self) -> Option<&verkosto_keys::KeyStore> {
        self.inner.keys.as_ref()
    }

    /// Opens every sealed string in `value` with its case's key (JSON null
    /// where the case was erased). No membership or consent check: only
    /// for an answer whose reader was let see each case's text by other
    /// means (an invitation to it, an auditor's replay); a read of a member
    /// opens through `verkosto-guard`, after the policy.
    pub async fn open_sealed(&self, value: &mut serde_json::Value) -> Result<usize, Error> {
        let cases: std::collections::BTreeSet<String> = verkosto_keys::sealed_strings(value)
            .into_iter()
            .filter_map(verkosto_keys::sealed_case)
            .map(str::to_string)
            .collect();
        let mut keys = Vec::with_capacity(cases.len());
        if let Some(store) = self.keys() {
            for case in &cases {
                if let Some(key) = store.existing_case_key(case).await.map_err(Error::Keys)? {
                    keys.push(key);
                }
            }
        }
        Ok(verkosto_keys::open_all_with(value, &|case: &str| {
            keys.iter().find(|k| k.case_id() == case)
        }))
    }

    /// Opens the sealed strings of `events` whose case still has its key,
    /// in place; an erased case's stay sealed, so its events still decode
    /// (an aggregate replays them and only learns that it was erased).
    /// For the aggregates' own decisions, which compare text (an edit that
    /// changes nothing appends nothing), never for an answer: answers open
    /// through the consent guard.
    pub async fn open_known(&self, events: &mut [RecordedEvent]) -> Result<usize, Error> {
        let Some(store) = self.keys() else {
            return Ok(0);
        };
        let cases: std::collections::BTreeSet<String> = events
            .iter()
            .flat_map(|e| verkosto_keys::sealed_strings(&e.payload))
            .filter_map(verkosto_keys::sealed_case)
            .map(str::to_string)
            .collect();
        let mut keys = Vec::with_capacity(cases.len());
        for case in &cases {
            if let Some(key) = store.existing_case_key(case).await.map_err(Error::Keys)? {
                keys.push(key);
            }
        }
        if keys.is_empty() {
            return Ok(0);
        }
        let key_of = |case: &str| keys.iter().find(|k| k.case_id() == case);
        Ok(events
            .iter_mut()
            .map(|e| verkosto_keys::open_known(&mut e.payload, &key_of))
            .sum())
    }

    /// The data key of `case_id`, made (and durable) if it is new:
    /// [`Error::Erased`] once the case was erased, [`Error::Config`] when
    /// this log has no key store (client text is never stored in the clear).
    pub async fn case_key(&self, case_id: &str) -> Result<verkosto_keys::CaseKey, Error> {
        let keys = self
            .keys()
            .ok_or_else(|| Error::Config("no key store: client text cannot be sealed".into()))?;
        keys.case_key(case_id).await.map_err(|e| match e {
            verkosto_keys::KeyError::Destroyed(case) => Error::Erased(case),
            other => Error::Keys(other),
        })
    }

    /// How many events each consumer has applied (or passed over as not its
    /// own) in this process, counting committed batches only.
    pub fn applied_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner.applied.lock().expect("counter lock").clone()
    }

    /// How many stream messages each consumer refused in this process as
    /// not the log's ([`EventLog::refuse_copy`]).
    pub fn refused_copies(&self) -> std::collections::BTreeMap<String, u64> {
        self.inner
            .refused_copies
            .lock()
            .expect("counter lock")
            .clone()
    }

    pub(crate) fn count_refused_copy(&self, consumer: &str) {
        *self
            .inner
            .refused_copies
            .lock()
            .expect("counter lock")
            .entry(consumer.to_string())
            .or_default() += 1;
    }

    pub(crate) fn count_applied(&self, consumer: &str, events: u64) {
        if events > 0 {
            *self
                .inner
                .applied
                .lock()
                .expect("counter lock")
                .entry(consumer.to_string())
                .or_default() += events;
        }
    }

    /// A receiver that changes after every commit made through this process.
    pub fn subscribe_commits(&self) -> watch::Receiver<Cursor> {
        self.inner.commits.subscribe()
    }

    pub(crate) fn tx_column(&self) -> &'static str {
        match self.db().kind() {
            DbKind::Postgres => "tx_id::text::bigint AS tx",
            DbKind::Sqlite => "position AS tx",
        }
    }

    /// Appends `events` to one stream, atomically, checking `expected`.
    /// The answer to an idempotent request is stored in the same transaction.
    /// Returns once the transaction is durable.
    #[tracing::instrument(skip_all, fields(stream_type, stream_id, n = events.len()))]
    pub async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        meta: &CommandMeta,
        idempotency: Option<IdempotencyWrite>,
    ) -> Result<Appended, Error> {
        let Some(idem) = idempotency else {
            return self
                .append_reading_head(stream_type, stream_id, expected, events, meta)
                .await;
        };
        let mut tx = self.db().begin().await?;
        let appended = self
            .append_in(&mut tx, stream_type, stream_id, expected, events, meta)
            .await?;
        idem.store(&mut tx, appended.version).await?;
        tx.commit().await?;
        self.announce(&appended);
        Ok(appended)
    }

    /// Without an idempotency answer to store, an append is one INSERT that
    /// is its own durable transaction ([`EventLog::append_after`]), after
    /// the head this process committed last, or after none for a new
    /// stream. Only when that guess is wrong (another process appended) is
    /// the head read, and for [`ExpectedVersion::Any`] read again after
    /// each writer that got there in between.
    async fn append_reading_head(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        meta: &CommandMeta,
    ) -> Result<Appended, Error> {
        let mut guess = match expected {
            ExpectedVersion::NoStream => Some((0, GENESIS.to_string())),
            _ => self
                .known_head(stream_type, stream_id)
                .filter(|(version, _)| expected.matches(*version)),
        };
        loop {
            let guessed = guess.is_some();
            let head = match guess.take() {
                Some(head) => head,
                None => read_head(self.db().reader(), stream_type, stream_id).await?,
            };
            if !expected.matches(head.0) {
                return Err(Error::Conflict {
                    stream: format!("{stream_type}/{stream_id}"),
                    expected,
                    actual: Some(head.0),
                });
            }
            let appended = self
                .append_after(stream_type, stream_id, head, events.clone(), meta, None)
                .await;
            match appended {
                // Read the head: the answer, or for `Any` the next try.
                Err(Error::Conflict { .. }) if guessed || expected == ExpectedVersion::Any => {
                    continue
                }
                other => return other,
            }
        }
    }

    /// The head of a stream as this process last committed it, if it did.
    fn known_head(&self, stream_type: &str, stream_id: &str) -> Option<(i64, String)> {
        let heads = self.inner.heads.lock().expect("heads lock");
        heads.get(&format!("{stream_type}/{stream_id}")).cloned()
    }

    /// Tells in-process subscribers about a commit made with
    /// [`EventLog::append_in`]. Call it only once the commit is durable.
    pub fn announce(&self, appended: &Appended) {
        if let Some(last) = appended.events.last() {
            let mut heads = self.inner.heads.lock().expect("heads lock");
            if heads.len() >= HEADS_LIMIT {
                heads.clear();
            }
            let key = format!("{}/{}", last.stream_type, last.stream_id);
            // Concurrent commits to one stream announce in any order.
            if heads.get(&key).is_none_or(|(v, _)| *v < last.version) {
                heads.insert(key, (last.version, last.hash.clone()));
            }
        }
        if let Some(cursor) = appended.last_cursor() {
            self.inner.commits.send_if_modified(|c| {
                if cursor > *c {
                    *c = cursor;
                    true
                } else {
                    false
                }
            });
        }
    }

    /// Appends inside a transaction the caller commits (then calls
    /// [`EventLog::announce`]). The event insert must be the transaction's
    /// first write; see the comment below. A new stream's append
    /// ([`ExpectedVersion::NoStream`]) reads no head: if the stream exists
    /// after all, the [`Error::Conflict`] has aborted the transaction on
    /// PostgreSQL, and the caller can only drop it.
    pub async fn append_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        meta: &CommandMeta,
    ) -> Result<Appended, Error> {
        if expected == ExpectedVersion::NoStream {
            let head = (0, GENESIS.to_string());
            return self
                .insert_events(tx, stream_type, stream_id, expected, head, events, meta)
                .await;
        }
        self.append_on(tx, stream_type, stream_id, expected, events, meta)
            .await
    }

    /// [`EventLog::append_in`] on a connection inside a transaction the
    /// caller owns, e.g. a consumer's (reactions that create new streams in
    /// the same transaction as their checkpoint).
    pub async fn append_on(
        &self,
        conn: &mut AnyConnection,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        meta: &CommandMeta,
    ) -> Result<Appended, Error> {
        let (actual, prev_hash) = read_head(&mut *conn, stream_type, stream_id).await?;
        if !expected.matches(actual) {
            return Err(Error::Conflict {
                stream: format!("{stream_type}/{stream_id}"),
                expected,
                actual: Some(actual),
            });
        }
        self.insert_events(
            conn,
            stream_type,
            stream_id,
            expected,
            (actual, prev_hash),
            events,
            meta,
        )
        .await
    }

    /// Appends after a head the caller already knows (an aggregate just
    /// loaded its stream): no read first, and without an idempotency key a
    /// single statement, its own durable transaction. A concurrent writer
    /// that got there first makes the insert hit the unique version key:
    /// [`Error::Conflict`], and the caller decides again.
    pub async fn append_after(
        &self,
        stream_type: &str,
        stream_id: &str,
        head: (i64, String),
        events: Vec<NewEvent>,
        meta: &CommandMeta,
        idempotency: Option<IdempotencyWrite>,
    ) -> Result<Appended, Error> {
        let expected = if head.0 == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(head.0)
        };
        let appended = match idempotency {
            None => {
                let mut conn = self.db().writer().acquire().await?;
                self.insert_events(
                    &mut conn,
                    stream_type,
                    stream_id,
                    expected,
                    head,
                    events,
                    meta,
                )
                .await?
            }
            Some(idem) => {
                let mut tx = self.db().begin().await?;
                let appended = self
                    .insert_events(
                        &mut tx,
                        stream_type,
                        stream_id,
                        expected,
                        head,
                        events,
                        meta,
                    )
                    .await?;
                idem.store(&mut tx, appended.version).await?;
                tx.commit().await?;
                appended
            }
        };
        self.announce(&appended);
        Ok(appended)
    }

    /// Writes `events` after `head` (version and hash) in one INSERT.
    #[allow(clippy::too_many_arguments)]
    async fn insert_events(
        &self,
        conn: &mut AnyConnection,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        head: (i64, String),
        events: Vec<NewEvent>,
        meta: &CommandMeta,
    ) -> Result<Appended, Error> {
        let (actual, mut prev_hash) = head;
        let occurred_at = format_time(meta.occurred_at);
        let mut recorded = Vec::with_capacity(events.len());
        for (i, event) in events.into_iter().enumerate() {
            let version = actual + 1 + i as i64;
            let event_id = uuid::Uuid::now_v7().to_string();
            let mut payload = event.payload;
            // Sealed before it is hashed: the chain vouches for the
            // ciphertext, and stays valid when the key is destroyed.
            if let Some(sealing) = &event.sealing {
                // The payload is the enum's JSON: its fields sit under the type's name.
                let fields = payload.get_mut(event.event_type.as_str()).ok_or_else(|| {
                    Error::Config(format!(
                        "{}: the payload is not tagged with its type, so nothing can be sealed",
                        event.event_type
                    ))
                })?;
                verkosto_keys::seal_paths(fields, sealing.paths, &sealing.key, &event_id)
                    .map_err(|e| Error::Config(format!("{}: {e}", event.event_type)))?;
            }
            let payload_text = serde_json::to_string(&payload)?;
            let hash = event_hash(&HashInput {
                prev_hash: &prev_hash,
                stream_type,
                stream_id,
                version,
                event_id: &event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                occurred_at: &occurred_at,
                actor_user: &meta.actor.user,
                actor_agency: &meta.actor.agency,
                correlation_id: &meta.correlation_id,
                causation_id: meta.causation_id.as_deref(),
                payload: &payload_text,
            });
            recorded.push(RecordedEvent {
                position: 0,
                tx: 0,
                stream_type: stream_type.to_string(),
                stream_id: stream_id.to_string(),
                version,
                event_id,
                event_type: event.event_type,
                schema_version: event.schema_version,
                occurred_at: occurred_at.clone(),
                actor: meta.actor.clone(),
                correlation_id: meta.correlation_id.clone(),
                causation_id: meta.causation_id.clone(),
                payload,
                payload_text,
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            });
        }

        if !recorded.is_empty() {
            // The event insert is the transaction's first write, so on
            // PostgreSQL its transaction id is taken after the stream head was
            // read: a later version of a stream always has a later tx id.
            let mut sql = String::from(
                "INSERT INTO events (stream_type, stream_id, version, event_id, event_type, \
                 schema_version, occurred_at, actor_user, actor_agency, correlation_id, \
                 causation_id, payload, prev_hash, hash) VALUES ",
            );
            sql.push_str(&crate::bulk::values(self.db().kind(), recorded.len(), 14));
            sql.push_str(&format!(
                " RETURNING version, position, {}",
                self.tx_column()
            ));
            let mut query = sqlx::query(&sql);
            for e in &recorded {
                query = query
                    .bind(&e.stream_type)
                    .bind(&e.stream_id)
                    .bind(e.version)
                    .bind(&e.event_id)
                    .bind(&e.event_type)
                    .bind(e.schema_version)
                    .bind(&e.occurred_at)
                    .bind(&e.actor.user)
                    .bind(&e.actor.agency)
                    .bind(&e.correlation_id)
                    .bind(e.causation_id.clone())
                    .bind(&e.payload_text)
                    .bind(&e.prev_hash)
                    .bind(&e.hash);
            }
            let rows = match query.fetch_all(&mut *conn).await {
                Ok(rows) => rows,
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::Conflict {
                        stream: format!("{stream_type}/{stream_id}"),
                        expected,
                        actual: None,
                    })
                }
                Err(e) => return Err(e.into()),
            };
            for row in rows {
                let version: i64 = row.try_get(0)?;
                let event = &mut recorded[(version - actual - 1) as usize];
                event.position = row.try_get(1)?;
                event.tx = row.try_get(2)?;
            }
        }

        let version = actual + recorded.len() as i64;
        Ok(Appended {
            events: recorded,
            version,
        })
    }

    /// Every event of one stream, in version order.
    pub async fn read_stream(
        &self,
        stream_type: &str,
        stream_id: &str,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, {} FROM events WHERE stream_type = $1 AND stream_id = $2 \
             ORDER BY version",
            self.tx_column()
        );
        let rows = sqlx::query(&sql)
            .bind(stream_type)
            .bind(stream_id)
            .fetch_all(self.db().writer())
            .await?;
        rows.iter().map(decode_row).collect()
    }

    /// The current version of a stream (0 when it does not exist).
    pub async fn stream_version(&self, stream_type: &str, stream_id: &str) -> Result<i64, Error> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM events WHERE stream_type = $1 AND stream_id = $2",
        )
        .bind(stream_type)
        .bind(stream_id)
        .fetch_one(self.db().reader())
        .await?;
        Ok(v.unwrap_or(0))
    }

    /// The commit-order cursor of the latest event among the streams
    /// `stream_types` × `stream_id` (None when none exists). A consumer that
    /// has passed it has seen every committed change to those streams.
    /// One query: each stream's head, side by side.
    pub async fn latest_cursor(
        &self,
        stream_types: &[&str],
        stream_id: &str,
    ) -> Result<Option<Cursor>, Error> {
        let heads: Vec<String> = (0..stream_types.len())
            .map(|i| {
                format!(
                    "SELECT * FROM (SELECT position, {} FROM events \
                     WHERE stream_type = ${} AND stream_id = ${} \
                     ORDER BY version DESC LIMIT 1) AS head{i}",
                    self.tx_column(),
                    2 * i + 1,
                    2 * i + 2
                )
            })
            .collect();
        if heads.is_empty() {
            return Ok(None);
        }
        let sql = heads.join(" UNION ALL ");
        let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
        for stream_type in stream_types {
            query = query.bind(*stream_type).bind(stream_id);
        }
        let rows = query.fetch_all(self.db().reader()).await?;
        Ok(rows
            .into_iter()
            .map(|(position, tx)| Cursor { tx, position })
            .max())
    }

    /// Up to `limit` events after `after`, in commit order, never past an
    /// event whose transaction might still commit before an earlier one: on
    /// PostgreSQL only transactions older than every running one are read.
    pub async fn read_after(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, Error> {
        let rows = match self.db().kind() {
            DbKind::Postgres => {
                let sql = format!(
                    "SELECT {COLUMNS}, {} FROM events \
                     WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) \
                       AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
                     ORDER BY tx_id, position LIMIT $3",
                    self.tx_column()
                );
                sqlx::query(&sql)
                    .bind(after.tx)
                    .bind(after.position)
                    .bind(limit)
                    .fetch_all(self.db().reader())
                    .await?
            }
            DbKind::Sqlite => {
                let sql = format!(
                    "SELECT {COLUMNS}, {} FROM events WHERE position > $1 \
                     ORDER BY position LIMIT $2",
                    self.tx_column()
                );
                // One writer at a time: the rowid already follows commit order.
                sqlx::query(&sql)
                    .bind(after.position)
                    .bind(limit)
                    .fetch_all(self.db().reader())
                    .await?
            }
        };
        rows.iter().map(decode_row).collect()
    }

    /// The highest global position allocated so far (0 for an empty log).
    pub async fn head_position(&self) -> Result<i64, Error> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(self.db().reader())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// Number of events in the log.
    pub async fn count(&self) -> Result<i64, Error> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(self.db().reader())
            .await?)
    }

    /// The event with this id, if any.
    pub async fn event_by_id(&self, event_id: &str) -> Result<Option<RecordedEvent>, Error> {
        let sql = format!(
            "SELECT {COLUMNS}, {} FROM events WHERE event_id = $1",
            self.tx_column()
        );
        let row = sqlx::query(&sql)
            .bind(event_id)
            .fetch_optional(self.db().reader())
            .await?;
        row.as_ref().map(decode_row).transpose()
    }

    /// The stored answer for `(scope, key)`, if a write with that key committed.
    pub async fn idempotent_answer(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<StoredAnswer>, Error> {
        crate::idempotency::stored_answer(self.db(), scope, key).await
    }
}

/// A stream's last version and hash, (0, genesis) for a new stream.
async fn read_head<'e, E>(
    executor: E,
    stream_type: &str,
    stream_id: &str,
) -> Result<(i64, String), Error>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let head: Option<(i64, String)> = sqlx::query_as(
        "SELECT version, hash FROM events WHERE stream_type = $1 AND stream_id = $2 \
         ORDER BY version DESC LIMIT 1",
    )
    .bind(stream_type)
    .bind(stream_id)
    .fetch_optional(executor)
    .await?;
    Ok(head.unwrap_or((0, GENESIS.to_string())))
}

pub(crate) fn decode_row(row: &AnyRow) -> Result<RecordedEvent, Error> {
    let payload_text: String = row.try_get("payload")?;
    // A payload that is not JSON (only possible by tampering) decodes as
    // null: consumers then quarantine it, and `verify` reports the hash.
    let payload = serde_json::from_str(&payload_text).unwrap_or(serde_json::Value::Null);
    // Older shapes are read as the current one; a version from a newer build
    // is withheld (null), so readers quarantine it rather than misread it.
    let event_type: String = row.try_get("event_type")?;
    let schema_version: i64 = row.try_get("schema_version")?;
    let payload = crate::upcast::upcast(&event_type, schema_version, payload).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "event payload withheld");
        serde_json::Value::Null
    });
    Ok(RecordedEvent {
        position: row.try_get("position")?,
        tx: row.try_get("tx")?,
        stream_type: row.try_get("stream_type")?,
        stream_id: row.try_get("stream_id")?,
        version: row.try_get("version")?,
        event_id: row.try_get("event_id")?,
        event_type,
        schema_version,
        occurred_at: row.try_get("occurred_at")?,
        actor: Actor {
            user: row.try_get("actor_user")?,
            agency: row.try_get("actor_agency")?,
        },
        correlation_id: row.try_get("correlation_id")?,
        causation_id: row.try_get("causation_id")?,
        payload,
        payload_text,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}
