//! The Rust policy against the Cedar judge: random consent histories and
//! case facts, and for each a few moments at which every agency reads every
//! kind of item, with a fresh view and a stale one. The two must agree on
//! allow or deny.
//!
//! `VERKOSTO_JUDGE_CASES` sets the number of histories (default 10,000). A
//! disagreement is reported as a readable history, shrunk by proptest.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use verkosto_judge::Judge;
use verkosto_policy::{
    judge, moment, CaseFacts, Category, ConsentEvent, ConsentState, Grantor, Item, Method, Obtained,
};

const LEAD: &str = "lead";
const AGENCIES: [&str; 4] = [LEAD, "a1", "a2", "a3"];
/// Ids of each kind: see [`id`].
const IDS: usize = 8;

fn cases() -> u32 {
    std::env::var("VERKOSTO_JUDGE_CASES")
        .ok()
        .map(|n| n.parse().expect("VERKOSTO_JUDGE_CASES is a number"))
        .unwrap_or(10_000)
}

/// Minute 0 of every history: ten minutes before midnight, so that a
/// client coming of age on 2025-01-01 does so in the middle of it (+10m).
fn minute(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 31, 23, 50, 0).unwrap() + Duration::minutes(m)
}

/// A moment as an offset from minute 0, for reports.
fn offset(t: DateTime<Utc>) -> String {
    let seconds = (t - minute(0)).num_seconds();
    let sign = if seconds < 0 { "-" } else { "+" };
    let (m, s) = (seconds.abs() / 60, seconds.abs() % 60);
    if s == 0 {
        format!("{sign}{m}m")
    } else {
        format!("{sign}{m}m{s}s")
    }
}

// ---------------------------------------------------------------------------
// Generating histories

/// One change to the record. Offsets are minutes relative to the event's
/// own `at`.
#[derive(Clone, Debug)]
enum Change {
    Grant {
        id: usize,
        recipient: usize,
        categories: BTreeSet<Category>,
        valid_from: i64,
        valid_until: Option<i64>,
        grantor: Grantor,
    },
    Withdraw {
        grant: usize,
    },
    Refuse {
        id: usize,
        agency: usize,
        categories: BTreeSet<Category>,
    },
    Lift {
        refusal: usize,
    },
    Basis {
        id: usize,
        recipient: usize,
        categories: BTreeSet<Category>,
        valid_until: Option<i64>,
    },
    EndBasis {
        basis: usize,
    },
}

/// A change and when it happens. Each step keeps its own moment, so that
/// removing one while shrinking moves no other.
#[derive(Clone, Debug)]
struct Step {
    /// The minute it happens: the history is in this order.
    minute: i64,
    /// How far the writer's clock is behind: its `at` goes back that many
    /// minutes.
    behind: i64,
    change: Change,
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn categories() -> impl Strategy<Value = BTreeSet<Category>> {
    prop::collection::btree_set(category(), 0..=6)
}

/// Mostly not the lead, whose facts change nothing.
fn agency() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0), 6 => 1..AGENCIES.len()]
}

/// Recorded ids and the ids withdrawals, lifts and ends name come from one
/// small range: now and then an id is recorded again (the first recording
/// stands), and a withdrawal names an id not (yet) recorded.
fn id() -> impl Strategy<Value = usize> {
    0..IDS
}

fn grantor() -> impl Strategy<Value = Grantor> {
    prop_oneof![
        2 => Just(Grantor::Client),
        1 => Just(Grantor::Guardian),
        1 => Just(Grantor::Representative),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        5 => (
            id(),
            agency(),
            categories(),
            -5i64..=5,
            prop::option::of(-2i64..=15),
            grantor(),
        )
            .prop_map(|(id, recipient, categories, valid_from, valid_until, grantor)| {
                Change::Grant {
                    id,
                    recipient,
                    categories,
                    valid_from,
                    valid_until,
                    grantor,
                }
            }),
        2 => id().prop_map(|grant| Change::Withdraw { grant }),
        2 => (id(), agency(), categories())
            .prop_map(|(id, agency, categories)| Change::Refuse { id, agency, categories }),
        1 => id().prop_map(|refusal| Change::Lift { refusal }),
        2 => (id(), agency(), categories(), prop::option::of(-2i64..=15)).prop_map(
            |(id, recipient, categories, valid_until)| Change::Basis {
                id,
                recipient,
                categories,
                valid_until,
            }
        ),
        1 => id().prop_map(|basis| Change::EndBasis { basis }),
    ]
}

/// Minutes 0 to 25, so moments often collide; now and then a clock behind.
fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (
        0i64..=25,
        prop_oneof![7 => Just(0i64), 1 => 1i64..=4],
        change(),
    )
        .prop_map(|(minute, behind, change)| Step {
            minute,
            behind,
            change,
        });
    prop::collection::vec(step, 0..=30)
}

