//! The one agreed plan: the client's goals in their own words, and the
//! measures each agency is responsible for.
//!
//! Draft → propose (version n) → every member agency approves (or requests
//! changes, which sends it back to draft) → the client's agreement is
//! recorded → version n is *the agreed plan*. An agreed version stands
//! until the next one is agreed. The stream is `plan`, its id the case id.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_policy::{Category, Method};
use verkosto_types::Refusal;

/// A measure of the plan: one thing one agency is to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Unique in the plan; with the case id it names the one task the
    /// measure becomes once agreed.
    pub id: String,
    /// The category of client data it concerns: readers see it only if
    /// consent lets them read that category.
    pub category: Category,
    /// The member agency that carries it out: the agreed measure becomes
    /// its task.
    pub responsible_agency: String,
    /// What is to be done (at most 2000 characters).
    pub description: String,
    /// The day it should be done by, if there is one: its task's due date.
    pub due: Option<NaiveDate>,
}

/// What a plan version says.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanContent {
    /// The client's goals, in their own words.
    pub goals: Vec<String>,
    /// What the agencies do towards the goals (at most 100 measures).
    pub measures: Vec<Measure>,
}

/// How the client agreed to a version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientAgreement {
    /// `written`, `verbal` or `electronic`.
    pub method: Method,
    /// The language the client agreed in (an ISO 639 code).
    pub language: String,
    /// Who interpreted, if anyone did.
    #[serde(default)]
    pub interpreter: Option<String>,
}

/// Events of the `plan` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum PlanEvent {
    /// The lead saved the draft, its working copy.
    PlanDraftSaved {
        /// The whole draft, replacing the one saved before.
        content: PlanContent,
        /// When it was saved.
        at: DateTime<Utc>,
    },
    /// The lead proposed the draft as a new version, for every member
    /// agency to approve.
    PlanProposed {
        /// The new version's number: one more than the last one given out.
        plan_version: u32,
        /// What the version says: the draft as it was proposed.
        content: PlanContent,
        /// When it was proposed.
        at: DateTime<Utc>,
    },
    /// A member agency approved the pending version.
    PlanApproved {
        /// The version approved: the pending one.
        plan_version: u32,
        /// The agency that approved it.
        agency: String,
        /// When it approved.
        at: DateTime<Utc>,
    },
    /// A member agency sent the pending version back: its content is the
    /// draft again.
    PlanChangesRequested {
        /// The version sent back: the pending one, no longer pending.
        plan_version: u32,
        /// The agency that asked for changes.
        agency: String,
        /// What should change, as that agency wrote it, for the lead.
        comment: String,
        /// When it asked.
        at: DateTime<Utc>,
    },
    /// The lead recorded that the client agreed to the pending version.
    ClientAgreementRecorded {
        /// The version the client agreed to: the pending one.
        plan_version: u32,
        /// How, in which language and with which interpreter the client agreed.
        agreement: ClientAgreement,
        /// When the agreement was recorded.
        at: DateTime<Utc>,
    },
    /// Version n is now the agreed plan. Carries each measure with its
    /// responsible agency, for the tasks service.
    PlanAgreed {
        /// The version agreed: it stands until a later version is agreed.
        plan_version: u32,
        /// The plan's case (also the stream's id).
        case_id: String,
        /// The case's lead agency: measure tasks declined or let go overdue
        /// come back to it.
        lead_agency: String,
        /// The agreed measures: each becomes one task for its responsible agency.
        measures: Vec<Measure>,
        /// The network's member agencies when it was agreed: every one approved.
        approved_by: Vec<String>,
        /// When the version became the agreed plan.
        at: DateTime<Utc>,
    },
}

verkosto_eventlog::domain_event!(
    PlanEvent,
    sealed {
        PlanDraftSaved: ["content.goals[]", "content.measures[].description"],
        PlanProposed: ["content.goals[]", "content.measures[].description"],
        PlanChangesRequested: ["comment"],
        ClientAgreementRecorded: ["agreement.language", "agreement.interpreter"],
        PlanAgreed: ["measures[].description"],
    }
);

impl verkosto_eventlog::DataSubject for Plan {
    /// The plan's stream id is the case id.
    fn data_subject<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        Some(id)
    }
}

/// The version proposed and not yet agreed or sent back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingVersion {
    /// Its number.
    pub plan_version: u32,
    /// What it says.
    pub content: PlanContent,
    /// When it was proposed.
    pub proposed_at: DateTime<Utc>,
    /// Agency → when it approved.
    pub approvals: BTreeMap<String, DateTime<Utc>>,
    /// How the client agreed to it; none until that is recorded.
    pub client_agreement: Option<ClientAgreement>,
}

