//! The first agency and admin of a real deployment (`verkosto admin
//! bootstrap`), appended through the directory's own commands, so that no
//! dev token is ever needed to start one.
//!
//! Tokens are the provider's word: the API takes `sub`, `agency` and
//! `roles` from a verified token and does not look the caller up here. What
//! the directory adds is the record: the agencies that cases can invite and
//! users can belong to, and who was made an admin, by whom, when (the log).
//! So bootstrap registers exactly what the provider is then told to put
//! into the admin's token, and nothing it cannot undo by being run again.

use std::collections::BTreeSet;
use std::time::Duration;

use verkosto_auth::Role;
use verkosto_eventlog::{Actor, CommandMeta, Execution};
use verkosto_http::Problem;

use verkosto_types::parse_field;
use verkosto_types::{AgencyId, Text, UserId};

use crate::domain::{AgencyKind, LocalizedName};
use crate::Directory;

/// What to register. Refusals name these fields (`agency_id`,
/// `agency_name.fi`, `admin_subject`, `admin_name`, `another_admin`).
#[derive(Clone, Debug)]
pub struct Bootstrap {
    /// The first agency's id, which the admin's token's `agency` claim must carry;
    /// `system` is refused.
    pub agency_id: String,
    /// What kind of agency it is.
    pub agency_kind: AgencyKind,
    /// Its name in Finnish, Swedish and English (each at most 200 characters).
    pub agency_name: LocalizedName,
    /// The provider's `sub` for the admin: the directory's user id.
    pub admin_subject: String,
    /// The admin's display name (at most 200 characters).
    pub admin_name: String,
    /// Add this admin even though the directory has one already.
    pub another_admin: bool,
    /// Who runs it (kept in the log as the events' actor).
    pub operator: String,
}

/// What bootstrap did with each of the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    Registered,
    /// It was there already, exactly as asked: nothing was appended.
    Unchanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// What became of the agency.
    pub agency: Done,
    /// What became of the admin user.
    pub admin: Done,
}

/// 409 naming the input at odds with the directory.
fn refused(field: &str, detail: String) -> Problem {
    let mut p = Problem::conflict(format!("{field}: {detail}"));
    p.field = Some(field.to_string());
    p
}

/// The agency the built-in dev admin and operator actions speak for; a
/// real agency by that name would be confused with them.
const RESERVED_AGENCY: &str = "system";

impl Bootstrap {
    /// Checks the input alone, before anything is read or written.
    pub fn check(&self) -> Result<(), Problem> {
        parse_field::<AgencyId>("agency_id", self.agency_id.as_str())?;
        if self.agency_id == RESERVED_AGENCY {
            return Err(Problem::invalid(
                "agency_id",
                "`system` is reserved for the operator's own actions; name the agency",
            ));
        }
        for (field, name) in [
            ("agency_name.fi", &self.agency_name.fi),
            ("agency_name.sv", &self.agency_name.sv),
            ("agency_name.en", &self.agency_name.en),
        ] {
            parse_field::<Text<200>>(field, name.as_str())?;
        }
        parse_field::<UserId>("admin_subject", self.admin_subject.as_str())?;
        if self.admin_subject == "admin" {
            return Err(Problem::invalid(
                "admin_subject",
                "`admin` is the dev mode's built-in user; give the provider's subject",
            ));
        }
        parse_field::<Text<200>>("admin_name", self.admin_name.as_str())?;
        parse_field::<Text<200>>("operator", self.operator.as_str())?;
        Ok(())
    }

    /// Registers what is missing of the agency and its admin; refuses,
    /// before writing anything, what would contradict the directory.
    /// The directory's read model must be current (the caller runs its
    /// projection).
    pub async fn run(&self, directory: &Directory) -> Result<Report, Problem> {
        self.check()?;
        // First decide both (`Registered` = to be registered), then write.
        let agency = match directory.agency(&self.agency_id).await? {
            None => Done::Registered,
            Some(found) => {
                if found.kind != self.agency_kind.as_str() || found.name != self.agency_name {
                    return Err(refused(
                        "agency_id",
                        format!(
                            "agency {} is registered already, as {} named {:?} / {:?} / {:?}; \
                             give those, or another id",
                            found.id, found.kind, found.name.fi, found.name.sv, found.name.en
                        ),
                    ));
                }
                Done::Unchanged
            }
        };
        let users = directory.users().await?;
        let admin = match users.iter().find(|u| u.id == self.admin_subject) {
            None => Done::Registered,
            Some(found) => {
                let same = found.agency == self.agency_id
                    && found.roles == [Role::Admin]
                    && found.display_name == self.admin_name;
                if !same {
                    let roles: Vec<&str> = found.roles.iter().map(Role::as_str).collect();
                    return Err(refused(
                        "admin_subject",
                        format!(
                            "user {} is registered already (agency {}, roles {}, name {:?}); \
                             bootstrap changes no user",
                            found.id,
                            found.agency,
                            roles.join(","),
                            found.display_name
                        ),
                    ));
                }
                Done::Unchanged
            }
        };
        if admin == Done::Registered && !self.another_admin {
            let admins: Vec<&str> = users
                .iter()
                .filter(|u| u.roles.contains(&Role::Admin))
                .map(|u| u.id.as_str())
                .collect();
            if !admins.is_empty() {
                return Err(refused(
                    "another_admin",
                    format!(
                        "the directory has an admin already ({}); to add one more, say so",
                        admins.join(", ")
                    ),
                ));
            }
        }

        if agency == Done::Registered {
            directory
                .register_agency(
                    parse_field("agency_id", self.agency_id.as_str())?,
                    self.agency_kind,
                    self.agency_name.clone(),
                    self.execution(),
                )
                .await?;
            // The user check reads the agency from the read model.
            self.wait_until_listed(directory).await?;
        }
        if admin == Done::Registered {
            directory
                .register_user(
                    parse_field("admin_subject", self.admin_subject.as_str())?,
                    self.agency_id.clone(),
                    BTreeSet::from([Role::Admin]),
                    parse_field("admin_name", self.admin_name.as_str())?,
                    self.execution(),
                )
                .await?;
        }
        Ok(Report { agency, admin })
    }

    fn execution(&self) -> Execution {
        Execution::new(CommandMeta::new(Actor {
            user: self.operator.clone(),
            agency: RESERVED_AGENCY.into(),
        }))
    }

    async fn wait_until_listed(&self, directory: &Directory) -> Result<(), Problem> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while directory.agency(&self.agency_id).await?.is_none() {
            if tokio::time::Instant::now() >= deadline {
                return Err(Problem::unavailable(
                    "the directory read model did not list the new agency within 30 s",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}
