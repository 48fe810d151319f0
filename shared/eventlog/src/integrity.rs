//! The integrity chain: each event's hash covers its predecessor in its
//! stream (written with the event), and the sealer chains every event in
//! commit order (written just after). Together they reveal any later edit,
//! deletion, insertion or reordering of stored events.

use std::collections::HashMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::hash::{recompute, GENESIS};
use crate::model::{Cursor, RecordedEvent};
use crate::store::EventLog;
use crate::Error;

/// Name of the sealer's checkpoint.
pub const SEALER: &str = "integrity-sealer";

fn chain(prev: &str, event_hash: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(event_hash.as_bytes());
    hex::encode(h.finalize())
}

/// The outcome of `verify`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub events_checked: u64,
    pub first_broken: Option<BrokenLink>,
}

/// Where the chain first fails, and how.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BrokenLink {
    pub position: i64,
    pub stream_type: Option<String>,
    pub stream_id: Option<String>,
    pub version: Option<i64>,
    pub problem: String,
}

impl BrokenLink {
    fn at(e: &RecordedEvent, problem: impl Into<String>) -> BrokenLink {
        BrokenLink {
            position: e.position,
            stream_type: Some(e.stream_type.clone()),
            stream_id: Some(e.stream_id.clone()),
            version: Some(e.version),
            problem: problem.into(),
        }
    }
}

#[derive(sqlx::FromRow)]
struct Seal {
    seal_seq: i64,
    position: i64,
    event_hash: String,
    chain_hash: String,
}

