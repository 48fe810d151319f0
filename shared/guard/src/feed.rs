//! The projection that keeps a process's copy of each case's network and
//! consent record, from the `case` and `consent` streams.
//!
//! It reads the case events as a tolerant reader of the wire contract in
//! `proto/` (only the fields it needs), so it does not depend on the cases
//! service's crate.
//!
//! An event it cannot read (a consent event, or a case event it must
//! understand, written by a newer version or malformed) is never skipped:
//! it is kept in `guard_unreadable`, and while a case has one its view is
//! stale (everything withheld). The row goes when a later binary reads the
//! event ([`GuardFeed::retry_unreadable`] at start-up) or an operator
//! resolves it with an event of its own ([`RESOLVED`]), so the log says
//! who decided to read on without it.

use serde::Deserialize;
use sqlx::AnyConnection;
use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use verkosto_eventlog::bulk::{self, Param};
use verkosto_eventlog::{ApplyError, Error, EventLog, Projection, RecordedEvent};
use verkosto_policy::{Category, ConsentEvent};

/// The stream type of operators' decisions about unreadable events.
pub const OPERATOR_STREAM: &str = "guard-operator";
/// An operator's decision to read on without an unreadable event:
/// `{"UnreadableEventResolved": {"event_id", "reason"}}` on the
/// [`OPERATOR_STREAM`] stream of the case.
pub const RESOLVED: &str = "UnreadableEventResolved";

/// Case events the guard knows it does not need. Any other type on the
/// `case` stream (a newer version's) makes the case's view stale until it
/// is understood or resolved: the feed does not guess what it means.
const IGNORED_CASE_EVENTS: [&str; 5] = [
    "AgencyInvited",
    "InvitationDeclined",
    "InvitationWithdrawn",
    "LegalHoldPlaced",
    "LegalHoldReleased",
];

/// The moment of a `CaseClosed`.
#[derive(Deserialize)]
struct Closed {
    /// When the case was closed.
    at: chrono::DateTime<chrono::Utc>,
}

/// The tables of the guard's copy, each row keyed by its consumer.
const TABLES: [&str; 4] = [
    "guard_cases",
    "guard_members",
    "guard_consent",
    "guard_unreadable",
];

/// One process's feed; `consumer` names its rows and its checkpoint.
pub struct GuardFeed {
    /// The name of its rows in the guard tables and of its checkpoint.
    consumer: &'static str,
}

impl GuardFeed {
    pub fn new(consumer: &'static str) -> GuardFeed {
        GuardFeed { consumer }
    }

    pub fn consumer(&self) -> &'static str {
        self.consumer
    }
}

#[derive(Deserialize)]
struct Opened {
    /// The case's lead agency id: its first member.
    lead_agency: String,
    /// The name the case goes by in place of the client's.
    pseudonym: String,
    /// The case's flags, as opened or as a later event of the batch changed
    /// them; all off if the event has none.
    #[serde(default)]
    flags: OpenedFlags,
}

#[derive(Default, Deserialize)]
struct OpenedFlags {
    /// The client is a child.
    #[serde(default)]
    minor: bool,
    /// The client's whereabouts must be protected.
    #[serde(default)]
    safety_risk: bool,
    /// The day the client comes of age, if recorded.
    #[serde(default)]
    comes_of_age: Option<NaiveDate>,
    /// Categories the child may consent to personally.
    #[serde(default)]
    minor_may_consent: BTreeSet<Category>,
}

impl OpenedFlags {
    fn comes_of_age(&self) -> Option<String> {
        self.comes_of_age.map(|d| d.to_string())
    }

    fn minor_may_consent(&self) -> String {
        words(&self.minor_may_consent)
    }
}

/// Categories as the comma-separated words the tables keep.
pub(crate) fn words<'a>(categories: impl IntoIterator<Item = &'a Category>) -> String {
    categories
        .into_iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Deserialize)]
struct Resolved {
    /// The unreadable event an operator resolved.
    event_id: String,
}

#[derive(Deserialize)]
struct AgencyChange {
    /// The agency that joined or left the network.
    agency: String,
}

