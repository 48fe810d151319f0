//! The case: its header and its network, built by invitation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use verkosto_types::Refusal;

/// The flags shown on every view of a case.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Flags {
    /// The client is a minor: child welfare belongs in the network.
    #[serde(default)]
    pub minor: bool,
    /// The perpetrator may threaten the client: contact data and meeting
    /// locations are hidden from all but the lead and those granted `contact`.
    #[serde(default)]
    pub safety_risk: bool,
    /// The day a minor client comes of age: consents given by a guardian or
    /// representative end then, and the lead is asked to ask the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comes_of_age: Option<chrono::NaiveDate>,
    /// Categories a minor client is old enough to consent to personally.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub minor_may_consent: BTreeSet<verkosto_policy::Category>,
}

impl Flags {
    /// The rules between the flags: what a child may consent to is only
    /// recorded for a minor. (The day of coming of age stays recorded once
    /// the client is an adult: a guardian's consents stay ended.)
    pub fn check(&self, field: &str) -> Result<(), Refusal> {
        if !self.minor && !self.minor_may_consent.is_empty() {
            return Err(Refusal::invalid(
                &format!("{field}minor_may_consent"),
                "is only recorded for a minor (minor: true)",
            ));
        }
        Ok(())
    }
}

/// Events of the `case` stream (its id is the case id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CaseEvent {
    /// A facilitator opened the case; the facilitator's agency leads it.
    CaseOpened {
        /// The case's id (`case-` and a UUIDv7 in hex), the stream's id too.
        case_id: String,
        /// What the network calls the client, e.g. `A-1027`, in place of
        /// their name: it names the case everywhere, calendar feeds included.
        pseudonym: String,
        /// The agency that leads the case: its facilitator runs the network
        /// and its meetings. Always a member, never removed.
        lead_agency: String,
        /// The languages the client speaks (ISO 639 codes, 1 to 10).
        languages: Vec<String>,
        /// The language an interpreter speaks with the client; none: no
        /// interpreter is arranged.
        interpreter_language: Option<String>,
        /// The flags the case was opened with.
        flags: Flags,
        /// When the case was opened.
        at: DateTime<Utc>,
    },
    /// The lead invited an agency into the network (not yet a member).
    AgencyInvited {
        /// The agency invited (an agency id the directory knows).
        agency: String,
        /// Why the lead wants it in the network, as the lead wrote it; the
        /// invited agency sees it with the invitation.
        purpose: String,
        /// When it was invited.
        at: DateTime<Utc>,
    },
    /// The invited agency joined the network.
    InvitationAccepted {
        /// The agency that accepted: a member of the network from now on.
        agency: String,
        /// When it accepted.
        at: DateTime<Utc>,
    },
    /// The invited agency said no; the lead agency gets a task with the reason.
    InvitationDeclined {
        /// The agency that declined: it never became a member.
        agency: String,
        /// Why, as the declining agency wrote it; the lead's task quotes it.
        reason: String,
        /// The case's lead agency, which the task goes to.
        lead_agency: String,
        /// When it declined.
        at: DateTime<Utc>,
    },
    /// The lead took an invitation back before it was answered.
    InvitationWithdrawn {
        /// The agency whose invitation was withdrawn: it never became a member.
        agency: String,
        /// When the invitation was withdrawn.
        at: DateTime<Utc>,
    },
    /// The lead removed a member agency from the network.
    MemberRemoved {
        /// The agency removed (never the lead): no longer a member.
        agency: String,
        /// When it was removed.
        at: DateTime<Utc>,
    },
    /// The lead changed the case's flags.
    FlagsChanged {
        /// The flags from now on: all of them, not only those that changed.
        flags: Flags,
        /// The lead agency, for services that act on the flags (e.g. the
        /// task to ask a client come of age again). Absent in old events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead_agency: Option<String>,
        /// When the flags changed.
        at: DateTime<Utc>,
    },
    /// The lead closed the case: it takes no new records, meetings or
    /// tasks, its open tasks are cancelled, and the retention period
    /// counts from `at`.
    CaseClosed {
        /// How the case ended.
        outcome: ClosingOutcome,
        /// What the lead adds (sealed).
        note: Option<String>,
        /// The lead agency, for the services that act on the closing.
        lead_agency: String,
        /// When it was closed.
        at: DateTime<Utc>,
    },
    /// The case may not be erased until this hold is released (an open
    /// investigation, a court's order).
    LegalHoldPlaced {
        /// The hold's id (`hold-` and a UUIDv7 in hex), named when it is released.
        hold_id: String,
        /// Why (sealed).
        reason: String,
        /// The agency of who placed it: the lead's, or the auditor's.
        by_agency: String,
        /// When it was placed.
        at: DateTime<Utc>,
    },
    /// A legal hold no longer stops erasure.
    LegalHoldReleased {
        /// The hold released, from `LegalHoldPlaced`.
        hold_id: String,
        /// The agency of who released it.
        by_agency: String,
        /// When it was released.
        at: DateTime<Utc>,
    },
    /// The case's keys are destroyed: none of its sealed text can ever be
    /// read again, and every read of it answers 410. Holds no personal
    /// data: who, when and why.
    CaseErased {
        /// The legal ground.
        legal_basis: LegalBasis,
        /// Why, in the words of who erased it (never the client's data: it
        /// stays readable for auditors).
        reason: String,
        /// The agency that erased it (the lead's, or `system` for the
        /// retention sweep).
        by_agency: String,
        /// When it was erased.
        at: DateTime<Utc>,
    },
}

