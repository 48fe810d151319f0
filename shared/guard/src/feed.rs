//! The projection that keeps a process's copy of each case's network and
//! consent record, from the `case` and `consent` streams.
//!
//! It reads the case events as a tolerant reader of the wire contract in
//! `proto/` (only the fields it needs), so it does not depend on the cases
//! service's crate.

use serde::Deserialize;
use sqlx::AnyConnection;
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

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case" || event.stream_type == "consent"
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let case_id = event.stream_id.as_str();
        if event.stream_type == "consent" {
            // Checked here so that a malformed event is quarantined, not served.
            serde_json::from_value::<ConsentEvent>(event.payload.clone())
                .map_err(|e| ApplyError::Poison(e.to_string()))?;
            sqlx::query(
                "INSERT INTO guard_consent (consumer, case_id, version, payload) VALUES ($1, $2, $3, $4)",
            )
            .bind(self.consumer)
            .bind(case_id)
            .bind(event.version)
            .bind(&event.payload_text)
            .execute(&mut *conn)
            .await?;
            return Ok(());
        }
        match event.event_type.as_str() {
            "CaseOpened" => {
                let opened: Opened = body(event)?;
                sqlx::query(
                    "INSERT INTO guard_cases (consumer, case_id, lead_agency, pseudonym, minor, safety_risk) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(self.consumer)
                .bind(case_id)
                .bind(&opened.lead_agency)
                .bind(&opened.pseudonym)
                .bind(opened.flags.minor as i64)
                .bind(opened.flags.safety_risk as i64)
                .execute(&mut *conn)
                .await?;
                add_member(conn, self.consumer, case_id, &opened.lead_agency).await?;
            }
            "InvitationAccepted" => {
                let change: AgencyChange = body(event)?;
                add_member(conn, self.consumer, case_id, &change.agency).await?;
            }
            "MemberRemoved" => {
                let change: AgencyChange = body(event)?;
                sqlx::query(
                    "DELETE FROM guard_members WHERE consumer = $1 AND case_id = $2 AND agency = $3",
                )
                .bind(self.consumer)
                .bind(case_id)
                .bind(&change.agency)
                .execute(&mut *conn)
                .await?;
            }
            "FlagsChanged" => {
                let flags: OpenedFlags = body::<FlagsChanged>(event)?.flags;
                sqlx::query(
                    "UPDATE guard_cases SET minor = $1, safety_risk = $2 WHERE consumer = $3 AND case_id = $4",
                )
                .bind(flags.minor as i64)
                .bind(flags.safety_risk as i64)
                .bind(self.consumer)
                .bind(case_id)
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
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

async fn add_member(
    conn: &mut AnyConnection,
    consumer: &str,
    case_id: &str,
    agency: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO guard_members (consumer, case_id, agency) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(case_id)
    .bind(agency)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