impl EventLog {
    /// Seals every event readable in commit order that is not sealed yet.
    /// Returns how many were sealed. Safe to run from several processes:
    /// the seal sequence is a primary key, so a racing sealer fails and retries.
    pub async fn seal_pending(&self) -> Result<usize, Error> {
        let mut total = 0;
        loop {
            let (cursor, seq, last) = self.seal_head().await?;
            let events = self.read_after(cursor, 1000).await?;
            if events.is_empty() {
                return Ok(total);
            }
            let mut tx = self.db().begin().await?;
            let mut prev = last;
            for (i, e) in events.iter().enumerate() {
                let next = chain(&prev, &e.hash);
                sqlx::query(
                    "INSERT INTO event_seals (seal_seq, position, event_hash, chain_hash) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(seq + 1 + i as i64)
                .bind(e.position)
                .bind(&e.hash)
                .bind(&next)
                .execute(&mut *tx)
                .await?;
                prev = next;
            }
            let end = events.last().map(RecordedEvent::cursor).unwrap_or(cursor);
            crate::projection::save_checkpoint(&mut tx, SEALER, end, 0).await?;
            tx.commit().await?;
            total += events.len();
        }
    }

    /// The sealer's cursor, last seal sequence and last chain hash.
    async fn seal_head(&self) -> Result<(Cursor, i64, String), Error> {
        let cursor = crate::projection::load_checkpoint(self.db().writer(), SEALER).await?;
        let last: Option<(i64, String)> = sqlx::query_as(
            "SELECT seal_seq, chain_hash FROM event_seals ORDER BY seal_seq DESC LIMIT 1",
        )
        .fetch_optional(self.db().writer())
        .await?;
        let (seq, hash) = last.unwrap_or((0, GENESIS.to_string()));
        Ok((cursor, seq, hash))
    }

    /// Checks the whole log: every event's hash, every stream's chain of
    /// versions, and the commit-order seal chain. `progress` is called with
    /// the number of events checked so far.
    pub async fn verify(&self, mut progress: impl FnMut(u64)) -> Result<VerifyReport, Error> {
        let sealed_upto = crate::projection::load_checkpoint(self.db().reader(), SEALER).await?;
        let seals: Vec<Seal> = sqlx::query_as(
            "SELECT seal_seq, position, event_hash, chain_hash FROM event_seals ORDER BY seal_seq",
        )
        .fetch_all(self.db().reader())
        .await?;
        let seal_at: HashMap<i64, usize> = seals
            .iter()
            .enumerate()
            .map(|(i, s)| (s.position, i))
            .collect();

        let mut first: Option<BrokenLink> = None;
        let note = |b: BrokenLink, first: &mut Option<BrokenLink>| {
            if first.as_ref().is_none_or(|f| b.position < f.position) {
                *first = Some(b);
            }
        };

        // 1. Each event in commit order: its own hash, its stream's chain,
        //    and its place in the seal chain.
        let mut heads: HashMap<(String, String), (i64, String)> = HashMap::new();
        let mut checked = 0u64;
        let mut last_seal_index: Option<usize> = None;
        let mut present = vec![false; seals.len()];
        let mut cursor = Cursor::START;
        loop {
            let events = self.read_all_after(cursor, 5000).await?;
            let Some(last) = events.last() else { break };
            cursor = last.cursor();
            for e in &events {
                checked += 1;
                if recompute(e) != e.hash {
                    note(
                        BrokenLink::at(e, "event content does not match its hash"),
                        &mut first,
                    );
                }
                let key = (e.stream_type.clone(), e.stream_id.clone());
                let (want_version, want_prev) = heads
                    .get(&key)
                    .map(|(v, h)| (v + 1, h.clone()))
                    .unwrap_or((1, GENESIS.to_string()));
                if e.version != want_version {
                    note(
                        BrokenLink::at(
                            e,
                            format!("stream version {} follows {}", e.version, want_version - 1),
                        ),
                        &mut first,
                    );
                } else if e.prev_hash != want_prev {
                    note(
                        BrokenLink::at(e, "link to the stream's previous event is broken"),
                        &mut first,
                    );
                }
                heads.insert(key, (e.version, e.hash.clone()));
                match seal_at.get(&e.position) {
                    Some(&i) => {
                        present[i] = true;
                        if seals[i].event_hash != e.hash {
                            note(
                                BrokenLink::at(e, "event differs from what was sealed"),
                                &mut first,
                            );
                        }
                        if last_seal_index.is_some_and(|l| i < l) {
                            note(
                                BrokenLink::at(e, "event is out of its sealed order"),
                                &mut first,
                            );
                        }
                        last_seal_index = Some(i);
                    }
                    None if e.cursor() <= sealed_upto => {
                        note(
                            BrokenLink::at(e, "event was inserted after sealing"),
                            &mut first,
                        );
                    }
                    None => {}
                }
            }
            progress(checked);
        }

        // 2. The seal chain itself, and seals whose event is gone.
        let mut prev = GENESIS.to_string();
        for (i, s) in seals.iter().enumerate() {
            if s.seal_seq != i as i64 + 1 || chain(&prev, &s.event_hash) != s.chain_hash {
                note(
                    BrokenLink {
                        position: s.position,
                        stream_type: None,
                        stream_id: None,
                        version: None,
                        problem: format!("seal chain broken at seal {}", s.seal_seq),
                    },
                    &mut first,
                );
                break;
            }
            if !present[i] {
                note(
                    BrokenLink {
                        position: s.position,
                        stream_type: None,
                        stream_id: None,
                        version: None,
                        problem: "sealed event is missing (deleted)".into(),
                    },
                    &mut first,
                );
            }
            prev = s.chain_hash.clone();
        }

        Ok(VerifyReport {
            ok: first.is_none(),
            events_checked: checked,
            first_broken: first,
        })
    }

    /// Every stored event after `after` in commit order, including ones
    /// above the safe horizon (for verification, not for tailing).
    async fn read_all_after(&self, after: Cursor, limit: i64) -> Result<Vec<RecordedEvent>, Error> {
        use crate::db::DbKind;
        let order = match self.db().kind() {
            DbKind::Postgres => {
                "WHERE (tx_id, position) > (($1::bigint)::text::xid8, $2) ORDER BY tx_id, position LIMIT $3"
            }
            DbKind::Sqlite => "WHERE position > $2 AND $1 = $1 ORDER BY position LIMIT $3",
        };
        let sql = format!(
            "SELECT {}, {} FROM events {order}",
            crate::store::COLUMNS,
            self.tx_column()
        );
        let rows = sqlx::query(&sql)
            .bind(after.tx)
            .bind(after.position)
            .bind(limit)
            .fetch_all(self.db().reader())
            .await?;
        rows.iter().map(crate::store::decode_row).collect()
    }
}