fn body<'a, T: Deserialize<'a>>(event: &'a RecordedEvent) -> Result<T, ApplyError> {
    // Only an object: serde would also read a struct from an array.
    let inner = event
        .payload
        .get(&event.event_type)
        .filter(|b| b.is_object())
        .ok_or_else(|| ApplyError::Poison(format!("no {} body", event.event_type)))?;
    T::deserialize(inner).map_err(|e| ApplyError::Poison(e.to_string()))
}

#[async_trait::async_trait]
impl Projection for GuardFeed {
    fn name(&self) -> &'static str {
        self.consumer
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        matches!(
            event.stream_type.as_str(),
            "case" | "consent" | OPERATOR_STREAM
        )
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        self.apply_all(conn, &[event]).await
    }

    async fn apply_all(
        &self,
        conn: &mut AnyConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut changes = Changes::default();
        for event in events {
            changes.add(event);
        }
        changes.write(conn, self.consumer).await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        for table in TABLES {
            sqlx::query(&format!("DELETE FROM {table} WHERE consumer = $1"))
                .bind(self.consumer)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct FlagsChanged {
    /// The case's flags after the change, all of them.
    flags: OpenedFlags,
}

/// A consent or case event this process could not read.
pub(crate) struct Unreadable {
    /// The case: the event's `stream_id`.
    case_id: String,
    /// The event's id.
    event_id: String,
    /// `case` or `consent`.
    stream_type: String,
    /// The event's type name.
    event_type: String,
    /// The event's position in the log.
    position: i64,
    /// Why it could not be read.
    reason: String,
}

/// What a batch of events changes, gathered so that it is written in a few
/// statements. Membership is a set: only each agency's last change counts.
#[derive(Default)]
pub(crate) struct Changes {
    /// Cases opened in this batch, by case id, with their latest flags.
    opened: BTreeMap<String, Opened>,
    /// Flags of cases opened before this batch.
    flags: BTreeMap<String, OpenedFlags>,
    /// (case, agency) -> member afterwards?
    members: BTreeMap<(String, String), bool>,
    /// (case, version, payload) of consent events.
    consent: Vec<(String, i64, String)>,
    /// Events of the batch that could not be read.
    unreadable: Vec<Unreadable>,
    /// Ids of unreadable events an operator resolved.
    resolved: Vec<String>,
    /// Cases closed, with when (as the log writes times).
    closed: BTreeMap<String, String>,
    /// Cases erased: their copy keeps only that they were.
    erased: BTreeSet<String>,
}

impl Changes {
    /// Folds `event` in; an event it cannot read is kept as unreadable,
    /// never skipped.
    pub(crate) fn add(&mut self, event: &RecordedEvent) {
        if let Err(e) = self.fold(event) {
            let reason = match e {
                ApplyError::Poison(reason) => reason,
                other => other.to_string(),
            };
            tracing::error!(
                event_id = %event.event_id, case_id = %event.stream_id,
                event_type = %event.event_type, %reason,
                "a consent or case event cannot be read: the case's reads withhold everything until it is read or resolved"
            );
            self.unreadable.push(Unreadable {
                case_id: event.stream_id.clone(),
                event_id: event.event_id.to_string(),
                stream_type: event.stream_type.clone(),
                event_type: event.event_type.clone(),
                position: event.position,
                reason,
            });
        }
    }

    /// The stream types of the events that could not be read.
    pub(crate) fn unreadable_streams(&self) -> impl Iterator<Item = &str> {
        self.unreadable.iter().map(|u| u.stream_type.as_str())
    }

    /// Whether the events folded in erased `case_id`.
    pub(crate) fn erased(&self, case_id: &str) -> bool {
        self.erased.contains(case_id)
    }

    /// Whether every event folded in so far was read.
    pub(crate) fn all_read(&self) -> bool {
        self.unreadable.is_empty()
    }

    /// The members of `case_id` after the events folded in, if it was opened.
    pub(crate) fn members(&self, case_id: &str) -> Option<BTreeSet<String>> {
        self.opened.get(case_id)?;
        Some(
            self.members
                .iter()
                .filter(|((c, _), member)| c == case_id && **member)
                .map(|((_, agency), _)| agency.clone())
                .collect(),
        )
    }

    fn fold(&mut self, event: &RecordedEvent) -> Result<(), ApplyError> {
        let case_id = event.stream_id.clone();
        if event.stream_type == OPERATOR_STREAM {
            if event.event_type == RESOLVED {
                self.resolved.push(body::<Resolved>(event)?.event_id);
            }
            return Ok(());
        }
        if event.stream_type == "consent" {
            // Checked here so that a malformed event is quarantined, not served.
            serde_json::from_value::<ConsentEvent>(event.payload.clone())
                .map_err(|e| ApplyError::Poison(e.to_string()))?;
            self.consent
                .push((case_id, event.version, event.payload_text.clone()));
            return Ok(());
        }
        match event.event_type.as_str() {
            "CaseOpened" => {
                let opened: Opened = body(event)?;
                self.members
                    .insert((case_id.clone(), opened.lead_agency.clone()), true);
                self.opened.insert(case_id, opened);
            }
            "InvitationAccepted" => {
                let change: AgencyChange = body(event)?;
                self.members.insert((case_id, change.agency), true);
            }
            "MemberRemoved" => {
                let change: AgencyChange = body(event)?;
                self.members.insert((case_id, change.agency), false);
            }
            "FlagsChanged" => {
                let flags = body::<FlagsChanged>(event)?.flags;
                match self.opened.get_mut(&case_id) {
                    Some(opened) => opened.flags = flags,
                    None => {
                        self.flags.insert(case_id, flags);
                    }
                }
            }
            "CaseClosed" => {
                let at = body::<Closed>(event)?.at;
                self.closed
                    .insert(case_id, verkosto_eventlog::format_time(at));
            }
            "CaseErased" => {
                self.erased.insert(case_id);
            }
            known if IGNORED_CASE_EVENTS.contains(&known) => {}
            other => {
                return Err(ApplyError::Poison(format!(
                    "a case event of a type this version does not know ({other})"
                )))
            }
        }
        Ok(())
    }

    async fn write(self, conn: &mut AnyConnection, consumer: &str) -> Result<(), sqlx::Error> {
        let opened: Vec<Vec<Param>> = self
            .opened
            .into_iter()
            .map(|(case_id, o)| {
                vec![
                    consumer.into(),
                    case_id.into(),
                    o.lead_agency.into(),
                    o.pseudonym.into(),
                    (o.flags.minor as i64).into(),
                    (o.flags.safety_risk as i64).into(),
                    o.flags.comes_of_age().into(),
                    o.flags.minor_may_consent().into(),
                ]
            })
            .collect();
        // Idempotent: a case folded again from the log (after an unreadable
        // event became readable) meets the same events on the feed later.
        bulk::execute_values(
            conn,
            "INSERT INTO guard_cases (consumer, case_id, lead_agency, pseudonym, minor, safety_risk, \
             comes_of_age, minor_may_consent) VALUES",
            "ON CONFLICT DO NOTHING",
            &opened,
        )
        .await?;
        for (case_id, flags) in self.flags {
            sqlx::query(
                "UPDATE guard_cases SET minor = $1, safety_risk = $2, comes_of_age = $3, \
                 minor_may_consent = $4 WHERE consumer = $5 AND case_id = $6",
            )
            .bind(flags.minor as i64)
            .bind(flags.safety_risk as i64)
            .bind(flags.comes_of_age())
            .bind(flags.minor_may_consent())
            .bind(consumer)
            .bind(case_id)
            .execute(&mut *conn)
            .await?;
        }
        for (case_id, at) in self.closed {
            sqlx::query(
                "UPDATE guard_cases SET closed_at = $1 WHERE consumer = $2 AND case_id = $3",
            )
            .bind(at)
            .bind(consumer)
            .bind(case_id)
            .execute(&mut *conn)
            .await?;
        }
        // Erased: the copy keeps that the case was, and who was in it (so a
        // member's read answers 410), but none of its text or consent.
        for case_id in &self.erased {
            sqlx::query(
                "UPDATE guard_cases SET erased = 1, pseudonym = '' WHERE consumer = $1 AND case_id = $2",
            )
            .bind(consumer)
            .bind(case_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM guard_consent WHERE consumer = $1 AND case_id = $2")
                .bind(consumer)
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
        }
        let (joined, left): (Vec<_>, Vec<_>) = self.members.into_iter().partition(|(_, m)| *m);
        let rows = |keys: Vec<((String, String), bool)>| -> Vec<Vec<Param>> {
            keys.into_iter()
                .map(|((case_id, agency), _)| vec![consumer.into(), case_id.into(), agency.into()])
                .collect()
        };
        bulk::execute_values(
            conn,
            "DELETE FROM guard_members WHERE (consumer, case_id, agency) IN (VALUES",
            ")",
            &rows(left),
        )
        .await?;
        bulk::execute_values(
            conn,
            "INSERT INTO guard_members (consumer, case_id, agency) VALUES",
            "ON CONFLICT DO NOTHING",
            &rows(joined),
        )
        .await?;
        let erased = &self.erased;
        let consent: Vec<Vec<Param>> = self
            .consent
            .into_iter()
            .filter(|(case_id, _, _)| !erased.contains(case_id))
            .map(|(case_id, version, payload)| {
                vec![
                    consumer.into(),
                    case_id.into(),
                    version.into(),
                    payload.into(),
                ]
            })
            .collect();
        bulk::execute_values(
            conn,
            "INSERT INTO guard_consent (consumer, case_id, version, payload) VALUES",
            "ON CONFLICT DO NOTHING",
            &consent,
        )
        .await?;
        let unreadable: Vec<Vec<Param>> = self
            .unreadable
            .into_iter()
            .map(|u| {
                vec![
                    consumer.into(),
                    u.case_id.into(),
                    u.event_id.into(),
                    u.stream_type.into(),
                    u.event_type.into(),
                    u.position.into(),
                    u.reason.into(),
                ]
            })
            .collect();
        bulk::execute_values(
            conn,
            "INSERT INTO guard_unreadable (consumer, case_id, event_id, stream_type, event_type, \
             position, reason) VALUES",
            "ON CONFLICT DO NOTHING",
            &unreadable,
        )
        .await?;
        for event_id in self.resolved {
            sqlx::query("DELETE FROM guard_unreadable WHERE consumer = $1 AND event_id = $2")
                .bind(consumer)
                .bind(event_id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

impl GuardFeed {
    /// Reads again the unreadable events this feed kept, e.g. after an
    /// upgrade: each case whose events all read now is folded again from
    /// the log, and its rows replaced. Returns how many cases stay stale.
    pub async fn retry_unreadable(&self, log: &EventLog) -> Result<usize, Error> {
        let cases: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT case_id FROM guard_unreadable WHERE consumer = $1")
                .bind(self.consumer)
                .fetch_all(log.db().reader())
                .await?;
        let mut still = 0;
        for case_id in cases {
            let changes = fold_case(log, &case_id).await?;
            if !changes.all_read() {
                still += 1;
                continue;
            }
            let mut tx = log.db().begin().await?;
            for table in TABLES {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE consumer = $1 AND case_id = $2"
                ))
                .bind(self.consumer)
                .bind(&case_id)
                .execute(&mut *tx)
                .await?;
            }
            changes.write(&mut tx, self.consumer).await?;
            tx.commit().await?;
            tracing::info!(
                case_id,
                consumer = self.consumer,
                "the case's unreadable events read now"
            );
        }
        Ok(still)
    }
}

/// The case's network and consent record folded straight from the log:
/// the truth when the feed is behind or a copy is in doubt.
pub(crate) async fn fold_case(log: &EventLog, case_id: &str) -> Result<Changes, Error> {
    let mut changes = Changes::default();
    for stream_type in ["case", "consent", OPERATOR_STREAM] {
        for event in log.read_stream(stream_type, case_id).await? {
            changes.add(&event);
        }
    }
    // What an operator resolved is read on without, here as in the feed.
    let resolved = std::mem::take(&mut changes.resolved);
    changes
        .unreadable
        .retain(|u| !resolved.contains(&u.event_id));
    Ok(changes)
}