fn history(steps: &[Step]) -> Vec<ConsentEvent> {
    let mut ordered: Vec<&Step> = steps.iter().collect();
    ordered.sort_by_key(|s| s.minute);
    ordered
        .into_iter()
        .map(|step| {
            let now = step.minute - step.behind;
            let at = minute(now);
            let relative = |offset: i64| minute(now + offset);
            match &step.change {
                Change::Grant {
                    id,
                    recipient,
                    categories,
                    valid_from,
                    valid_until,
                    grantor,
                } => ConsentEvent::ConsentGranted {
                    grant_id: format!("g{id}"),
                    recipient: AGENCIES[*recipient].into(),
                    categories: categories.clone(),
                    purpose: "plan".into(),
                    valid_from: relative(*valid_from),
                    valid_until: valid_until.map(relative),
                    obtained: Obtained {
                        method: Method::Written,
                        language: "fi".into(),
                        interpreter: None,
                        grantor: *grantor,
                    },
                    at,
                },
                Change::Withdraw { grant } => ConsentEvent::ConsentWithdrawn {
                    grant_id: format!("g{grant}"),
                    reason: "asked".into(),
                    at,
                },
                Change::Refuse {
                    id,
                    agency,
                    categories,
                } => ConsentEvent::ConsentRefused {
                    refusal_id: format!("r{id}"),
                    agency: AGENCIES[*agency].into(),
                    categories: categories.clone(),
                    at,
                },
                Change::Lift { refusal } => ConsentEvent::RefusalLifted {
                    refusal_id: format!("r{refusal}"),
                    at,
                },
                Change::Basis {
                    id,
                    recipient,
                    categories,
                    valid_until,
                } => ConsentEvent::StatutoryBasisRecorded {
                    basis_id: format!("s{id}"),
                    recipient: AGENCIES[*recipient].into(),
                    categories: categories.clone(),
                    law_reference: "law".into(),
                    valid_until: valid_until.map(relative),
                    at,
                },
                Change::EndBasis { basis } => ConsentEvent::StatutoryBasisEnded {
                    basis_id: format!("s{basis}"),
                    at,
                },
            }
        })
        .collect()
}

/// The day before, of, or after the history's midnight, or none.
fn case_facts() -> impl Strategy<Value = CaseFacts> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::option::of(-1i64..=1),
        categories(),
    )
        .prop_map(|(safety_risk, minor, day, minor_may_consent)| CaseFacts {
            safety_risk,
            minor,
            comes_of_age: day
                .map(|d| NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + Duration::days(d)),
            minor_may_consent,
        })
}

/// When the reads happen. Whole minutes are when events happen (and their
/// periods begin and end), half minutes fall between them; midnight, when a
/// client may come of age, is minute 10. Moments do not depend on the
/// events, so that removing one while shrinking keeps the rest.
#[derive(Clone, Debug)]
enum When {
    Minute(i64),
    HalfPast(i64),
    /// Before 2024-12-31, the earliest day a client comes of age.
    FarPast,
    /// After 2025-01-02, the latest.
    FarFuture,
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        6 => (-3i64..=30).prop_map(When::Minute),
        3 => (-3i64..=30).prop_map(When::HalfPast),
        1 => Just(When::FarPast),
        1 => Just(When::FarFuture),
    ]
}

fn resolve(when: &When) -> DateTime<Utc> {
    match when {
        When::Minute(m) => minute(*m),
        When::HalfPast(m) => minute(*m) + Duration::seconds(30),
        When::FarPast => minute(0) - Duration::days(2),
        When::FarFuture => minute(0) + Duration::days(3),
    }
}

// ---------------------------------------------------------------------------
// Reporting a disagreement

fn describe_event(e: &ConsentEvent) -> String {
    let list = |c: &BTreeSet<Category>| {
        let names: Vec<&str> = c.iter().map(|c| c.as_str()).collect();
        format!("[{}]", names.join(", "))
    };
    let until = |u: &Option<DateTime<Utc>>| u.map_or("open".to_string(), offset);
    match e {
        ConsentEvent::ConsentGranted {
            grant_id,
            recipient,
            categories,
            valid_from,
            valid_until,
            obtained,
            ..
        } => format!(
            "ConsentGranted {grant_id} to {recipient} {} valid {}..{} grantor {:?}",
            list(categories),
            offset(*valid_from),
            until(valid_until),
            obtained.grantor
        ),
        ConsentEvent::ConsentWithdrawn { grant_id, .. } => format!("ConsentWithdrawn {grant_id}"),
        ConsentEvent::ConsentRefused {
            refusal_id,
            agency,
            categories,
            ..
        } => format!(
            "ConsentRefused {refusal_id} of {agency} {}",
            list(categories)
        ),
        ConsentEvent::RefusalLifted { refusal_id, .. } => format!("RefusalLifted {refusal_id}"),
        ConsentEvent::StatutoryBasisRecorded {
            basis_id,
            recipient,
            categories,
            valid_until,
            ..
        } => format!(
            "StatutoryBasisRecorded {basis_id} for {recipient} {} until {}",
            list(categories),
            until(valid_until)
        ),
        ConsentEvent::StatutoryBasisEnded { basis_id, .. } => {
            format!("StatutoryBasisEnded {basis_id}")
        }
    }
}

