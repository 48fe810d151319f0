//! The meetings read model: meetings by case (lists) and by participant
//! agency (calendar feeds), fed from the log.

use std::collections::HashMap;

use sqlx::AnyConnection;
use verkosto_eventlog::{
    decode_event, format_time, ApplyError, Db, Error, Projection, RecordedEvent,
};

use crate::domain::{Meeting, MeetingEvent};

pub struct MeetingsProjection;

pub const NAME: &str = "meetings";

#[async_trait::async_trait]
impl Projection for MeetingsProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "meeting"
            || (event.stream_type == "case" && event.event_type == "CaseErased")
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let id = event.stream_id.as_str();
        if event.stream_type == "case" {
            // Erased: the case's meetings leave no row behind.
            sqlx::query(
                "DELETE FROM meetings_participants WHERE meeting_id IN \
                 (SELECT id FROM meetings_meetings WHERE case_id = $1)",
            )
            .bind(id)
            .execute(&mut *conn)
            .await?;
            sqlx::query("DELETE FROM meetings_meetings WHERE case_id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            return Ok(());
        }
        let decoded =
            decode_event::<Meeting>(event).map_err(|e| ApplyError::Poison(e.to_string()))?;
        match decoded {
            MeetingEvent::MeetingScheduled {
                case_id,
                lead_agency,
                title,
                starts_at,
                ends_at,
                location,
                participants,
                at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO meetings_meetings (id, case_id, lead_agency, title, starts_at, \
                     ends_at, status, sequence, location, changed_at, version) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', 0, $7, $8, $9)",
                )
                .bind(id)
                .bind(case_id)
                .bind(lead_agency)
                .bind(title)
                .bind(format_time(starts_at))
                .bind(format_time(ends_at))
                .bind(location)
                .bind(format_time(at))
                .bind(event.version)
                .execute(&mut *conn)
                .await?;
                for agency in participants {
                    sqlx::query(
                        "INSERT INTO meetings_participants (meeting_id, agency) VALUES ($1, $2)",
                    )
                    .bind(id)
                    .bind(agency)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            MeetingEvent::MeetingRescheduled {
                starts_at,
                ends_at,
                sequence,
                at,
                ..
            } => {
                sqlx::query(
                    "UPDATE meetings_meetings SET starts_at = $1, ends_at = $2, sequence = $3, \
                     changed_at = $4 WHERE id = $5",
                )
                .bind(format_time(starts_at))
                .bind(format_time(ends_at))
                .bind(sequence as i64)
                .bind(format_time(at))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            MeetingEvent::MeetingCancelled { sequence, at, .. } => {
                sqlx::query(
                    "UPDATE meetings_meetings SET status = 'cancelled', sequence = $1, \
                     changed_at = $2 WHERE id = $3",
                )
                .bind(sequence as i64)
                .bind(format_time(at))
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            MeetingEvent::AttendanceRecorded { .. } => {
                sqlx::query(
                    "UPDATE meetings_meetings SET status = 'held' WHERE id = $1 AND status = 'scheduled'",
                )
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
            // The rest does not show in lists or feeds.
            _ => {}
        }
        sqlx::query("UPDATE meetings_meetings SET version = $1 WHERE id = $2")
            .bind(event.version)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        sqlx::query("DELETE FROM meetings_participants")
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM meetings_meetings")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

// The reads of the tables above: the one place besides `apply` that knows
// their shape.

/// `(id, title, starts_at, ends_at, status, sequence, location, version)`
pub(crate) type ListRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    i64,
);

/// The meetings of a case, in the order lists show them.
pub(crate) async fn meetings_of_case(db: &Db, case_id: &str) -> Result<Vec<ListRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT id, title, starts_at, ends_at, status, sequence, location, version \
         FROM meetings_meetings WHERE case_id = $1 ORDER BY starts_at, id",
    )
    .bind(case_id)
    .fetch_all(db.reader())
    .await?)
}

/// The participants of each meeting of a case, by meeting id.
pub(crate) async fn participants_of_case(
    db: &Db,
    case_id: &str,
) -> Result<HashMap<String, Vec<String>>, Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT p.meeting_id, p.agency FROM meetings_participants p \
         JOIN meetings_meetings m ON m.id = p.meeting_id \
         WHERE m.case_id = $1 ORDER BY p.meeting_id, p.agency",
    )
    .bind(case_id)
    .fetch_all(db.reader())
    .await?;
    let mut by_meeting: HashMap<String, Vec<String>> = HashMap::new();
    for (meeting, agency) in rows {
        by_meeting.entry(meeting).or_default().push(agency);
    }
    Ok(by_meeting)
}

/// `(id, case_id, starts_at, ends_at, status, sequence, location, changed_at)`
pub(crate) type FeedRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    String,
);

/// The meetings `agency` takes part in, for its calendar feed.
pub(crate) async fn feed_of(db: &Db, agency: &str) -> Result<Vec<FeedRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT m.id, m.case_id, m.starts_at, m.ends_at, m.status, m.sequence, m.location, m.changed_at \
         FROM meetings_meetings m JOIN meetings_participants p ON p.meeting_id = m.id \
         WHERE p.agency = $1 ORDER BY m.starts_at, m.id",
    )
    .bind(agency)
    .fetch_all(db.reader())
    .await?)
}
