//! The guard on both backends: a fresh view after every committed change,
//! failing closed when the feed is behind or an event cannot be read, and
//! the batched, append-only access log.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{Actor, CommandMeta, Db, EventLog, ExpectedVersion, NewEvent, Progress};
use verkosto_guard::{AccessLog, AccessRecord, Guard, GuardError, GuardFeed, Reader};
use verkosto_policy::{Category, Item};

fn reader(agency: &str) -> Reader {
    Reader {
        user: "u".into(),
        agency: agency.into(),
        service: "test",
        request_id: None,
    }
}

struct Backend {
    log: EventLog,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    let log = EventLog::connect(&url).await.unwrap();
    verkosto_guard::migrate(log.db()).await.unwrap();
    Backend {
        log,
        _dir: Some(dir),
    }
}

async fn postgres() -> Backend {
    let url = verkosto_testkit::PgServer::shared()
        .await
        .fresh_database()
        .await
        .unwrap();
    let log = EventLog::new(Db::connect_with(&url, 20).await.unwrap());
    verkosto_guard::migrate(log.db()).await.unwrap();
    Backend { log, _dir: None }
}

macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let b = super::sqlite().await;
                ($body)(b.log.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let b = super::postgres().await;
                ($body)(b.log.clone()).await;
            }
        }
    };
}

fn meta() -> CommandMeta {
    CommandMeta::new(Actor {
        user: "fiona".into(),
        agency: "ngo-support".into(),
    })
}

async fn append(
    log: &EventLog,
    stream_type: &str,
    case: &str,
    event_type: &str,
    body: serde_json::Value,
) {
    log.append(
        stream_type,
        case,
        ExpectedVersion::Any,
        vec![NewEvent {
            event_type: event_type.into(),
            schema_version: 1,
            payload: json!({ event_type: body }),
            sealing: None,
        }],
        &meta(),
        None,
    )
    .await
    .unwrap();
}

async fn open_case(log: &EventLog, case: &str) {
    append(
        log,
        "case",
        case,
        "CaseOpened",
        json!({ "case_id": case, "pseudonym": "A-1", "lead_agency": "ngo-support", "languages": ["ro"],
                "interpreter_language": null, "flags": { "minor": false, "safety_risk": true },
                "at": "2026-11-01T10:00:00Z" }),
    )
    .await;
    append(
        log,
        "case",
        case,
        "AgencyInvited",
        json!({ "agency": "health-hus", "purpose": "p", "at": "2026-11-01T10:00:00Z" }),
    )
    .await;
    append(
        log,
        "case",
        case,
        "InvitationAccepted",
        json!({ "agency": "health-hus", "at": "2026-11-01T10:00:00Z" }),
    )
    .await;
}

async fn grant(log: &EventLog, case: &str, id: &str) {
    append(
        log,
        "consent",
        case,
        "ConsentGranted",
        json!({ "grant_id": id, "recipient": "health-hus", "categories": ["health"], "purpose": "care",
                "valid_from": "2026-11-01T10:00:00Z", "valid_until": null,
                "obtained": { "method": "written", "language": "ro" },
                "at": "2026-11-01T10:01:00Z" }),
    )
    .await;
}