verkosto_eventlog::domain_event!(
    CaseEvent,
    sealed {
        CaseOpened: ["pseudonym", "languages[]", "interpreter_language"],
        AgencyInvited: ["purpose"],
        InvitationDeclined: ["reason"],
        CaseClosed: ["note"],
        LegalHoldPlaced: ["reason"],
    }
);

/// How a case ended, as the lead records it when closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClosingOutcome {
    /// The plan's goals were met.
    GoalsMet,
    /// The client moved away from the area the network serves.
    MovedAway,
    /// The client no longer wanted the network's help.
    ClientWithdrew,
    /// Another network or service took the case over.
    Transferred,
    /// Something else; the note says what.
    Other,
}

/// The legal ground on which a case is erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The deployment's retention period for the case ended.
    RetentionExpired,
    /// The client asked for their data to be erased (GDPR art. 17).
    DataSubjectRequest,
    /// The data is no longer needed for the purpose it was collected for.
    PurposeFulfilled,
    /// A court or supervisory authority ordered it.
    Order,
    /// The case was opened by mistake.
    OpenedInError,
}

impl LegalBasis {
    /// Its name in the API and the log.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::RetentionExpired => "retention_expired",
            LegalBasis::DataSubjectRequest => "data_subject_request",
            LegalBasis::PurposeFulfilled => "purpose_fulfilled",
            LegalBasis::Order => "order",
            LegalBasis::OpenedInError => "opened_in_error",
        }
    }
}

/// A legal hold in force on a case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// Why erasure must wait (sealed in the log).
    pub reason: String,
    /// The agency of who placed it: the lead's, or an auditor's.
    pub by_agency: String,
    /// When it was placed.
    pub at: DateTime<Utc>,
}

impl verkosto_eventlog::DataSubject for Case {
    /// The stream's id is the case id.
    fn data_subject<'a>(&'a self, id: &'a str) -> Option<&'a str> {
        Some(id)
    }
}

/// An invitation into a case's network, not yet answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    /// Why the lead wants the agency in the network.
    pub purpose: String,
    /// When the agency was invited.
    pub at: DateTime<Utc>,
}

/// A case as its stream tells it: the header and the network.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The case's id; none until it is opened.
    pub id: Option<String>,
    /// What the network calls the client, in place of their name.
    pub pseudonym: String,
    /// The agency that leads the case: its facilitator alone invites,
    /// removes, sets the flags and drafts the plan.
    pub lead_agency: String,
    /// The languages the client speaks (ISO 639 codes).
    pub languages: Vec<String>,
    /// The language an interpreter speaks with the client; none: no
    /// interpreter is arranged.
    pub interpreter_language: Option<String>,
    /// The flags as they are now.
    pub flags: Flags,
    /// Member agencies, the lead included.
    pub members: BTreeSet<String>,
    /// Agencies invited and yet to answer, by agency id.
    pub invited: BTreeMap<String, Invitation>,
    /// When it was closed, and how; none while it is open.
    pub closed: Option<(DateTime<Utc>, ClosingOutcome)>,
    /// Legal holds in force, by id: while any is, the case is not erased.
    pub holds: BTreeMap<String, Hold>,
    /// The case was erased: nothing more happens to it.
    pub erased: bool,
}

