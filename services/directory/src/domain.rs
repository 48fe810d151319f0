//! Agencies and users: event-sourced like everything else.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_auth::Role;
use verkosto_http::Problem;

/// A checked id: 2 to 64 characters of `a-z`, `0-9` and `-`, starting with
/// a letter. Ids appear in stream subjects and URLs, so nothing else is allowed.
pub fn check_id(field: &str, id: &str) -> Result<(), Problem> {
    let ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            "must be 2 to 64 characters of a-z, 0-9 and '-', starting with a letter",
        ))
    }
}

/// A checked user id: the `sub` of the user's tokens. Like [`check_id`],
/// but it may start with a digit too, so that an identity provider's
/// subjects fit as they are (Keycloak's are lowercase UUIDs, which start
/// with a digit more often than not).
pub fn check_user_id(field: &str, id: &str) -> Result<(), Problem> {
    let ok = (2..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Problem::invalid(
            field,
            "must be 2 to 64 characters of a-z, 0-9 and '-', starting with a letter or digit",
        ))
    }
}

/// Checks free text: not empty, not too long, no control characters.
pub fn check_text(field: &str, text: &str, max: usize) -> Result<(), Problem> {
    if text.trim().is_empty() {
        return Err(Problem::invalid(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(Problem::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Problem::invalid(
            field,
            "must not contain control characters",
        ));
    }
    // Bidi embeddings, overrides and isolates make text display in another
    // order than it is stored ("Trojan Source"), e.g. a name that reads as
    // someone else's in a list.
    if text
        .chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(Problem::invalid(
            field,
            "must not contain bidirectional override characters",
        ));
    }
    Ok(())
}

/// The kinds of agency in a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    Police,
    SocialServices,
    HealthCare,
    Ngo,
    Immigration,
    AssistanceSystem,
    ChildWelfare,
    LegalCounsel,
    Other,
}

impl AgencyKind {
    pub const ALL: [AgencyKind; 9] = [
        AgencyKind::Police,
        AgencyKind::SocialServices,
        AgencyKind::HealthCare,
        AgencyKind::Ngo,
        AgencyKind::Immigration,
        AgencyKind::AssistanceSystem,
        AgencyKind::ChildWelfare,
        AgencyKind::LegalCounsel,
        AgencyKind::Other,
    ];

    /// The kind named as on the wire (`social_services`).
    pub fn parse(s: &str) -> Option<AgencyKind> {
        AgencyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            AgencyKind::Police => "police",
            AgencyKind::SocialServices => "social_services",
            AgencyKind::HealthCare => "health_care",
            AgencyKind::Ngo => "ngo",
            AgencyKind::Immigration => "immigration",
            AgencyKind::AssistanceSystem => "assistance_system",
            AgencyKind::ChildWelfare => "child_welfare",
            AgencyKind::LegalCounsel => "legal_counsel",
            AgencyKind::Other => "other",
        }
    }
}

/// An agency's name in the three languages of the service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalizedName {
    pub fi: String,
    pub sv: String,
    pub en: String,
}

impl LocalizedName {
    pub fn check(&self) -> Result<(), Problem> {
        check_text("name.fi", &self.fi, 200)?;
        check_text("name.sv", &self.sv, 200)?;
        check_text("name.en", &self.en, 200)
    }
}

// ---- Agency ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agency {
    pub id: Option<String>,
    pub kind: Option<AgencyKind>,
    pub name: Option<LocalizedName>,
}

#[derive(Clone, Debug)]
pub enum AgencyCommand {
    Register {
        id: String,
        kind: AgencyKind,
        name: LocalizedName,
    },
}

/// Events of the `agency` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum AgencyEvent {
    AgencyRegistered {
        id: String,
        kind: AgencyKind,
        name: LocalizedName,
    },
}

impl DomainEvent for AgencyEvent {
    fn event_type(&self) -> String {
        match self {
            AgencyEvent::AgencyRegistered { .. } => "AgencyRegistered".into(),
        }
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

/// A refused identity command, already in its HTTP shape.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub Problem);

impl From<Refused> for Problem {
    fn from(r: Refused) -> Problem {
        r.0
    }
}

impl Aggregate for Agency {
    const TYPE: &'static str = "agency";
    type Command = AgencyCommand;
    type Event = AgencyEvent;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            AgencyCommand::Register { id, kind, name } => {
                if self.id.is_some() {
                    return Err(Refused(Problem::conflict(format!(
                        "id: agency {id} already exists"
                    ))));
                }
                sink.write(AgencyEvent::AgencyRegistered { id, kind, name }, self)
                    .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AgencyEvent::AgencyRegistered { id, kind, name } => {
                self.id = Some(id);
                self.kind = Some(kind);
                self.name = Some(name);
            }
        }
    }
}

// ---- User ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Option<String>,
    pub agency: Option<String>,
    pub roles: BTreeSet<Role>,
}