/// The agreed plan: the version that stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgreedVersion {
    /// Its number.
    pub plan_version: u32,
    /// What it says.
    pub content: PlanContent,
    /// The member agencies that approved it: the whole network of the moment.
    pub approved_by: Vec<String>,
    /// How the client agreed to it.
    pub client_agreement: Option<ClientAgreement>,
    /// When it became the agreed plan.
    pub agreed_at: DateTime<Utc>,
}

/// Why a proposed version went back to draft: what the lead works from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangesRequested {
    /// The version sent back.
    pub plan_version: u32,
    /// The member agency that asked for changes.
    pub agency: String,
    /// What it asked for (sealed client text until a read opens it).
    pub comment: String,
    /// When it asked.
    pub at: DateTime<Utc>,
}

/// A case's plan: the draft, the pending version and the agreed one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The lead's working copy; none while a version is pending, and before
    /// the first save.
    pub draft: Option<PlanContent>,
    /// The version awaiting approvals and the client's agreement, if any.
    pub pending: Option<PendingVersion>,
    /// The agreed plan; none until a first version is agreed.
    pub agreed: Option<AgreedVersion>,
    /// The last version number given out.
    pub last_version: u32,
    /// The last request for changes, until the next version is proposed.
    pub changes_requested: Option<ChangesRequested>,
}

/// The case's network when the command was given.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// The case (the plan stream's id).
    pub case_id: String,
    /// The case's lead agency.
    pub lead: String,
    /// Member agencies, the lead included: each must approve a version,
    /// and only they may be responsible for a measure.
    pub members: BTreeSet<String>,
}

/// What may be asked of a plan; `at` is the command's time, its events' `at`.
#[derive(Clone, Debug)]
pub enum PlanCommand {
    /// Saves the lead's draft.
    SaveDraft {
        /// The whole draft (checked against the network).
        content: PlanContent,
        /// The case's network now.
        network: Network,
        /// When it is saved.
        at: DateTime<Utc>,
    },
    /// Proposes the draft as the next version.
    Propose {
        /// When it is proposed.
        at: DateTime<Utc>,
    },
    /// A member agency approves the pending version.
    Approve {
        /// The version approved: must be the pending one.
        plan_version: u32,
        /// The caller's agency.
        agency: String,
        /// The case's network now: whose approvals complete the version.
        network: Network,
        /// When it approves.
        at: DateTime<Utc>,
    },
    /// A member agency sends the pending version back to draft.
    RequestChanges {
        /// The version sent back: must be the pending one.
        plan_version: u32,
        /// The caller's agency.
        agency: String,
        /// What should change.
        comment: String,
        /// When it asks.
        at: DateTime<Utc>,
    },
    /// The lead records the client's agreement to the pending version.
    RecordClientAgreement {
        /// The version agreed to: must be the pending one.
        plan_version: u32,
        /// How the client agreed.
        agreement: ClientAgreement,
        /// The case's network now: whose approvals complete the version.
        network: Network,
        /// When it is recorded.
        at: DateTime<Utc>,
    },
    /// Agrees the pending version if the network's change completed it
    /// (a member that had not approved was removed).
    Reconcile {
        /// The case's network after the change.
        network: Network,
        /// When it runs, just after the network changed.
        at: DateTime<Utc>,
    },
}

fn invalid(field: &str, detail: impl Into<String>) -> Refusal {
    Refusal::invalid(field, detail)
}

/// Checks a draft against the network: goals and measures well formed,
/// every responsible agency a member.
pub fn check_content(content: &PlanContent, network: &Network) -> Result<(), Refusal> {
    use verkosto_types::parse_field;
    use verkosto_types::{AgencyId, Text};
    if content.goals.is_empty() || content.goals.len() > 30 {
        return Err(Refusal::invalid(
            "goals",
            "must hold 1 to 30 goals, in the client's own words",
        ));
    }
    for (i, goal) in content.goals.iter().enumerate() {
        parse_field::<Text<2000>>(&format!("goals[{i}]"), goal.as_str())?;
    }
    if content.measures.len() > 100 {
        return Err(Refusal::invalid(
            "measures",
            "must hold at most 100 measures",
        ));
    }
    let mut ids = BTreeSet::new();
    for (i, m) in content.measures.iter().enumerate() {
        let field = |name: &str| format!("measures[{i}].{name}");
        parse_field::<AgencyId>(&field("id"), m.id.as_str())
            .map(|_| ())
            .or_else(|_| parse_field::<Text<64>>(&field("id"), m.id.as_str()).map(|_| ()))?;
        if !ids.insert(&m.id) {
            return Err(Refusal::invalid(
                &field("id"),
                format!("{} is used twice", m.id),
            ));
        }
        parse_field::<Text<2000>>(&field("description"), m.description.as_str())?;
        if !network.members.contains(&m.responsible_agency) {
            return Err(Refusal::invalid(
                &field("responsible_agency"),
                format!("{} is not in this case's network", m.responsible_agency),
            ));
        }
    }
    Ok(())
}

