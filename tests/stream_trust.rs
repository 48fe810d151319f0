//! The stream is a copy of the log that anyone holding NATS credentials
//! could write to. Each process connects as its own user and only the relay
//! may publish (`deploy/nats/users.conf`, which the test servers run
//! under); a consumer applies a message only when the log confirms it, so
//! a forged one is refused, alerted and counted, and stalls nothing; and
//! what the stream no longer holds is read from the log.

use std::time::Duration;

use async_nats::jetstream;
use serde_json::{json, Value};
use verkosto_bus::{subject_for, StreamSettings, STREAM_NAME};
use verkosto_e2e::{nats_access, Mode, Split, Verkosto};
use verkosto_eventlog::RecordedEvent;
use verkosto_testkit::NatsServer;

/// A JetStream context as `user`, with a short timeout: a request the
/// server refuses is never answered.
async fn connect_as(nats: &NatsServer, user: &str) -> jetstream::Context {
    let mut js = verkosto_bus::connect(&nats.url(), &nats_access(user))
        .await
        .unwrap();
    js.set_timeout(Duration::from_millis(500));
    js
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_credentials_can_read_the_stream_and_nothing_more() {
    let nats = NatsServer::start().await.unwrap();
    let relay = connect_as(&nats, "relay").await;
    verkosto_bus::ensure_stream(&relay, &StreamSettings::default())
        .await
        .unwrap();
    let subject = subject_for("case", "c-1");

    for user in ["cases", "consent", "meetings", "tasks", "web"] {
        let js = connect_as(&nats, user).await;
        // What a consumer needs works.
        let stream = verkosto_bus::open_stream(&js, &StreamSettings::default())
            .await
            .unwrap_or_else(|e| panic!("{user} cannot open the stream: {e}"));
        stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{user} cannot read the stream: {e}"));
        // Writing does not.
        let published = match js.publish(subject.clone(), "{}".into()).await {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert!(published.is_err(), "{user} published an event");
        assert!(
            js.delete_stream(STREAM_NAME).await.is_err(),
            "{user} deleted the stream"
        );
        let other = StreamSettings {
            name: "ELSEWHERE".into(),
            ..Default::default()
        };
        assert!(
            verkosto_bus::ensure_stream(&js, &other).await.is_err(),
            "{user} made a stream"
        );
    }

    // Nothing got through, and the server says who tried.
    let operator = connect_as(&nats, "operator").await;
    let mut stream = operator.get_stream(STREAM_NAME).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 0);
    assert!(operator.get_stream("ELSEWHERE").await.is_err());
    let log = std::fs::read_to_string(nats.log_path()).unwrap();
    assert!(
        log.contains("Permissions Violation") || log.contains("Publish Violation"),
        "the server logs the refusals: {log}"
    );
}

/// The log's events of one stream, as a forger would start from them.
async fn events_of(log: &verkosto_eventlog::EventLog, stream_id: &str) -> Vec<RecordedEvent> {
    verkosto_e2e::read_everything(log)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream_id == stream_id)
        .collect()
}

/// A message as the relay would publish `event`.
fn message(event: &RecordedEvent) -> bytes::Bytes {
    let mut body = serde_json::to_value(event).unwrap();
    body["payload_text"] = Value::String(event.payload_text.clone());
    serde_json::to_vec(&body).unwrap().into()
}

async fn publish(js: &jetstream::Context, subject: String, body: bytes::Bytes) {
    js.publish(subject, body).await.unwrap().await.unwrap();
}

/// Posts `body` to `path` as `token`, which must create something.
async fn created(v: &Verkosto, token: &str, path: &str, body: &Value) {
    let (status, answer) = v.post(token, path, body).await.unwrap();
    assert_eq!(status, 201, "{path}: {answer}");
}

/// The ids of the stream's messages that carry one, in stream order.
async fn message_ids(js: &jetstream::Context) -> Vec<String> {
    let stream = js.get_stream(STREAM_NAME).await.unwrap();
    let state = stream.get_info().await.unwrap().state;
    let mut ids = Vec::new();
    for seq in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(seq).await.unwrap();
        if let Some(id) = message.headers.get("Nats-Msg-Id") {
            ids.push(id.as_str().to_string());
        }
    }
    ids
}