#[derive(Clone, Debug)]
pub enum UserCommand {
    Register {
        id: String,
        agency: String,
        roles: BTreeSet<Role>,
        display_name: String,
    },
}

/// Events of the `user` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum UserEvent {
    /// Version 2: `name` was `display_name` in version 1 (read through the
    /// log's upcaster, `verkosto_eventlog::UPCASTERS`).
    UserRegistered {
        id: String,
        agency: String,
        #[schemars(with = "Vec<String>")]
        roles: BTreeSet<Role>,
        name: String,
    },
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        match self {
            UserEvent::UserRegistered { .. } => "UserRegistered".into(),
        }
    }
    fn event_version(&self) -> String {
        // The log's upcaster table says which version is current.
        verkosto_eventlog::current_version(&self.event_type()).to_string()
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            UserCommand::Register {
                id,
                agency,
                roles,
                display_name,
            } => {
                if self.id.is_some() {
                    return Err(Refused(Problem::conflict(format!(
                        "id: user {id} already exists"
                    ))));
                }
                sink.write(
                    UserEvent::UserRegistered {
                        id,
                        agency,
                        roles,
                        name: display_name,
                    },
                    self,
                )
                .await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            UserEvent::UserRegistered {
                id, agency, roles, ..
            } => {
                self.id = Some(id);
                self.agency = Some(agency);
                self.roles = roles;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn name() -> LocalizedName {
        LocalizedName {
            fi: "Poliisi".into(),
            sv: "Polisen".into(),
            en: "Police".into(),
        }
    }

    #[test]
    fn registering_a_new_agency_records_it() {
        TestFramework::<Agency>::with(())
            .given_no_previous_events()
            .when(AgencyCommand::Register {
                id: "police-helsinki".into(),
                kind: AgencyKind::Police,
                name: name(),
            })
            .then_expect_events(vec![AgencyEvent::AgencyRegistered {
                id: "police-helsinki".into(),
                kind: AgencyKind::Police,
                name: name(),
            }]);
    }

    #[test]
    fn registering_an_agency_twice_is_refused() {
        let registered = AgencyEvent::AgencyRegistered {
            id: "police-helsinki".into(),
            kind: AgencyKind::Police,
            name: name(),
        };
        let result = TestFramework::<Agency>::with(())
            .given(vec![registered])
            .when(AgencyCommand::Register {
                id: "police-helsinki".into(),
                kind: AgencyKind::Police,
                name: name(),
            })
            .inspect_result();
        assert_eq!(result.unwrap_err().0.status, 409);
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("id", "police-helsinki").is_ok());
        for bad in ["", "a", "Police", "1abc", "a.b", "a b", &"x".repeat(65)] {
            assert!(check_id("id", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn user_ids_fit_a_providers_subjects() {
        for good in ["liisa", "5f0c2a4e-8d1b-4c7e-9a55-2f3b1d7e6c90", "42"] {
            assert!(check_user_id("id", good).is_ok(), "{good:?} refused");
        }
        for bad in [
            "",
            "a",
            "Liisa",
            "-abc",
            "auth0|123",
            "a.b",
            &"x".repeat(65),
        ] {
            assert!(check_user_id("id", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn agency_kinds_parse_by_their_wire_names() {
        for kind in AgencyKind::ALL {
            assert_eq!(AgencyKind::parse(kind.as_str()), Some(kind));
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, kind.as_str());
        }
        assert_eq!(AgencyKind::parse("pirates"), None);
    }

    #[test]
    fn text_is_checked() {
        assert!(check_text("f", "Liisa", 10).is_ok());
        assert!(check_text("f", "  ", 10).is_err());
        assert!(check_text("f", "a\u{0}b", 10).is_err());
        assert!(check_text("f", "abcdefghijk", 10).is_err());
    }
}
