//! The consent record's events and the state they fold into.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Category;

/// Who gave the consent: the client, or for a minor a guardian or an
/// appointed representative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grantor {
    #[default]
    #[serde(rename = "self")]
    Client,
    Guardian,
    Representative,
}

/// How a consent was obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Obtained {
    /// `written`, `verbal` or `electronic`.
    pub method: Method,
    /// The language the client consented in.
    pub language: String,
    /// Who interpreted, if anyone did.
    #[serde(default)]
    pub interpreter: Option<String>,
    /// Who gave it; the client (`self`) when not given.
    #[serde(default)]
    pub grantor: Grantor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Written,
    Verbal,
    Electronic,
}

/// Events of the `consent` stream: one stream per case, its id the case id.
/// `at` is when the change was recorded, and when it takes effect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum ConsentEvent {
    ConsentGranted {
        /// The grant's id (`grant-` and a UUIDv7 in hex), named when it is withdrawn.
        grant_id: String,
        /// The agency id the grant lets read: a network member other than the lead.
        recipient: String,
        /// The categories of the client's data it covers; at least one.
        categories: BTreeSet<Category>,
        /// What the data may be used for, as recorded with the consent (free text).
        purpose: String,
        /// When the grant starts to apply: `at` unless the facilitator gave another
        /// moment (a grant never applies before it was recorded).
        valid_from: DateTime<Utc>,
        /// When the grant ends (exclusive), after `at`; none: until withdrawn (a
        /// guardian's or representative's also ends when the client comes of age).
        valid_until: Option<DateTime<Utc>>,
        /// How, in which language and from whom the consent was obtained.
        obtained: Obtained,
        /// When the grant was recorded (the event's `occurred_at`).
        at: DateTime<Utc>,
    },
    ConsentWithdrawn {
        /// The grant withdrawn, from `ConsentGranted`.
        grant_id: String,
        /// Why, as the facilitator wrote it (free text).
        reason: String,
        /// When it was withdrawn: the grant covers nothing from this moment on.
        at: DateTime<Utc>,
    },
    ConsentRefused {
        /// The refusal's id (`refusal-` and a UUIDv7 in hex), named when it is lifted.
        refusal_id: String,
        /// The agency id refused: a network member other than the lead.
        agency: String,
        /// The categories refused: every category when the request named none.
        categories: BTreeSet<Category>,
        /// When the refusal was recorded, and took effect.
        at: DateTime<Utc>,
    },
    RefusalLifted {
        /// The refusal lifted, from `ConsentRefused`.
        refusal_id: String,
        /// When it was lifted: the refusal denies nothing from this moment on.
        at: DateTime<Utc>,
    },
    StatutoryBasisRecorded {
        /// The basis's id (`basis-` and a UUIDv7 in hex), named when it is ended.
        basis_id: String,
        /// The agency id the law lets read: a network member other than the lead.
        recipient: String,
        /// The categories it covers; at least one.
        categories: BTreeSet<Category>,
        /// The provision of law that allows the sharing (free text).
        law_reference: String,
        /// When the basis ends (exclusive), after `at`; none: until ended.
        valid_until: Option<DateTime<Utc>>,
        /// When the basis was recorded, and took effect.
        at: DateTime<Utc>,
    },
    StatutoryBasisEnded {
        /// The basis ended, from `StatutoryBasisRecorded`.
        basis_id: String,
        /// When it was ended: the basis allows nothing from this moment on.
        at: DateTime<Utc>,
    },
}

