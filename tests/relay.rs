//! The relay against a real PostgreSQL and a real nats-server that is
//! restarted, and wiped, while events are being written.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use verkosto_bus::{Relay, StreamSettings};
use verkosto_e2e::{assert_stream_matches_log, checker, wait_for_stream};
use verkosto_eventlog::{Actor, CommandMeta, Db, EventLog, ExpectedVersion, NewEvent};
use verkosto_testkit::{NatsServer, PgServer};

async fn setup() -> (String, EventLog, NatsServer, CancellationToken) {
    let url = PgServer::shared().await.fresh_database().await.unwrap();
    let log = EventLog::new(Db::connect_with(&url, 20).await.unwrap());
    let nats = NatsServer::start().await.unwrap();
    let js = verkosto_bus::connect(&nats.url(), &verkosto_e2e::nats_access("relay"))
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let relay = Relay::new(log.clone(), js, StreamSettings::default());
    tokio::spawn(relay.run(Duration::from_millis(10), shutdown.clone()));
    (url, log, nats, shutdown)
}

/// Eight writers append `per_writer` events each, pausing now and then.
fn write_load(log: &EventLog, per_writer: i64) -> tokio::task::JoinHandle<()> {
    let log = log.clone();
    tokio::spawn(async move {
        let writers = (0..8).map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let meta = CommandMeta::new(Actor::system());
                for i in 0..per_writer {
                    let event = NewEvent {
                        event_type: "Noted".into(),
                        schema_version: 1,
                        payload: json!({ "writer": w, "i": i }),
                        sealing: None,
                    };
                    log.append(
                        "note",
                        &format!("w{w}"),
                        ExpectedVersion::Exact(i),
                        vec![event],
                        &meta,
                        None,
                    )
                    .await
                    .unwrap();
                    if i % 25 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        });
        for w in futures::future::join_all(writers).await {
            w.unwrap();
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nats_restart_mid_stream_loses_and_duplicates_nothing() {
    let (url, log, mut nats, shutdown) = setup().await;
    let load = write_load(&log, 150);
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.kill9().unwrap();
    // Writes go on while NATS is down.
    tokio::time::sleep(Duration::from_millis(700)).await;
    nats.restart().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    nats.restart().await.unwrap();
    load.await.unwrap();
    wait_for_stream(&log, &nats.url(), Duration::from_secs(60))
        .await
        .unwrap();
    let n = assert_stream_matches_log(&log, &nats.url()).await.unwrap();
    assert_eq!(n, 8 * 150);
    // The fault checker: versions without gaps, ids once, stream = log.
    checker::check(&url, Some(&nats.url()), &[]).await.unwrap();
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_stream_is_republished_from_the_log() {
    let (url, log, mut nats, shutdown) = setup().await;
    let load = write_load(&log, 100);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Lose everything NATS had: the relay must notice and republish.
    nats.restart_wiped().await.unwrap();
    load.await.unwrap();
    wait_for_stream(&log, &nats.url(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        assert_stream_matches_log(&log, &nats.url()).await.unwrap(),
        800
    );

    // Wiped again when idle: the periodic check finds it.
    nats.restart_wiped().await.unwrap();
    wait_for_stream(&log, &nats.url(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        assert_stream_matches_log(&log, &nats.url()).await.unwrap(),
        800
    );
    checker::check(&url, Some(&nats.url()), &[]).await.unwrap();
    shutdown.cancel();
}
