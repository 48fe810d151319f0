//! `kill -9` during 5,000 appends from concurrent clients: after a restart,
//! every acknowledged append is in the log, and (distributed) the stream
//! holds each event exactly once, in order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use verkosto_e2e::checker::{self, Ack};
use verkosto_e2e::{agency, assert_stream_matches_log, wait_for_stream, Mode, Verkosto};
use verkosto_testkit::ChildProcess;

const APPENDS: usize = 5_000;
const CLIENTS: usize = 16;

/// The embedded mode, as a real process this test can kill.
async fn spawn_embedded(dir: &std::path::Path) -> (ChildProcess, String) {
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--dev-auth", "on", "--dev-key-seed", verkosto_e2e::DEV_SEED])
        // A load generator: 5,000 appends as fast as they go.
        .args(verkosto_e2e::NO_RATE_LIMITS)
        .env("VERKOSTO_LOG", "warn");
    let mut child = ChildProcess::spawn(cmd).unwrap();
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .unwrap();
    (child, format!("http://{addr}"))
}

async fn crash_during_appends(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let (mut distributed, mut embedded, base) = match mode {
        Mode::Distributed => {
            let v = Verkosto::start_with(mode, &verkosto_e2e::NO_RATE_LIMITS)
                .await
                .unwrap();
            let base = v.base.clone();
            (Some(v), None, base)
        }
        Mode::Embedded => {
            let (child, base) = spawn_embedded(dir.path()).await;
            (None, Some(child), base)
        }
    };
    let base = Arc::new(Mutex::new(base));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = {
        let b = base.lock().unwrap().clone();
        let r = http
            .post(format!("{b}/api/v1/dev/token"))
            .json(&serde_json::json!({ "user": "admin" }))
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, token, next, acked, base) = (
                http.clone(),
                token.clone(),
                next.clone(),
                acked.clone(),
                base.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= APPENDS {
                        return;
                    }
                    let id = format!("crash-{i}");
                    let b = base.lock().unwrap().clone();
                    let sent = http
                        .post(format!("{b}/api/v1/agencies"))
                        .bearer_auth(&token)
                        // The checker finds the command's events by it.
                        .header("x-request-id", &id)
                        .json(&agency(&id, "ngo"))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => acked.lock().unwrap().push(id),
                        // Refused or lost: not acknowledged, so it may or may not be there.
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect();

    // Kill the process once a good share of appends are acknowledged.
    while acked.lock().unwrap().len() < APPENDS / 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked_before_kill = acked.lock().unwrap().len();
    match mode {
        Mode::Distributed => {
            let v = distributed.as_mut().unwrap();
            v.kill9().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            v.spawn_process().await.unwrap();
            *base.lock().unwrap() = v.base.clone();
        }
        Mode::Embedded => {
            embedded.as_mut().unwrap().kill9().await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (child, b) = spawn_embedded(dir.path()).await;
            embedded = Some(child);
            *base.lock().unwrap() = b;
        }
    }
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > acked_before_kill,
        "appends resumed after the restart"
    );

    let url = match mode {
        Mode::Distributed => distributed.as_ref().unwrap().database_url.clone(),
        Mode::Embedded => format!("sqlite://{}", dir.path().join("verkosto.db").display()),
    };
    let log = verkosto_eventlog::EventLog::connect(&url).await.unwrap();
    let mut in_log = HashSet::new();
    for e in verkosto_e2e::read_everything(&log).await.unwrap() {
        assert_eq!(e.version, 1, "one event per agency stream");
        assert!(in_log.insert(e.stream_id.clone()), "{} twice", e.stream_id);
    }
    let missing: Vec<_> = acked.iter().filter(|id| !in_log.contains(*id)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(log.verify(|_| {}).await.unwrap().ok);

    if let Some(v) = &distributed {
        let nats = v.nats.as_ref().unwrap().url();
        wait_for_stream(&log, &nats, Duration::from_secs(120))
            .await
            .unwrap();
        assert_stream_matches_log(&log, &nats).await.unwrap();
    }
    // The fault checker too, with the consumers stopped once caught up.
    let nats = distributed.as_ref().map(|v| v.nats.as_ref().unwrap().url());
    checker::wait_for_recovery(&url, nats.as_deref(), Duration::from_secs(120))
        .await
        .unwrap();
    if let Some(v) = distributed.as_mut() {
        v.halt().await;
    }
    if let Some(child) = embedded.as_mut() {
        child.terminate().await.unwrap();
    }
    log.db().close().await;
    let acks: Vec<Ack> = acked
        .iter()
        .map(|id| Ack {
            request_id: id.clone(),
            what: "register agency",
        })
        .collect();
    checker::check(&url, nats.as_deref(), &acks).await.unwrap();
    eprintln!(
        "{mode:?}: {} acknowledged of {APPENDS}, {} in the log",
        acked.len(),
        in_log.len()
    );
    drop(embedded);
    if let Some(v) = distributed {
        v.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_appends_embedded() {
    crash_during_appends(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_appends_distributed() {
    crash_during_appends(Mode::Distributed).await;
}
