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
        grant_id: String,
        recipient: String,
        categories: BTreeSet<Category>,
        purpose: String,
        valid_from: DateTime<Utc>,
        valid_until: Option<DateTime<Utc>>,
        obtained: Obtained,
        at: DateTime<Utc>,
    },
    ConsentWithdrawn {
        grant_id: String,
        reason: String,
        at: DateTime<Utc>,
    },
    ConsentRefused {
        refusal_id: String,
        agency: String,
        categories: BTreeSet<Category>,
        at: DateTime<Utc>,
    },
    RefusalLifted {
        refusal_id: String,
        at: DateTime<Utc>,
    },
    StatutoryBasisRecorded {
        basis_id: String,
        recipient: String,
        categories: BTreeSet<Category>,
        law_reference: String,
        valid_until: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    },
    StatutoryBasisEnded {
        basis_id: String,
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
    pub id: String,
    pub recipient: String,
    pub categories: BTreeSet<Category>,
    pub purpose: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub obtained: Obtained,
    pub granted_at: DateTime<Utc>,
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
    pub id: String,
    pub agency: String,
    pub categories: BTreeSet<Category>,
    pub refused_at: DateTime<Utc>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl Refusal {
    pub fn in_force(&self, at: DateTime<Utc>) -> bool {
        self.refused_at <= at && self.lifted_at.is_none_or(|l| at < l)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatutoryBasis {
    pub id: String,
    pub recipient: String,
    pub categories: BTreeSet<Category>,
    pub law_reference: String,
    pub recorded_at: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
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
    pub grants: BTreeMap<String, Grant>,
    pub refusals: BTreeMap<String, Refusal>,
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
    pub grants: BTreeMap<Category, BTreeSet<String>>,
    pub refusals: BTreeMap<Category, BTreeSet<String>>,
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