impl ConsentEvent {
    pub fn name(&self) -> &'static str {
        match self {
            ConsentEvent::ConsentGranted { .. } => "ConsentGranted",
            ConsentEvent::ConsentWithdrawn { .. } => "ConsentWithdrawn",
            ConsentEvent::ConsentRefused { .. } => "ConsentRefused",
            ConsentEvent::RefusalLifted { .. } => "RefusalLifted",
            ConsentEvent::StatutoryBasisRecorded { .. } => "StatutoryBasisRecorded",
            ConsentEvent::StatutoryBasisEnded { .. } => "StatutoryBasisEnded",
        }
    }

    /// When the change was recorded.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ConsentEvent::ConsentGranted { at, .. }
            | ConsentEvent::ConsentWithdrawn { at, .. }
            | ConsentEvent::ConsentRefused { at, .. }
            | ConsentEvent::RefusalLifted { at, .. }
            | ConsentEvent::StatutoryBasisRecorded { at, .. }
            | ConsentEvent::StatutoryBasisEnded { at, .. } => *at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grant {
    /// The grant's id, from `ConsentGranted`.
    pub id: String,
    /// The agency id the grant lets read.
    pub recipient: String,
    /// The categories it covers.
    pub categories: BTreeSet<Category>,
    /// What the data may be used for (free text).
    pub purpose: String,
    /// When it starts to apply (see also `granted_at`).
    pub valid_from: DateTime<Utc>,
    /// When it ends (exclusive); none: until withdrawn (see [`Grant::ends_at`]).
    pub valid_until: Option<DateTime<Utc>>,
    /// How and from whom the consent was obtained.
    pub obtained: Obtained,
    /// When it was recorded, never before the record's previous change; it
    /// applies from no earlier moment.
    pub granted_at: DateTime<Utc>,
    /// When it was withdrawn (the first withdrawal stands); none: not withdrawn.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl Grant {
    /// Given, started, not run out and not withdrawn at `at`. (The case's
    /// rules for minors come on top: see [`Grant::covers`].)
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.granted_at <= at
            && self.valid_from <= at
            && self.valid_until.is_none_or(|u| at < u)
            && self.withdrawn_at.is_none_or(|w| at < w)
    }

    /// When the grant runs out: its `valid_until`, or for a consent given by
    /// a guardian or representative the start of the day the client comes
    /// of age, whichever is sooner.
    pub fn ends_at(&self, case: &CaseFacts) -> Option<DateTime<Utc>> {
        let of_age = match self.obtained.grantor {
            Grantor::Client => None,
            Grantor::Guardian | Grantor::Representative => case.of_age_at(),
        };
        match (self.valid_until, of_age) {
            (Some(u), Some(a)) => Some(u.min(a)),
            (u, a) => u.or(a),
        }
    }

    /// Whether the grant allows `category` at `at` in this case: in force,
    /// not past [`Grant::ends_at`], and, if the client gave it personally
    /// while a minor, only for a category the case says the child may
    /// consent to (or once the client has come of age).
    pub fn covers(&self, case: &CaseFacts, category: Category, at: DateTime<Utc>) -> bool {
        self.categories.contains(&category)
            && self.in_force(at)
            && self.ends_at(case).is_none_or(|end| at < end)
            && (self.obtained.grantor != Grantor::Client || case.may_consent(category, at))
    }
}

/// What the rules need to know of the case beside its consent record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaseFacts {
    /// The client's whereabouts must be protected: `contact` data (a
    /// meeting's location too) is shown only where a basis allows it.
    pub safety_risk: bool,
    /// The client is a child.
    pub minor: bool,
    /// The day the client comes of age, if the case records it.
    pub comes_of_age: Option<NaiveDate>,
    /// Categories the child is old enough to consent to personally.
    pub minor_may_consent: BTreeSet<Category>,
}

impl CaseFacts {
    /// The start (UTC) of the day the client comes of age.
    pub fn of_age_at(&self) -> Option<DateTime<Utc>> {
        self.comes_of_age
            .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
    }

    /// Whether the client may consent personally to `category` at `at`:
    /// always as an adult; as a child only to the categories the case lists.
    pub fn may_consent(&self, category: Category, at: DateTime<Utc>) -> bool {
        !self.minor
            || self.minor_may_consent.contains(&category)
            || self.of_age_at().is_some_and(|a| a <= at)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Refusal {
    /// The refusal's id, from `ConsentRefused`.
    pub id: String,
    /// The agency id refused.
    pub agency: String,
    /// The categories refused.
    pub categories: BTreeSet<Category>,
    /// When it was recorded, never before the record's previous change; in
    /// force from then.
    pub refused_at: DateTime<Utc>,
    /// When it was lifted (exclusive end); none: still in force.
    pub lifted_at: Option<DateTime<Utc>>,
}

impl Refusal {
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.refused_at <= at && self.lifted_at.is_none_or(|l| at < l)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatutoryBasis {
    /// The basis's id, from `StatutoryBasisRecorded`.
    pub id: String,
    /// The agency id the law lets read.
    pub recipient: String,
    /// The categories it covers.
    pub categories: BTreeSet<Category>,
    /// The provision of law that allows the sharing (free text).
    pub law_reference: String,
    /// When it was recorded, never before the record's previous change; in
    /// force from then.
    pub recorded_at: DateTime<Utc>,
    /// When it runs out (exclusive); none: until ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// When it was ended (exclusive end); none: not ended.
    pub ended_at: Option<DateTime<Utc>>,
}

impl StatutoryBasis {
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.recorded_at <= at
            && self.valid_until.is_none_or(|u| at < u)
            && self.ended_at.is_none_or(|e| at < e)
    }
}

/// A client's consent record, folded. Every fact keeps when it began and
/// ended, so the one state answers [`crate::decide`] for any moment.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ConsentState {
    /// The case's lead agency (it reads everything).
    pub lead: String,
    /// The case's flags that the rules need; not part of the record's
    /// events, set by whoever holds the case (`ConsentState::with_case`).
    pub case: CaseFacts,
    /// Every grant ever recorded, withdrawn ones too, by grant id.
    pub grants: BTreeMap<String, Grant>,
    /// Every refusal ever recorded, lifted ones too, by refusal id.
    pub refusals: BTreeMap<String, Refusal>,
    /// Every statutory basis ever recorded, ended ones too, by basis id.
    pub statutory: BTreeMap<String, StatutoryBasis>,
    /// When each event was recorded, in order: `changes.len()` is the
    /// record's version.
    pub changes: Vec<DateTime<Utc>>,
    /// The ids above, by the agency they concern: `decide` looks only at
    /// the reader's own facts, however long the record grows.
    #[serde(skip)]
    pub(crate) by_agency: BTreeMap<String, AgencyFacts>,
}

/// The ids of one agency's grants, refusals and statutory bases, by the
/// category they cover, in id order.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AgencyFacts {
    /// Ids of the agency's grants, by category.
    pub grants: BTreeMap<Category, BTreeSet<String>>,
    /// Ids of the refusals of the agency, by category.
    pub refusals: BTreeMap<Category, BTreeSet<String>>,
    /// Ids of the agency's statutory bases, by category.
    pub statutory: BTreeMap<Category, BTreeSet<String>>,
}

