//! The consent record as a cqrs-es aggregate: checks each change against
//! the record and the case's network, then records it as an event.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use verkosto_policy::{Category, ConsentEvent, ConsentState, Obtained};
use verkosto_types::Refusal;

/// The consent record of one case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Consent {
    /// The record, folded from its events (not serialised: always rebuilt from them).
    #[serde(skip)]
    state: ConsentState,
}

impl Consent {
    pub fn state(&self) -> &ConsentState {
        &self.state
    }
}

/// The case's network when the command was given.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// The case's lead agency id.
    pub lead: String,
    /// The member agency ids, the lead included.
    pub members: BTreeSet<String>,
}

impl Network {
    /// The agency named in `field` must be a member other than the lead.
    fn check_agency(&self, field: &str, agency: &str) -> Result<(), Refusal> {
        if agency == self.lead {
            return Err(Refusal::invalid(
                field,
                format!("{agency} is the lead agency, which reads every category already"),
            ));
        }
        if !self.members.contains(agency) {
            return Err(Refusal::invalid(
                field,
                format!("{agency} is not in this case's network"),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub enum ConsentCommand {
    Grant {
        /// The new grant's id, made by the handler (`grant-…`).
        grant_id: String,
        /// The agency id to be let read: a member other than the lead.
        recipient: String,
        /// The categories to be covered; at least one.
        categories: BTreeSet<Category>,
        /// What the data may be used for (free text).
        purpose: String,
        /// When the grant starts; none: at `at`.
        valid_from: Option<DateTime<Utc>>,
        /// When the grant ends (exclusive), after `at` and `valid_from`; none:
        /// until withdrawn.
        valid_until: Option<DateTime<Utc>>,
        /// How and from whom the consent was obtained.
        obtained: Obtained,
        /// The case's network, to check `recipient` against.
        network: Network,
        /// When the command is recorded (the event's `occurred_at`).
        at: DateTime<Utc>,
    },
    Withdraw {
        /// The grant to withdraw; it must exist and not be withdrawn yet.
        grant_id: String,
        /// Why (free text).
        reason: String,
        /// When the command is recorded.
        at: DateTime<Utc>,
    },
    Refuse {
        /// The new refusal's id, made by the handler (`refusal-…`).
        refusal_id: String,
        /// The agency id refused: a member other than the lead.
        agency: String,
        /// Empty: every category.
        categories: BTreeSet<Category>,
        /// The case's network, to check `agency` against.
        network: Network,
        /// When the command is recorded.
        at: DateTime<Utc>,
    },
    LiftRefusal {
        /// The refusal to lift; it must exist and not be lifted yet.
        refusal_id: String,
        /// When the command is recorded.
        at: DateTime<Utc>,
    },
    RecordStatutory {
        /// The new basis's id, made by the handler (`basis-…`).
        basis_id: String,
        /// The agency id the law lets read: a member other than the lead.
        recipient: String,
        /// The categories it covers; at least one.
        categories: BTreeSet<Category>,
        /// The provision of law (free text).
        law_reference: String,
        /// When the basis ends (exclusive), after `at`; none: until ended.
        valid_until: Option<DateTime<Utc>>,
        /// The case's network, to check `recipient` against.
        network: Network,
        /// When the command is recorded.
        at: DateTime<Utc>,
    },
    EndStatutory {
        /// The basis to end; it must exist and not be ended yet.
        basis_id: String,
        /// When the command is recorded.
        at: DateTime<Utc>,
    },
}

fn invalid(field: &str, detail: impl Into<String>) -> Refusal {
    Refusal::invalid(field, detail)
}

/// Wraps the policy's event for cqrs-es.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConsentChanged(pub ConsentEvent);

verkosto_eventlog::domain_event!(
    ConsentChanged,
    sealed {
        ConsentGranted: ["purpose", "obtained.language", "obtained.interpreter"],
        ConsentWithdrawn: ["reason"],
    }
);

impl verkosto_eventlog::DataSubject for Consent {
    /// The consent stream's id is the case id.
    fn data_subject<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        Some(id)
    }
}

fn check_until(until: Option<DateTime<Utc>>, at: DateTime<Utc>) -> Result<(), Refusal> {
    match until {
        Some(u) if u <= at => Err(invalid("valid_until", "must be in the future")),
        _ => Ok(()),
    }
}

fn check_categories(categories: &BTreeSet<Category>) -> Result<(), Refusal> {
    if categories.is_empty() {
        Err(invalid("categories", "must name at least one category"))
    } else {
        Ok(())
    }
}

impl Aggregate for Consent {
    const TYPE: &'static str = "consent";
    type Command = ConsentCommand;
    type Event = ConsentChanged;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: ConsentCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let state = &self.state;
        let event = match command {
            ConsentCommand::Grant {
                grant_id,
                recipient,
                categories,
                purpose,
                valid_from,
                valid_until,
                obtained,
                network,
                at,
            } => {
                network.check_agency("recipient", &recipient)?;
                check_categories(&categories)?;
                check_until(valid_until, at)?;
                let valid_from = valid_from.unwrap_or(at);
                if valid_until.is_some_and(|u| u <= valid_from) {
                    return Err(invalid("valid_until", "must be after valid_from"));
                }
                if state.grants.contains_key(&grant_id) {
                    return Err(Refusal::conflict("grant_id: exists"));
                }
                ConsentEvent::ConsentGranted {
                    grant_id,
                    recipient,
                    categories,
                    purpose,
                    valid_from,
                    valid_until,
                    obtained,
                    at,
                }
            }
            ConsentCommand::Withdraw {
                grant_id,
                reason,
                at,
            } => {
                let grant = state
                    .grants
                    .get(&grant_id)
                    .ok_or_else(|| Refusal::unknown(format!("no grant {grant_id}")))?;
                if let Some(when) = grant.withdrawn_at {
                    return Err(invalid(
                        "grant_id",
                        format!("grant {grant_id} was already withdrawn at {when}"),
                    ));
                }
                ConsentEvent::ConsentWithdrawn {
                    grant_id,
                    reason,
                    at,
                }
            }
            ConsentCommand::Refuse {
                refusal_id,
                agency,
                categories,
                network,
                at,
            } => {
                network.check_agency("agency", &agency)?;
                if state.refusals.contains_key(&refusal_id) {
                    return Err(Refusal::conflict("refusal_id: exists"));
                }
                let categories = if categories.is_empty() {
                    Category::ALL.into_iter().collect()
                } else {
                    categories
                };
                ConsentEvent::ConsentRefused {
                    refusal_id,
                    agency,
                    categories,
                    at,
                }
            }
            ConsentCommand::LiftRefusal { refusal_id, at } => {
                let refusal = state
                    .refusals
                    .get(&refusal_id)
                    .ok_or_else(|| Refusal::unknown(format!("no refusal {refusal_id}")))?;
                if refusal.lifted_at.is_some() {
                    return Err(invalid(
                        "refusal_id",
                        format!("refusal {refusal_id} was already lifted"),
                    ));
                }
                ConsentEvent::RefusalLifted { refusal_id, at }
            }
            ConsentCommand::RecordStatutory {
                basis_id,
                recipient,
                categories,
                law_reference,
                valid_until,
                network,
                at,
            } => {
                network.check_agency("recipient", &recipient)?;
                check_categories(&categories)?;
                check_until(valid_until, at)?;
                if state.statutory.contains_key(&basis_id) {
                    return Err(Refusal::conflict("basis_id: exists"));
                }
                ConsentEvent::StatutoryBasisRecorded {
                    basis_id,
                    recipient,
                    categories,
                    law_reference,
                    valid_until,
                    at,
                }
            }
            ConsentCommand::EndStatutory { basis_id, at } => {
                let basis = state
                    .statutory
                    .get(&basis_id)
                    .ok_or_else(|| Refusal::unknown(format!("no statutory basis {basis_id}")))?;
                if basis.ended_at.is_some() {
                    return Err(invalid(
                        "basis_id",
                        format!("statutory basis {basis_id} has already ended"),
                    ));
                }
                ConsentEvent::StatutoryBasisEnded { basis_id, at }
            }
        };
        sink.write(ConsentChanged(event), self).await;
        Ok(())
    }

    fn apply(&mut self, event: ConsentChanged) {
        self.state.apply(&event.0);
    }
}

/// Agencies that appear anywhere in the record.
pub fn agencies_in(state: &ConsentState) -> HashSet<String> {
    let mut all = HashSet::new();
    all.extend(state.grants.values().map(|g| g.recipient.clone()));
    all.extend(state.refusals.values().map(|r| r.agency.clone()));
    all.extend(state.statutory.values().map(|b| b.recipient.clone()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use verkosto_policy::{Grantor, Method};

    fn t(minute: u32) -> DateTime<Utc> {
        format!("2026-11-01T10:{minute:02}:00Z").parse().unwrap()
    }

    fn network() -> Network {
        Network {
            lead: "ngo-support".into(),
            members: ["ngo-support", "police-helsinki", "health-hus"]
                .map(String::from)
                .into(),
        }
    }

    fn obtained() -> Obtained {
        Obtained {
            method: Method::Written,
            language: "ro".into(),
            interpreter: Some("booked interpreter".into()),
            grantor: Grantor::Client,
        }
    }

    fn grant(recipient: &str, until: Option<DateTime<Utc>>) -> ConsentCommand {
        ConsentCommand::Grant {
            grant_id: "g1".into(),
            recipient: recipient.into(),
            categories: [Category::Health].into(),
            purpose: "care".into(),
            valid_from: None,
            valid_until: until,
            obtained: obtained(),
            network: network(),
            at: t(1),
        }
    }

    fn granted() -> ConsentChanged {
        ConsentChanged(ConsentEvent::ConsentGranted {
            grant_id: "g1".into(),
            recipient: "health-hus".into(),
            categories: [Category::Health].into(),
            purpose: "care".into(),
            valid_from: t(1),
            valid_until: None,
            obtained: obtained(),
            at: t(1),
        })
    }

    fn refusal(result: Result<Vec<ConsentChanged>, Refusal>) -> (u16, String) {
        let p = verkosto_http::Problem::from(result.unwrap_err());
        (p.status, p.detail)
    }

    #[test]
    fn a_grant_to_a_member_is_recorded() {
        TestFramework::<Consent>::with(())
            .given_no_previous_events()
            .when(grant("health-hus", None))
            .then_expect_events(vec![granted()]);
    }

    #[test]
    fn a_grant_outside_the_network_names_the_recipient() {
        let (status, detail) = refusal(
            TestFramework::<Consent>::with(())
                .given_no_previous_events()
                .when(grant("migri", None))
                .inspect_result(),
        );
        assert_eq!(status, 422);
        assert!(detail.starts_with("recipient"), "{detail}");
    }

    #[test]
    fn a_grant_that_ends_in_the_past_is_refused() {
        let (status, detail) = refusal(
            TestFramework::<Consent>::with(())
                .given_no_previous_events()
                .when(grant("health-hus", Some(t(0))))
                .inspect_result(),
        );
        assert_eq!(status, 422);
        assert!(detail.starts_with("valid_until"), "{detail}");
    }

    #[test]
    fn withdrawing_twice_is_refused() {
        let withdrawn = ConsentChanged(ConsentEvent::ConsentWithdrawn {
            grant_id: "g1".into(),
            reason: "asked".into(),
            at: t(2),
        });
        let (status, detail) = refusal(
            TestFramework::<Consent>::with(())
                .given(vec![granted(), withdrawn])
                .when(ConsentCommand::Withdraw {
                    grant_id: "g1".into(),
                    reason: "again".into(),
                    at: t(3),
                })
                .inspect_result(),
        );
        assert_eq!(status, 422);
        assert!(detail.starts_with("grant_id"), "{detail}");
    }

    #[test]
    fn a_refusal_without_categories_refuses_them_all() {
        TestFramework::<Consent>::with(())
            .given_no_previous_events()
            .when(ConsentCommand::Refuse {
                refusal_id: "r1".into(),
                agency: "police-helsinki".into(),
                categories: BTreeSet::new(),
                network: network(),
                at: t(1),
            })
            .then_expect_events(vec![ConsentChanged(ConsentEvent::ConsentRefused {
                refusal_id: "r1".into(),
                agency: "police-helsinki".into(),
                categories: Category::ALL.into_iter().collect(),
                at: t(1),
            })]);
    }
}
