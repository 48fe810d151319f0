//! A crash between a projection's apply and its checkpoint save (the
//! `eventlog-before-checkpoint` failpoint): after a restart nothing is lost
//! and nothing is applied twice. SQLite and PostgreSQL.
//! Run with `--features failpoints` (scripts/test.sh does).
#![cfg(feature = "failpoints")]

use serde_json::json;
use sqlx::AnyConnection;
use verkosto_eventlog::{
    Actor, ApplyError, CommandMeta, Db, Error, EventLog, ExpectedVersion, NewEvent, Projection,
    RecordedEvent,
};

const POINT: &str = "eventlog-before-checkpoint";

/// Writes one row per applied event; a second apply would be a second row.
struct Counting;

#[async_trait::async_trait]
impl Projection for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        sqlx::query("INSERT INTO applied (event_id) VALUES ($1)")
            .bind(&event.event_id)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        sqlx::query("DELETE FROM applied").execute(conn).await?;
        Ok(())
    }
}

async fn append(log: &EventLog, n: usize) {
    let meta = CommandMeta::new(Actor::system());
    for i in 0..n {
        log.append(
            "counter",
            &format!("c{i}"),
            ExpectedVersion::NoStream,
            vec![NewEvent {
                event_type: "Counted".into(),
                schema_version: 1,
                payload: json!({ "Counted": { "i": i } }),
                sealing: None,
            }],
            &meta,
            None,
        )
        .await
        .unwrap();
    }
}

async fn read_all(log: &EventLog) -> Vec<RecordedEvent> {
    log.read_after(verkosto_eventlog::Cursor::START, 10_000)
        .await
        .unwrap()
}

/// (rows, distinct event ids) in the projection's table.
async fn applied(log: &EventLog) -> (i64, i64) {
    sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM applied")
        .fetch_one(log.db().reader())
        .await
        .unwrap()
}

/// Crashes a consumer in its first batch and again in a later one, then
/// restarts it on a new connection to the same database.
async fn crash_between_apply_and_checkpoint(url: &str) {
    let scenario = fail::FailScenario::setup();
    let log = EventLog::new(Db::connect_with(url, 4).await.unwrap());
    sqlx::query("CREATE TABLE applied (event_id TEXT NOT NULL)")
        .execute(log.db().writer())
        .await
        .unwrap();
    append(&log, 10).await;
    let events = read_all(&log).await;
    let mut injected = 0;

    // Crash in the first batch: nothing of it stays.
    fail::cfg(POINT, "panic").unwrap();
    let crashed = {
        let log = log.clone();
        let batch = events[..6].to_vec();
        tokio::spawn(async move { log.apply_batch(&Counting, &batch).await }).await
    };
    assert!(crashed.unwrap_err().is_panic());
    injected += 1;
    fail::remove(POINT);
    assert_eq!(
        applied(&log).await,
        (0, 0),
        "the crashed batch left no effect"
    );

    // The first batch goes through; the second crashes.
    log.apply_batch(&Counting, &events[..6]).await.unwrap();
    fail::cfg(POINT, "panic").unwrap();
    let crashed = {
        let log = log.clone();
        let batch = events.clone();
        tokio::spawn(async move { log.apply_batch(&Counting, &batch).await }).await
    };
    assert!(crashed.unwrap_err().is_panic());
    injected += 1;
    fail::remove(POINT);
    assert_eq!(applied(&log).await, (6, 6));

    // Restart: a new process would open the log anew and replay from its
    // checkpoint; the whole log is redelivered, as a stream could.
    let restarted = EventLog::new(Db::connect_with(url, 4).await.unwrap());
    let at = restarted.apply_batch(&Counting, &events).await.unwrap();
    assert_eq!(at, events.last().unwrap().cursor());
    restarted.apply_batch(&Counting, &events).await.unwrap();
    assert_eq!(
        applied(&restarted).await,
        (10, 10),
        "each event applied exactly once"
    );
    println!("{url}: {injected} crashes injected between apply and checkpoint; 10 events, each applied once");
    scenario.teardown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_apply_and_checkpoint_loses_nothing_and_applies_nothing_twice_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("f.db").display());
    // Creates the file and runs the migrations.
    EventLog::connect(&url).await.unwrap();
    crash_between_apply_and_checkpoint(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_apply_and_checkpoint_loses_nothing_and_applies_nothing_twice_postgres() {
    let url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    EventLog::connect(&url).await.unwrap();
    crash_between_apply_and_checkpoint(&url).await;
}
