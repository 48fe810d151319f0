//! The event log's conformance suite: every test runs against both backends,
//! SQLite (a temporary file) and PostgreSQL (a fresh database on a real server).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;
use verkosto_eventlog::{
    Actor, CommandMeta, Cursor, Db, DbKind, Error, EventLog, ExpectedVersion, NewEvent,
};

struct Backend {
    log: EventLog,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    Backend {
        log: EventLog::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Backend {
    let url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    Backend {
        log: EventLog::new(Db::connect_with(&url, 40).await.unwrap()),
        _dir: None,
    }
}

/// Declares one test per backend from one async body taking the log.
macro_rules! conformance {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let b = super::sqlite().await;
                ($body)(b.log.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let b = super::postgres().await;
                ($body)(b.log.clone()).await;
            }
        }
    };
}

fn meta() -> CommandMeta {
    CommandMeta::new(Actor {
        user: "fiona".into(),
        agency: "ngo-support".into(),
    })
}

fn event(n: i64) -> NewEvent {
    NewEvent {
        event_type: "Noted".into(),
        schema_version: 1,
        payload: json!({ "n": n }),
        sealing: None,
    }
}

/// Everything readable in commit order, once all `count` events are. On
/// PostgreSQL the safe horizon is cluster-wide, so a transaction of a test
/// running in another database can hold tailing back for a moment.
async fn read_all(log: &EventLog) -> Vec<verkosto_eventlog::RecordedEvent> {
    let count = log.count().await.unwrap() as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut out = Vec::new();
        let mut at = Cursor::START;
        loop {
            let batch = log.read_after(at, 500).await.unwrap();
            let Some(last) = batch.last() else { break };
            at = last.cursor();
            out.extend(batch);
        }
        if out.len() >= count || tokio::time::Instant::now() > deadline {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

conformance!(append_and_read_back, |log: EventLog| async move {
    let m = meta();
    let a = log
        .append(
            "case",
            "c1",
            ExpectedVersion::NoStream,
            vec![event(1), event(2)],
            &m,
            None,
        )
        .await
        .unwrap();
    assert_eq!(a.version, 2);
    log.append(
        "case",
        "c1",
        ExpectedVersion::Exact(2),
        vec![event(3)],
        &m,
        None,
    )
    .await
    .unwrap();
    log.append("case", "c2", ExpectedVersion::Any, vec![event(9)], &m, None)
        .await
        .unwrap();

    let stream = log.read_stream("case", "c1").await.unwrap();
    assert_eq!(
        stream.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(stream[2].payload, json!({ "n": 3 }));
    let e = &stream[0];
    assert_eq!(e.actor, m.actor);
    assert_eq!(e.correlation_id, m.correlation_id);
    assert_eq!(e.event_type, "Noted");
    assert_eq!(e.schema_version, 1);
    assert_eq!(e.prev_hash, verkosto_eventlog::GENESIS);
    assert_eq!(stream[1].prev_hash, stream[0].hash);
    assert!(stream[0].position < stream[1].position && stream[1].position < stream[2].position);
    assert_eq!(log.stream_version("case", "c1").await.unwrap(), 3);
    assert_eq!(log.stream_version("case", "nope").await.unwrap(), 0);

    let all = read_all(&log).await;
    assert_eq!(all.len(), 4);
    assert_eq!(log.event_by_id(&e.event_id).await.unwrap().unwrap(), *e);
});

conformance!(
    stale_expected_version_is_a_conflict,
    |log: EventLog| async move {
        let m = meta();
        log.append(
            "case",
            "c1",
            ExpectedVersion::NoStream,
            vec![event(1)],
            &m,
            None,
        )
        .await
        .unwrap();
        for expected in [
            ExpectedVersion::NoStream,
            ExpectedVersion::Exact(0),
            ExpectedVersion::Exact(2),
        ] {
            let err = log
                .append("case", "c1", expected, vec![event(2)], &m, None)
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Conflict {
                        actual: Some(1),
                        ..
                    }
                ),
                "{err:?}"
            );
        }
    }
);

conformance!(
    two_concurrent_appends_at_one_version_one_wins,
    |log: EventLog| async move {
        let m = meta();
        log.append(
            "case",
            "race",
            ExpectedVersion::NoStream,
            vec![event(0)],
            &m,
            None,
        )
        .await
        .unwrap();
        for round in 1..=20i64 {
            let (a, b) = tokio::join!(
                log.append(
                    "case",
                    "race",
                    ExpectedVersion::Exact(round),
                    vec![event(round)],
                    &m,
                    None
                ),
                log.append(
                    "case",
                    "race",
                    ExpectedVersion::Exact(round),
                    vec![event(-round)],
                    &m,
                    None
                ),
            );
            let wins = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
            assert_eq!(wins, 1, "round {round}: {a:?} / {b:?}");
            let loser = if a.is_ok() { b } else { a };
            assert!(matches!(loser, Err(Error::Conflict { .. })), "{loser:?}");
        }
        assert_eq!(log.stream_version("case", "race").await.unwrap(), 21);
    }
);

conformance!(
    tailer_sees_every_event_once_in_order_despite_late_commits,
    |log: EventLog| async move {
        const WRITERS: usize = 8;
        const PER_WRITER: i64 = 25;
        let tailer = {
            let log = log.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut at = Cursor::START;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                while seen.len() < WRITERS * PER_WRITER as usize {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "tailer saw only {}",
                        seen.len()
                    );
                    let batch = log.read_after(at, 7).await.unwrap();
                    if let Some(last) = batch.last() {
                        at = last.cursor();
                    }
                    seen.extend(batch);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                seen
            })
        };
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let log = log.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    // Take a position, then hold the transaction open before commit:
                    // a naive "position > last" tailer would skip what commits late.
                    let mut tx = log.db().begin().await.unwrap();
                    let appended = log
                        .append_in(
                            &mut tx,
                            "writer",
                            &format!("w{w}"),
                            ExpectedVersion::Exact(i),
                            vec![event(i)],
                            &meta(),
                        )
                        .await
                        .unwrap();
                    let delay = ((w as u64 * 7 + i as u64 * 13) % 5) * 3;
                    tokio::time::sleep(Duration::from_millis(delay)).await;
                    tx.commit().await.unwrap();
                    log.announce(&appended);
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
        let seen = tailer.await.unwrap();
        let mut ids = HashSet::new();
        let mut versions: HashMap<String, i64> = HashMap::new();
        for (i, e) in seen.iter().enumerate() {
            assert!(
                ids.insert(e.event_id.clone()),
                "event {} delivered twice",
                e.event_id
            );
            if i > 0 {
                assert!(seen[i - 1].cursor() < e.cursor(), "cursor went backwards");
            }
            let v = versions.entry(e.stream_id.clone()).or_insert(0);
            assert_eq!(e.version, *v + 1, "stream {} out of order", e.stream_id);
            *v = e.version;
        }
        assert_eq!(seen.len(), WRITERS * PER_WRITER as usize);
        assert!(log
            .read_after(seen.last().unwrap().cursor(), 10)
            .await
            .unwrap()
            .is_empty());
    }
);