impl Plan {
    /// The agencies whose approval the pending version still needs.
    pub fn awaiting(&self, network: &Network) -> Vec<String> {
        match &self.pending {
            None => Vec::new(),
            Some(p) => network
                .members
                .iter()
                .filter(|m| !p.approvals.contains_key(*m))
                .cloned()
                .collect(),
        }
    }

    fn pending(&self, plan_version: u32) -> Result<&PendingVersion, Refusal> {
        match &self.pending {
            Some(p) if p.plan_version == plan_version => Ok(p),
            Some(p) => Err(invalid(
                "plan_version",
                format!(
                    "version {plan_version} is not pending; version {} is",
                    p.plan_version
                ),
            )),
            None => Err(invalid(
                "plan_version",
                format!("version {plan_version} is not pending; no version is"),
            )),
        }
    }

    /// The `PlanAgreed` event, if the pending version (after `extra`
    /// approvals and agreement) is complete under `network`.
    fn agreed_if_complete(
        &self,
        network: &Network,
        extra_approval: Option<&str>,
        agreement: Option<&ClientAgreement>,
        at: DateTime<Utc>,
    ) -> Option<PlanEvent> {
        let p = self.pending.as_ref()?;
        let agreed = agreement.or(p.client_agreement.as_ref()).is_some();
        let approved = |m: &String| p.approvals.contains_key(m) || extra_approval == Some(m);
        if !agreed || !network.members.iter().all(approved) {
            return None;
        }
        Some(PlanEvent::PlanAgreed {
            plan_version: p.plan_version,
            case_id: network.case_id.clone(),
            lead_agency: network.lead.clone(),
            measures: p.content.measures.clone(),
            approved_by: network.members.iter().cloned().collect(),
            at,
        })
    }
}

