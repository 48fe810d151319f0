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
    spawn_embedded_with(dir, &[]).await
}

/// [`spawn_embedded`] with extra `serve` flags.
async fn spawn_embedded_with(dir: &std::path::Path, extra: &[&str]) -> (ChildProcess, String) {
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(["--dev-auth", "on", "--dev-key-seed", verkosto_e2e::DEV_SEED])
        .args(extra)
        // Load generators: as fast as they go.
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

/// Closed cases erased at once while the process is killed: after the
/// restart each case is erased for good (`CaseErased` in the log and its
/// key gone, the key possibly by the restarted process) or untouched
/// (neither), and erasing it again finishes it.
async fn crash_during_erasures(mode: Mode) {
    const CASES: usize = 24;
    let dir = tempfile::tempdir().unwrap();
    // Every erasure at once: no rate limit may refuse some of them.
    let flags = ["--demo", "--demo-case", "off"];
    let (mut distributed, mut embedded, mut base) = match mode {
        Mode::Distributed => {
            let mut with_no_limits = flags.to_vec();
            with_no_limits.extend_from_slice(&verkosto_e2e::NO_RATE_LIMITS);
            let v = Verkosto::start_with(mode, &with_no_limits).await.unwrap();
            let base = v.base.clone();
            (Some(v), None, base)
        }
        Mode::Embedded => {
            let (child, base) = spawn_embedded_with(dir.path(), &flags).await;
            (None, Some(child), base)
        }
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = {
        let r = http
            .post(format!("{base}/api/v1/dev/token"))
            .json(&serde_json::json!({ "user": "fiona" }))
            .send()
            .await
            .unwrap();
        r.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let post = |base: &str, path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let mut cases = Vec::new();
    for i in 0..CASES {
        let r = post(
            &base,
            "/api/v1/cases",
            serde_json::json!({ "pseudonym": format!("K-{i}"), "languages": ["fi"] }),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let id = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = post(
            &base,
            &format!("/api/v1/cases/{id}/records"),
            serde_json::json!({ "category": "health", "body": "a record" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let r = post(
            &base,
            &format!("/api/v1/cases/{id}/close"),
            serde_json::json!({ "outcome": "goals_met" }),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        cases.push(id);
    }

    // Every erasure at once; the process dies as the first is answered.
    let erasure = serde_json::json!({ "reason": "asked", "legal_basis": "data_subject_request" });
    let (answered, mut first) = tokio::sync::mpsc::channel::<()>(CASES);
    let erasures: Vec<_> = cases
        .iter()
        .map(|id| {
            let request = post(
                &base,
                &format!("/api/v1/cases/{id}/erasure"),
                erasure.clone(),
            );
            let answered = answered.clone();
            tokio::spawn(async move {
                if request.await.is_ok_and(|r| r.status() == 200) {
                    let _ = answered.send(()).await;
                }
            })
        })
        .collect();
    first.recv().await.expect("an erasure was answered");
    match mode {
        Mode::Distributed => {
            let v = distributed.as_mut().unwrap();
            v.kill9().await.unwrap();
            for e in erasures {
                e.await.unwrap();
            }
            v.spawn_process().await.unwrap();
            base = v.base.clone();
        }
        Mode::Embedded => {
            embedded.as_mut().unwrap().kill9().await.unwrap();
            for e in erasures {
                e.await.unwrap();
            }
            let (child, b) = spawn_embedded_with(dir.path(), &flags).await;
            embedded = Some(child);
            base = b;
        }
    }

    let (url, keys_url) = match mode {
        Mode::Distributed => {
            let url = distributed.as_ref().unwrap().database_url.clone();
            (url.clone(), url)
        }
        Mode::Embedded => (
            format!("sqlite://{}", dir.path().join("verkosto.db").display()),
            format!("sqlite://{}", dir.path().join("keys.db").display()),
        ),
    };
    let log = verkosto_eventlog::EventLog::connect(&url).await.unwrap();
    let kek = verkosto_keys::FileKeys::parse(verkosto_testkit::TEST_KEK).unwrap();
    let keys = verkosto_keys::KeyStore::open(&keys_url, Arc::new(kek))
        .await
        .unwrap();
    // Each case: erased in the log ⇔ its key is gone. The restarted
    // process's reaction may still be destroying a key: give it a while.
    let mut erased = Vec::new();
    for id in &cases {
        let mut tries = 0;
        loop {
            let in_log = log
                .read_stream("case", id)
                .await
                .unwrap()
                .iter()
                .any(|e| e.event_type == "CaseErased");
            // Read from the store each time, not from this process's cache.
            keys.evict(id);
            let key_gone = keys.existing_case_key(id).await.unwrap().is_none();
            if in_log == key_gone {
                if in_log {
                    erased.push(id.clone());
                }
                break;
            }
            assert!(
                tries < 300 && in_log,
                "case {id}: CaseErased in the log: {in_log}, key destroyed: {key_gone}"
            );
            tries += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Retried, the rest is erased; what was erased stays so (410).
    for id in &cases {
        let r = post(
            &base,
            &format!("/api/v1/cases/{id}/erasure"),
            erasure.clone(),
        )
        .await
        .unwrap();
        let expected = if erased.contains(id) { 410 } else { 200 };
        assert_eq!(r.status(), expected, "{id}");
        keys.evict(id);
        assert!(keys.existing_case_key(id).await.unwrap().is_none(), "{id}");
    }
    assert!(log.verify(|_| {}).await.unwrap().ok);
    eprintln!(
        "{mode:?}: {} of {CASES} erased when the process died",
        erased.len()
    );
    keys.close().await;
    log.db().close().await;
    if let Some(mut child) = embedded {
        child.terminate().await.unwrap();
    }
    if let Some(v) = distributed {
        v.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_erasures_embedded() {
    crash_during_erasures(Mode::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_erasures_distributed() {
    crash_during_erasures(Mode::Distributed).await;
}
