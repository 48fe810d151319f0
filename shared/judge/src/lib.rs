//! An independent second judge of the consent rules, written in Cedar: for
//! tests only.
//!
//! `verkosto-policy` decides every read. This crate answers the same
//! question a second way, so that a differential test can set the two
//! against each other: it reads the raw consent events itself (no
//! `ConsentState`, no `decide`, no `Grant::covers`), folds them into the
//! facts they record, writes one Cedar policy per fact, and asks Cedar.
//!
//! # The Cedar model
//!
//! - **Principal**: the reading agency, `Agency::"<name>"`.
//! - **Action**: `Action::"read"`.
//! - **Resource**: the item read. Data of a category is the category itself,
//!   `Category::"health"`; an item an agency wrote is a `Note` with an
//!   `author` and the category as its parent; a meeting's location is
//!   `Location::"meeting"`, whose parent is `Category::"contact"`, so every
//!   rule for contact data covers it with no rule of its own. A rule for
//!   some categories is then `resource in Category::"health" || resource in
//!   Category::"legal"` (a set literal would be rebuilt on every request).
//! - **Context**: `at` (the moment, microseconds since the epoch), `fresh`
//!   (the reader's view is up to date) and `safety_risk` (the case's flag).
//!
//! Cedar allows a request when some `permit` holds and no `forbid` does.
//! The fixed rules are in [`fixed_rules`]; each fact of the record gives one
//! more (see [`Judge::new`]).
//!
//! Moments are compared to the microsecond: two moments within the same
//! microsecond are one moment to this judge.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::Mutex;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicySet, PrincipalConstraint, Request, Response, RestrictedExpression,
};
use chrono::{DateTime, SecondsFormat, Utc};
use verkosto_policy::{CaseFacts, Category, ConsentEvent, Grantor, Item};

// ---------------------------------------------------------------------------
// The record, folded by this crate alone

/// A grant as the record holds it.
#[derive(Clone, Debug)]
struct GrantFact {
    /// The grant's id (the policy's `@id` names it).
    id: String,
    /// The agency the grant lets read: the rule's principal.
    recipient: String,
    /// The categories it covers.
    categories: BTreeSet<Category>,
    /// From `ConsentGranted`: the rule holds from the later of this and `recorded`.
    valid_from: DateTime<Utc>,
    /// From `ConsentGranted` (exclusive); none: no end but withdrawal or coming of age.
    valid_until: Option<DateTime<Utc>>,
    /// Who gave it: decides the rules for minors and coming of age.
    grantor: Grantor,
    /// When it was recorded: its event's `at`, or the moment before it if later.
    recorded: DateTime<Utc>,
    /// When it was first withdrawn (same clamping as `recorded`); none: never.
    withdrawn: Option<DateTime<Utc>>,
}

/// A refusal as the record holds it.
#[derive(Clone, Debug)]
struct RefusalFact {
    /// The refusal's id (the policy's `@id` names it).
    id: String,
    /// The agency refused: the rule's principal.
    agency: String,
    /// The categories refused.
    categories: BTreeSet<Category>,
    /// When it was recorded: its event's `at`, or the moment before it if later.
    recorded: DateTime<Utc>,
    /// When it was first lifted (same clamping as `recorded`); none: never.
    lifted: Option<DateTime<Utc>>,
}

/// A statutory basis as the record holds it.
#[derive(Clone, Debug)]
struct BasisFact {
    /// The basis's id (the policy's `@id` names it).
    id: String,
    /// The agency the law lets read: the rule's principal.
    recipient: String,
    /// The categories it covers.
    categories: BTreeSet<Category>,
    /// From `StatutoryBasisRecorded` (exclusive); none: until ended.
    valid_until: Option<DateTime<Utc>>,
    /// When it was recorded: its event's `at`, or the moment before it if later.
    recorded: DateTime<Utc>,
    /// When it was first ended (same clamping as `recorded`); none: never.
    ended: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct Record {
    /// Every grant, in the order recorded; an id recorded again is not added.
    grants: Vec<GrantFact>,
    /// Every refusal, in the order recorded.
    refusals: Vec<RefusalFact>,
    /// Every statutory basis, in the order recorded.
    bases: Vec<BasisFact>,
    /// The moment of the last change, as recorded.
    last: Option<DateTime<Utc>>,
}

/// A moment as a comment in the policies shows it.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn optional(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_string(), time)
}

