//! `Idempotency-Key`: a retried write returns its first answer and appends nothing.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use crate::db::{is_unique_violation, Db};
use crate::model::format_time;
use crate::Error;

/// The answer a write gave, as stored under its key.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAnswer {
    /// [`request_hash`] of the first request: a retry with another request is refused.
    pub request_hash: String,
    /// The HTTP status it answered with.
    pub status: u16,
    /// The JSON body it answered with.
    pub response: serde_json::Value,
}

#[derive(Clone)]
/// What to store with an append: the key, a hash of the request, and how to
/// build the answer from the stream's new version.
pub struct IdempotencyWrite {
    /// Whose keys these are: the caller's user id, so users' keys never collide.
    pub scope: String,
    /// The `Idempotency-Key` header's value.
    pub key: String,
    /// [`request_hash`] of this request (method, path, body).
    pub request_hash: String,
    /// Builds the status and body from the stream's version after the append.
    pub respond: Arc<dyn Fn(i64) -> (u16, serde_json::Value) + Send + Sync>,
}

impl std::fmt::Debug for IdempotencyWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdempotencyWrite")
            .field("scope", &self.scope)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Hashes what identifies a request: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    hex::encode(h.finalize())
}

impl IdempotencyWrite {
    /// Stores the answer inside the append's transaction (for writes that
    /// compose [`EventLog::append_in`] with their own rows).
    pub async fn store(
        self,
        tx: &mut Transaction<'static, Any>,
        version: i64,
    ) -> Result<(), Error> {
        let (status, response) = (self.respond)(version);
        let result = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&self.scope)
        .bind(&self.key)
        .bind(&self.request_hash)
        .bind(status as i64)
        .bind(serde_json::to_string(&response)?)
        .bind(format_time(crate::clock::now()))
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => Ok(()),
            // A concurrent request with the same key won: the caller reads its answer.
            Err(e) if is_unique_violation(&e) => Err(Error::IdempotencyRace),
            Err(e) => Err(e.into()),
        }
    }
}

/// The stored answer for `(scope, key)`, if a write with that key committed
/// (`EventLog::idempotent_answer`).
pub(crate) async fn stored_answer(
    db: &Db,
    scope: &str,
    key: &str,
) -> Result<Option<StoredAnswer>, Error> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request_hash, status, response FROM idempotency_keys \
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .fetch_optional(db.writer())
    .await?;
    row.map(|(request_hash, status, response)| {
        Ok(StoredAnswer {
            request_hash,
            status: status as u16,
            response: serde_json::from_str(&response)?,
        })
    })
    .transpose()
}
