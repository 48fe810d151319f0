//! The read model of closed cases and their legal holds
//! (`cases_retention`, `cases_holds`): what the retention sweep erases and
//! the auditor's list shows. Ids, times and outcomes only.

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, Row};
use verkosto_eventlog::{
    decode_event, format_time, ApplyError, Db, Error, Projection, RecordedEvent,
};

use crate::domain::{Case, CaseEvent};

/// The read model of closed cases and their holds.
pub struct RetentionProjection;

/// The read model's name (its checkpoint).
pub const NAME: &str = "cases-retention";

#[async_trait::async_trait]
impl Projection for RetentionProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case"
            && matches!(
                event.event_type.as_str(),
                "CaseClosed" | "LegalHoldPlaced" | "LegalHoldReleased" | "CaseErased"
            )
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let case_id = event.stream_id.as_str();
        let decoded = decode_event::<Case>(event).map_err(|e| ApplyError::Poison(e.to_string()))?;
        match decoded {
            CaseEvent::CaseClosed { outcome, at, .. } => {
                let outcome = serde_json::to_value(outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                sqlx::query(
                    "INSERT INTO cases_retention (case_id, closed_at, outcome) VALUES ($1, $2, $3) \
                     ON CONFLICT (case_id) DO NOTHING",
                )
                .bind(case_id)
                .bind(format_time(at))
                .bind(outcome)
                .execute(&mut *conn)
                .await?;
            }
            CaseEvent::LegalHoldPlaced {
                hold_id,
                reason,
                by_agency,
                at,
            } => {
                // The reason as the log keeps it (projections see the
                // stored events): sealed.
                sqlx::query(
                    "INSERT INTO cases_holds (case_id, hold_id, reason, placed_by, placed_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id, hold_id) DO NOTHING",
                )
                .bind(case_id)
                .bind(hold_id)
                .bind(reason)
                .bind(by_agency)
                .bind(format_time(at))
                .execute(&mut *conn)
                .await?;
            }
            CaseEvent::LegalHoldReleased { hold_id, .. } => {
                sqlx::query("DELETE FROM cases_holds WHERE case_id = $1 AND hold_id = $2")
                    .bind(case_id)
                    .bind(hold_id)
                    .execute(&mut *conn)
                    .await?;
            }
            CaseEvent::CaseErased { .. } => {
                for table in ["cases_retention", "cases_holds"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE case_id = $1"))
                        .bind(case_id)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        for table in ["cases_retention", "cases_holds"] {
            sqlx::query(&format!("DELETE FROM {table}"))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// A closed case as the retention list shows it.
pub(crate) struct Closed {
    pub(crate) case_id: String,
    pub(crate) closed_at: DateTime<Utc>,
    pub(crate) outcome: String,
    /// The holds in force, in id order.
    pub(crate) holds: Vec<HoldRow>,
}

/// A hold in force, as the read model keeps it.
pub(crate) struct HoldRow {
    pub(crate) hold_id: String,
    /// Sealed, as in the log (none in rows written before it was kept).
    pub(crate) reason: Option<String>,
    pub(crate) placed_by: Option<String>,
    pub(crate) placed_at: Option<String>,
}

/// A time as the read model keeps it.
fn parse_time(text: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::Corrupt(format!("cases_retention holds a bad time {text:?}: {e}")))
}

/// Every closed case not yet erased, with its holds, oldest first.
pub(crate) async fn closed_cases(db: &Db) -> Result<Vec<Closed>, Error> {
    let rows = sqlx::query(
        "SELECT r.case_id, r.closed_at, r.outcome, h.hold_id, h.reason, h.placed_by, \
         h.placed_at FROM cases_retention r \
         LEFT JOIN cases_holds h ON h.case_id = r.case_id \
         ORDER BY r.closed_at, r.case_id, h.hold_id",
    )
    .fetch_all(db.reader())
    .await?;
    let mut cases: Vec<Closed> = Vec::new();
    for row in rows {
        let case_id: String = row.try_get("case_id")?;
        let hold: Option<String> = row.try_get("hold_id")?;
        if cases.last().is_none_or(|c| c.case_id != case_id) {
            let closed_at: String = row.try_get("closed_at")?;
            cases.push(Closed {
                case_id,
                closed_at: parse_time(&closed_at)?,
                outcome: row.try_get("outcome")?,
                holds: Vec::new(),
            });
        }
        if let Some(hold_id) = hold {
            let hold = HoldRow {
                hold_id,
                reason: row.try_get("reason")?,
                placed_by: row.try_get("placed_by")?,
                placed_at: row.try_get("placed_at")?,
            };
            cases.last_mut().expect("pushed above").holds.push(hold);
        }
    }
    Ok(cases)
}
