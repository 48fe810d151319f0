//! A relay crash between a publish and its checkpoint store (the
//! `relay-before-checkpoint` failpoint): after a restart the stream holds
//! every event once, in log order. Real nats-server, SQLite log.
//! Run with `--features failpoints` (scripts/test.sh does).
#![cfg(feature = "failpoints")]

use serde_json::json;
use verkosto_bus::{connect, ensure_stream, relay::Relay, StreamSettings};
use verkosto_eventlog::{Actor, CommandMeta, Cursor, EventLog, ExpectedVersion, NewEvent};

const POINT: &str = "relay-before-checkpoint";

async fn append(log: &EventLog, from: usize, to: usize) {
    let meta = CommandMeta::new(Actor::system());
    for i in from..to {
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

/// The `Nats-Msg-Id` (event id) of every message, in stream order.
async fn message_ids(js: &async_nats::jetstream::Context) -> Vec<String> {
    let stream = js.get_stream(verkosto_bus::STREAM_NAME).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut ids = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        if state.messages == 0 {
            break;
        }
        let msg = stream.get_raw_message(seq).await.unwrap();
        ids.push(msg.headers.get("Nats-Msg-Id").unwrap().as_str().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_crash_between_publish_and_checkpoint_loses_and_duplicates_nothing() {
    let scenario = fail::FailScenario::setup();
    let nats = verkosto_testkit::NatsServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::connect(&format!("sqlite://{}", dir.path().join("r.db").display()))
        .await
        .unwrap();
    let access = verkosto_bus::NatsAccess {
        user: Some("relay".into()),
        password: Some(verkosto_testkit::nats_password("relay")),
        ..Default::default()
    };
    let js = connect(&nats.url(), &access).await.unwrap();
    let settings = StreamSettings::default();
    ensure_stream(&js, &settings).await.unwrap();
    let mut injected = 0;

    // Three rounds: events appended, the relay publishes them and crashes
    // before storing its checkpoint, a new relay starts.
    for round in 0..3 {
        append(&log, round * 10, round * 10 + 10).await;
        fail::cfg(POINT, "panic").unwrap();
        let crashed = {
            let mut relay = Relay::new(log.clone(), js.clone(), settings.clone());
            tokio::spawn(async move { relay.publish_pending().await }).await
        };
        assert!(crashed.unwrap_err().is_panic());
        injected += 1;
        fail::remove(POINT);
    }
    // Restarted for good: it finds what is on the stream and goes on.
    append(&log, 30, 35).await;
    let mut relay = Relay::new(log.clone(), js.clone(), settings.clone());
    relay.publish_pending().await.unwrap();

    let expected: Vec<String> = log
        .read_after(Cursor::START, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(expected.len(), 35);
    assert_eq!(
        message_ids(&js).await,
        expected,
        "the stream holds every event once, in log order"
    );
    println!("{injected} relay crashes injected between publish and checkpoint; 35 events on the stream once each");
    scenario.teardown();
}
