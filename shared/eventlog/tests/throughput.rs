//! A rough append-throughput probe, not a benchmark (that is `just bench`):
//! `cargo test -p verkosto-eventlog --release --test throughput -- --ignored --nocapture`.
//! It asserts nothing about speed; it prints what it measured.

use std::time::Instant;

use serde_json::json;
use verkosto_eventlog::{Actor, CommandMeta, Db, EventLog, ExpectedVersion, NewEvent};

async fn probe(name: &str, log: EventLog, writers: usize, per_writer: usize) {
    let start = Instant::now();
    let tasks = (0..writers).map(|w| {
        let log = log.clone();
        tokio::spawn(async move {
            let meta = CommandMeta::new(Actor::system());
            for i in 0..per_writer {
                let e = NewEvent {
                    event_type: "Noted".into(),
                    schema_version: 1,
                    payload: json!({ "i": i }),
                    sealing: None,
                };
                log.append(
                    "probe",
                    &format!("{w}"),
                    ExpectedVersion::Exact(i as i64),
                    vec![e],
                    &meta,
                    None,
                )
                .await
                .unwrap();
            }
        })
    });
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    let n = writers * per_writer;
    println!(
        "{name}: {n} appends by {writers} writers: {:.0}/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn append_throughput() {
    for writers in [1, 8, 32] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        probe(
            "sqlite",
            EventLog::connect(&url).await.unwrap(),
            writers,
            2000 / writers,
        )
        .await;
        let url = verkosto_testkit::PgServer::shared()
            .await
            .fresh_database()
            .await
            .unwrap();
        probe(
            "postgres",
            EventLog::new(Db::connect_with(&url, 40).await.unwrap()),
            writers,
            4000 / writers,
        )
        .await;
    }
}
