//! Agencies and users: event-sourced like everything else.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_auth::Role;
use verkosto_types::parse_field;
use verkosto_types::Refusal;
use verkosto_types::Text;

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
    /// The name in Finnish (at most 200 characters).
    pub fi: String,
    /// The name in Swedish (at most 200 characters).
    pub sv: String,
    /// The name in English (at most 200 characters).
    pub en: String,
}

impl LocalizedName {
    pub fn check(&self) -> Result<(), Refusal> {
        parse_field::<Text<200>>("name.fi", self.fi.as_str())?;
        parse_field::<Text<200>>("name.sv", self.sv.as_str())?;
        parse_field::<Text<200>>("name.en", self.en.as_str())?;
        Ok(())
    }
}

// ---- Agency ----

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Agency {
    /// The agency's id; none until it is registered.
    pub id: Option<String>,
    /// Its kind; none until it is registered.
    pub kind: Option<AgencyKind>,
    /// Its name; none until it is registered.
    pub name: Option<LocalizedName>,
}

#[derive(Clone, Debug)]
pub enum AgencyCommand {
    Register {
        /// The new agency's id (checked by the handler).
        id: String,
        /// What kind of agency it is.
        kind: AgencyKind,
        /// Its name in the three languages (checked by the handler).
        name: LocalizedName,
    },
}

/// Events of the `agency` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum AgencyEvent {
    AgencyRegistered {
        /// The agency's id: the one the `agency` claim of its users' tokens carries.
        id: String,
        /// What kind of agency it is.
        kind: AgencyKind,
        /// Its name in Finnish, Swedish and English.
        name: LocalizedName,
    },
}

verkosto_eventlog::domain_event!(AgencyEvent);

/// Agencies are the network's, not a client's: nothing to seal.
impl verkosto_eventlog::DataSubject for Agency {}

impl Aggregate for Agency {
    const TYPE: &'static str = "agency";
    type Command = AgencyCommand;
    type Event = AgencyEvent;
    type Error = Refusal;
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
                    return Err(Refusal::conflict(format!("id: agency {id} already exists")));
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
    /// The user's id; none until the user is registered.
    pub id: Option<String>,
    /// The user's agency id; none until the user is registered.
    pub agency: Option<String>,
    /// The user's roles; empty until the user is registered.
    pub roles: BTreeSet<Role>,
}

#[derive(Clone, Debug)]
pub enum UserCommand {
    Register {
        /// The new user's id (checked by the handler; `admin` is refused).
        id: String,
        /// The user's agency id (checked by the handler: a registered agency, or `system`).
        agency: String,
        /// What the user may do; at least one role.
        roles: BTreeSet<Role>,
        /// The user's name as shown to others; recorded as the event's `name`.
        display_name: String,
    },
}

/// Events of the `user` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum UserEvent {
    /// Version 2: `name` was `display_name` in version 1 (read through the
    /// log's upcaster, `verkosto_eventlog::UPCASTERS`).
    UserRegistered {
        /// The user's id: the `sub` claim of the user's tokens.
        id: String,
        /// The user's agency id.
        agency: String,
        /// What the user may do, as role names.
        #[schemars(with = "Vec<String>")]
        roles: BTreeSet<Role>,
        /// The user's name as shown to others.
        name: String,
    },
}

verkosto_eventlog::domain_event!(UserEvent);

/// Users are staff, not clients: nothing to seal.
impl verkosto_eventlog::DataSubject for User {}

impl Aggregate for User {
    const TYPE: &'static str = "user";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = Refusal;
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
                    return Err(Refusal::conflict(format!("id: user {id} already exists")));
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
        assert_eq!(
            verkosto_http::Problem::from(result.unwrap_err()).status,
            409
        );
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
}