/// A guard whose feed runs in this process, like the embedded mode.
fn running_guard(log: &EventLog, shutdown: &CancellationToken) -> Guard {
    let (tx, progress) = Progress::channel();
    tokio::spawn(verkosto_eventlog::run_local(
        log.clone(),
        Arc::new(GuardFeed::new("guard-test")),
        tx,
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let access = AccessLog::start(log.db().clone());
    Guard::new(
        log.clone(),
        "guard-test",
        progress,
        access,
        Duration::from_secs(5),
    )
}

both_backends!(
    every_committed_change_is_in_the_next_view,
    |log: EventLog| async move {
        let shutdown = CancellationToken::new();
        let guard = running_guard(&log, &shutdown);
        assert!(guard.case("case-1").await.unwrap().is_none());
        open_case(&log, "case-1").await;
        for n in 0..20 {
            grant(&log, "case-1", &format!("g{n}")).await;
            // No sleeping: the view waits for the feed itself.
            let view = guard.case("case-1").await.unwrap().unwrap();
            assert!(view.fresh);
            assert_eq!(view.consent_version(), n + 1);
            assert!(view.is_member("health-hus"));
            assert!(view.safety_risk);
        }
        let view = guard.case("case-1").await.unwrap().unwrap();
        let now = chrono::Utc::now();
        assert!(view
            .judge("health-hus", Item::Data(Category::Health), now)
            .allowed());
        assert!(!view
            .judge("health-hus", Item::Data(Category::Legal), now)
            .allowed());
        assert_eq!(guard.cases_of("health-hus").await.unwrap(), vec!["case-1"]);
        shutdown.cancel();
    }
);

both_backends!(
    a_feed_that_is_behind_fails_closed,
    |log: EventLog| async move {
        // The feed runs until the grant, then stops (as when the stream is
        // down); a later withdrawal must not be answered from the old state.
        let shutdown = CancellationToken::new();
        let guard = running_guard(&log, &shutdown);
        open_case(&log, "case-1").await;
        grant(&log, "case-1", "g1").await;
        let view = guard.case("case-1").await.unwrap().unwrap();
        assert!(view.fresh);
        shutdown.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;

        let (_tx, stuck) = Progress::channel();
        let behind = Guard::new(
            log.clone(),
            "guard-test",
            stuck,
            AccessLog::start(log.db().clone()),
            Duration::from_millis(200),
        );
        append(
            &log,
            "consent",
            "case-1",
            "ConsentWithdrawn",
            json!({ "grant_id": "g1", "reason": "asked", "at": "2026-11-01T10:02:00Z" }),
        )
        .await;
        let view = behind.case("case-1").await.unwrap().unwrap();
        assert!(!view.fresh);
        let now = chrono::Utc::now();
        for category in Category::ALL {
            assert!(!view
                .judge("health-hus", Item::Data(category), now)
                .allowed());
            assert!(!view
                .judge("ngo-support", Item::Data(category), now)
                .allowed());
        }
        let mut read = behind.read("case-1", &reader("health-hus")).await.unwrap();
        let own = Item::Authored {
            category: Category::Health,
            author: "health-hus",
        };
        assert!(!read.allows(own));
        assert!(!read.fresh());

        // An agency removed a moment ago is no member of a view that is
        // behind: its network comes from the log itself.
        append(
            &log,
            "case",
            "case-1",
            "MemberRemoved",
            json!({ "agency": "health-hus", "at": "2026-11-01T10:03:00Z" }),
        )
        .await;
        assert!(matches!(
            behind.read("case-1", &reader("health-hus")).await,
            Err(GuardError::NotFound(_))
        ));
        let lead = behind.read("case-1", &reader("ngo-support")).await.unwrap();
        assert!(!lead.fresh());
    }
);

both_backends!(
    an_unreadable_consent_event_makes_the_case_stale_until_resolved,
    |log: EventLog| async move {
        let shutdown = CancellationToken::new();
        let guard = running_guard(&log, &shutdown);
        open_case(&log, "case-1").await;
        grant(&log, "case-1", "g1").await;
        assert!(guard.case("case-1").await.unwrap().unwrap().fresh);
        // A withdrawal as a newer version might write it: this one cannot
        // read it, so it must not go on reading under the grant.
        append(
            &log,
            "consent",
            "case-1",
            "ConsentWithdrawnWithWitness",
            json!({ "grant_id": "g1", "witness": "x", "at": "2026-11-01T10:02:00Z" }),
        )
        .await;
        let mut read = guard.read("case-1", &reader("health-hus")).await.unwrap();
        assert!(!read.fresh());
        assert!(!read.allows(Item::Data(Category::Health)));
        let unreadable = guard.unreadable().await.unwrap();
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].event_type, "ConsentWithdrawnWithWitness");

        // Later events do not make it fresh again...
        grant(&log, "case-1", "g2").await;
        assert!(!guard.case("case-1").await.unwrap().unwrap().fresh);

        // ...an operator's logged decision does.
        append(
            &log,
            verkosto_guard::OPERATOR_STREAM,
            "case-1",
            verkosto_guard::RESOLVED,
            json!({ "event_id": unreadable[0].event_id, "reason": "checked by hand" }),
        )
        .await;
        let mut fresh = None;
        for _ in 0..50 {
            let view = guard.case("case-1").await.unwrap().unwrap();
            if view.fresh {
                fresh = Some(view);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(fresh.is_some(), "the resolution made the view fresh");
        assert!(guard.unreadable().await.unwrap().is_empty());
        shutdown.cancel();
    }
);

both_backends!(
    an_event_a_newer_binary_reads_is_folded_in_at_start_up,
    |log: EventLog| async move {
        let shutdown = CancellationToken::new();
        let guard = running_guard(&log, &shutdown);
        open_case(&log, "case-1").await;
        grant(&log, "case-1", "g1").await;
        assert!(guard.case("case-1").await.unwrap().unwrap().fresh);
        // As an older binary left it: the grant kept as unreadable.
        let event = &log.read_stream("consent", "case-1").await.unwrap()[0];
        sqlx::query(
            "INSERT INTO guard_unreadable (consumer, case_id, event_id, stream_type, event_type, \
             position, reason) VALUES ('guard-test', 'case-1', $1, 'consent', 'ConsentGranted', $2, 'old')",
        )
        .bind(event.event_id.to_string())
        .bind(event.position)
        .execute(log.db().writer())
        .await
        .unwrap();
        // A process started now sees the case as stale...
        let restarted = running_guard(&log, &shutdown);
        assert!(!restarted.case("case-1").await.unwrap().unwrap().fresh);
        // ...until the feed reads the event again at start-up.
        let feed = GuardFeed::new("guard-test");
        assert_eq!(feed.retry_unreadable(&log).await.unwrap(), 0);
        let view = running_guard(&log, &shutdown)
            .case("case-1")
            .await
            .unwrap()
            .unwrap();
        assert!(view.fresh);
        assert_eq!(view.consent_version(), 1);
        assert!(view.is_member("health-hus"));
        shutdown.cancel();
    }
);

both_backends!(
    a_withdrawal_stamped_by_a_clock_ahead_is_in_force_for_a_reader_behind,
    |log: EventLog| async move {
        let shutdown = CancellationToken::new();
        let guard = running_guard(&log, &shutdown);
        open_case(&log, "case-1").await;
        let now = chrono::Utc::now();
        let stamp = |s: i64| verkosto_eventlog::format_time(now + chrono::Duration::seconds(s));
        append(
            &log,
            "consent",
            "case-1",
            "ConsentGranted",
            json!({ "grant_id": "g1", "recipient": "health-hus", "categories": ["health"],
                    "purpose": "care", "valid_from": stamp(-60), "valid_until": null,
                    "obtained": { "method": "written", "language": "ro" }, "at": stamp(-60) }),
        )
        .await;
        assert!(guard
            .read("case-1", &reader("health-hus"))
            .await
            .unwrap()
            .allows(Item::Data(Category::Health)));
        // The writer's clock runs five seconds ahead of this reader's.
        append(
            &log,
            "consent",
            "case-1",
            "ConsentWithdrawn",
            json!({ "grant_id": "g1", "reason": "asked", "at": stamp(5) }),
        )
        .await;
        let mut read = guard.read("case-1", &reader("health-hus")).await.unwrap();
        // (The stamp keeps whole microseconds.)
        assert!(read.moment() >= now + chrono::Duration::milliseconds(4_990));
        assert!(!read.allows(Item::Data(Category::Health)));
        shutdown.cancel();
    }
);

both_backends!(
    concurrent_reads_are_all_logged_durably,
    |log: EventLog| async move {
        let access = AccessLog::start(log.db().clone());
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..300 {
            let access = access.clone();
            tasks.spawn(async move {
                access
                    .record(AccessRecord {
                        case_id: format!("case-{}", n % 3),
                        reader_user: "hanna".into(),
                        reader_agency: "health-hus".into(),
                        service: "cases".into(),
                        resource: "records".into(),
                        returned: vec![Category::Health],
                        withheld: vec![Category::Contact, Category::Narrative],
                        items_returned: 1,
                        items_withheld: 2,
                        consent_version: n,
                        consent_fresh: true,
                        read_at: chrono::Utc::now(),
                        request_id: Some(format!("req-{n}")),
                        auditor: false,
                    })
                    .await
                    .unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        // Acknowledged means stored: every record is there, from a new connection.
        let entries = verkosto_guard::read_case_log(log.db(), "case-1")
            .await
            .unwrap();
        assert_eq!(entries.len(), 100);
        assert_eq!(entries[0].categories_returned, vec!["health"]);
        assert_eq!(entries[0].categories_withheld, vec!["contact", "narrative"]);
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
            .fetch_one(log.db().writer())
            .await
            .unwrap();
        assert_eq!(total, 300);
        // The access log is append-only: no UPDATE, DELETE or TRUNCATE.
        let mut refused = vec![
            "UPDATE access_log SET reader_user = 'someone else'",
            "DELETE FROM access_log",
        ];
        if log.db().kind() == verkosto_eventlog::DbKind::Postgres {
            refused.push("TRUNCATE access_log");
        }
        for sql in refused {
            let err = sqlx::query(sql).execute(log.db().writer()).await;
            assert!(err.is_err(), "{sql} was refused");
        }
        let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_log")
            .fetch_one(log.db().writer())
            .await
            .unwrap();
        assert_eq!(after, 300);
    }
);