impl Aggregate for Plan {
    const TYPE: &'static str = "plan";
    type Command = PlanCommand;
    type Event = PlanEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: PlanCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let mut events = Vec::new();
        match command {
            PlanCommand::SaveDraft {
                content,
                network,
                at,
            } => {
                if let Some(p) = &self.pending {
                    return Err(Refusal::conflict(format!(
                        "plan_version: version {} is pending; request changes to it before editing",
                        p.plan_version
                    )));
                }
                check_content(&content, &network)?;
                events.push(PlanEvent::PlanDraftSaved { content, at });
            }
            PlanCommand::Propose { at } => {
                if let Some(p) = &self.pending {
                    return Err(Refusal::conflict(format!(
                        "plan_version: version {} is already pending",
                        p.plan_version
                    )));
                }
                let content = self
                    .draft
                    .clone()
                    .ok_or_else(|| invalid("draft", "there is no draft to propose"))?;
                events.push(PlanEvent::PlanProposed {
                    plan_version: self.last_version + 1,
                    content,
                    at,
                });
            }
            PlanCommand::Approve {
                plan_version,
                agency,
                network,
                at,
            } => {
                let p = self.pending(plan_version)?;
                if p.approvals.contains_key(&agency) {
                    return Ok(());
                }
                let agreed = self.agreed_if_complete(&network, Some(&agency), None, at);
                events.push(PlanEvent::PlanApproved {
                    plan_version,
                    agency,
                    at,
                });
                events.extend(agreed);
            }
            PlanCommand::RequestChanges {
                plan_version,
                agency,
                comment,
                at,
            } => {
                self.pending(plan_version)?;
                events.push(PlanEvent::PlanChangesRequested {
                    plan_version,
                    agency,
                    comment,
                    at,
                });
            }
            PlanCommand::RecordClientAgreement {
                plan_version,
                agreement,
                network,
                at,
            } => {
                let p = self.pending(plan_version)?;
                if p.client_agreement.is_some() {
                    return Err(invalid(
                        "plan_version",
                        format!(
                            "the client's agreement to version {plan_version} is already recorded"
                        ),
                    ));
                }
                let agreed = self.agreed_if_complete(&network, None, Some(&agreement), at);
                events.push(PlanEvent::ClientAgreementRecorded {
                    plan_version,
                    agreement,
                    at,
                });
                events.extend(agreed);
            }
            PlanCommand::Reconcile { network, at } => {
                events.extend(self.agreed_if_complete(&network, None, None, at));
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PlanEvent) {
        match event {
            PlanEvent::PlanDraftSaved { content, .. } => self.draft = Some(content),
            PlanEvent::PlanProposed {
                plan_version,
                content,
                at,
            } => {
                self.last_version = plan_version;
                self.draft = None;
                self.changes_requested = None;
                self.pending = Some(PendingVersion {
                    plan_version,
                    content,
                    proposed_at: at,
                    approvals: BTreeMap::new(),
                    client_agreement: None,
                });
            }
            PlanEvent::PlanApproved { agency, at, .. } => {
                if let Some(p) = &mut self.pending {
                    p.approvals.insert(agency, at);
                }
            }
            PlanEvent::PlanChangesRequested {
                plan_version,
                agency,
                comment,
                at,
            } => {
                // Back to draft: the proposed content is where editing resumes.
                if let Some(p) = self.pending.take() {
                    self.draft = Some(p.content);
                }
                self.changes_requested = Some(ChangesRequested {
                    plan_version,
                    agency,
                    comment,
                    at,
                });
            }
            PlanEvent::ClientAgreementRecorded { agreement, .. } => {
                if let Some(p) = &mut self.pending {
                    p.client_agreement = Some(agreement);
                }
            }
            PlanEvent::PlanAgreed {
                approved_by, at, ..
            } => {
                if let Some(p) = self.pending.take() {
                    self.agreed = Some(AgreedVersion {
                        plan_version: p.plan_version,
                        content: p.content,
                        approved_by,
                        client_agreement: p.client_agreement,
                        agreed_at: at,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn t() -> DateTime<Utc> {
        "2026-11-01T10:00:00Z".parse().unwrap()
    }

    fn network(members: &[&str]) -> Network {
        Network {
            case_id: "case-1".into(),
            lead: "ngo-support".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn content() -> PlanContent {
        PlanContent {
            goals: vec!["I want to feel safe".into()],
            measures: vec![Measure {
                id: "m1".into(),
                category: Category::Health,
                responsible_agency: "health-hus".into(),
                description: "Health check".into(),
                due: None,
            }],
        }
    }

    fn proposed() -> Vec<PlanEvent> {
        vec![
            PlanEvent::PlanDraftSaved {
                content: content(),
                at: t(),
            },
            PlanEvent::PlanProposed {
                plan_version: 1,
                content: content(),
                at: t(),
            },
        ]
    }

    fn agreement() -> ClientAgreement {
        ClientAgreement {
            method: Method::Verbal,
            language: "ro".into(),
            interpreter: Some("booked".into()),
        }
    }

    #[test]
    fn the_last_approval_after_the_clients_agreement_agrees_the_version() {
        let mut given = proposed();
        given.push(PlanEvent::ClientAgreementRecorded {
            plan_version: 1,
            agreement: agreement(),
            at: t(),
        });
        given.push(PlanEvent::PlanApproved {
            plan_version: 1,
            agency: "ngo-support".into(),
            at: t(),
        });
        TestFramework::<Plan>::with(())
            .given(given)
            .when(PlanCommand::Approve {
                plan_version: 1,
                agency: "health-hus".into(),
                network: network(&["ngo-support", "health-hus"]),
                at: t(),
            })
            .then_expect_events(vec![
                PlanEvent::PlanApproved {
                    plan_version: 1,
                    agency: "health-hus".into(),
                    at: t(),
                },
                PlanEvent::PlanAgreed {
                    plan_version: 1,
                    case_id: "case-1".into(),
                    lead_agency: "ngo-support".into(),
                    measures: content().measures,
                    approved_by: vec!["health-hus".into(), "ngo-support".into()],
                    at: t(),
                },
            ]);
    }

    #[test]
    fn an_agency_that_joined_while_pending_must_approve_too() {
        let mut given = proposed();
        given.push(PlanEvent::PlanApproved {
            plan_version: 1,
            agency: "ngo-support".into(),
            at: t(),
        });
        TestFramework::<Plan>::with(())
            .given(given)
            .when(PlanCommand::RecordClientAgreement {
                plan_version: 1,
                agreement: agreement(),
                network: network(&["ngo-support", "migri"]),
                at: t(),
            })
            .then_expect_events(vec![PlanEvent::ClientAgreementRecorded {
                plan_version: 1,
                agreement: agreement(),
                at: t(),
            }]);
    }

    #[test]
    fn approving_a_version_that_is_not_pending_names_the_field() {
        let result = TestFramework::<Plan>::with(())
            .given(proposed())
            .when(PlanCommand::Approve {
                plan_version: 2,
                agency: "health-hus".into(),
                network: network(&["ngo-support", "health-hus"]),
                at: t(),
            })
            .inspect_result();
        let problem = verkosto_http::Problem::from(result.unwrap_err());
        assert_eq!(problem.status, 422);
        assert!(problem.detail.starts_with("plan_version"));
    }

    #[test]
    fn a_measure_for_an_agency_outside_the_network_is_refused() {
        let err = verkosto_http::Problem::from(
            check_content(&content(), &network(&["ngo-support"])).unwrap_err(),
        );
        assert!(
            err.detail.starts_with("measures[0].responsible_agency"),
            "{}",
            err.detail
        );
    }
}