/// The value of `name{consumer="..."}` for each consumer in `/metrics`.
fn per_consumer(metrics: &str, name: &str) -> std::collections::BTreeMap<String, u64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}{{consumer=\"")))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(consumer, n)| (consumer.to_string(), n.parse().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forged_message_is_refused_by_every_consumer_and_the_relay_keeps_publishing() {
    let v = Verkosto::start_demo(Mode::Distributed).await.unwrap();
    let nats = v.nats.as_ref().unwrap();
    let c = v
        .case_with_network(json!({ "pseudonym": "S-1", "languages": ["fi"] }))
        .await;
    let grants = format!("/api/v1/cases/{}/consent/grants", c.id);
    let records = format!("/api/v1/cases/{}/records", c.id);
    let obtained = json!({ "method": "written", "language": "fi" });
    let grant = |recipient: &str, category: &str| json!({ "recipient": recipient, "categories": [category], "purpose": "care", "obtained": obtained });
    created(&v, &c.fiona, &grants, &grant("police-helsinki", "legal")).await;
    created(
        &v,
        &c.fiona,
        &records,
        &json!({ "category": "health", "body": "LEAKHEALTH" }),
    )
    .await;

    // With the relay's credentials stolen: a grant to health care forged
    // with a hash that fits its fields, at the log's next place; the same
    // at a place far ahead (it once stopped the relay for good); and a
    // body that is nobody's event.
    let log = v.log().await.unwrap();
    let real = events_of(&log, &c.id)
        .await
        .into_iter()
        .rfind(|e| e.stream_type == "consent")
        .expect("the police grant");
    let mut forged = real.clone();
    forged.event_id = uuid::Uuid::now_v7().to_string();
    forged.version += 1;
    forged.prev_hash = real.hash.clone();
    let text = real
        .payload_text
        .replace("police-helsinki", "health-hus")
        .replace("legal", "health");
    forged.payload = serde_json::from_str(&text).unwrap();
    forged.payload_text = text;
    forged.position = log.head_position().await.unwrap() + 1;
    forged.tx = real.tx + 1;
    forged.hash = forged.content_hash();
    let mut far = forged.clone();
    far.position = 1_000_000_000_000;
    far.tx = 1_000_000_000_000;
    far.hash = far.content_hash();
    let js = connect_as(nats, "relay").await;
    let subject = subject_for("consent", &c.id);
    publish(&js, subject.clone(), message(&forged)).await;
    publish(&js, subject.clone(), message(&far)).await;
    publish(&js, subject.clone(), "not an event".into()).await;

    // The relay goes on: a real grant after them reaches every service.
    created(&v, &c.fiona, &grants, &grant("health-hus", "social")).await;
    created(
        &v,
        &c.fiona,
        &records,
        &json!({ "category": "social", "body": "SOCIALNOTE" }),
    )
    .await;
    let (status, read) = v.get(&c.hanna, &records).await.unwrap();
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["consent_fresh"], true, "{read}");
    assert!(read.to_string().contains("SOCIALNOTE"), "{read}");
    // The forged grant counted for nothing.
    assert!(!read.to_string().contains("LEAKHEALTH"), "{read}");
    let every_event: Vec<String> = verkosto_e2e::read_everything(&log)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_id)
        .collect();
    let on_stream: Vec<String> = message_ids(&js)
        .await
        .into_iter()
        .filter(|id| every_event.contains(id))
        .collect();
    assert_eq!(on_stream, every_event, "the stream holds the log, in order");

    // Every consumer refused all three, and says so.
    let metrics = v
        .http()
        .get(v.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let consumers = per_consumer(&metrics, "verkosto_consumer_events_applied_total");
    let refused = per_consumer(&metrics, "verkosto_stream_refused_messages_total");
    assert!(consumers.len() >= 4, "{metrics}");
    for consumer in consumers.keys() {
        assert_eq!(
            refused.get(consumer),
            Some(&3),
            "{consumer}: refused {refused:?}, consumers {consumers:?}"
        );
    }
    v.stop().await;
}

