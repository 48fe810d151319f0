//! Withdrawal racing reads on two processes of the same service: the cases
//! service runs twice, consent twice, and readers hammer both cases
//! processes while a facilitator grants and withdraws the health category
//! over and over. Every read is logged with when it was sent and the
//! consent version it was filtered under. Afterwards, for every read sent
//! after a withdrawal was acknowledged: its consent version must include
//! that withdrawal (no stale read), and if it showed the record, the version
//! must end on a later grant (no leak). There must be neither.
//!
//! Quick size here (a few thousand reads); `just faults` runs 100,000.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use verkosto_e2e::{answer, Split};

/// One read: when it was sent, and whether it showed the health record.
struct Read {
    sent: Instant,
    showed: bool,
    consent_version: i64,
}

/// One grant/withdraw cycle, as the facilitator saw it.
struct Cycle {
    grant_version: i64,
    withdrawal_version: i64,
    withdraw_acknowledged: Instant,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_read_after_a_withdrawal_shows_the_data_on_either_process() {
    let full = std::env::var("VERKOSTO_FAULTS_FULL").is_ok_and(|v| v == "1");
    let (reads_wanted, readers) = if full { (100_000, 8) } else { (3_000, 4) };

    // Thousands of reads as one user from one address, on purpose.
    let mut split = Split::start_with(
        &["relay", "cases", "consent"],
        &verkosto_e2e::NO_RATE_LIMITS,
    )
    .await
    .unwrap();
    split.spawn_replica("cases").await.unwrap();
    split.spawn_replica("consent").await.unwrap();
    let fiona = split.token("fiona").await.unwrap();
    let hanna = split.token("hanna").await.unwrap();
    let case = open_case_with_health_record(&split, &fiona, &hanna).await;
    let records = format!("/api/v1/cases/{case}/records");

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut reader_tasks = Vec::new();
    for _ in 0..readers {
        let (http, done, hanna) = (http.clone(), done.clone(), hanna.clone());
        let urls: Vec<String> = split
            .bases("cases")
            .iter()
            .map(|b| format!("{b}{records}"))
            .collect();
        let quota = reads_wanted / readers;
        reader_tasks.push(tokio::spawn(async move {
            let mut log = Vec::with_capacity(quota);
            while log.len() < quota && !done.load(Ordering::Relaxed) {
                // Random process, random pause: random interleavings.
                let (url, pause) = (&urls[fastrand::usize(..urls.len())], fastrand::u64(0..500));
                tokio::time::sleep(Duration::from_micros(pause)).await;
                let sent = Instant::now();
                let r = http.get(url).bearer_auth(&hanna).send().await.unwrap();
                let (status, body) = answer(r).await.unwrap();
                assert_eq!(status, 200, "{body}");
                let showed = body["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["category"] == "health" && r["body"].is_string());
                let consent_version = body["consent_version"].as_i64().unwrap();
                log.push(Read {
                    sent,
                    showed,
                    consent_version,
                });
            }
            log
        }));
    }

    // The facilitator: grant through one consent process, withdraw through
    // either, until the readers are done.
    let consent = split.bases("consent");
    let mut cycles = Vec::new();
    while !reader_tasks.iter().all(|t| t.is_finished()) {
        let n = cycles.len();
        let (status, grant) = post_until_current(
            &http,
            &format!(
                "{}/api/v1/cases/{case}/consent/grants",
                consent[n % consent.len()]
            ),
            &fiona,
            &json!({ "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                     "obtained": { "method": "written", "language": "fi" } }),
        )
        .await;
        assert_eq!(status, 201, "{grant}");
        let grant_id = grant["grant_id"].as_str().unwrap();
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
        let (status, body) = post_until_current(
            &http,
            &format!(
                "{}/api/v1/cases/{case}/consent/grants/{grant_id}/withdraw",
                consent[(n / 2) % consent.len()]
            ),
            &fiona,
            &json!({ "reason": "the client asked" }),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        cycles.push(Cycle {
            grant_version: grant["consent_version"].as_i64().unwrap(),
            withdrawal_version: body["consent_version"].as_i64().unwrap(),
            withdraw_acknowledged: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..20))).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut reads = Vec::new();
    for t in reader_tasks {
        reads.extend(t.await.unwrap());
    }

    // Judge each read by the last withdrawal acknowledged before it was
    // sent. Its consent version must include that withdrawal; if it showed
    // the record, the version must end on a grant, not on a withdrawal.
    let grants: std::collections::HashSet<i64> = cycles.iter().map(|c| c.grant_version).collect();
    let (mut checked, mut stale, mut leaks, mut shown) = (0, 0, 0, 0);
    for read in &reads {
        shown += usize::from(read.showed);
        let Some(last) = cycles
            .iter()
            .rev()
            .find(|c| c.withdraw_acknowledged <= read.sent)
        else {
            continue;
        };
        checked += 1;
        if read.consent_version < last.withdrawal_version {
            stale += 1;
        }
        if read.showed && !grants.contains(&read.consent_version) {
            leaks += 1;
        }
    }
    println!(
        "faults: withdrawal racing reads on two cases processes: {} reads, {checked} sent after a \
         withdrawal was acknowledged, {shown} showed the record while consent allowed it, {} \
         withdrawals; {stale} stale, {leaks} leaks",
        reads.len(),
        cycles.len()
    );
    assert!(checked > 0 && shown > 0, "the race never happened");
    assert_eq!(
        leaks, 0,
        "reads after a withdrawal's acknowledgement showed the data"
    );
    split.stop().await;
}

async fn open_case_with_health_record(split: &Split, fiona: &str, hanna: &str) -> String {
    let (status, case) = split
        .post(
            "cases",
            fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "R-1", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{case}");
    let id = case["id"].as_str().unwrap().to_string();
    let (status, _) = split
        .post(
            "cases",
            fiona,
            &format!("/api/v1/cases/{id}/members"),
            &json!({ "agency": "health-hus", "purpose": "care" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (status, _) = split
        .post(
            "cases",
            hanna,
            &format!("/api/v1/cases/{id}/invitations/accept"),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = split
        .post(
            "cases",
            fiona,
            &format!("/api/v1/cases/{id}/records"),
            &json!({ "category": "health", "body": "blood test results" }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    id
}

/// A consent change, sent again while the process's view is behind.
async fn post_until_current(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    verkosto_e2e::until_current(|| async {
        answer(http.post(url).bearer_auth(token).json(body).send().await?).await
    })
    .await
    .unwrap()
}
