//! Demo data for `verkosto serve --demo`: one agency of each kind a typical
//! network has, and users for every role. Loading twice changes nothing.

use std::collections::BTreeSet;

use verkosto_auth::Role;
use verkosto_eventlog::{Actor, CommandMeta, Execution};
use verkosto_http::Problem;
use verkosto_types::parse_field;

use crate::domain::{AgencyKind, LocalizedName};
use crate::Directory;

pub struct DemoAgency {
    /// The agency's id.
    pub id: &'static str,
    /// What kind of agency it is.
    pub kind: AgencyKind,
    /// Its name in Finnish.
    pub fi: &'static str,
    /// Its name in Swedish.
    pub sv: &'static str,
    /// Its name in English.
    pub en: &'static str,
}

pub const AGENCIES: &[DemoAgency] = &[
    DemoAgency {
        id: "police-helsinki",
        kind: AgencyKind::Police,
        fi: "Helsingin poliisilaitos",
        sv: "Polisinrättningen i Helsingfors",
        en: "Helsinki Police Department",
    },
    DemoAgency {
        id: "social-helsinki",
        kind: AgencyKind::SocialServices,
        fi: "Helsingin sosiaalipalvelut",
        sv: "Helsingfors socialtjänst",
        en: "Helsinki Social Services",
    },
    DemoAgency {
        id: "health-hus",
        kind: AgencyKind::HealthCare,
        fi: "HUS",
        sv: "HUS",
        en: "HUS Helsinki University Hospital",
    },
    DemoAgency {
        id: "ngo-support",
        kind: AgencyKind::Ngo,
        fi: "Rikosuhrien tuki ry",
        sv: "Stöd för brottsoffer rf",
        en: "Victim Support NGO",
    },
    DemoAgency {
        id: "migri",
        kind: AgencyKind::Immigration,
        fi: "Maahanmuuttovirasto",
        sv: "Migrationsverket",
        en: "Finnish Immigration Service",
    },
    DemoAgency {
        id: "child-welfare-helsinki",
        kind: AgencyKind::ChildWelfare,
        fi: "Helsingin lastensuojelu",
        sv: "Helsingfors barnskydd",
        en: "Helsinki Child Welfare",
    },
    DemoAgency {
        id: "assistance-system",
        kind: AgencyKind::AssistanceSystem,
        fi: "Ihmiskaupan uhrien auttamisjärjestelmä",
        sv: "Hjälpsystemet för offer för människohandel",
        en: "Assistance System for Victims of Human Trafficking",
    },
];

/// `(user, agency, roles, display name)`
pub const USERS: &[(&str, &str, &[Role], &str)] = &[
    (
        "fiona",
        "assistance-system",
        &[Role::Facilitator],
        "Fiona Facilitator",
    ),
    (
        "liisa",
        "police-helsinki",
        &[Role::Liaison],
        "Liisa Poliisi",
    ),
    (
        "sami",
        "social-helsinki",
        &[Role::Liaison, Role::Facilitator],
        "Sami Sosiaali",
    ),
    ("hanna", "health-hus", &[Role::Liaison], "Hanna Hoitaja"),
    (
        "nora",
        "ngo-support",
        &[Role::Liaison, Role::Facilitator],
        "Nora NGO",
    ),
    ("matti", "migri", &[Role::Liaison], "Matti Migri"),
    (
        "lasse",
        "child-welfare-helsinki",
        &[Role::Liaison],
        "Lasse Lastensuojelu",
    ),
    ("aino", "system", &[Role::Auditor], "Aino Auditor"),
];

/// Registers whatever of the demo data is missing.
pub async fn load(directory: &Directory) -> Result<(), Problem> {
    let existing = listed_agencies(directory).await?;
    for a in AGENCIES.iter().filter(|a| !existing.contains(a.id)) {
        let name = LocalizedName {
            fi: a.fi.into(),
            sv: a.sv.into(),
            en: a.en.into(),
        };
        directory
            .register_agency(parse_field("id", a.id)?, a.kind, name, execution())
            .await?;
    }
    wait_until_listed(directory).await?;
    let users: BTreeSet<String> = directory.users().await?.into_iter().map(|u| u.id).collect();
    for (id, agency, roles, display_name) in USERS.iter().filter(|u| !users.contains(u.0)) {
        directory
            .register_user(
                parse_field("id", *id)?,
                agency.to_string(),
                roles.iter().copied().collect(),
                parse_field("display_name", *display_name)?,
                execution(),
            )
            .await?;
    }
    Ok(())
}

/// Users are checked against the read model's agencies. In the distributed
/// mode it is fed through the stream, and at start-up (the relay starting
/// too, a busy machine) that can take longer than a write's own wait.
async fn wait_until_listed(directory: &Directory) -> Result<(), Problem> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = listed_agencies(directory).await?;
        if AGENCIES.iter().all(|a| listed.contains(a.id)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Problem::unavailable(
                "the directory read model did not list the demo agencies within 60 s",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The ids of the agencies the directory's read model lists.
async fn listed_agencies(directory: &Directory) -> Result<BTreeSet<String>, Problem> {
    Ok(directory
        .agencies()
        .await?
        .into_iter()
        .map(|a| a.id)
        .collect())
}

fn execution() -> Execution {
    Execution::new(CommandMeta::new(Actor {
        user: "demo-loader".into(),
        agency: "system".into(),
    }))
}