/// Whether the read of `records` by `token` holds `text`, once current.
async fn reads(split: &Split, token: &str, records: &str, text: &str) -> bool {
    for _ in 0..100 {
        let (status, body) = split.get("cases", token, records).await.unwrap();
        if status == 200 && body["consent_fresh"] == true && body.to_string().contains(text) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_stream_no_longer_holds_is_read_from_the_log() {
    let mut split = Split::start(&[]).await.unwrap();
    split
        .spawn_with("relay", &["--stream-max-age", "3s"], &[])
        .await
        .unwrap();
    split.spawn("cases").await.unwrap();
    split.spawn("consent").await.unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let case = split
        .case_with_member(&fiona, "S-2", "health-hus", &hanna)
        .await
        .unwrap();
    let records = format!("/api/v1/cases/{case}/records");
    let note = |body: &str| json!({ "category": "health", "body": body });
    let (status, body) = split
        .post("cases", &fiona, &records, &note("FIRSTNOTE"))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let grants = format!("/api/v1/cases/{case}/consent/grants");
    let grant = json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
        "obtained": { "method": "written", "language": "fi" } });

    // The cases service is down while consent is given, and the stream
    // lets the message expire before it is back.
    split.kill9("cases").await.unwrap();
    let (status, body) = split
        .post("consent", &fiona, &grants, &grant)
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let operator = connect_as(&split.nats, "operator").await;
    let stream = operator.get_stream(STREAM_NAME).await.unwrap();
    let mut left = u64::MAX;
    for _ in 0..100 {
        left = stream.get_info().await.unwrap().state.messages;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the stream let every message expire");
    split.spawn_replica("cases").await.unwrap();
    assert!(
        reads(&split, &hanna, &records, "FIRSTNOTE").await,
        "the grant reached the cases service from the log"
    );

    split.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_missing_from_the_stream_is_read_from_the_log() {
    let split = Split::start(&["relay", "cases", "consent"]).await.unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let case = split
        .case_with_member(&fiona, "S-3", "health-hus", &hanna)
        .await
        .unwrap();
    let records = format!("/api/v1/cases/{case}/records");
    for (category, body) in [("health", "HEALTHNOTE"), ("social", "SOCIALNOTE")] {
        let (status, answer) = split
            .post(
                "cases",
                &fiona,
                &records,
                &json!({ "category": category, "body": body }),
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{answer}");
    }
    let mut split = split;
    split.kill9("cases").await.unwrap();

    // Two grants while the cases service is down; an operator deletes the
    // first one's message from the stream.
    let grants = format!("/api/v1/cases/{case}/consent/grants");
    for category in ["health", "social"] {
        let grant = json!({ "recipient": "health-hus", "categories": [category], "purpose": "care",
            "obtained": { "method": "written", "language": "fi" } });
        let (status, body) = split
            .post("consent", &fiona, &grants, &grant)
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    let operator = connect_as(&split.nats, "operator").await;
    let stream = operator.get_stream(STREAM_NAME).await.unwrap();
    let log = verkosto_eventlog::EventLog::connect(&split.database_url)
        .await
        .unwrap();
    verkosto_e2e::wait_for_stream(&log, &split.nats.url(), Duration::from_secs(30))
        .await
        .unwrap();
    let state = stream.get_info().await.unwrap().state;
    stream
        .delete_message(state.last_sequence - 1)
        .await
        .unwrap();

    split.spawn_replica("cases").await.unwrap();
    assert!(
        reads(&split, &hanna, &records, "HEALTHNOTE").await,
        "the deleted grant reached the cases service from the log"
    );
    assert!(reads(&split, &hanna, &records, "SOCIALNOTE").await);
    split.stop().await;
}

/// Certificates from `deploy/nats/make-certs.sh` for this machine.
fn deploy_certificates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = verkosto_testkit::workspace_root().join("deploy/nats/make-certs.sh");
    let out = std::process::Command::new(script)
        .arg(dir.path())
        .args(["localhost", "127.0.0.1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_speak_tls_to_nats_with_the_deploy_certificates() {
    let certs = deploy_certificates();
    let file = |name: &str| certs.path().join(name).display().to_string();
    let nats = NatsServer::start_with(format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n}}\n",
        file("server.pem"),
        file("server-key.pem"),
        file("ca.pem")
    ))
    .await
    .unwrap();

    // Without the CA, no connection.
    let plain = async_nats::ConnectOptions::new()
        .user_and_password("relay".into(), verkosto_testkit::nats_password("relay"))
        .connect(nats.url())
        .await;
    assert!(plain.is_err(), "connected without trusting the server");

    // A whole process with it: ready, its bus reachable, events published.
    let database_url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--demo"])
        .args(["--database-url", &database_url])
        .args(nats.client_args(&nats.url(), "all"))
        .args(["--nats-ca-file", &file("ca.pem")])
        .env("VERKOSTO_LOG", "warn");
    let mut child = verkosto_testkit::ChildProcess::spawn(cmd).unwrap();
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .unwrap();
    let ready: Value = reqwest::get(format!("http://{addr}/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["bus"], true, "{ready}");
    let operator = verkosto_bus::NatsAccess {
        ca_file: Some(certs.path().join("ca.pem")),
        ..nats_access("operator")
    };
    let js = verkosto_bus::connect(&nats.url(), &operator).await.unwrap();
    let mut stream = js.get_stream(STREAM_NAME).await.unwrap();
    let mut on_stream = 0;
    for _ in 0..100 {
        on_stream = stream.info().await.unwrap().state.messages;
        if on_stream > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        on_stream > 0,
        "the demo's events reached the stream over TLS"
    );
    child.terminate().await.unwrap();
}

#[test]
fn kubernetes_runs_nats_under_the_same_users_as_compose_and_the_tests() {
    let root = verkosto_testkit::workspace_root();
    let users = std::fs::read_to_string(root.join("deploy/nats/users.conf")).unwrap();
    let k8s = std::fs::read_to_string(root.join("deploy/k8s/10-nats.yaml")).unwrap();
    let copy: String = k8s
        .split("  users.conf: |\n")
        .nth(1)
        .expect("10-nats.yaml has users.conf")
        .lines()
        .take_while(|l| *l != "---")
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    assert_eq!(copy, users, "deploy/k8s/10-nats.yaml's users.conf");
}