/// What may be asked of a case; `at` is the command's time, its event's `at`.
#[derive(Clone, Debug)]
pub enum CaseCommand {
    /// Opens a new case, led by the caller's agency.
    Open {
        /// The new case's id, made by the endpoint.
        case_id: String,
        /// What the network is to call the client.
        pseudonym: String,
        /// The caller's agency, which will lead the case.
        lead_agency: String,
        /// The languages the client speaks (1 to 10, checked by the endpoint).
        languages: Vec<String>,
        /// The language an interpreter speaks with the client, if one is needed.
        interpreter_language: Option<String>,
        /// The flags to open the case with (checked by the endpoint).
        flags: Flags,
        /// When the case is opened.
        at: DateTime<Utc>,
    },
    /// Invites an agency into the network.
    Invite {
        /// The caller's agency: only the lead invites.
        by: String,
        /// The agency to invite, neither a member nor invited already.
        agency: String,
        /// Why the lead wants it in the network.
        purpose: String,
        /// When the invitation is made.
        at: DateTime<Utc>,
    },
    /// Accepts an invitation.
    Accept {
        /// The caller's agency: it must be the one invited.
        agency: String,
        /// When it accepts.
        at: DateTime<Utc>,
    },
    /// Declines an invitation.
    Decline {
        /// The caller's agency: it must be the one invited.
        agency: String,
        /// Why it declines, for the lead.
        reason: String,
        /// When it declines.
        at: DateTime<Utc>,
    },
    /// Withdraws an invitation or removes a member.
    Remove {
        /// The caller's agency: only the lead removes.
        by: String,
        /// The agency invited or member to remove; never the lead.
        agency: String,
        /// When it is removed.
        at: DateTime<Utc>,
    },
    /// Closes the case.
    Close {
        /// The caller's agency: only the lead closes.
        by: String,
        /// How the case ended.
        outcome: ClosingOutcome,
        /// What the lead adds.
        note: Option<String>,
        /// When it is closed.
        at: DateTime<Utc>,
    },
    /// Places a legal hold: by the lead's facilitator (`by` a member) or
    /// an auditor (`auditor`: no membership needed).
    PlaceHold {
        /// The caller's agency.
        by: String,
        /// The caller is an auditor, not the lead's facilitator.
        auditor: bool,
        /// The new hold's id, made by the endpoint.
        hold_id: String,
        /// Why.
        reason: String,
        /// When it is placed.
        at: DateTime<Utc>,
    },
    /// Releases a legal hold (the lead's facilitator or an auditor).
    ReleaseHold {
        /// The caller's agency.
        by: String,
        /// The caller is an auditor.
        auditor: bool,
        /// The hold to release.
        hold_id: String,
        /// When it is released.
        at: DateTime<Utc>,
    },
    /// Erases the case: the handler destroys its keys once the event is kept.
    Erase {
        /// The caller's agency: the lead's, unless `sweep`.
        by: String,
        /// The retention sweep erases, not a person: no lead to check.
        sweep: bool,
        /// The legal ground.
        legal_basis: LegalBasis,
        /// Why.
        reason: String,
        /// When it is erased.
        at: DateTime<Utc>,
    },
    /// Replaces the case's flags.
    SetFlags {
        /// The caller's agency: only the lead sets the flags.
        by: String,
        /// The new flags, all of them (checked by the endpoint).
        flags: Flags,
        /// When they are set.
        at: DateTime<Utc>,
    },
}

fn refuse(r: Refusal) -> Result<(), Refusal> {
    Err(r)
}

/// The answer for anyone outside the network: the case's existence is not revealed.
pub fn not_found(case_id: &str) -> Refusal {
    Refusal::unknown(format!("no case {case_id}"))
}

impl Case {
    pub fn is_member(&self, agency: &str) -> bool {
        self.members.contains(agency)
    }

    /// 404 unless `agency` is in the network, 403 unless it is the lead.
    pub fn check_lead(&self, agency: &str) -> Result<(), Refusal> {
        let id = self.id.as_deref().unwrap_or_default();
        if !self.is_member(agency) {
            return refuse(not_found(id));
        }
        if agency != self.lead_agency {
            return refuse(Refusal::not_allowed(
                "only the lead agency's facilitator may do this",
            ));
        }
        Ok(())
    }
}