fn names(categories: &BTreeSet<Category>) -> String {
    let names: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
    format!("[{}]", names.join(", "))
}

impl fmt::Display for GrantFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = match self.grantor {
            Grantor::Client => "the client",
            Grantor::Guardian => "a guardian",
            Grantor::Representative => "a representative",
        };
        write!(
            f,
            "grant {} to {} of {}, by {by}: recorded {}, valid from {} until {}, withdrawn {}",
            self.id,
            self.recipient,
            names(&self.categories),
            time(self.recorded),
            time(self.valid_from),
            optional(self.valid_until),
            optional(self.withdrawn)
        )
    }
}

impl fmt::Display for RefusalFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "refusal {} of {} for {}: recorded {}, lifted {}",
            self.id,
            self.agency,
            names(&self.categories),
            time(self.recorded),
            optional(self.lifted)
        )
    }
}

impl fmt::Display for BasisFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "statutory basis {} for {} of {}: recorded {}, valid until {}, ended {}",
            self.id,
            self.recipient,
            names(&self.categories),
            time(self.recorded),
            optional(self.valid_until),
            optional(self.ended)
        )
    }
}

/// Folds the raw events into the facts they record.
///
/// - A recorded moment never goes backwards: an event takes effect at the
///   later of its own `at` and the moment before it.
/// - An id recorded again changes nothing: the first recording stands.
/// - A withdrawal, lift or end naming an id not (yet) recorded changes
///   nothing; a second one keeps the first moment.
fn fold(events: &[ConsentEvent]) -> Record {
    let mut record = Record::default();
    for event in events {
        let at = match record.last {
            Some(last) if last > event.at() => last,
            _ => event.at(),
        };
        record.last = Some(at);
        match event {
            ConsentEvent::ConsentGranted {
                grant_id,
                recipient,
                categories,
                valid_from,
                valid_until,
                obtained,
                ..
            } => {
                if !record.grants.iter().any(|g| &g.id == grant_id) {
                    record.grants.push(GrantFact {
                        id: grant_id.clone(),
                        recipient: recipient.clone(),
                        categories: categories.clone(),
                        valid_from: *valid_from,
                        valid_until: *valid_until,
                        grantor: obtained.grantor,
                        recorded: at,
                        withdrawn: None,
                    });
                }
            }
            ConsentEvent::ConsentWithdrawn { grant_id, .. } => {
                if let Some(g) = record.grants.iter_mut().find(|g| &g.id == grant_id) {
                    g.withdrawn = g.withdrawn.or(Some(at));
                }
            }
            ConsentEvent::ConsentRefused {
                refusal_id,
                agency,
                categories,
                ..
            } => {
                if !record.refusals.iter().any(|r| &r.id == refusal_id) {
                    record.refusals.push(RefusalFact {
                        id: refusal_id.clone(),
                        agency: agency.clone(),
                        categories: categories.clone(),
                        recorded: at,
                        lifted: None,
                    });
                }
            }
            ConsentEvent::RefusalLifted { refusal_id, .. } => {
                if let Some(r) = record.refusals.iter_mut().find(|r| &r.id == refusal_id) {
                    r.lifted = r.lifted.or(Some(at));
                }
            }
            ConsentEvent::StatutoryBasisRecorded {
                basis_id,
                recipient,
                categories,
                valid_until,
                ..
            } => {
                if !record.bases.iter().any(|b| &b.id == basis_id) {
                    record.bases.push(BasisFact {
                        id: basis_id.clone(),
                        recipient: recipient.clone(),
                        categories: categories.clone(),
                        valid_until: *valid_until,
                        recorded: at,
                        ended: None,
                    });
                }
            }
            ConsentEvent::StatutoryBasisEnded { basis_id, .. } => {
                if let Some(b) = record.bases.iter_mut().find(|b| &b.id == basis_id) {
                    b.ended = b.ended.or(Some(at));
                }
            }
        }
    }
    record
}

// ---------------------------------------------------------------------------
// Writing the policies

fn uid(type_name: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(type_name).expect("a valid type name"),
        EntityId::new(id),
    )
}

/// `Agency::"<name>"`, quoted as Cedar quotes it.
fn agency(name: &str) -> String {
    uid("Agency", name).to_string()
}

