//! Copies of events from outside the log (stream messages) are checked
//! against it before a consumer applies them. The log is the truth; the
//! stream is a copy that anyone holding stream credentials could write to,
//! so a message counts only when it is, field for field, the log's own next
//! event after the consumer's checkpoint.

use std::collections::HashMap;

use crate::db::DbKind;
use crate::hash::recompute;
use crate::model::{Cursor, RecordedEvent};
use crate::store::EventLog;
use crate::Error;

/// What the log holds of an event, enough to recognise a copy of it.
#[derive(sqlx::FromRow)]
struct Fingerprint {
    /// The event's transaction id (the position, on SQLite).
    tx: i64,
    /// The event's position in the log.
    position: i64,
    /// The event's id.
    event_id: String,
    /// The event's stored hash.
    hash: String,
}

impl Fingerprint {
    fn matches(&self, copy: &RecordedEvent) -> bool {
        copy.cursor()
            == (Cursor {
                tx: self.tx,
                position: self.position,
            })
            && copy.event_id == self.event_id
            && copy.hash == self.hash
    }
}

/// Why `copy` is not the log's event, given what the log holds at its
/// place; None when it is.
fn doubt(in_log: Option<&Fingerprint>, copy: &RecordedEvent) -> Option<&'static str> {
    match in_log {
        Some(f) if f.matches(copy) && recompute(copy) == copy.hash => None,
        Some(f) if f.matches(copy) => Some("its fields do not give its hash"),
        Some(_) => Some("the log holds another event at its place"),
        None => Some("the log holds no event at its place"),
    }
}

fn describe(copy: &RecordedEvent) -> String {
    format!("event {} at {}", copy.event_id, copy.cursor())
}

impl EventLog {
    /// The log's own events that `copies` (stream messages, in stream
    /// order) stand for, in log order from `after` on. A copy counts only
    /// when the log holds it field for field at its place, and its fields
    /// give its hash. Copies at or before `after` were seen already. When a
    /// genuine copy is further on than the log's next event, the stream
    /// lacks events (expired from it, or lost): those come from the log.
    /// Every other copy is refused with an alert ([`EventLog::refuse_copy`]):
    /// forged, altered, or claiming a place the log gives another event.
    pub async fn verify_copies(
        &self,
        consumer: &str,
        after: Cursor,
        copies: Vec<RecordedEvent>,
    ) -> Result<Vec<RecordedEvent>, Error> {
        // Copies of events already seen change nothing, but a forged one
        // among them is still refused, and said.
        let (seen, copies): (Vec<_>, Vec<_>) =
            copies.into_iter().partition(|c| c.cursor() <= after);
        self.refuse_unconfirmed(consumer, &seen).await?;
        let mut at = after;
        let mut next = self.fingerprints_after(at, copies.len()).await?.into_iter();
        let mut expected = next.next();
        let mut genuine = Vec::with_capacity(copies.len());
        for copy in copies {
            if copy.cursor() <= at {
                self.refuse_unconfirmed(consumer, std::slice::from_ref(&copy))
                    .await?;
                continue;
            }
            if doubt(expected.as_ref(), &copy).is_none() {
                at = copy.cursor();
                genuine.push(copy);
                expected = next.next();
                continue;
            }
            let in_log = self.fingerprint_of(&copy).await?;
            if let Some(reason) = doubt(in_log.as_ref(), &copy) {
                self.refuse_copy(consumer, &describe(&copy), reason);
                continue;
            }
            let missing = self.read_between(at, copy.cursor()).await?;
            tracing::warn!(
                consumer,
                from = %at,
                to = %copy.cursor(),
                events = missing.len(),
                "the stream lacks events; reading them from the log"
            );
            genuine.extend(missing);
            at = copy.cursor();
            genuine.push(copy);
            next = self.fingerprints_after(at, 1000).await?.into_iter();
            expected = next.next();
        }
        Ok(genuine)
    }

    /// Whether the log holds `copy` at its place, field for field.
    pub async fn confirms(&self, copy: &RecordedEvent) -> Result<bool, Error> {
        let in_log = self.fingerprint_of(copy).await?;
        Ok(doubt(in_log.as_ref(), copy).is_none())
    }

    /// Refuses those of `copies` the log does not hold as they are.
    async fn refuse_unconfirmed(
        &self,
        consumer: &str,
        copies: &[RecordedEvent],
    ) -> Result<(), Error> {
        if copies.is_empty() {
            return Ok(());
        }
        // Positions are integers: safe to write into the statement.
        let positions: Vec<String> = copies.iter().map(|c| c.position.to_string()).collect();
        let sql = format!(
            "SELECT {}, position, event_id, hash FROM events WHERE position IN ({})",
            self.tx_column(),
            positions.join(",")
        );
        let log: HashMap<i64, Fingerprint> = sqlx::query_as(&sql)
            .fetch_all(self.db().reader())
            .await?
            .into_iter()
            .map(|f: Fingerprint| (f.position, f))
            .collect();
        for copy in copies {
            if let Some(reason) = doubt(log.get(&copy.position), copy) {
                self.refuse_copy(consumer, &describe(copy), reason);
            }
        }
        Ok(())
    }

    /// The next `limit` events' fingerprints after `after`, in commit order.
    async fn fingerprints_after(
        &self,
        after: Cursor,
        limit: usize,
    ) -> Result<Vec<Fingerprint>, Error> {
        let limit = limit as i64;
        Ok(match self.db().kind() {
            DbKind::Postgres => {
                sqlx::query_as(
                    "SELECT tx_id::text::bigint AS tx, position, event_id, hash FROM events \
                     WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) \
                     ORDER BY tx_id, position LIMIT $3",
                )
                .bind(after.tx)
                .bind(after.position)
                .bind(limit)
                .fetch_all(self.db().reader())
                .await?
            }
            // One writer at a time: the rowid follows commit order.
            DbKind::Sqlite => {
                sqlx::query_as(
                    "SELECT position AS tx, position, event_id, hash FROM events \
                     WHERE position > $1 ORDER BY position LIMIT $2",
                )
                .bind(after.position)
                .bind(limit)
                .fetch_all(self.db().reader())
                .await?
            }
        })
    }

    /// The fingerprint of the log's event at the copy's position, if any.
    async fn fingerprint_of(&self, copy: &RecordedEvent) -> Result<Option<Fingerprint>, Error> {
        let sql = format!(
            "SELECT {}, position, event_id, hash FROM events WHERE position = $1",
            self.tx_column()
        );
        Ok(sqlx::query_as(&sql)
            .bind(copy.position)
            .fetch_optional(self.db().reader())
            .await?)
    }

    /// The log's events after `after` and before `before`.
    async fn read_between(
        &self,
        after: Cursor,
        before: Cursor,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let mut events = Vec::new();
        let mut at = after;
        loop {
            let batch = self.read_after(at, 1000).await?;
            let Some(last) = batch.last().map(RecordedEvent::cursor) else {
                return Ok(events);
            };
            events.extend(batch.into_iter().take_while(|e| e.cursor() < before));
            if last >= before {
                return Ok(events);
            }
            at = last;
        }
    }

    /// Refuses a message that claims to be an event of the log: an alert
    /// for the operator, and a count for `/metrics`. The consumer goes on.
    pub fn refuse_copy(&self, consumer: &str, copy: &str, reason: &str) {
        self.count_refused_copy(consumer);
        tracing::error!(
            alert = "forged_message",
            consumer,
            copy,
            reason,
            "a message on the stream is not the log's: refused"
        );
    }
}
