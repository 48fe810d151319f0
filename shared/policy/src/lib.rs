//! The consent policy: the one place that says who may read what.
//!
//! A client's consent record is a list of [`ConsentEvent`]s. Folding them
//! gives a [`ConsentState`], and [`decide`] answers one question against it:
//! may `reader` read `category` of this client's data at moment `at`?
//!
//! Pure: no I/O, no clock. Every service filters every read through this
//! crate, so the rules live here and nowhere else.
//!
//! # The rules, in the order they are applied
//!
//! 1. **Lead.** The case's lead agency keeps the client's file and reads
//!    every category (basis `lead`).
//! 2. **Statutory.** A statutory basis (a law, not the client's wish) for the
//!    reader and category, recorded at or before `at`, not ended at `at` and
//!    not past its `valid_until`, allows (basis `statutory`). The client's
//!    wishes and an agency's legal basis are kept apart, so a refusal does
//!    not override a law.
//! 3. **Refusal.** A refusal of the reader for the category, recorded at or
//!    before `at` and not lifted at `at`, denies (reason `refused`). A refusal
//!    beats every grant, earlier or later.
//! 4. **Consent.** A grant to the reader covering the category allows (basis
//!    `consent`) when it was given at or before `at`, `valid_from <= at`,
//!    `at < valid_until` (if any), and it was not withdrawn at or before `at`.
//! 5. **Minors.** In a case whose client is a minor, a grant the child gave
//!    personally (`grantor: self`) covers only the categories the case lists
//!    in `minor_may_consent`, until the day the client comes of age. A grant
//!    given by a guardian or a representative ends at the start of the day
//!    the client comes of age (`comes_of_age`) whenever the case records
//!    that day, also once the case no longer marks the client a minor; then
//!    the client must be asked again.
//! 6. **Otherwise denied**, with the most telling reason: `withdrawn` if a
//!    grant that covered it was withdrawn, else `expired` if one ran out, else
//!    `none`.
//!
//! Beside these, for one item of a read ([`judge`], [`Item`]):
//!
//! - **Stale view.** A reader whose copy of the record may be behind is
//!   denied everything (reason `stale`): fail closed.
//! - **Author.** An agency always sees what it wrote itself (basis `author`),
//!   except `contact` data under the safety rule.
//! - **Safety.** When the case has `safety_risk`, `contact` data, a meeting's
//!   location included, is shown only on a basis of rules 1 to 4; without
//!   it, a location is shown to every member of the network (basis
//!   `network`).
//! - **The moment.** A read is decided at [`moment`]: the reader's now, or
//!   the last change of the record if that is later, so a reader whose clock
//!   runs behind the writer's never decides before a change it has seen.
//!
//! Every moment is inclusive at its start: a change recorded at `t` is in
//! force at `t`. Because every fact keeps the moment it began and ended,
//! one state answers for any moment, and the answer for a past moment is the
//! one that a replay of the record up to that moment would give.

mod category;
mod state;

pub use category::{Category, UnknownCategory};
pub use state::{
    CaseFacts, ConsentEvent, ConsentState, Grant, Grantor, Method, Obtained, Refusal,
    StatutoryBasis,
};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Why a read is allowed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Basis {
    /// The reader is the case's lead agency.
    Lead,
    /// A statutory basis (a law) allows it.
    Statutory { basis_id: String },
    /// The client's consent allows it.
    Consent { grant_id: String },
    /// The reader's own agency wrote the item.
    Author,
    /// Every member of the network sees it (a location without a safety
    /// risk).
    Network,
}

/// Why a read is denied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Denial {
    /// The client refused this agency this category.
    Refused { refusal_id: String },
    /// A grant that covered it was withdrawn.
    Withdrawn { grant_id: String },
    /// A grant that covered it ran out.
    Expired { grant_id: String },
    /// Nothing ever allowed it.
    None,
    /// The reader's copy of the record may be behind: everything withheld.
    Stale,
}

/// The answer of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed(Basis),
    Denied(Denial),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }

    /// The one word the API shows: `lead`, `consent`, `statutory`, `author`,
    /// `refused`, `withdrawn`, `expired` or `none`.
    pub fn word(&self) -> &'static str {
        match self {
            Decision::Allowed(Basis::Lead) => "lead",
            Decision::Allowed(Basis::Statutory { .. }) => "statutory",
            Decision::Allowed(Basis::Consent { .. }) => "consent",
            Decision::Allowed(Basis::Author) => "author",
            Decision::Allowed(Basis::Network) => "network",
            Decision::Denied(Denial::Refused { .. }) => "refused",
            Decision::Denied(Denial::Withdrawn { .. }) => "withdrawn",
            Decision::Denied(Denial::Expired { .. }) => "expired",
            Decision::Denied(Denial::None) => "none",
            Decision::Denied(Denial::Stale) => "stale",
        }
    }

    /// The grant, basis or refusal behind the answer, if one is.
    pub fn source_id(&self) -> Option<&str> {
        match self {
            Decision::Allowed(Basis::Statutory { basis_id }) => Some(basis_id),
            Decision::Allowed(Basis::Consent { grant_id })
            | Decision::Denied(Denial::Withdrawn { grant_id })
            | Decision::Denied(Denial::Expired { grant_id }) => Some(grant_id),
            Decision::Denied(Denial::Refused { refusal_id }) => Some(refusal_id),
            _ => None,
        }
    }
}