/// A fact as a one-line comment: no name in it may end the line.
fn comment(fact: &impl fmt::Display) -> String {
    fact.to_string()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// An id inside a Cedar string literal.
fn quoted(id: &str) -> String {
    id.escape_default().to_string()
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// In force from `t` on: every moment is inclusive at its start.
fn from(t: DateTime<Utc>) -> String {
    format!("context.at >= {}", micros(t))
}

/// Over at `t`.
fn before(t: DateTime<Utc>) -> String {
    format!("context.at < {}", micros(t))
}

/// The item is of one of these categories (a location is contact data).
fn of_categories(categories: &BTreeSet<Category>) -> String {
    let list: Vec<String> = categories
        .iter()
        .map(|c| format!("resource in Category::\"{c}\""))
        .collect();
    match list.len() {
        0 => "false".to_string(),
        1 => list.join(""),
        _ => format!("({})", list.join(" || ")),
    }
}

fn all(conditions: impl IntoIterator<Item = String>) -> String {
    conditions.into_iter().collect::<Vec<_>>().join("\n    && ")
}

/// An agency sees an item it wrote itself, except contact data under the
/// safety rule. Used by the author rule and as an exception to refusals.
const OWN_NOTE: &str = "(resource is Note && resource.author == principal \
     && !(context.safety_risk && resource in Category::\"contact\"))";

/// Without a safety risk every member sees where a meeting is held. Used by
/// the network rule and as an exception to refusals.
const OPEN_LOCATION: &str = "(resource is Location && !context.safety_risk)";

/// The rules that hold whatever the record says.
pub fn fixed_rules() -> String {
    format!(
        r#"// Stale view: a reader whose copy of the record may be behind sees
// nothing. A forbid, so it beats every permit: fail closed.
@id("stale")
forbid (principal, action, resource)
unless {{ context.fresh }};

// Author: an agency sees what it wrote itself, but contact data under the
// safety rule only on a basis like everyone else.
@id("author")
permit (principal, action == Action::"read", resource is Note)
when {{ {OWN_NOTE} }};

// Safety: without a safety risk a meeting's location is shown to every
// member of the network; with one it is contact data (its parent) and
// needs a basis for contact.
@id("network")
permit (principal, action == Action::"read", resource is Location)
when {{ {OPEN_LOCATION} }};
"#
    )
}

/// Lead: the lead agency keeps the file and reads everything.
fn lead_rule(lead: &str) -> String {
    format!(
        "@id(\"lead\")\npermit (principal == {}, action == Action::\"read\", resource);\n",
        agency(lead)
    )
}

/// When a statutory basis allows: its categories, from its recorded moment
/// until its `valid_until` or its end, whichever comes first.
fn basis_in_force(b: &BasisFact) -> String {
    let mut conditions = vec![of_categories(&b.categories), from(b.recorded)];
    conditions.extend(b.valid_until.map(before));
    conditions.extend(b.ended.map(before));
    all(conditions)
}

/// Statutory: a law allows, whatever the client wished.
fn basis_rule(b: &BasisFact) -> String {
    format!(
        "// {}\n@id(\"statutory {}\")\npermit (principal == {}, action == Action::\"read\", resource)\nwhen {{\n    {}\n}};\n",
        comment(b),
        quoted(&b.id),
        agency(&b.recipient),
        basis_in_force(b)
    )
}

/// Consent: a grant allows its categories from when it was given and its
/// `valid_from`, until its `valid_until` or withdrawal; and for a minor the
/// case's limits.
fn grant_rule(g: &GrantFact, case: &CaseFacts) -> String {
    let of_age = case
        .comes_of_age
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    let mut conditions = vec![
        of_categories(&g.categories),
        from(g.recorded),
        from(g.valid_from),
    ];
    conditions.extend(g.valid_until.map(before));
    conditions.extend(g.withdrawn.map(before));
    match g.grantor {
        // A guardian's or representative's consent lapses the day the
        // client comes of age: then the client must be asked.
        Grantor::Guardian | Grantor::Representative => conditions.extend(of_age.map(before)),
        // A child consents personally only to what the case allows, until
        // the day they come of age.
        Grantor::Client if case.minor => {
            let may = of_categories(&case.minor_may_consent);
            conditions.push(match of_age {
                Some(t) => format!("({may} || {})", from(t)),
                None => may,
            });
        }
        Grantor::Client => {}
    }
    format!(
        "// {}\n@id(\"grant {}\")\npermit (principal == {}, action == Action::\"read\", resource)\nwhen {{\n    {}\n}};\n",
        comment(g),
        quoted(&g.id),
        agency(&g.recipient),
        all(conditions)
    )
}

/// Refusal: while in force it withholds the categories from the agency,
/// whatever any grant says. It withholds only what consent would give: a
/// law still allows (the client's wish does not override a law), and the
/// author's own notes and an open location were never the client's to give.
fn refusal_rule(r: &RefusalFact, bases: &[BasisFact]) -> String {
    let mut conditions = vec![of_categories(&r.categories), from(r.recorded)];
    conditions.extend(r.lifted.map(before));
    let mut exceptions: Vec<String> = bases
        .iter()
        .filter(|b| b.recipient == r.agency)
        .map(|b| format!("({})", basis_in_force(b)))
        .collect();
    exceptions.push(OWN_NOTE.to_string());
    exceptions.push(OPEN_LOCATION.to_string());
    format!(
        "// {}\n@id(\"refusal {}\")\nforbid (principal == {}, action == Action::\"read\", resource)\nwhen {{\n    {}\n}}\nunless {{\n    {}\n}};\n",
        comment(r),
        quoted(&r.id),
        agency(&r.agency),
        all(conditions),
        exceptions.join("\n    || ")
    )
}

// ---------------------------------------------------------------------------
// The judge

/// The policies by the agency their scope names (`principal == ...`), each
/// with the rules for every principal; and those rules alone.
fn slice(policies: &PolicySet) -> (HashMap<EntityUid, PolicySet>, PolicySet) {
    let mut everyone = PolicySet::new();
    let mut named: HashMap<EntityUid, Vec<Policy>> = HashMap::new();
    for policy in policies.policies() {
        match policy.principal_constraint() {
            PrincipalConstraint::Eq(agency) => {
                named.entry(agency).or_default().push(policy.clone());
            }
            PrincipalConstraint::Any => everyone.add(policy.clone()).expect("a unique id"),
            other => panic!("no rule here is scoped {other:?}"),
        }
    }
    let slices = named
        .into_iter()
        .map(|(agency, own)| {
            let mut set = everyone.clone();
            for policy in own {
                set.add(policy).expect("a unique id");
            }
            (agency, set)
        })
        .collect();
    (slices, everyone)
}

/// The consent rules of one case's record, as a Cedar policy set.
pub struct Judge {
    /// Every policy: what the judge is.
    policies: PolicySet,
    /// The same policies sliced by reader: the rules for every principal
    /// and those naming that agency. A policy scoped to another principal
    /// never applies, so a slice gives the same answer as the whole set
    /// while Cedar evaluates far fewer policies per read.
    slices: HashMap<EntityUid, PolicySet>,
    /// The rules for every principal: the slice of an agency no fact names.
    everyone: PolicySet,
    /// The policies as Cedar text, as generated: what [`Judge::policies`] shows.
    text: String,
    /// The case's flag, passed to Cedar in every request's context.
    safety_risk: bool,
    /// The record's last recorded moment, for [`Judge::moment`]; none: no events.
    last_change: Option<DateTime<Utc>>,
    /// The contexts (stale, fresh) of the last moment read at: reads come
    /// in runs at one moment.
    contexts: Mutex<Option<(i64, [Context; 2])>>,
}

/// The answer and the policies that gave it (their `@id`s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether Cedar allowed the read.
    pub allowed: bool,
    /// The `@id`s of the policies that decided it, sorted.
    pub policies: Vec<String>,
}

/// The items read, as Cedar entities; the same for every record, so built
/// once per thread.
struct Items {
    /// The entity type `Agency` (principals).
    agency: EntityTypeName,
    /// The entity type `Note` (items an agency wrote).
    note: EntityTypeName,
    /// The one action, `Action::"read"`.
    read: EntityUid,
    /// `Category::"<name>"` for every category: the resource of plain data.
    categories: HashMap<Category, EntityUid>,
    /// `Location::"meeting"`, a child of `Category::"contact"`.
    location: (EntityUid, Entities),
    /// No entities: what a request for plain data passes.
    none: Entities,
    /// A note's entity (its author, its category) by category and author,
    /// built on first use.
    notes: RefCell<HashMap<(Category, String), Note>>,
}

/// A note's uid and the entities that describe it.
type Note = Rc<(EntityUid, Entities)>;

thread_local! {
    static ITEMS: Items = Items::new();
}

impl Items {
    fn new() -> Items {
        let categories: HashMap<Category, EntityUid> = Category::ALL
            .iter()
            .map(|c| (*c, uid("Category", c.as_str())))
            .collect();
        let location = uid("Location", "meeting");
        let entity = Entity::new_no_attrs(
            location.clone(),
            HashSet::from([categories[&Category::Contact].clone()]),
        );
        Items {
            agency: EntityTypeName::from_str("Agency").expect("a type name"),
            note: EntityTypeName::from_str("Note").expect("a type name"),
            read: uid("Action", "read"),
            categories,
            location: (
                location,
                Entities::from_entities([entity], None).expect("one entity"),
            ),
            none: Entities::empty(),
            notes: RefCell::new(HashMap::new()),
        }
    }

    fn agency(&self, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.agency.clone(), EntityId::new(name))
    }

    /// A note `author` wrote, of `category`: its uid and entity.
    fn note(&self, category: Category, author: &str) -> Note {
        let mut notes = self.notes.borrow_mut();
        let key = (category, author.to_string());
        if let Some(note) = notes.get(&key) {
            return note.clone();
        }
        let resource = EntityUid::from_type_name_and_id(
            self.note.clone(),
            EntityId::new(format!("{category} by {author}")),
        );
        let entity = Entity::new(
            resource.clone(),
            HashMap::from([(
                "author".to_string(),
                RestrictedExpression::new_entity_uid(self.agency(author)),
            )]),
            HashSet::from([self.categories[&category].clone()]),
        )
        .expect("a note entity");
        let entities = Entities::from_entities([entity], None).expect("one entity");
        notes
            .entry(key)
            .or_insert(Rc::new((resource, entities)))
            .clone()
    }
}

