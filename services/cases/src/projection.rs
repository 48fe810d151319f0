//! The cases read model: headers and networks, fed from the log.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::AnyConnection;
use verkosto_eventlog::bulk::{self, Param};
use verkosto_eventlog::{decode_event, ApplyError, Db, Error, Projection, RecordedEvent};

use crate::domain::{Case, CaseEvent};

pub struct CasesProjection;

pub const NAME: &str = "cases";

#[async_trait::async_trait]
impl Projection for CasesProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case"
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
            let decoded =
                decode_event::<Case>(event).map_err(|e| ApplyError::Poison(e.to_string()))?;
            changes.add(event, decoded);
        }
        changes.write(conn).await?;
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

/// A case opened in this batch.
struct Header {
    /// What the network calls the client.
    pseudonym: String,
    /// The agency that leads the case.
    lead_agency: String,
    /// The `minor` flag, as the batch leaves it.
    minor: bool,
    /// The `safety_risk` flag, as the batch leaves it.
    safety_risk: bool,
    /// When the case was opened (the event's `occurred_at`).
    opened_at: String,
    /// The case stream's version after the batch.
    version: i64,
}

/// What a batch does to a case opened before it.
struct HeaderUpdate {
    /// The flags `(minor, safety_risk)` as the batch leaves them; none:
    /// unchanged.
    flags: Option<(bool, bool)>,
    /// The case stream's version after the batch.
    version: i64,
}

/// What a batch does to one agency's row in a case's network; only the
/// outcome of the batch's events counts.
enum Place {
    /// The row is this afterwards: (status, purpose, invited_at).
    Set(String, Option<String>, Option<String>),
    Removed,
    /// An invitation from before the batch was accepted.
    Accepted,
}

/// A batch of events, folded into the rows they leave behind, so that it
/// is written in a few statements.
#[derive(Default)]
struct Changes {
    /// Cases opened in the batch, by case id: inserted whole.
    opened: BTreeMap<String, Header>,
    /// Cases opened before the batch, by case id: updated.
    updated: BTreeMap<String, HeaderUpdate>,
    /// By `(case id, agency)`: where each agency the batch touched ends up.
    network: BTreeMap<(String, String), Place>,
    /// Cases erased in the batch: every row of theirs goes.
    erased: BTreeSet<String>,
}

impl Changes {
    fn add(&mut self, event: &RecordedEvent, decoded: CaseEvent) {
        let case_id = event.stream_id.clone();
        let place = |agency: String| (case_id.clone(), agency);
        let mut flags = None;
        match decoded {
            CaseEvent::CaseOpened {
                pseudonym,
                lead_agency,
                flags,
                ..
            } => {
                self.network.insert(
                    place(lead_agency.clone()),
                    Place::Set("member".into(), None, None),
                );
                self.updated.remove(&case_id);
                self.opened.insert(
                    case_id.clone(),
                    Header {
                        pseudonym,
                        lead_agency,
                        minor: flags.minor,
                        safety_risk: flags.safety_risk,
                        opened_at: event.occurred_at.clone(),
                        version: event.version,
                    },
                );
            }
            CaseEvent::AgencyInvited {
                agency, purpose, ..
            } => {
                let invited = Place::Set(
                    "invited".into(),
                    Some(purpose),
                    Some(event.occurred_at.clone()),
                );
                self.network.insert(place(agency), invited);
            }
            CaseEvent::InvitationAccepted { agency, .. } => {
                let entry = self.network.entry(place(agency)).or_insert(Place::Accepted);
                if let Place::Set(status, _, _) = entry {
                    *status = "member".into();
                }
            }
            CaseEvent::InvitationDeclined { agency, .. }
            | CaseEvent::InvitationWithdrawn { agency, .. }
            | CaseEvent::MemberRemoved { agency, .. } => {
                self.network.insert(place(agency), Place::Removed);
            }
            CaseEvent::FlagsChanged { flags: f, .. } => flags = Some((f.minor, f.safety_risk)),
            CaseEvent::CaseClosed { .. }
            | CaseEvent::LegalHoldPlaced { .. }
            | CaseEvent::LegalHoldReleased { .. } => {}
            CaseEvent::CaseErased { .. } => {
                self.erased.insert(case_id.clone());
            }
        }
        if let Some(header) = self.opened.get_mut(&case_id) {
            header.version = event.version;
            if let Some((minor, safety_risk)) = flags {
                (header.minor, header.safety_risk) = (minor, safety_risk);
            }
            return;
        }
        let update = self.updated.entry(case_id).or_insert(HeaderUpdate {
            flags: None,
            version: event.version,
        });
        update.version = event.version;
        update.flags = flags.or(update.flags);
    }

