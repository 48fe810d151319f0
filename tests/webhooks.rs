//! Webhooks and server-side request forgery, in both modes, with real
//! servers on loopback: registrations and deliveries to loopback (IPv4 and
//! IPv6), link-local metadata, private addresses and a name that resolves
//! to loopback are refused; a redirect is not followed; plain http only to
//! an allowlisted host; the allowlist opens exactly what it names. Who may
//! register, and that a retried registration appends once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Mode, Verkosto};

const DEMO: [&str; 4] = ["--demo", "--demo-case", "off", "--dev-clock"];

async fn start(mode: Mode, allow: &[String]) -> Verkosto {
    Verkosto::start_with(mode, &flags(allow)).await.unwrap()
}

fn flags(allow: &[String]) -> Vec<&str> {
    let mut flags = DEMO.to_vec();
    for host in allow {
        flags.extend(["--webhook-allow-host", host.as_str()]);
    }
    flags
}

/// A real HTTP server on 127.0.0.1 that records each path asked for and
/// answers with `answer` (status, Location).
async fn server(answer: (u16, Option<String>)) -> (u16, Arc<Mutex<Vec<String>>>) {
    use axum::http::{StatusCode, Uri};
    let hits: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new().fallback({
        let hits = hits.clone();
        move |uri: Uri| {
            let (hits, answer) = (hits.clone(), answer.clone());
            async move {
                hits.lock().unwrap().push(uri.path().to_string());
                let mut r = axum::response::Response::new(axum::body::Body::empty());
                *r.status_mut() = StatusCode::from_u16(answer.0).unwrap();
                if let Some(to) = answer.1 {
                    r.headers_mut().insert("location", to.parse().unwrap());
                }
                r
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, hits)
}

/// A TCP listener that only counts the connections made to it (an
/// address that must never be dialled), or None where the address does
/// not exist on this machine (IPv6 loopback in some containers).
async fn tripwire(addr: &str) -> Option<(u16, Arc<AtomicUsize>)> {
    let listener = tokio::net::TcpListener::bind(addr).await.ok()?;
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });
    Some((port, count))
}

async fn register(v: &Verkosto, token: &str, url: &str) -> (u16, Value) {
    v.post(token, "/api/v1/webhooks", &json!({ "url": url }))
        .await
        .unwrap()
}

fn assert_url_refused(url: &str, (status, problem): &(u16, Value)) {
    assert_eq!(*status, 422, "{url}: {problem}");
    assert_eq!(problem["field"], "url", "{url}: {problem}");
    assert_eq!(problem["code"], "webhook_url_refused", "{url}: {problem}");
    assert_eq!(
        problem["errors"],
        json!([{ "field": "url", "code": "webhook_url_refused", "detail": problem["errors"][0]["detail"] }]),
        "{url}: {problem}"
    );
}

/// Each outbox row: (url, attempts, refused, delivered, last_error).
type Outbox = Vec<(String, i64, bool, bool, Option<String>)>;

/// An outbox row as stored: (url, attempts, refused_at, delivered_at, last_error).
type Row = (String, i64, Option<String>, Option<String>, Option<String>);

async fn outbox(v: &Verkosto) -> Outbox {
    let log = v.log().await.unwrap();
    let rows: Vec<Row> =
        sqlx::query_as(
            "SELECT w.url, o.attempts, o.refused_at, o.delivered_at, o.last_error \
             FROM tasks_webhook_outbox o JOIN tasks_webhooks w ON w.id = o.webhook_id ORDER BY w.url",
        )
        .fetch_all(log.db().reader())
        .await
        .unwrap();
    rows.into_iter()
        .map(|(u, a, r, d, e)| (u, a, r.is_some(), d.is_some(), e))
        .collect()
}

async fn outbox_until(v: &Verkosto, ready: impl Fn(&Outbox) -> bool) -> Outbox {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = outbox(v).await;
        if ready(&rows) {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "the outbox never got there: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A task for assistance-system (fiona's agency, the lead), which every
/// webhook fiona registered is owed.
async fn task_for_fiona(v: &Verkosto, c: &verkosto_e2e::DemoCase) {
    let (status, body) = v
        .post(
            &c.fiona,
            &format!("/api/v1/cases/{}/tasks", c.id),
            &json!({ "description": "Book a room", "category": "social", "assignee": "assistance-system" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
}

both_modes!(
    registrations_to_internal_addresses_are_refused,
    |mode| async move {
        let (open, _) = server((204, None)).await;
        let v = start(mode, &[format!("127.0.0.1:{open}")]).await;
        let c = v
            .case_with_network(json!({ "pseudonym": "W-1", "languages": ["fi"] }))
            .await;
        for url in [
            "https://127.0.0.1/hook".to_string(),
            // Loopback on a port the operator did not open.
            format!("https://127.0.0.1:{}/hook", open.wrapping_add(1).max(1)),
            format!("http://127.0.0.1:{}/hook", open.wrapping_add(1).max(1)),
            "https://[::1]/hook".into(),
            "https://[::1]:8443/hook".into(),
            "https://[::ffff:127.0.0.1]/hook".into(),
            "https://169.254.169.254/latest/meta-data/".into(),
            "https://[::ffff:169.254.169.254]/latest/meta-data/".into(),
            "https://[fd00:ec2::254]/latest/meta-data/".into(),
            "https://10.0.0.1/hook".into(),
            "https://192.168.1.10/hook".into(),
            "https://100.64.0.1/hook".into(),
            "https://0.0.0.0/hook".into(),
            "https://2130706433/hook".into(),
            // A name that resolves to loopback.
            "https://localhost:8443/x".into(),
            // Plain http to a host the operator did not open.
            "http://hooks.example.org/hook".into(),
            "ftp://hooks.example.org/hook".into(),
            "not a url".into(),
        ] {
            assert_url_refused(&url, &register(&v, &c.fiona, &url).await);
        }

        // The host the operator opened, over plain http.
        let (status, body) = register(&v, &c.fiona, &format!("http://127.0.0.1:{open}/hook")).await;
        assert_eq!(status, 201, "{body}");
        let (_, listed) = v.get(&c.fiona, "/api/v1/webhooks").await.unwrap();
        assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");

        // The OpenAPI document says so.
        let doc = v.get_public("/api/v1/openapi.json").await.unwrap();
        let refused = &doc["paths"]["/api/v1/webhooks"]["post"]["responses"]["422"];
        assert!(refused["description"]
            .as_str()
            .unwrap()
            .contains("webhook_url_refused"));
        assert_eq!(
            refused["content"]["application/problem+json"]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        v.stop().await;
    }
);

both_modes!(who_registers_and_a_retry_appends_once, |mode| async move {
    let (open, _) = server((204, None)).await;
    let v = start(mode, &[format!("127.0.0.1:{open}")]).await;
    let c = v
        .case_with_network(json!({ "pseudonym": "W-2", "languages": ["fi"] }))
        .await;
    let url = format!("http://127.0.0.1:{open}/hook");
    // A liaison, and a facilitator of an agency that leads no case: 403.
    let nora = v.token("nora").await.unwrap();
    for token in [&c.hanna, &c.liisa, &nora] {
        let (status, body) = register(&v, token, &url).await;
        assert_eq!(status, 403, "{body}");
    }
    // An admin may.
    let admin = v.token("admin").await.unwrap();
    assert_eq!(register(&v, &admin, &url).await.0, 201);

    // The lead facilitator, twice with one key: one webhook, the first id.
    let key = uuid::Uuid::new_v4().to_string();
    let send = |body: Value| {
        let (v, key, fiona) = (&v, key.clone(), c.fiona.clone());
        async move {
            let r = v
                .http()
                .post(v.url("/api/v1/webhooks"))
                .bearer_auth(&fiona)
                .header("idempotency-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            verkosto_e2e::answer(r).await.unwrap()
        }
    };
    let (status, first) = send(json!({ "url": url })).await;
    assert_eq!(status, 201, "{first}");
    assert!(first["secret"].as_str().unwrap().starts_with("whsec_"));
    let (status, again) = send(json!({ "url": url })).await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["secret"], Value::Null, "the secret is shown once");
    let (status, other) = send(json!({ "url": format!("{url}/other") })).await;
    assert_eq!(
        (status, other["field"].as_str()),
        (422, Some("Idempotency-Key"))
    );
    let (_, listed) = v.get(&c.fiona, "/api/v1/webhooks").await.unwrap();
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    let log = v.log().await.unwrap();
    let registered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE event_type = 'WebhookRegistered'")
            .fetch_one(log.db().reader())
            .await
            .unwrap();
    assert_eq!(registered, 2, "the admin's and fiona's, once");
    v.stop().await;
});

both_modes!(
    deliveries_to_internal_addresses_are_refused_and_never_retried,
    |mode| async move {
        // What must never be dialled: loopback (v4 and, where the machine
        // has it, v6) and a port `localhost` resolves to.
        let (v4, v4_hits) = tripwire("127.0.0.1:0").await.unwrap();
        let v6 = tripwire("[::1]:0").await;
        let (named, named_hits) = tripwire("127.0.0.1:0").await.unwrap();
        // A receiver that stays open, to show the others block nothing.
        let (open, open_hits) = server((204, None)).await;

        let mut urls = vec![
            format!("https://127.0.0.1:{v4}/hook"),
            "https://169.254.169.254/latest/meta-data/".to_string(),
            "https://10.0.0.1/hook".to_string(),
            format!("https://localhost:{named}/hook"),
        ];
        let mut allow = vec![
            format!("127.0.0.1:{v4}"),
            "169.254.169.254".to_string(),
            "10.0.0.1".to_string(),
            format!("localhost:{named}"),
            format!("127.0.0.1:{open}"),
        ];
        let v6_port = v6.as_ref().map(|(p, _)| *p).unwrap_or(9);
        urls.push(format!("https://[::1]:{v6_port}/hook"));
        allow.push(format!("[::1]:{v6_port}"));

        // Fine when registered: the operator had opened these hosts then.
        let mut v = start(mode, &allow).await;
        let c = v
            .case_with_network(json!({ "pseudonym": "W-3", "languages": ["fi"] }))
            .await;
        for url in urls
            .iter()
            .chain([&format!("http://127.0.0.1:{open}/hook")])
        {
            let (status, body) = register(&v, &c.fiona, url).await;
            assert_eq!(status, 201, "{url}: {body}");
        }
        // The operator closes them again; only the open receiver stays.
        let kept = [format!("127.0.0.1:{open}")];
        v.restart_with(&flags(&kept)).await.unwrap();

        task_for_fiona(&v, &c).await;
        let rows = outbox_until(&v, |rows| {
            rows.len() == 6
                && rows
                    .iter()
                    .all(|(_, _, refused, delivered, _)| *refused || *delivered)
        })
        .await;
        // Each refused once, with the reason, and never tried again.
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(outbox(&v).await, rows);
        let reason = |prefix: &str| -> String {
            let row = rows.iter().find(|r| r.0.starts_with(prefix)).unwrap();
            assert!(row.2 && !row.3 && row.1 == 1, "{row:?}");
            row.4.clone().unwrap()
        };
        assert!(reason("https://127.0.0.1").contains("loopback"));
        assert!(reason("https://[::1]").contains("loopback"));
        assert!(reason("https://169.254.169.254").contains("metadata"));
        assert!(reason("https://10.0.0.1").contains("private"));
        let named_reason = reason("https://localhost");
        assert!(
            named_reason.contains("localhost resolves to") && named_reason.contains("loopback"),
            "{named_reason}"
        );
        assert!(rows
            .iter()
            .all(|r| !r.2 || r.4.as_deref().unwrap().starts_with("refused: ")));
        // Nothing was dialled; the open receiver got its delivery.
        assert_eq!(v4_hits.load(Ordering::SeqCst), 0);
        assert_eq!(named_hits.load(Ordering::SeqCst), 0);
        if let Some((_, hits)) = &v6 {
            assert_eq!(hits.load(Ordering::SeqCst), 0);
        }
        assert_eq!(open_hits.lock().unwrap().as_slice(), ["/hook"]);
        v.stop().await;
    }
);

both_modes!(a_redirect_to_loopback_is_not_followed, |mode| async move {
    // An internal service on loopback, and a receiver the operator opened
    // that answers every delivery with a redirect to it.
    let (internal, internal_hits) = server((200, None)).await;
    let target = format!("http://127.0.0.1:{internal}/internal");
    let (redirector, redirector_hits) = server((302, Some(target.clone()))).await;
    let v = start(mode, &[format!("127.0.0.1:{redirector}")]).await;
    let c = v
        .case_with_network(json!({ "pseudonym": "W-4", "languages": ["fi"] }))
        .await;
    // The internal service itself may not be registered (its port is not open).
    assert_url_refused(&target, &register(&v, &c.fiona, &target).await);
    let (status, body) =
        register(&v, &c.fiona, &format!("http://127.0.0.1:{redirector}/hook")).await;
    assert_eq!(status, 201, "{body}");

    task_for_fiona(&v, &c).await;
    let rows = outbox_until(&v, |rows| rows.iter().any(|r| r.1 >= 2)).await;
    let error = rows[0].4.clone().unwrap();
    assert!(
        error.contains("302") && error.contains("not followed"),
        "{error}"
    );
    assert!(!rows[0].3, "a redirect is not an acknowledgement");
    assert!(redirector_hits.lock().unwrap().len() >= 2);
    assert!(
        internal_hits.lock().unwrap().is_empty(),
        "the redirect was followed"
    );
    v.stop().await;
});

#[test]
fn the_allowlist_flag_repeats_and_takes_commas_and_refuses_nonsense() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        let mut argv = vec!["verkosto", "serve"];
        argv.extend_from_slice(args);
        verkosto::config::Cli::try_parse_from(argv).map(|cli| match cli.command {
            verkosto::config::Command::Serve(args) => args
                .webhook_allow_hosts
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>(),
            _ => unreachable!(),
        })
    };
    assert_eq!(
        parse(&[
            "--webhook-allow-host",
            "hooks.internal:8080,[::1]:9000",
            "--webhook-allow-host",
            "10.0.0.5"
        ])
        .unwrap(),
        ["hooks.internal:8080", "[::1]:9000", "10.0.0.5"]
    );
    assert!(parse(&[]).unwrap().is_empty());
    let error = parse(&["--webhook-allow-host", "http://x/"]).unwrap_err();
    assert!(error.to_string().contains("webhook-allow-host"), "{error}");
}