impl Judge {
    /// The rules for a case whose lead agency is `lead`, with these facts
    /// and this consent record.
    pub fn new(lead: &str, case: &CaseFacts, events: &[ConsentEvent]) -> Judge {
        let record = fold(events);
        let mut text = fixed_rules();
        text.push('\n');
        text.push_str(&lead_rule(lead));
        for b in &record.bases {
            text.push('\n');
            text.push_str(&basis_rule(b));
        }
        for g in &record.grants {
            text.push('\n');
            text.push_str(&grant_rule(g, case));
        }
        // The lead reads everything: a refusal of the lead is not a rule.
        for r in record.refusals.iter().filter(|r| r.agency != lead) {
            text.push('\n');
            text.push_str(&refusal_rule(r, &record.bases));
        }
        let policies = PolicySet::from_str(&text)
            .unwrap_or_else(|e| panic!("the generated policies parse: {e:?}\n{text}"));
        let (slices, everyone) = slice(&policies);
        Judge {
            policies,
            slices,
            everyone,
            text,
            safety_risk: case.safety_risk,
            last_change: record.last,
            contexts: Mutex::new(None),
        }
    }

    /// The generated policies, as Cedar text.
    pub fn policies(&self) -> &str {
        &self.text
    }

    /// The moment a read by a reader whose clock says `now` is decided at:
    /// never before the record's last change.
    pub fn moment(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.last_change {
            Some(last) if last > now => last,
            _ => now,
        }
    }