struct Read<'a> {
    fresh: bool,
    reader: &'a str,
    item: Item<'a>,
    at: DateTime<Utc>,
}

/// The case and its events, one per line.
fn history_report(events: &[ConsentEvent], case: &CaseFacts) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "case: lead {LEAD}, safety_risk {}, minor {}, comes_of_age {}, minor_may_consent {:?}",
        case.safety_risk,
        case.minor,
        case.comes_of_age.map_or("none".to_string(), |d| format!(
            "{d} ({})",
            offset(d.and_hms_opt(0, 0, 0).unwrap().and_utc())
        )),
        case.minor_may_consent
    );
    let _ = writeln!(
        out,
        "events ({}; moments from minute 0 = {}):",
        events.len(),
        minute(0).to_rfc3339()
    );
    let mut previous: Option<DateTime<Utc>> = None;
    for (i, e) in events.iter().enumerate() {
        let back = match previous {
            Some(p) if e.at() < p => format!("  (clock went back: takes effect at {})", offset(p)),
            _ => String::new(),
        };
        previous = Some(previous.map_or(e.at(), |p| p.max(e.at())));
        let _ = writeln!(
            out,
            "  {i:>2}. at {:>6}  {}{back}",
            offset(e.at()),
            describe_event(e)
        );
    }
    out
}

fn report(
    events: &[ConsentEvent],
    case: &CaseFacts,
    read: &Read<'_>,
    policy: &verkosto_policy::Decision,
    cedar: &Judge,
) -> String {
    let verdict = cedar.verdict(read.fresh, read.reader, read.item, read.at);
    let answer = |allowed: bool| if allowed { "ALLOWED" } else { "DENIED" };
    let mut out = String::new();
    let _ = writeln!(out, "the Rust policy and the Cedar judge disagree");
    let _ = writeln!(
        out,
        "read: {} reads {:?} at {} ({}), {} view",
        read.reader,
        read.item,
        offset(read.at),
        read.at.to_rfc3339(),
        if read.fresh { "fresh" } else { "stale" }
    );
    let _ = writeln!(
        out,
        "verkosto_policy::judge: {} ({}{})",
        answer(policy.allowed()),
        policy.word(),
        policy
            .source_id()
            .map(|id| format!(" {id}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "Cedar judge:            {} (policies: {:?})",
        answer(verdict.allowed),
        verdict.policies
    );
    out.push_str(&history_report(events, case));
    let _ = writeln!(out, "Cedar policies:\n{}", cedar.policies());
    out
}

// ---------------------------------------------------------------------------
// The property

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_cedar_judge_agrees_with_the_policy(
        steps in steps(),
        case in case_facts(),
        whens in prop::collection::vec(when(), 1..=3),
    ) {
        let events = history(&steps);
        let state = ConsentState::from_events(LEAD, &events).with_case(case.clone());
        let cedar = Judge::new(LEAD, &case, &events);
        for when in &whens {
            let at = resolve(when);
            let (policy_moment, cedar_moment) = (moment(&state, at), cedar.moment(at));
            if policy_moment != cedar_moment {
                return Err(TestCaseError::fail(format!(
                    "the moment of a read at {}: verkosto_policy::moment {}, Cedar judge {}\n{}",
                    offset(at),
                    offset(policy_moment),
                    offset(cedar_moment),
                    history_report(&events, &case)
                )));
            }
            for (r, reader) in AGENCIES.iter().enumerate() {
                let other = AGENCIES[(r + 1) % AGENCIES.len()];
                let items = Category::ALL
                    .iter()
                    .flat_map(|&category| {
                        [
                            Item::Data(category),
                            Item::Authored { category, author: reader },
                            Item::Authored { category, author: other },
                        ]
                    })
                    .chain([Item::Location]);
                for item in items {
                    for fresh in [true, false] {
                        let policy = judge(&state, fresh, reader, item, at);
                        if policy.allowed() != cedar.allows(fresh, reader, item, at) {
                            let read = Read { fresh, reader, item, at };
                            return Err(TestCaseError::fail(report(
                                &events, &case, &read, &policy, &cedar,
                            )));
                        }
                    }
                }
            }
        }
    }
}
