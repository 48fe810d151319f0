//! The projection that keeps a process's copy of each case's network and
//! consent record, from the `case` and `consent` streams.
//!
//! It reads the case events as a tolerant reader of the wire contract in
//! `proto/` (only the fields it needs), so it does not depend on the cases
//! service's crate.

use serde::Deserialize;
use sqlx::AnyConnection;
use std::collections::BTreeMap;

use verkosto_eventlog::bulk::{self, Param};
use verkosto_eventlog::{ApplyError, Error, Projection, RecordedEvent};
use verkosto_policy::ConsentEvent;

/// One process's feed; `consumer` names its rows and its checkpoint.
pub struct GuardFeed {
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
    lead_agency: String,
    pseudonym: String,
    #[serde(default)]
    flags: OpenedFlags,
}

#[derive(Default, Deserialize)]
struct OpenedFlags {
    #[serde(default)]
    minor: bool,
    #[serde(default)]
    safety_risk: bool,
}

#[derive(Deserialize)]
struct AgencyChange {
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
        event.stream_type == "case" || event.stream_type == "consent"
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
            changes.add(event)?;
        }
        changes.write(conn, self.consumer).await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        for table in ["guard_cases", "guard_members", "guard_consent"] {
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
    flags: OpenedFlags,
}

/// What a batch of events changes, gathered so that it is written in a few
/// statements. Membership is a set: only each agency's last change counts.
#[derive(Default)]
struct Changes {
    opened: BTreeMap<String, Opened>,
    /// Flags of cases opened before this batch.
    flags: BTreeMap<String, OpenedFlags>,
    /// (case, agency) -> member afterwards?
    members: BTreeMap<(String, String), bool>,
    /// (case, version, payload) of consent events.
    consent: Vec<(String, i64, String)>,
}

impl Changes {
    fn add(&mut self, event: &RecordedEvent) -> Result<(), ApplyError> {
        let case_id = event.stream_id.clone();
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
            _ => {}
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
                ]
            })
            .collect();
        bulk::execute_values(
            conn,
            "INSERT INTO guard_cases (consumer, case_id, lead_agency, pseudonym, minor, safety_risk) VALUES",
            "",
            &opened,
        )
        .await?;
        for (case_id, flags) in self.flags {
            sqlx::query(
                "UPDATE guard_cases SET minor = $1, safety_risk = $2 WHERE consumer = $3 AND case_id = $4",
            )
            .bind(flags.minor as i64)
            .bind(flags.safety_risk as i64)
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
        let consent: Vec<Vec<Param>> = self
            .consent
            .into_iter()
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
            "",
            &consent,
        )
        .await
    }
}