    async fn write(self, conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let opened: Vec<Vec<Param>> = self
            .opened
            .into_iter()
            .map(|(id, h)| {
                vec![
                    id.into(),
                    h.pseudonym.into(),
                    h.lead_agency.into(),
                    (h.minor as i64).into(),
                    (h.safety_risk as i64).into(),
                    h.opened_at.into(),
                    h.version.into(),
                ]
            })
            .collect();
        bulk::execute_values(
            conn,
            "INSERT INTO cases_headers (id, pseudonym, lead_agency, minor, safety_risk, opened_at, version) VALUES",
            "",
            &opened,
        )
        .await?;
        for (id, update) in self.updated {
            let (minor, safety_risk) = match update.flags {
                Some((minor, safety_risk)) => (Some(minor as i64), Some(safety_risk as i64)),
                None => (None, None),
            };
            sqlx::query(
                "UPDATE cases_headers SET version = $1, minor = COALESCE($2, minor), \
                 safety_risk = COALESCE($3, safety_risk) WHERE id = $4",
            )
            .bind(update.version)
            .bind(minor)
            .bind(safety_risk)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        }
        let mut replaced = Vec::new();
        let mut rows = Vec::new();
        let mut accepted = Vec::new();
        for ((case_id, agency), place) in self.network {
            let key: Vec<Param> = vec![case_id.clone().into(), agency.clone().into()];
            match place {
                Place::Set(status, purpose, invited_at) => {
                    replaced.push(key);
                    rows.push(vec![
                        case_id.into(),
                        agency.into(),
                        status.into(),
                        purpose.into(),
                        invited_at.into(),
                    ]);
                }
                Place::Removed => replaced.push(key),
                Place::Accepted => accepted.push(key),
            }
        }
        bulk::execute_values(
            conn,
            "DELETE FROM cases_network WHERE (case_id, agency) IN (VALUES",
            ")",
            &replaced,
        )
        .await?;
        bulk::execute_values(
            conn,
            "INSERT INTO cases_network (case_id, agency, status, purpose, invited_at) VALUES",
            "",
            &rows,
        )
        .await?;
        bulk::execute_values(
            conn,
            "UPDATE cases_network SET status = 'member' WHERE (case_id, agency) IN (VALUES",
            ")",
            &accepted,
        )
        .await?;
        // An erased case leaves no row behind (its records' sealed bodies
        // included: they could not be opened any more anyway).
        for case_id in self.erased {
            for table in ["cases_network", "cases_records"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE case_id = $1"))
                    .bind(&case_id)
                    .execute(&mut *conn)
                    .await?;
            }
            sqlx::query("DELETE FROM cases_headers WHERE id = $1")
                .bind(&case_id)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

// The reads of the tables above, for the endpoints: with the writes, the
// one place that knows their shape.

/// `(id, pseudonym, lead_agency, minor, safety_risk, opened_at, version)`
pub(crate) type CaseRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    Option<String>,
);

/// The cases `agency` is a member of, the latest opened first.
pub(crate) async fn cases_of(db: &Db, agency: &str) -> Result<Vec<CaseRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT h.id, h.pseudonym, h.lead_agency, h.minor, h.safety_risk, h.opened_at, h.version, \
         r.closed_at \
         FROM cases_headers h JOIN cases_network n ON n.case_id = h.id \
         LEFT JOIN cases_retention r ON r.case_id = h.id \
         WHERE n.agency = $1 AND n.status = 'member' ORDER BY h.opened_at DESC, h.id",
    )
    .bind(agency)
    .fetch_all(db.reader())
    .await?)
}

/// `(case_id, pseudonym, lead_agency, purpose, invited_at)`
pub(crate) type InvitationRow = (String, String, String, Option<String>, Option<String>);

/// The open invitations of `agency`, the oldest first.
pub(crate) async fn invitations_of(db: &Db, agency: &str) -> Result<Vec<InvitationRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT n.case_id, h.pseudonym, h.lead_agency, n.purpose, n.invited_at \
         FROM cases_network n JOIN cases_headers h ON h.id = n.case_id \
         WHERE n.agency = $1 AND n.status = 'invited' ORDER BY n.invited_at, n.case_id",
    )
    .bind(agency)
    .fetch_all(db.reader())
    .await?)
}
