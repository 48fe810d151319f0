//! Ordering at the seams, on PostgreSQL: a transaction that took a low
//! position and commits late is still seen by the relay and by every
//! projection, in the log's commit order, exactly once.

use std::time::Duration;

use serde_json::json;
use verkosto_e2e::{agency, assert_stream_matches_log, wait_for_stream, Mode, Verkosto};
use verkosto_eventlog::{Actor, CommandMeta, ExpectedVersion, NewEvent};

/// The agency ids the directory's read model lists.
async fn listed(v: &Verkosto, token: &str) -> Vec<String> {
    let (status, body) = v.get(token, "/api/v1/agencies").await.unwrap();
    assert_eq!(status, 200, "{body}");
    body["agencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_held_open_after_taking_a_low_position_is_seen_after_its_commit() {
    let v = Verkosto::start(Mode::Distributed).await.unwrap();
    let admin = v.token("admin").await.unwrap();
    let log = v.log().await.unwrap();
    let nats_url = v.nats.as_ref().unwrap().url();

    // Open a transaction and append in it: the event takes its position now.
    let mut held = log.db().begin().await.unwrap();
    let late = log
        .append_on(
            &mut held,
            "agency",
            "late-agency",
            ExpectedVersion::NoStream,
            vec![NewEvent {
                event_type: "AgencyRegistered".into(),
                schema_version: 1,
                payload: json!({ "AgencyRegistered": agency("late-agency", "ngo") }),
                sealing: None,
            }],
            &CommandMeta::new(Actor::system()),
        )
        .await
        .unwrap();
    let late_position = late.events[0].position;

    // Other commands commit after it, with higher positions.
    let others = ["after-1", "after-2", "after-3"];
    for id in others {
        let (status, body) = v
            .post(&admin, "/api/v1/agencies", &agency(id, "ngo"))
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    // While it is open, the later commits are held back from readers (they
    // sit above the oldest running transaction), never handed out past it.
    assert_eq!(
        log.count().await.unwrap(),
        3,
        "the three later commits are in"
    );
    let readable = log
        .read_after(verkosto_eventlog::Cursor::START, 1000)
        .await
        .unwrap();
    assert!(
        readable.iter().all(|e| !e.stream_id.starts_with("after-")),
        "a reader was handed a commit past the open transaction: {readable:?}"
    );

    // Commit it late.
    held.commit().await.unwrap();

    // The relay published it, once, in commit order (its transaction id is
    // the oldest, so it comes before the events that overtook it by position).
    wait_for_stream(&log, &nats_url, Duration::from_secs(30))
        .await
        .unwrap();
    let on_stream = assert_stream_matches_log(&log, &nats_url).await.unwrap();
    let all = verkosto_e2e::read_everything(&log).await.unwrap();
    assert_eq!(on_stream, all.len());
    let late_index = all
        .iter()
        .position(|e| e.position == late_position)
        .unwrap();
    let first_other = all.iter().position(|e| e.stream_id == "after-1").unwrap();
    assert!(
        late_index < first_other,
        "commit order puts the held transaction (older tx id) first"
    );

    // Every projection fed from the stream sees it: the directory lists it
    // beside the later ones.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ids = listed(&v, &admin).await;
        if ids.iter().any(|i| i == "late-agency")
            && others.iter().all(|o| ids.contains(&o.to_string()))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the late commit never reached the directory: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every consumer's checkpoint moves past the held event (none stays
    // behind it waiting for a position that is already "done"), and none
    // quarantined anything.
    let held_cursor = all[late_index].cursor();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let checkpoints: Vec<(String, i64, i64)> =
            sqlx::query_as("SELECT name, tx, position FROM checkpoints ORDER BY name")
                .fetch_all(log.db().reader())
                .await
                .unwrap();
        let behind: Vec<_> = checkpoints
            .iter()
            .filter(|(_, tx, position)| {
                verkosto_eventlog::Cursor {
                    tx: *tx,
                    position: *position,
                } < held_cursor
            })
            .collect();
        if !checkpoints.is_empty() && behind.is_empty() {
            println!("checkpoints past the held event: {checkpoints:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumers behind the held event: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let quarantined: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
        .fetch_one(log.db().reader())
        .await
        .unwrap();
    assert_eq!(quarantined, 0);
    v.stop().await;
}

/// One process ten minutes ahead (libfaketime): the consent target, between
/// two writes of the cases target on the real clock. The skewed process
/// measures its offset from the database and follows the database's time:
/// it accepts a grant valid for five more minutes (by its own clock that
/// moment has passed), and stamps it with the database's time. The log's
/// order is the commit order whatever any clock says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_process_ten_minutes_ahead_does_not_reorder_the_log() {
    // A test of skew that cannot skew a clock fails; it does not skip.
    let lib = std::env::var("VERKOSTO_FAKETIME_LIB").unwrap_or_default();
    assert!(
        std::path::Path::new(&lib).exists(),
        "libfaketime is needed (VERKOSTO_FAKETIME_LIB={lib:?}); scripts/test.sh installs it"
    );
    let mut split = verkosto_e2e::Split::start(&["relay", "cases"])
        .await
        .unwrap();
    // Only the process spawned now inherits the preload: the test itself
    // and the other targets keep the real clock.
    std::env::set_var("LD_PRELOAD", &lib);
    std::env::set_var("FAKETIME", "+10m");
    std::env::set_var("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let spawned = split.spawn("consent").await;
    for var in ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"] {
        std::env::remove_var(var);
    }
    spawned.unwrap();

    let fiona = split.token("fiona").await.unwrap();
    let liisa = split.token("liisa").await.unwrap();
    let (status, case) = split
        .post(
            "cases",
            &fiona,
            "/api/v1/cases",
            &json!({ "pseudonym": "S-1", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{case}");
    let id = case["id"].as_str().unwrap().to_string();
    let invite = json!({ "agency": "police-helsinki", "purpose": "support" });
    let members = format!("/api/v1/cases/{id}/members");
    assert_eq!(
        split
            .post("cases", &fiona, &members, &invite)
            .await
            .unwrap()
            .0,
        201
    );
    let accept = format!("/api/v1/cases/{id}/invitations/accept");
    assert_eq!(
        split
            .post("cases", &liisa, &accept, &json!({}))
            .await
            .unwrap()
            .0,
        200
    );

    // The skewed process knows it is ten minutes ahead...
    let offset = verkosto_e2e::scaleout::gauge(split.base("consent"), "verkosto_clock_offset_ms")
        .await
        .unwrap()
        .unwrap();
    assert!(
        (-610_000..-590_000).contains(&offset),
        "faketime took effect and the offset was measured ({offset} ms)"
    );
    // ...and writes a grant valid for five more minutes of real time, which
    // its own clock would refuse as already past.
    let valid_until = chrono::Utc::now() + chrono::Duration::minutes(5);
    let grant = json!({ "recipient": "police-helsinki", "categories": ["narrative"],
        "purpose": "criminal_process", "valid_until": valid_until,
        "obtained": { "method": "written", "language": "fi", "grantor": "self" } });
    // The new process may still be catching up with the case (503).
    let grants = format!("/api/v1/cases/{id}/consent/grants");
    let (status, body) =
        verkosto_e2e::until_current(|| split.post("consent", &fiona, &grants, &grant))
            .await
            .unwrap();
    assert_eq!(status, 201, "{body}");
    // ...and the real-clock process writes after it.
    let r = reqwest::Client::new()
        .put(format!("{}/api/v1/cases/{id}/flags", split.base("cases")))
        .bearer_auth(&fiona)
        .json(&json!({ "minor": false, "safety_risk": true }))
        .send()
        .await
        .unwrap();
    let (status, body) = verkosto_e2e::answer(r).await.unwrap();
    assert_eq!(status, 200, "{body}");

    let log = verkosto_eventlog::EventLog::connect(&split.database_url)
        .await
        .unwrap();
    let events = verkosto_e2e::read_everything(&log).await.unwrap();
    let find = |t: &str| events.iter().find(|e| e.event_type == t).unwrap();
    let (granted, flags) = (find("ConsentGranted"), find("FlagsChanged"));
    // Both envelopes carry the database's time, not the skewed clock's.
    let apart = (flags.occurred_at() - granted.occurred_at()).abs();
    assert!(
        apart < chrono::Duration::seconds(5),
        "the grant was stamped by the database's clock ({apart} apart)"
    );
    // The skewed process holds the grant in force: by its own clock its
    // end has passed, by the database's it has five minutes to go.
    let (status, record) = split
        .get(
            "consent",
            &fiona,
            &format!("/api/v1/cases/{id}/consent?grants=true"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{record}");
    assert_eq!(
        record["grants"].as_array().map(Vec::len),
        Some(1),
        "the grant is in force: {record}"
    );
    // ...but the log, the stream and every reader follow commit order.
    assert!(granted.cursor() < flags.cursor());
    wait_for_stream(&log, &split.nats.url(), Duration::from_secs(30))
        .await
        .unwrap();
    assert_stream_matches_log(&log, &split.nats.url())
        .await
        .unwrap();
    println!(
        "clock skew: the consent process ran {offset} ms off the database, stamped its grant \
         {apart} from the later flags change, and the log ordered it first"
    );
    split.stop().await;
}
