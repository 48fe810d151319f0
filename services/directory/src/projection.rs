//! The directory read model: agencies and users, fed from the log.

use sqlx::AnyConnection;
use verkosto_eventlog::{decode_event, ApplyError, Error, Projection, RecordedEvent};

use crate::domain::{Agency, AgencyEvent, User, UserEvent};

pub struct DirectoryProjection;

pub const NAME: &str = "directory";

#[async_trait::async_trait]
impl Projection for DirectoryProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn only_replayable_effects(&self) -> bool {
        true
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "agency" || event.stream_type == "user"
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let poison = |e: Error| ApplyError::Poison(e.to_string());
        match event.stream_type.as_str() {
            "agency" => match decode_event::<Agency>(event).map_err(poison)? {
                AgencyEvent::AgencyRegistered { id, kind, name } => {
                    sqlx::query(
                        "INSERT INTO dir_agencies (id, kind, name, registered_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(kind.as_str())
                    .bind(serde_json::to_string(&name).map_err(Error::from)?)
                    .bind(&event.occurred_at)
                    .execute(&mut *conn)
                    .await?;
                }
            },
            "user" => match decode_event::<User>(event).map_err(poison)? {
                UserEvent::UserRegistered {
                    id,
                    agency,
                    roles,
                    name: display_name,
                } => {
                    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                    sqlx::query(
                        "INSERT INTO dir_users (id, agency, roles, display_name, registered_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(agency)
                    .bind(roles.join(","))
                    .bind(display_name)
                    .bind(&event.occurred_at)
                    .execute(&mut *conn)
                    .await?;
                }
            },
            _ => {}
        }
        Ok(())
    }

    async fn reset(&self, conn: &mut AnyConnection) -> Result<(), Error> {
        sqlx::query("DELETE FROM dir_agencies")
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM dir_users")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}
