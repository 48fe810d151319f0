//! Client text sealed on append under its case's key, and opened with it;
//! in bench builds also the log that seals nothing (the benchmarks'
//! baseline, `EventLog::bench_unsealed`).

use std::path::Path;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use verkosto_eventlog::{
    encode_events, Actor, CommandMeta, DataSubject, Db, EventLog, ExpectedVersion,
};
use verkosto_keys::{FileKeys, KeyStore};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum NoteEvent {
    Noted { case_id: String, text: String },
}
verkosto_eventlog::domain_event!(NoteEvent, sealed { Noted: ["text"] });

/// An aggregate whose one event holds client text of its case.
#[derive(Default, Serialize, Deserialize)]
struct Note {
    case_id: Option<String>,
}

impl Aggregate for Note {
    const TYPE: &'static str = "note";
    type Command = ();
    type Event = NoteEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(&mut self, _: (), _: &(), _: &EventSink<Self>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, event: NoteEvent) {
        let NoteEvent::Noted { case_id, .. } = event;
        self.case_id = Some(case_id);
    }
}

impl DataSubject for Note {
    fn data_subject<'a>(&'a self, _id: &'a str) -> Option<&'a str> {
        self.case_id.as_deref()
    }
}

async fn parts(dir: &Path) -> (Db, KeyStore) {
    let db = Db::connect(&format!("sqlite://{}", dir.join("log.db").display()))
        .await
        .unwrap();
    let keys = KeyStore::open(
        &format!("sqlite://{}", dir.join("keys.db").display()),
        Arc::new(FileKeys::random()),
    )
    .await
    .unwrap();
    (db, keys)
}

/// Appends one note of case-1 with the text "Anna"; its stored text.
async fn append_note(log: &EventLog) -> (bool, serde_json::Value) {
    let note = Note {
        case_id: Some("case-1".into()),
    };
    let event = NoteEvent::Noted {
        case_id: "case-1".into(),
        text: "Anna".into(),
    };
    let rows = encode_events(log, &note, "n1", &[event]).await.unwrap();
    let sealing = rows[0].sealing.is_some();
    let appended = log
        .append(
            "note",
            "n1",
            ExpectedVersion::NoStream,
            rows,
            &CommandMeta::new(Actor::system()),
            None,
        )
        .await
        .unwrap();
    (sealing, appended.events[0].payload["Noted"]["text"].clone())
}

#[tokio::test]
async fn client_text_is_sealed_on_append_and_opened_with_its_cases_key() {
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = parts(dir.path()).await;
    let log = EventLog::with_keys(db, keys);
    let (sealing, text) = append_note(&log).await;
    assert!(sealing);
    let text = text.as_str().unwrap().to_string();
    assert!(verkosto_keys::is_sealed(&text), "{text}");
    // A row's text, sealed for the row.
    let body = log.seal("case-1", "rec-1", "Bea").await.unwrap();
    assert_eq!(verkosto_keys::sealed_context(&body), Some("rec-1"));
    let mut answer = json!({ "text": text, "body": body });
    assert_eq!(log.open_sealed(&mut answer).await.unwrap(), 2);
    assert_eq!(answer, json!({ "text": "Anna", "body": "Bea" }));
    assert!(log.opening_key("case-1").await.unwrap().is_some());
    // No key is made to open a case that has none.
    assert!(log.opening_key("case-2").await.unwrap().is_none());
    assert!(log
        .keys()
        .unwrap()
        .existing_case_key("case-2")
        .await
        .unwrap()
        .is_none());
}

#[cfg(feature = "bench")]
#[tokio::test]
async fn the_bench_builds_unsealed_log_seals_nothing_and_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, keys) = parts(dir.path()).await;
    let log = EventLog::bench_unsealed(db, keys);
    let (sealing, text) = append_note(&log).await;
    assert!(!sealing);
    assert_eq!(text, "Anna");
    assert_eq!(log.seal("case-1", "rec-1", "Bea").await.unwrap(), "Bea");
    // Even a case with a key: a read looks none up.
    log.case_key("case-1").await.unwrap();
    assert!(log.opening_key("case-1").await.unwrap().is_none());
}
