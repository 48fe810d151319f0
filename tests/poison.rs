//! Malformed events never crash a projection and are never skipped in
//! silence: over random events (known and unknown types, payloads of every
//! shape), every projection survives, moves its checkpoint to the end, and
//! quarantines each event of a type it knows whose payload it cannot read.
//! Events carry older, current and future schema versions: older ones are
//! read through the upcasters, future ones are quarantined, never skipped.
//! Against a real SQLite log and a real PostgreSQL database.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{json, Value};
use verkosto_eventlog::{
    current_version, Actor, AggregateStore, CommandMeta, Db, EventLog, ExpectedVersion, NewEvent,
    Projection,
};

/// The event types each stream type's consumers know.
const KNOWN: [(&str, &[&str]); 6] = [
    (
        "case",
        &[
            "CaseOpened",
            "InvitationAccepted",
            "MemberRemoved",
            "FlagsChanged",
            "InvitationDeclined",
        ],
    ),
    (
        "consent",
        &["ConsentGranted", "ConsentWithdrawn", "ConsentRefused"],
    ),
    ("task", &["TaskCreated", "TaskAccepted", "TaskOverdue"]),
    ("agency", &["AgencyRegistered"]),
    ("user", &["UserRegistered"]),
    (
        "meeting",
        &["MeetingScheduled", "MinutesPublished", "ClientAbsent"],
    ),
];

fn payloads() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z ]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An event: a stream type, an event type (known or not), a payload of any
/// shape, sometimes wrapped under its type as real events are, and a schema
/// version from 0 to 3 (older than, equal to or newer than the current one).
type Generated = (String, String, Value, i64);

fn events() -> impl Strategy<Value = Vec<Generated>> {
    let one = (
        0..KNOWN.len(),
        0..4usize,
        payloads(),
        any::<bool>(),
        0..4i64,
    )
        .prop_map(|(s, t, payload, wrap, version)| {
            let (stream, types) = KNOWN[s];
            let event_type = types
                .get(t)
                .map(|t| t.to_string())
                .unwrap_or_else(|| "SomethingNew".into());
            let payload = if wrap {
                json!({ event_type.clone(): payload })
            } else {
                payload
            };
            (stream.to_string(), event_type, payload, version)
        });
    prop::collection::vec(one, 1..20)
}

fn projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(verkosto_directory::DirectoryProjection),
        Arc::new(verkosto_cases::CasesProjection),
        Arc::new(verkosto_guard::GuardFeed::new("guard-poison")),
        Arc::new(verkosto_tasks::TasksProjection),
        Arc::new(verkosto_meetings::MeetingsProjection),
    ]
}

async fn migrate(log: &EventLog) {
    verkosto_directory::migrate(log.db()).await.unwrap();
    verkosto_guard::migrate(log.db()).await.unwrap();
    verkosto_cases::migrate(log.db()).await.unwrap();
    verkosto_meetings::migrate(log.db()).await.unwrap();
    verkosto_tasks::migrate(log.db()).await.unwrap();
}

