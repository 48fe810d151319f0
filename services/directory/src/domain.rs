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
    pub fi: String,
    pub sv: String,
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

verkosto_eventlog::domain_event!(AgencyEvent);

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

verkosto_eventlog::domain_event!(UserEvent);

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