    /// May `reader` read `item` at `at`, on a view that is `fresh` or may be
    /// behind?
    pub fn allows(&self, fresh: bool, reader: &str, item: Item<'_>, at: DateTime<Utc>) -> bool {
        self.ask(fresh, reader, item, at).decision() == Decision::Allow
    }

    /// [`Judge::allows`] with the policies that decided it (their `@id`s):
    /// for reports.
    pub fn verdict(&self, fresh: bool, reader: &str, item: Item<'_>, at: DateTime<Utc>) -> Verdict {
        let response = self.ask(fresh, reader, item, at);
        let mut policies: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.policies
                    .annotation(id, "id")
                    .map_or_else(|| id.to_string(), str::to_string)
            })
            .collect();
        policies.sort();
        Verdict {
            allowed: response.decision() == Decision::Allow,
            policies,
        }
    }

    fn ask(&self, fresh: bool, reader: &str, item: Item<'_>, at: DateTime<Utc>) -> Response {
        let context = self.context(fresh, at);
        let response = ITEMS.with(|items| {
            let principal = items.agency(reader);
            let policies = self.slices.get(&principal).unwrap_or(&self.everyone);
            let note;
            let (resource, entities) = match item {
                Item::Data(category) => (&items.categories[&category], &items.none),
                Item::Location => (&items.location.0, &items.location.1),
                Item::Authored { category, author } => {
                    note = items.note(category, author);
                    (&note.0, &note.1)
                }
            };
            let request = Request::new(
                principal,
                items.read.clone(),
                resource.clone(),
                context,
                None,
            )
            .expect("a request without a schema");
            Authorizer::new().is_authorized(&request, policies, entities)
        });
        // A policy that errs is skipped by Cedar: a forbid that errs would
        // allow. No rule here may err.
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "Cedar errors: {errors:?}");
        response
    }

    /// The request's context: the moment, the view, the case's flag.
    fn context(&self, fresh: bool, at: DateTime<Utc>) -> Context {
        let at = micros(at);
        let mut last = self.contexts.lock().expect("not poisoned");
        let contexts = match &*last {
            Some((moment, contexts)) if *moment == at => contexts,
            _ => {
                let context = |fresh| {
                    Context::from_pairs([
                        ("at".to_string(), RestrictedExpression::new_long(at)),
                        ("fresh".to_string(), RestrictedExpression::new_bool(fresh)),
                        (
                            "safety_risk".to_string(),
                            RestrictedExpression::new_bool(self.safety_risk),
                        ),
                    ])
                    .expect("a context")
                };
                &last.insert((at, [context(false), context(true)])).1
            }
        };
        contexts[usize::from(fresh)].clone()
    }
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("policies", &self.text)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use verkosto_policy::{Method, Obtained};

    fn t(minute: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::minutes(minute)
    }

    fn grant(id: &str, to: &str, categories: &[Category], at: i64) -> ConsentEvent {
        ConsentEvent::ConsentGranted {
            grant_id: id.into(),
            recipient: to.into(),
            categories: categories.iter().copied().collect(),
            purpose: "plan".into(),
            valid_from: t(at),
            valid_until: None,
            obtained: Obtained {
                method: Method::Written,
                language: "fi".into(),
                interpreter: None,
                grantor: Grantor::Client,
            },
            at: t(at),
        }
    }

    #[test]
    fn the_generated_policies_parse_and_answer() {
        let events = [
            grant("g0", "police", &[Category::Health, Category::Contact], 0),
            ConsentEvent::ConsentRefused {
                refusal_id: "r0".into(),
                agency: "police".into(),
                categories: [Category::Health].into(),
                at: t(5),
            },
            ConsentEvent::StatutoryBasisRecorded {
                basis_id: "s0".into(),
                recipient: "police".into(),
                categories: [Category::Legal].into(),
                law_reference: "law".into(),
                valid_until: None,
                at: t(6),
            },
        ];
        let judge = Judge::new("ngo", &CaseFacts::default(), &events);
        let health = Item::Data(Category::Health);
        assert!(judge.allows(true, "ngo", health, t(-10)), "lead");
        assert!(!judge.allows(false, "ngo", health, t(10)), "stale");
        assert!(judge.allows(true, "police", health, t(1)), "granted");
        assert!(!judge.allows(true, "police", health, t(5)), "refused");
        assert!(judge.allows(true, "police", Item::Location, t(-10)));
        let own = Item::Authored {
            category: Category::Health,
            author: "police",
        };
        assert!(judge.allows(true, "police", own, t(10)), "author");
        assert_eq!(
            judge.verdict(true, "police", health, t(10)).policies,
            ["refusal r0"]
        );
        assert_eq!(judge.moment(t(0)), t(6));
    }

    #[test]
    fn names_are_quoted() {
        let odd = "po\"lice\n// };\\ä";
        let events = [grant("g\"0\n", odd, &[Category::Health], 0)];
        let judge = Judge::new("ngo", &CaseFacts::default(), &events);
        assert!(judge.allows(true, odd, Item::Data(Category::Health), t(1)));
        assert!(!judge.allows(true, "police", Item::Data(Category::Health), t(1)));
        assert_eq!(
            judge
                .verdict(true, odd, Item::Data(Category::Health), t(1))
                .policies,
            ["grant g\"0\n"]
        );
    }
}