conformance!(
    idempotent_append_stores_the_answer_with_the_events,
    |log: EventLog| async move {
        use std::sync::Arc;
        use verkosto_eventlog::IdempotencyWrite;
        let idem = || IdempotencyWrite {
            scope: "fiona".into(),
            key: "k-1".into(),
            request_hash: "h".into(),
            respond: Arc::new(|v| (201, json!({ "version": v }))),
        };
        log.append(
            "case",
            "c1",
            ExpectedVersion::NoStream,
            vec![event(1)],
            &meta(),
            Some(idem()),
        )
        .await
        .unwrap();
        let answer = log
            .idempotent_answer("fiona", "k-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (answer.status, answer.response),
            (201, json!({ "version": 1 }))
        );
        assert!(log
            .idempotent_answer("other-user", "k-1")
            .await
            .unwrap()
            .is_none());
        // The same key again cannot commit a second set of events.
        let err = log
            .append(
                "case",
                "c1",
                ExpectedVersion::Any,
                vec![event(2)],
                &meta(),
                Some(idem()),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::IdempotencyRace), "{err:?}");
        assert_eq!(log.stream_version("case", "c1").await.unwrap(), 1);
    }
);

/// Appends a few streams and seals them.
async fn sealed_log(log: &EventLog) -> Vec<verkosto_eventlog::RecordedEvent> {
    for s in 0..3 {
        for i in 0..4 {
            log.append(
                "case",
                &format!("s{s}"),
                ExpectedVersion::Exact(i),
                vec![event(i)],
                &meta(),
                None,
            )
            .await
            .unwrap();
        }
    }
    let all = read_all(log).await;
    assert_eq!(all.len(), 12);
    assert_eq!(log.seal_pending().await.unwrap(), 12);
    assert_eq!(log.seal_pending().await.unwrap(), 0);
    let report = log.verify(|_| {}).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.events_checked, 12);
    all
}