async fn feed(log: &EventLog, batch: &[Generated], n: usize) {
    let meta = CommandMeta::new(Actor::system());
    for (i, (stream, event_type, payload, version)) in batch.iter().enumerate() {
        log.append(
            stream,
            &format!("s{n}-{i}"),
            ExpectedVersion::Any,
            vec![NewEvent {
                event_type: event_type.clone(),
                schema_version: *version,
                payload: payload.clone(),
                sealing: None,
            }],
            &meta,
            None,
        )
        .await
        .unwrap();
    }
    let all = verkosto_e2e::read_everything(log).await.unwrap();
    let last = all.last().unwrap().cursor();
    for projection in projections() {
        // Never a panic or an error that would stop the consumer.
        let at = log.apply_batch(projection.as_ref(), &all).await.unwrap();
        assert_eq!(at, last, "{} stopped early", projection.name());
        let mut quarantined = log.quarantined(projection.name()).await.unwrap();
        // The guard keeps what it cannot read as its own kind of
        // quarantine: the case then withholds everything until it is read.
        let unreadable: Vec<i64> =
            sqlx::query_scalar("SELECT position FROM guard_unreadable WHERE consumer = $1")
                .bind(projection.name())
                .fetch_all(log.db().reader())
                .await
                .unwrap();
        quarantined.extend(
            unreadable
                .into_iter()
                .map(|p| (p, String::new(), String::new())),
        );
        for event in &all {
            // A known type whose payload is not even an object under its
            // name is unreadable: it must be set aside, with its reason.
            let known = KNOWN.iter().any(|(s, types)| {
                *s == event.stream_type && types.contains(&event.event_type.as_str())
            });
            let unreadable = !event
                .payload
                .get(&event.event_type)
                .is_some_and(Value::is_object);
            // A version newer than this build reads is withheld, so it is
            // unreadable too: quarantined, never applied half-understood.
            let future = event.schema_version > current_version(&event.event_type);
            assert!(!future || event.payload.is_null(), "{event:?}");
            if known && unreadable && projection.handles(event) {
                assert!(
                    quarantined.iter().any(|(p, _, _)| *p == event.position),
                    "{} skipped {} {} in silence",
                    projection.name(),
                    event.event_type,
                    event.payload
                );
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    // The seeds of earlier failures: `tests/poison.proptest-regressions`,
    // beside this file. Said here, since proptest's default finds the crate
    // root `tests/main.rs` and would look in `proptest-regressions/poison.txt`
    // beside `tests/`.
    #![proptest_config(ProptestConfig {
        cases: 40,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn projections_survive_and_quarantine_malformed_events_sqlite(batch in events()) {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let log = EventLog::connect(&format!("sqlite://{}", dir.path().join("p.db").display())).await.unwrap();
            migrate(&log).await;
            feed(&log, &batch, 0).await;
        });
    }
}

#[test]
fn projections_survive_and_quarantine_malformed_events_postgres() {
    runtime().block_on(async {
        let url = verkosto_testkit::PgServer::shared()
            .await
            .fresh_database()
            .await
            .unwrap();
        let log = EventLog::new(Db::connect_with(&url, 10).await.unwrap());
        migrate(&log).await;
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 20,
            ..ProptestConfig::default()
        });
        for n in 0..20 {
            let batch = events().new_tree(&mut runner).unwrap().current();
            feed(&log, &batch, n).await;
        }
    });
}

/// A `UserRegistered` of version 1 (`display_name`), as old logs hold it,
/// a version 2 one, and one of a version 3 this build does not know.
async fn old_current_and_future_user_events(log: &EventLog) {
    migrate(log).await;
    let meta = CommandMeta::new(Actor::system());
    let user = |version: i64, name_field: &str, id: &str| NewEvent {
        event_type: "UserRegistered".into(),
        schema_version: version,
        payload: json!({ "UserRegistered": {
            "id": id, "agency": "health-hus", "roles": ["liaison"], name_field: format!("{id} name"),
        } }),
        sealing: None,
    };
    for (version, field, id) in [
        (1, "display_name", "old"),
        (2, "name", "new"),
        (3, "name", "future"),
    ] {
        log.append(
            "user",
            id,
            ExpectedVersion::NoStream,
            vec![user(version, field, id)],
            &meta,
            None,
        )
        .await
        .unwrap();
    }
    let all = verkosto_e2e::read_everything(log).await.unwrap();
    let projection = verkosto_directory::DirectoryProjection;
    log.apply_batch(&projection, &all).await.unwrap();

    // Aggregate load reads v1 through the upcaster, like v2.
    let users = AggregateStore::<verkosto_directory::domain::User>::new(log.clone());
    for id in ["old", "new"] {
        let loaded = users.load(id).await.unwrap();
        assert_eq!(loaded.aggregate.id.as_deref(), Some(id));
        assert_eq!(loaded.version, 1);
    }
    // The projection too: both names are in the read model.
    let names: Vec<(String, String)> =
        sqlx::query_as("SELECT id, display_name FROM dir_users ORDER BY id")
            .fetch_all(log.db().reader())
            .await
            .unwrap();
    assert_eq!(
        names,
        [
            ("new".into(), "new name".into()),
            ("old".into(), "old name".into())
        ]
    );
    // The future version: the aggregate refuses to load it, the projection
    // quarantined it with the reason, and the stored text is untouched.
    assert!(users.load("future").await.is_err());
    let quarantined = log.quarantined(projection.name()).await.unwrap();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(quarantined[0].0, all[2].position);
    assert!(all[2].payload.is_null() && all[2].payload_text.contains("future name"));
    assert!(
        log.verify(|_| {}).await.unwrap().ok,
        "upcasting changes no hash"
    );
}

#[test]
fn a_v1_event_is_read_through_the_upcaster_and_a_future_one_is_quarantined_sqlite() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("u.db").display());
        old_current_and_future_user_events(&EventLog::connect(&url).await.unwrap()).await;
    });
}

#[test]
fn a_v1_event_is_read_through_the_upcaster_and_a_future_one_is_quarantined_postgres() {
    runtime().block_on(async {
        let url = verkosto_testkit::PgServer::shared()
            .await
            .fresh_database()
            .await
            .unwrap();
        let log = EventLog::new(Db::connect_with(&url, 10).await.unwrap());
        old_current_and_future_user_events(&log).await;
    });
}
