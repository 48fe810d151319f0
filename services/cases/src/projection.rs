//! The cases read model: headers and networks, fed from the log.

use sqlx::AnyConnection;
use verkosto_eventlog::{decode_event, ApplyError, Error, Projection, RecordedEvent};

use crate::domain::{Case, CaseEvent};

pub struct CasesProjection;

pub const NAME: &str = "cases";

#[async_trait::async_trait]
impl Projection for CasesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case"
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let case_id = event.stream_id.as_str();
        let decoded = decode_event::<Case>(event).map_err(|e| ApplyError::Poison(e.to_string()))?;
        match decoded {
            CaseEvent::CaseOpened {
                pseudonym,
                lead_agency,
                flags,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO cases_headers (id, pseudonym, lead_agency, minor, safety_risk, opened_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(case_id)
                .bind(pseudonym)
                .bind(&lead_agency)
                .bind(flags.minor as i64)
                .bind(flags.safety_risk as i64)
                .bind(&event.occurred_at)
                .bind(event.version)
                .execute(&mut *conn)
                .await?;
                set_status(conn, case_id, &lead_agency, Some("member"), None, None).await?;
            }
            CaseEvent::AgencyInvited {
                agency, purpose, ..
            } => {
                set_status(
                    conn,
                    case_id,
                    &agency,
                    Some("invited"),
                    Some(&purpose),
                    Some(&event.occurred_at),
                )
                .await?;
            }
            CaseEvent::InvitationAccepted { agency, .. } => {
                sqlx::query(
                    "UPDATE cases_network SET status = 'member' WHERE case_id = $1 AND agency = $2",
                )
                .bind(case_id)
                .bind(agency)
                .execute(&mut *conn)
                .await?;
            }
            CaseEvent::InvitationDeclined { agency, .. }
            | CaseEvent::InvitationWithdrawn { agency, .. }
            | CaseEvent::MemberRemoved { agency, .. } => {
                set_status(conn, case_id, &agency, None, None, None).await?;
            }
            CaseEvent::FlagsChanged { flags, .. } => {
                sqlx::query("UPDATE cases_headers SET minor = $1, safety_risk = $2 WHERE id = $3")
                    .bind(flags.minor as i64)
                    .bind(flags.safety_risk as i64)
                    .bind(case_id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        sqlx::query("UPDATE cases_headers SET version = $1 WHERE id = $2")
            .bind(event.version)
            .bind(case_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        sqlx::query("DELETE FROM cases_headers")
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM cases_network")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Sets an agency's place in a case's network (None removes it).
async fn set_status(
    conn: &mut AnyConnection,
    case_id: &str,
    agency: &str,
    status: Option<&str>,
    purpose: Option<&str>,
    invited_at: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM cases_network WHERE case_id = $1 AND agency = $2")
        .bind(case_id)
        .bind(agency)
        .execute(&mut *conn)
        .await?;
    if let Some(status) = status {
        sqlx::query(
            "INSERT INTO cases_network (case_id, agency, status, purpose, invited_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(case_id)
        .bind(agency)
        .bind(status)
        .bind(purpose)
        .bind(invited_at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