fn index(by: &mut BTreeMap<Category, BTreeSet<String>>, categories: &BTreeSet<Category>, id: &str) {
    for c in categories {
        by.entry(*c).or_default().insert(id.to_string());
    }
}

impl ConsentState {
    pub fn new(lead: impl Into<String>) -> ConsentState {
        ConsentState {
            lead: lead.into(),
            ..ConsentState::default()
        }
    }

    /// The same record, judged for a case with these facts.
    pub fn with_case(mut self, case: CaseFacts) -> ConsentState {
        self.case = case;
        self
    }

    /// The record's `consent_version`: how many changes it holds.
    pub fn version(&self) -> i64 {
        self.changes.len() as i64
    }

    /// The version in force at `at`: the changes recorded at or before it.
    pub fn version_at(&self, at: DateTime<Utc>) -> i64 {
        self.changes.partition_point(|c| *c <= at) as i64
    }

    /// Folds one event in. Events refer only to ids they introduced, which
    /// the aggregate checks before it records them; an event naming an
    /// unknown id, or recording a known id again, changes nothing but the
    /// version (the first recording stands, so history is never rewritten).
    pub fn apply(&mut self, event: &ConsentEvent) {
        // Recorded moments never go backwards, even if a clock did.
        let at = self
            .changes
            .last()
            .map_or(event.at(), |last| (*last).max(event.at()));
        self.changes.push(at);
        match event.clone() {
            ConsentEvent::ConsentGranted {
                grant_id,
                recipient,
                categories,
                purpose,
                valid_from,
                valid_until,
                obtained,
                ..
            } => {
                if self.grants.contains_key(&grant_id) {
                    return;
                }
                index(&mut self.facts(&recipient).grants, &categories, &grant_id);
                self.grants.insert(
                    grant_id.clone(),
                    Grant {
                        id: grant_id,
                        recipient,
                        categories,
                        purpose,
                        valid_from,
                        valid_until,
                        obtained,
                        granted_at: at,
                        withdrawn_at: None,
                    },
                );
            }
            ConsentEvent::ConsentWithdrawn { grant_id, .. } => {
                if let Some(g) = self.grants.get_mut(&grant_id) {
                    g.withdrawn_at.get_or_insert(at);
                }
            }
            ConsentEvent::ConsentRefused {
                refusal_id,
                agency,
                categories,
                ..
            } => {
                if self.refusals.contains_key(&refusal_id) {
                    return;
                }
                index(&mut self.facts(&agency).refusals, &categories, &refusal_id);
                self.refusals.insert(
                    refusal_id.clone(),
                    Refusal {
                        id: refusal_id,
                        agency,
                        categories,
                        refused_at: at,
                        lifted_at: None,
                    },
                );
            }
            ConsentEvent::RefusalLifted { refusal_id, .. } => {
                if let Some(r) = self.refusals.get_mut(&refusal_id) {
                    r.lifted_at.get_or_insert(at);
                }
            }
            ConsentEvent::StatutoryBasisRecorded {
                basis_id,
                recipient,
                categories,
                law_reference,
                valid_until,
                ..
            } => {
                if self.statutory.contains_key(&basis_id) {
                    return;
                }
                index(
                    &mut self.facts(&recipient).statutory,
                    &categories,
                    &basis_id,
                );
                self.statutory.insert(
                    basis_id.clone(),
                    StatutoryBasis {
                        id: basis_id,
                        recipient,
                        categories,
                        law_reference,
                        recorded_at: at,
                        valid_until,
                        ended_at: None,
                    },
                );
            }
            ConsentEvent::StatutoryBasisEnded { basis_id, .. } => {
                if let Some(b) = self.statutory.get_mut(&basis_id) {
                    b.ended_at.get_or_insert(at);
                }
            }
        }
    }

    fn facts(&mut self, agency: &str) -> &mut AgencyFacts {
        self.by_agency.entry(agency.to_string()).or_default()
    }

    /// The state from a record's events.
    pub fn from_events<'a>(
        lead: impl Into<String>,
        events: impl IntoIterator<Item = &'a ConsentEvent>,
    ) -> ConsentState {
        let mut state = ConsentState::new(lead);
        for e in events {
            state.apply(e);
        }
        state
    }

    /// The latest moment recorded, if any.
    pub fn last_change(&self) -> Option<DateTime<Utc>> {
        self.changes.last().copied()
    }
}