impl Aggregate for Case {
    const TYPE: &'static str = "case";
    type Command = CaseCommand;
    type Event = CaseEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: CaseCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        if self.id.is_none() && !matches!(command, CaseCommand::Open { .. }) {
            return refuse(Refusal::unknown("no such case"));
        }
        let id = self.id.clone().unwrap_or_default();
        if self.erased {
            return refuse(Refusal::gone(id));
        }
        let closing_or_holds = matches!(
            command,
            CaseCommand::PlaceHold { .. }
                | CaseCommand::ReleaseHold { .. }
                | CaseCommand::Erase { .. }
        );
        if self.closed.is_some() && !closing_or_holds {
            // A member learns the case is closed; anyone else, nothing.
            let by = match &command {
                CaseCommand::Invite { by, .. }
                | CaseCommand::Remove { by, .. }
                | CaseCommand::SetFlags { by, .. }
                | CaseCommand::Close { by, .. } => by,
                CaseCommand::Accept { agency, .. } | CaseCommand::Decline { agency, .. } => agency,
                _ => "",
            };
            if self.is_member(by) || self.invited.contains_key(by) {
                return refuse(Refusal::conflict(format!("case {id} is closed")));
            }
            return refuse(not_found(&id));
        }
        let event = match command {
            CaseCommand::Open {
                case_id,
                pseudonym,
                lead_agency,
                languages,
                interpreter_language,
                flags,
                at,
            } => {
                if self.id.is_some() {
                    return refuse(Refusal::conflict(format!("case {case_id} exists")));
                }
                CaseEvent::CaseOpened {
                    case_id,
                    pseudonym,
                    lead_agency,
                    languages,
                    interpreter_language,
                    flags,
                    at,
                }
            }
            CaseCommand::Invite {
                by,
                agency,
                purpose,
                at,
            } => {
                self.check_lead(&by)?;
                if self.is_member(&agency) {
                    return refuse(Refusal::conflict(format!(
                        "agency: {agency} is already a member"
                    )));
                }
                if self.invited.contains_key(&agency) {
                    return refuse(Refusal::conflict(format!(
                        "agency: {agency} is already invited"
                    )));
                }
                CaseEvent::AgencyInvited {
                    agency,
                    purpose,
                    at,
                }
            }
            CaseCommand::Accept { agency, at } => {
                if !self.invited.contains_key(&agency) {
                    // Only the invited may act here; to anyone else the case does not exist.
                    return refuse(if self.is_member(&agency) {
                        Refusal::conflict("agency: already a member")
                    } else {
                        not_found(self.id.as_deref().unwrap_or_default())
                    });
                }
                CaseEvent::InvitationAccepted { agency, at }
            }
            CaseCommand::Decline { agency, reason, at } => {
                if !self.invited.contains_key(&agency) {
                    return refuse(if self.is_member(&agency) {
                        Refusal::conflict("agency: already a member")
                    } else {
                        not_found(self.id.as_deref().unwrap_or_default())
                    });
                }
                CaseEvent::InvitationDeclined {
                    agency,
                    reason,
                    lead_agency: self.lead_agency.clone(),
                    at,
                }
            }
            CaseCommand::Remove { by, agency, at } => {
                self.check_lead(&by)?;
                if agency == self.lead_agency {
                    return refuse(Refusal::invalid(
                        "agency",
                        "the lead agency keeps the client's file and cannot be removed",
                    ));
                }
                if self.invited.contains_key(&agency) {
                    CaseEvent::InvitationWithdrawn { agency, at }
                } else if self.is_member(&agency) {
                    CaseEvent::MemberRemoved { agency, at }
                } else {
                    return refuse(Refusal::unknown(format!(
                        "agency: {agency} is neither a member nor invited"
                    )));
                }
            }
            CaseCommand::Close {
                by,
                outcome,
                note,
                at,
            } => {
                self.check_lead(&by)?;
                CaseEvent::CaseClosed {
                    outcome,
                    note,
                    lead_agency: self.lead_agency.clone(),
                    at,
                }
            }
            CaseCommand::PlaceHold {
                by,
                auditor,
                hold_id,
                reason,
                at,
            } => {
                if !auditor {
                    self.check_lead(&by)?;
                }
                CaseEvent::LegalHoldPlaced {
                    hold_id,
                    reason,
                    by_agency: by,
                    at,
                }
            }
            CaseCommand::ReleaseHold {
                by,
                auditor,
                hold_id,
                at,
            } => {
                if !auditor {
                    self.check_lead(&by)?;
                }
                if !self.holds.contains_key(&hold_id) {
                    return refuse(Refusal::unknown(format!(
                        "no legal hold {hold_id} in force on case {id}"
                    )));
                }
                CaseEvent::LegalHoldReleased {
                    hold_id,
                    by_agency: by,
                    at,
                }
            }
            CaseCommand::Erase {
                by,
                sweep,
                legal_basis,
                reason,
                at,
            } => {
                if !sweep {
                    self.check_lead(&by)?;
                }
                if self.closed.is_none() {
                    return refuse(Refusal::conflict(format!(
                        "case {id} is open: close it first (POST /api/v1/cases/{id}/close)"
                    )));
                }
                if !self.holds.is_empty() {
                    return refuse(Refusal::conflict(format!(
                        "case {id} is under a legal hold ({}): it cannot be erased until \
                         the hold is released",
                        self.holds.keys().cloned().collect::<Vec<_>>().join(", ")
                    )));
                }
                CaseEvent::CaseErased {
                    legal_basis,
                    reason,
                    by_agency: by,
                    at,
                }
            }
            CaseCommand::SetFlags { by, flags, at } => {
                self.check_lead(&by)?;
                if flags == self.flags {
                    return Ok(());
                }
                CaseEvent::FlagsChanged {
                    flags,
                    lead_agency: Some(self.lead_agency.clone()),
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CaseEvent) {
        match event {
            CaseEvent::CaseOpened {
                case_id,
                pseudonym,
                lead_agency,
                languages,
                interpreter_language,
                flags,
                ..
            } => {
                self.id = Some(case_id);
                self.members.insert(lead_agency.clone());
                self.pseudonym = pseudonym;
                self.lead_agency = lead_agency;
                self.languages = languages;
                self.interpreter_language = interpreter_language;
                self.flags = flags;
            }
            CaseEvent::AgencyInvited {
                agency,
                purpose,
                at,
            } => {
                self.invited.insert(agency, Invitation { purpose, at });
            }
            CaseEvent::InvitationAccepted { agency, .. } => {
                self.invited.remove(&agency);
                self.members.insert(agency);
            }
            CaseEvent::InvitationDeclined { agency, .. }
            | CaseEvent::InvitationWithdrawn { agency, .. } => {
                self.invited.remove(&agency);
            }
            CaseEvent::MemberRemoved { agency, .. } => {
                self.members.remove(&agency);
            }
            CaseEvent::FlagsChanged { flags, .. } => {
                self.flags = flags;
            }
            CaseEvent::CaseClosed { outcome, at, .. } => {
                self.closed = Some((at, outcome));
            }
            CaseEvent::LegalHoldPlaced {
                hold_id,
                reason,
                by_agency,
                at,
            } => {
                let hold = Hold {
                    reason,
                    by_agency,
                    at,
                };
                self.holds.insert(hold_id, hold);
            }
            CaseEvent::LegalHoldReleased { hold_id, .. } => {
                self.holds.remove(&hold_id);
            }
            CaseEvent::CaseErased { .. } => {
                self.erased = true;
            }
        }
    }
}

/// The languages the lead agencies work in.
pub const WORKING_LANGUAGES: [&str; 3] = ["fi", "sv", "en"];

/// The warnings shown on the case header.
pub fn warnings(
    flags: &Flags,
    languages: &[String],
    interpreter_language: Option<&str>,
    network_has_child_welfare: bool,
) -> Vec<&'static str> {
    let mut warnings = Vec::new();
    if flags.minor && !network_has_child_welfare {
        warnings.push("minor_without_child_welfare");
    }
    let shared_language = languages
        .iter()
        .any(|l| WORKING_LANGUAGES.contains(&l.as_str()));
    if !shared_language && interpreter_language.is_none() {
        warnings.push("no_interpreter_language");
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn t() -> DateTime<Utc> {
        "2026-11-01T10:00:00Z".parse().unwrap()
    }

    fn opened() -> CaseEvent {
        CaseEvent::CaseOpened {
            case_id: "case-1".into(),
            pseudonym: "A-1027".into(),
            lead_agency: "ngo-support".into(),
            languages: vec!["ro".into()],
            interpreter_language: Some("ro".into()),
            flags: Flags::default(),
            at: t(),
        }
    }

    fn invited(agency: &str) -> CaseEvent {
        CaseEvent::AgencyInvited {
            agency: agency.into(),
            purpose: "health assessment".into(),
            at: t(),
        }
    }

    fn status(result: Result<Vec<CaseEvent>, Refusal>) -> u16 {
        verkosto_http::Problem::from(result.unwrap_err()).status
    }

    #[test]
    fn the_lead_invites_and_the_invited_accepts() {
        TestFramework::<Case>::with(())
            .given(vec![opened()])
            .when(CaseCommand::Invite {
                by: "ngo-support".into(),
                agency: "health-hus".into(),
                purpose: "health assessment".into(),
                at: t(),
            })
            .then_expect_events(vec![invited("health-hus")]);
        TestFramework::<Case>::with(())
            .given(vec![opened(), invited("health-hus")])
            .when(CaseCommand::Accept {
                agency: "health-hus".into(),
                at: t(),
            })
            .then_expect_events(vec![CaseEvent::InvitationAccepted {
                agency: "health-hus".into(),
                at: t(),
            }]);
    }

    #[test]
    fn only_the_lead_invites_and_outsiders_do_not_see_the_case() {
        let member = CaseEvent::InvitationAccepted {
            agency: "health-hus".into(),
            at: t(),
        };
        let invite = |by: &str| CaseCommand::Invite {
            by: by.into(),
            agency: "migri".into(),
            purpose: "residence".into(),
            at: t(),
        };
        let by_member = TestFramework::<Case>::with(())
            .given(vec![opened(), invited("health-hus"), member])
            .when(invite("health-hus"))
            .inspect_result();
        assert_eq!(status(by_member), 403);
        let by_outsider = TestFramework::<Case>::with(())
            .given(vec![opened()])
            .when(invite("police-helsinki"))
            .inspect_result();
        assert_eq!(status(by_outsider), 404);
    }

    #[test]
    fn an_agency_that_was_not_invited_cannot_accept() {
        let result = TestFramework::<Case>::with(())
            .given(vec![opened()])
            .when(CaseCommand::Accept {
                agency: "police-helsinki".into(),
                at: t(),
            })
            .inspect_result();
        assert_eq!(status(result), 404);
    }

    #[test]
    fn removing_withdraws_an_invitation_or_a_membership_but_never_the_lead() {
        TestFramework::<Case>::with(())
            .given(vec![opened(), invited("health-hus")])
            .when(CaseCommand::Remove {
                by: "ngo-support".into(),
                agency: "health-hus".into(),
                at: t(),
            })
            .then_expect_events(vec![CaseEvent::InvitationWithdrawn {
                agency: "health-hus".into(),
                at: t(),
            }]);
        let lead = TestFramework::<Case>::with(())
            .given(vec![opened()])
            .when(CaseCommand::Remove {
                by: "ngo-support".into(),
                agency: "ngo-support".into(),
                at: t(),
            })
            .inspect_result();
        assert_eq!(status(lead), 422);
    }

    #[test]
    fn a_decline_carries_the_lead_agency_for_its_task() {
        TestFramework::<Case>::with(())
            .given(vec![opened(), invited("health-hus")])
            .when(CaseCommand::Decline {
                agency: "health-hus".into(),
                reason: "no capacity".into(),
                at: t(),
            })
            .then_expect_events(vec![CaseEvent::InvitationDeclined {
                agency: "health-hus".into(),
                reason: "no capacity".into(),
                lead_agency: "ngo-support".into(),
                at: t(),
            }]);
    }

    #[test]
    fn warnings_name_what_is_missing() {
        let minor = Flags {
            minor: true,
            ..Flags::default()
        };
        assert_eq!(
            warnings(&minor, &["ro".into()], None, false),
            vec!["minor_without_child_welfare", "no_interpreter_language"]
        );
        assert!(warnings(&minor, &["ro".into()], Some("ro"), true).is_empty());
        assert!(warnings(&Flags::default(), &["ro".into(), "en".into()], None, false).is_empty());
    }
}