/// Runs raw SQL as the database owner, bypassing the append-only triggers.
async fn tamper(log: &EventLog, sql: &str) {
    let mut tx = log.db().writer().begin().await.unwrap();
    match log.db().kind() {
        DbKind::Postgres => {
            sqlx::query("SET LOCAL session_replication_role = replica")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        DbKind::Sqlite => {
            for t in ["events_no_update", "events_no_delete"] {
                sqlx::query(&format!("DROP TRIGGER IF EXISTS {t}"))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
        }
    }
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

conformance!(
    the_log_refuses_updates_and_deletes,
    |log: EventLog| async move {
        log.append(
            "case",
            "c",
            ExpectedVersion::Any,
            vec![event(1)],
            &meta(),
            None,
        )
        .await
        .unwrap();
        assert!(sqlx::query("UPDATE events SET payload = '{}'")
            .execute(log.db().writer())
            .await
            .is_err());
        assert!(sqlx::query("DELETE FROM events")
            .execute(log.db().writer())
            .await
            .is_err());
        assert_eq!(log.count().await.unwrap(), 1);
    }
);

conformance!(verify_finds_an_edited_row, |log: EventLog| async move {
    let events = sealed_log(&log).await;
    let target = &events[5];
    tamper(
        &log,
        &format!(
            "UPDATE events SET payload = '{{\"n\":99}}' WHERE position = {}",
            target.position
        ),
    )
    .await;
    let report = log.verify(|_| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken.unwrap().position, target.position);
});

conformance!(verify_finds_a_deleted_row, |log: EventLog| async move {
    let events = sealed_log(&log).await;
    // The last event of its stream: only the seal chain can notice.
    let target = events.iter().rev().find(|e| e.version == 4).unwrap();
    tamper(
        &log,
        &format!("DELETE FROM events WHERE position = {}", target.position),
    )
    .await;
    let report = log.verify(|_| {}).await.unwrap();
    assert!(!report.ok);
    let broken = report.first_broken.unwrap();
    assert_eq!(broken.position, target.position, "{broken:?}");
    assert!(broken.problem.contains("missing"), "{broken:?}");

    // And a middle one.
    let middle = events.iter().find(|e| e.version == 2).unwrap();
    tamper(
        &log,
        &format!("DELETE FROM events WHERE position = {}", middle.position),
    )
    .await;
    assert!(!log.verify(|_| {}).await.unwrap().ok);
});

conformance!(verify_finds_an_inserted_row, |log: EventLog| async move {
    let events = sealed_log(&log).await;
    let copy = &events[3];
    // A forged event in a stream of its own, positioned among sealed ones.
    let position = events[2].position * 1000 + 1;
    let tx_col = match log.db().kind() {
        DbKind::Postgres => format!(", tx_id) SELECT {position}, 'case', 'forged', 1, 'forged-id', event_type, schema_version, occurred_at, actor_user, actor_agency, correlation_id, causation_id, payload, prev_hash, hash, tx_id"),
        DbKind::Sqlite => format!(") SELECT {position}, 'case', 'forged', 1, 'forged-id', event_type, schema_version, occurred_at, actor_user, actor_agency, correlation_id, causation_id, payload, prev_hash, hash"),
    };
    tamper(
        &log,
        &format!(
            "INSERT INTO events (position, stream_type, stream_id, version, event_id, event_type, schema_version, occurred_at, actor_user, actor_agency, correlation_id, causation_id, payload, prev_hash, hash{tx_col} FROM events WHERE position = {}",
            copy.position
        ),
    )
    .await;
    let report = log.verify(|_| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(report.first_broken.unwrap().position, position);
});

conformance!(verify_finds_swapped_rows, |log: EventLog| async move {
    let events = sealed_log(&log).await;
    let (a, b) = (&events[4], &events[9]);
    tamper(
        &log,
        &format!(
            "UPDATE events SET payload = CASE position WHEN {a} THEN (SELECT payload FROM events WHERE position = {b}) ELSE (SELECT payload FROM events WHERE position = {a}) END, \
             hash = CASE position WHEN {a} THEN (SELECT hash FROM events WHERE position = {b}) ELSE (SELECT hash FROM events WHERE position = {a}) END \
             WHERE position IN ({a}, {b})",
            a = a.position,
            b = b.position
        ),
    )
    .await;
    let report = log.verify(|_| {}).await.unwrap();
    assert!(!report.ok);
    assert_eq!(
        report.first_broken.unwrap().position,
        a.position.min(b.position)
    );
});

/// A tiny aggregate to drive `AggregateStore::execute`.
mod counter {
    use cqrs_es::event_sink::EventSink;
    use cqrs_es::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Default, Serialize, Deserialize)]
    pub struct Counter {
        pub value: i64,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub enum CounterEvent {
        Added { by: i64, total: i64 },
    }

    impl verkosto_eventlog::PersonalData for CounterEvent {
        const SEALED: &'static [(&'static str, &'static [&'static str])] = &[];
    }

    impl DomainEvent for CounterEvent {
        fn event_type(&self) -> String {
            "Added".into()
        }
        fn event_version(&self) -> String {
            "1".into()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("negative")]
    pub struct Negative;

    impl verkosto_eventlog::DataSubject for Counter {}

    impl Aggregate for Counter {
        const TYPE: &'static str = "counter";
        type Command = i64;
        type Event = CounterEvent;
        type Error = Negative;
        type Services = ();

        async fn handle(
            &mut self,
            by: i64,
            _: &(),
            sink: &EventSink<Self>,
        ) -> Result<(), Negative> {
            if by < 0 {
                return Err(Negative);
            }
            let total = self.value + by;
            sink.write(CounterEvent::Added { by, total }, self).await;
            Ok(())
        }

        fn apply(&mut self, event: CounterEvent) {
            let CounterEvent::Added { total, .. } = event;
            self.value = total;
        }
    }
}

conformance!(
    execute_never_loses_an_update_and_honours_if_match,
    |log: EventLog| async move {
        use verkosto_eventlog::{AggregateStore, ExecuteError, Execution, Outcome};
        let store = AggregateStore::<counter::Counter>::new(log.clone());
        // 16 concurrent increments without If-Match: each is decided again on conflict.
        let runs = (0..16).map(|_| {
            let store = store.clone();
            async move { store.execute("c", 1, &(), Execution::new(meta())).await }
        });
        for r in futures::future::join_all(runs).await {
            assert!(matches!(r, Ok(Outcome::Committed { .. })), "{:?}", r.err());
        }
        let loaded = store.load("c").await.unwrap();
        assert_eq!((loaded.version, loaded.aggregate.value), (16, 16));

        // If-Match: the current version passes, a stale one is refused.
        let mut exec = Execution::new(meta());
        exec.if_match = Some(16);
        assert!(store.execute("c", 1, &(), exec).await.is_ok());
        let mut stale = Execution::new(meta());
        stale.if_match = Some(16);
        let err = store.execute("c", 1, &(), stale).await.unwrap_err();
        assert!(
            matches!(
                err,
                ExecuteError::PreconditionFailed {
                    expected: 16,
                    actual: 17
                }
            ),
            "{err:?}"
        );

        // Two concurrent writers with the same If-Match: one wins, one is refused.
        let both = (0..2).map(|_| {
            let store = store.clone();
            async move {
                let mut e = Execution::new(meta());
                e.if_match = Some(17);
                store.execute("c", 1, &(), e).await
            }
        });
        let results = futures::future::join_all(both).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results
            .iter()
            .any(|r| matches!(r, Err(ExecuteError::PreconditionFailed { .. }))));

        // A rejected command appends nothing.
        assert!(matches!(
            store.execute("c", -1, &(), Execution::new(meta())).await,
            Err(ExecuteError::Rejected(_))
        ));
        assert_eq!(log.stream_version("counter", "c").await.unwrap(), 18);

        // cqrs-es's own framework works on the same store.
        let cqrs = cqrs_es::CqrsFramework::new(store.clone(), vec![], ());
        cqrs.execute("d", 5).await.unwrap();
        assert_eq!(store.load("d").await.unwrap().aggregate.value, 5);
        let envelopes = cqrs_es::EventStore::load_events(&store, "d").await.unwrap();
        assert_eq!(envelopes[0].sequence, 1);
    }
);