/// May `reader` read `category` of this client's data at `at`? See the
/// crate documentation for the rules.
pub fn decide(
    state: &ConsentState,
    reader: &str,
    category: Category,
    at: DateTime<Utc>,
) -> Decision {
    if reader == state.lead {
        return Decision::Allowed(Basis::Lead);
    }
    let Some(facts) = state.by_agency.get(reader) else {
        return Decision::Denied(Denial::None);
    };
    // Ids in order: among several that apply, the smallest id is named.
    if let Some(basis) = ids(&facts.statutory, category)
        .map(|id| &state.statutory[id])
        .find(|b| b.in_force(at))
    {
        return Decision::Allowed(Basis::Statutory {
            basis_id: basis.id.clone(),
        });
    }
    if let Some(refusal) = ids(&facts.refusals, category)
        .map(|id| &state.refusals[id])
        .find(|r| r.in_force(at))
    {
        return Decision::Denied(Denial::Refused {
            refusal_id: refusal.id.clone(),
        });
    }
    let covering = || {
        ids(&facts.grants, category)
            .map(|id| &state.grants[id])
            .filter(move |g| g.granted_at <= at)
    };
    if let Some(grant) = covering().find(|g| g.covers(&state.case, category, at)) {
        return Decision::Allowed(Basis::Consent {
            grant_id: grant.id.clone(),
        });
    }
    // The latest ending explains the denial best.
    let withdrawn = covering()
        .filter_map(|g| g.withdrawn_at.filter(|w| *w <= at).map(|w| (w, g)))
        .max_by_key(|(w, _)| *w);
    if let Some((_, grant)) = withdrawn {
        return Decision::Denied(Denial::Withdrawn {
            grant_id: grant.id.clone(),
        });
    }
    let expired = covering()
        .filter_map(|g| g.ends_at(&state.case).filter(|u| *u <= at).map(|u| (u, g)))
        .max_by_key(|(u, _)| *u);
    if let Some((_, grant)) = expired {
        return Decision::Denied(Denial::Expired {
            grant_id: grant.id.clone(),
        });
    }
    Decision::Denied(Denial::None)
}

/// The ids indexed under `category`, in id order.
fn ids(
    by: &BTreeMap<Category, std::collections::BTreeSet<String>>,
    category: Category,
) -> impl Iterator<Item = &String> {
    by.get(&category).into_iter().flatten()
}

/// [`decide`] for an item written by `author`: an agency always sees what it
/// wrote itself.
pub fn decide_item(
    state: &ConsentState,
    reader: &str,
    category: Category,
    author: &str,
    at: DateTime<Utc>,
) -> Decision {
    match decide(state, reader, category, at) {
        Decision::Denied(_) if author == reader => Decision::Allowed(Basis::Author),
        decision => decision,
    }
}

/// One item of a read, as [`judge`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// Data of a category, with no author of its own (a header, a plan
    /// measure, a task description).
    Data(Category),
    /// Data of a category written by an agency (a record, a minutes note).
    Authored { category: Category, author: &'a str },
    /// Where a meeting is held: `contact` data under the safety rule, else
    /// visible to every member.
    Location,
}

/// The decision for one item of a read by `reader` at `at`, on a view of
/// the record that is `fresh` or may be behind. See the crate documentation
/// for the rules beside [`decide`].
pub fn judge(
    state: &ConsentState,
    fresh: bool,
    reader: &str,
    item: Item<'_>,
    at: DateTime<Utc>,
) -> Decision {
    if !fresh {
        return Decision::Denied(Denial::Stale);
    }
    match item {
        Item::Data(category) => decide(state, reader, category, at),
        Item::Authored { category, .. }
            if category == Category::Contact && state.case.safety_risk =>
        {
            decide(state, reader, category, at)
        }
        Item::Authored { category, author } => decide_item(state, reader, category, author, at),
        Item::Location if state.case.safety_risk => decide(state, reader, Category::Contact, at),
        Item::Location => Decision::Allowed(Basis::Network),
    }
}

/// The moment a read is decided at: `now` by the reader's clock, or the
/// record's last change if that is later. Clocks of different hosts differ;
/// a withdrawal the reader's view holds is then never judged as not yet
/// recorded.
pub fn moment(state: &ConsentState, now: DateTime<Utc>) -> DateTime<Utc> {
    state.last_change().map_or(now, |last| last.max(now))
}

/// Why a new grant may not be recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantRefusal {
    /// The client is a minor and not old enough to consent to these
    /// categories personally: a guardian or representative must.
    MinorMayNotConsent { categories: Vec<Category> },
}

/// Whether a grant given by `grantor` for `categories` at `at` may be
/// recorded for a case with these facts.
pub fn check_grant(
    case: &CaseFacts,
    grantor: Grantor,
    categories: &std::collections::BTreeSet<Category>,
    at: DateTime<Utc>,
) -> Result<(), GrantRefusal> {
    if grantor != Grantor::Client {
        return Ok(());
    }
    let refused: Vec<Category> = categories
        .iter()
        .copied()
        .filter(|c| !case.may_consent(*c, at))
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(GrantRefusal::MinorMayNotConsent {
            categories: refused,
        })
    }
}

/// Every category's decision for every agency in `agencies` at `at`.
pub fn matrix<'a>(
    state: &ConsentState,
    agencies: impl IntoIterator<Item = &'a str>,
    at: DateTime<Utc>,
) -> BTreeMap<String, BTreeMap<Category, Decision>> {
    agencies
        .into_iter()
        .map(|agency| {
            let row = Category::ALL
                .iter()
                .map(|c| (*c, decide(state, agency, *c, at)))
                .collect();
            (agency.to_string(), row)
        })
        .collect()
}

#[cfg(test)]
mod tests;
