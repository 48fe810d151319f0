//! `decide` over a folded `ConsentState` against a naive reference model that
//! replays the raw events up to the moment asked, and the point-in-time
//! promise: the full state answers a past moment as a replay up to it would.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;
use verkosto_policy::{
    decide, decide_item, matrix, Basis, Category, ConsentEvent, ConsentState, Decision, Denial,
    Obtained,
};

const LEAD: &str = "lead";
const AGENCIES: [&str; 4] = [LEAD, "a1", "a2", "a3"];
/// Withdrawals, lifts and ends name ids from this small range, so they often
/// hit a real grant, refusal or basis, and sometimes one not (yet) recorded.
const TARGETS: usize = 6;

fn minute(m: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap() + Duration::minutes(m)
}

// ---------------------------------------------------------------------------
// Generating histories

/// One event before ids and moments are filled in. Offsets are minutes
/// relative to the event's own `at`.
#[derive(Clone, Debug)]
enum Step {
    Grant {
        recipient: usize,
        categories: BTreeSet<Category>,
        valid_from: i64,
        valid_until: Option<i64>,
    },
    Withdraw {
        grant: usize,
    },
    Refuse {
        agency: usize,
        categories: BTreeSet<Category>,
    },
    Lift {
        refusal: usize,
    },
    Basis {
        recipient: usize,
        categories: BTreeSet<Category>,
        valid_until: Option<i64>,
    },
    EndBasis {
        basis: usize,
    },
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn categories() -> impl Strategy<Value = BTreeSet<Category>> {
    prop::collection::btree_set(category(), 0..=7)
}

fn agency() -> impl Strategy<Value = usize> {
    0..AGENCIES.len()
}

/// Mostly not the lead, whose answer is always the same.
fn reader() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0), 6 => 1..AGENCIES.len()]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (
            agency(),
            categories(),
            -5i64..=5,
            prop::option::of(-2i64..=15)
        )
            .prop_map(|(recipient, categories, valid_from, valid_until)| Step::Grant {
                recipient,
                categories,
                valid_from,
                valid_until,
            }),
        2 => (0..TARGETS).prop_map(|grant| Step::Withdraw { grant }),
        2 => (agency(), categories())
            .prop_map(|(agency, categories)| Step::Refuse { agency, categories }),
        1 => (0..TARGETS).prop_map(|refusal| Step::Lift { refusal }),
        2 => (agency(), categories(), prop::option::of(-2i64..=15)).prop_map(
            |(recipient, categories, valid_until)| Step::Basis {
                recipient,
                categories,
                valid_until,
            }
        ),
        1 => (0..TARGETS).prop_map(|basis| Step::EndBasis { basis }),
    ]
}

/// Minutes between consecutive events: often 0, so moments collide.
fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0i64), 2 => 1i64..=3]
}

fn obtained() -> Obtained {
    serde_json::from_value(serde_json::json!({"method": "written", "language": "fi"})).unwrap()
}

/// Recorded ids are unique per kind (the aggregate refuses a reused one);
/// withdrawals, lifts and ends may name any id, known or not, again and again.
fn history(steps: &[(i64, Step)]) -> Vec<ConsentEvent> {
    let (mut grants, mut refusals, mut bases) = (0, 0, 0);
    let mut now = 0;
    let obtained = obtained();
    steps
        .iter()
        .map(|(delta, step)| {
            now += delta;
            let at = minute(now);
            let relative = |offset: i64| minute(now + offset);
            match step {
                Step::Grant {
                    recipient,
                    categories,
                    valid_from,
                    valid_until,
                } => {
                    grants += 1;
                    ConsentEvent::ConsentGranted {
                        grant_id: format!("g{}", grants - 1),
                        recipient: AGENCIES[*recipient].into(),
                        categories: categories.clone(),
                        purpose: "plan".into(),
                        valid_from: relative(*valid_from),
                        valid_until: valid_until.map(relative),
                        obtained: obtained.clone(),
                        at,
                    }
                }
                Step::Withdraw { grant } => ConsentEvent::ConsentWithdrawn {
                    grant_id: format!("g{grant}"),
                    reason: "asked".into(),
                    at,
                },
                Step::Refuse { agency, categories } => {
                    refusals += 1;
                    ConsentEvent::ConsentRefused {
                        refusal_id: format!("r{}", refusals - 1),
                        agency: AGENCIES[*agency].into(),
                        categories: categories.clone(),
                        at,
                    }
                }
                Step::Lift { refusal } => ConsentEvent::RefusalLifted {
                    refusal_id: format!("r{refusal}"),
                    at,
                },
                Step::Basis {
                    recipient,
                    categories,
                    valid_until,
                } => {
                    bases += 1;
                    ConsentEvent::StatutoryBasisRecorded {
                        basis_id: format!("s{}", bases - 1),
                        recipient: AGENCIES[*recipient].into(),
                        categories: categories.clone(),
                        law_reference: "law".into(),
                        valid_until: valid_until.map(relative),
                        at,
                    }
                }
                Step::EndBasis { basis } => ConsentEvent::StatutoryBasisEnded {
                    basis_id: format!("s{basis}"),
                    at,
                },
            }
        })
        .collect()
}

fn steps(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<(i64, Step)>> {
    prop::collection::vec((delta(), step()), len)
}

/// A long history whose moments collide more, so that checking every
/// distinct moment stays quick.
fn long_steps() -> impl Strategy<Value = Vec<(i64, Step)>> {
    let delta = prop_oneof![4 => Just(0i64), 1 => 1i64..=3];
    prop::collection::vec((delta, step()), 200..=300)
}

/// When a question is asked, resolved against the history's moments.
#[derive(Clone, Debug)]
enum When {
    AtEvent(Index),
    /// Half a minute after an event: between two whole-minute moments.
    JustAfterEvent(Index),
    BeforeFirst,
    AfterLast,
    Minute(i64),
}

fn when() -> impl Strategy<Value = When> {
    prop_oneof![
        4 => any::<Index>().prop_map(When::AtEvent),
        2 => any::<Index>().prop_map(When::JustAfterEvent),
        1 => Just(When::BeforeFirst),
        1 => Just(When::AfterLast),
        2 => (-5i64..=60).prop_map(When::Minute),
    ]
}

fn resolve(when: &When, events: &[ConsentEvent]) -> DateTime<Utc> {
    let first = events.first().map_or(minute(0), |e| e.at());
    let last = events.last().map_or(minute(0), |e| e.at());
    let event_at = |i: &Index| {
        if events.is_empty() {
            minute(0)
        } else {
            events[i.index(events.len())].at()
        }
    };
    match when {
        When::AtEvent(i) => event_at(i),
        When::JustAfterEvent(i) => event_at(i) + Duration::seconds(30),
        When::BeforeFirst => first - Duration::minutes(1),
        When::AfterLast => last + Duration::minutes(100),
        When::Minute(m) => minute(*m),
    }
}

#[derive(Clone, Debug)]
struct Question {
    reader: usize,
    category: Category,
    author: usize,
    when: When,
}

fn question() -> impl Strategy<Value = Question> {
    (reader(), category(), agency(), when()).prop_map(|(reader, category, author, when)| Question {
        reader,
        category,
        author,
        when,
    })
}

// ---------------------------------------------------------------------------
// The reference model: no ConsentState, only the raw events up to `at`.

struct NaiveGrant<'a> {
    id: &'a str,
    recipient: &'a str,
    categories: &'a BTreeSet<Category>,
    valid_from: DateTime<Utc>,
    valid_until: Option<DateTime<Utc>>,
    withdrawn_at: Option<DateTime<Utc>>,
}

struct NaiveRefusal<'a> {
    id: &'a str,
    agency: &'a str,
    categories: &'a BTreeSet<Category>,
    lifted: bool,
}

struct NaiveBasis<'a> {
    id: &'a str,
    recipient: &'a str,
    categories: &'a BTreeSet<Category>,
    valid_until: Option<DateTime<Utc>>,
    ended: bool,
}

fn naive_decide(
    lead: &str,
    events: &[ConsentEvent],
    reader: &str,
    category: Category,
    at: DateTime<Utc>,
) -> Decision {
    let mut grants: Vec<NaiveGrant> = Vec::new();
    let mut refusals: Vec<NaiveRefusal> = Vec::new();
    let mut bases: Vec<NaiveBasis> = Vec::new();
    for event in events.iter().take_while(|e| e.at() <= at) {
        match event {
            ConsentEvent::ConsentGranted {
                grant_id,
                recipient,
                categories,
                valid_from,
                valid_until,
                ..
            } => grants.push(NaiveGrant {
                id: grant_id,
                recipient,
                categories,
                valid_from: *valid_from,
                valid_until: *valid_until,
                withdrawn_at: None,
            }),
            ConsentEvent::ConsentWithdrawn { grant_id, at, .. } => {
                for g in grants.iter_mut().filter(|g| g.id == grant_id) {
                    if g.withdrawn_at.is_none() {
                        g.withdrawn_at = Some(*at);
                    }
                }
            }
            ConsentEvent::ConsentRefused {
                refusal_id,
                agency,
                categories,
                ..
            } => refusals.push(NaiveRefusal {
                id: refusal_id,
                agency,
                categories,
                lifted: false,
            }),
            ConsentEvent::RefusalLifted { refusal_id, .. } => {
                for r in refusals.iter_mut().filter(|r| r.id == refusal_id) {
                    r.lifted = true;
                }
            }
            ConsentEvent::StatutoryBasisRecorded {
                basis_id,
                recipient,
                categories,
                valid_until,
                ..
            } => bases.push(NaiveBasis {
                id: basis_id,
                recipient,
                categories,
                valid_until: *valid_until,
                ended: false,
            }),
            ConsentEvent::StatutoryBasisEnded { basis_id, .. } => {
                for b in bases.iter_mut().filter(|b| b.id == basis_id) {
                    b.ended = true;
                }
            }
        }
    }

    let before_end = |until: Option<DateTime<Utc>>| until.is_none_or(|u| at < u);

    if reader == lead {
        return Decision::Allowed(Basis::Lead);
    }
    // Several may apply: the smallest id answers.
    let statutory = bases
        .iter()
        .filter(|b| b.recipient == reader && b.categories.contains(&category))
        .filter(|b| !b.ended && before_end(b.valid_until))
        .map(|b| b.id)
        .min();
    if let Some(id) = statutory {
        return Decision::Allowed(Basis::Statutory {
            basis_id: id.into(),
        });
    }
    let refusal = refusals
        .iter()
        .filter(|r| r.agency == reader && r.categories.contains(&category) && !r.lifted)
        .map(|r| r.id)
        .min();
    if let Some(id) = refusal {
        return Decision::Denied(Denial::Refused {
            refusal_id: id.into(),
        });
    }
    let covering: Vec<&NaiveGrant> = grants
        .iter()
        .filter(|g| g.recipient == reader && g.categories.contains(&category))
        .collect();
    let allowing = covering
        .iter()
        .filter(|g| g.valid_from <= at && before_end(g.valid_until) && g.withdrawn_at.is_none())
        .map(|g| g.id)
        .min();
    if let Some(id) = allowing {
        return Decision::Allowed(Basis::Consent {
            grant_id: id.into(),
        });
    }
    // The latest ending explains best; on a tie the largest id.
    let withdrawn = covering
        .iter()
        .filter_map(|g| g.withdrawn_at.map(|w| (w, g.id)))
        .max();
    if let Some((_, id)) = withdrawn {
        return Decision::Denied(Denial::Withdrawn {
            grant_id: id.into(),
        });
    }
    let expired = covering
        .iter()
        .filter_map(|g| g.valid_until.filter(|u| *u <= at).map(|u| (u, g.id)))
        .max();
    if let Some((_, id)) = expired {
        return Decision::Denied(Denial::Expired {
            grant_id: id.into(),
        });
    }
    Decision::Denied(Denial::None)
}

fn naive_version_at(events: &[ConsentEvent], at: DateTime<Utc>) -> i64 {
    events.iter().filter(|e| e.at() <= at).count() as i64
}

// ---------------------------------------------------------------------------
// The properties

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn decide_agrees_with_a_naive_replay(
        steps in steps(0..=40),
        questions in prop::collection::vec(question(), 1..=24),
    ) {
        let events = history(&steps);
        let state = ConsentState::from_events(LEAD, &events);
        prop_assert_eq!(state.version(), events.len() as i64);
        for q in &questions {
            let at = resolve(&q.when, &events);
            let (reader, author) = (AGENCIES[q.reader], AGENCIES[q.author]);
            let expected = naive_decide(LEAD, &events, reader, q.category, at);
            prop_assert_eq!(
                decide(&state, reader, q.category, at),
                expected.clone(),
                "{} reads {} at {}", reader, q.category, at
            );
            let expected_item = match expected {
                Decision::Denied(_) if author == reader => Decision::Allowed(Basis::Author),
                other => other,
            };
            prop_assert_eq!(
                decide_item(&state, reader, q.category, author, at),
                expected_item
            );
            prop_assert_eq!(state.version_at(at), naive_version_at(&events, at), "at {}", at);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn full_state_answers_the_past_as_a_replay_up_to_it_would(steps in long_steps()) {
        let events = history(&steps);
        let full = ConsentState::from_events(LEAD, &events);
        let matrix_at = |state: &ConsentState, at| matrix(state, AGENCIES, at);

        let first = events[0].at();
        let empty = ConsentState::new(LEAD);
        let before = first - Duration::minutes(1);
        prop_assert_eq!(matrix_at(&full, before), matrix_at(&empty, before));
        prop_assert_eq!(full.version_at(before), 0);

        // Folding one event at a time is what from_events does, so the state
        // after the last event at t is from_events(events with at <= t).
        let mut replay = ConsentState::new(LEAD);
        for (i, event) in events.iter().enumerate() {
            replay.apply(event);
            let t = event.at();
            let next = events.get(i + 1).map(|e| e.at());
            if next == Some(t) {
                continue;
            }
            let prefix = (i + 1) as i64;
            prop_assert_eq!(matrix_at(&full, t), matrix_at(&replay, t), "at {}", t);
            prop_assert_eq!(full.version_at(t), prefix);
            let between = match next {
                Some(n) => t + (n - t) / 2,
                None => t + Duration::minutes(100),
            };
            prop_assert_eq!(
                matrix_at(&full, between),
                matrix_at(&replay, between),
                "at {}", between
            );
            prop_assert_eq!(full.version_at(between), prefix);
        }
        prop_assert_eq!(&replay, &full);
        // And literally from the prefix, at a few moments.
        for i in [0, events.len() / 3, events.len() / 2, events.len() - 1] {
            let t = events[i].at();
            let prefix: Vec<_> = events.iter().take_while(|e| e.at() <= t).collect();
            let from_prefix = ConsentState::from_events(LEAD, prefix.iter().copied());
            prop_assert_eq!(matrix_at(&full, t), matrix_at(&from_prefix, t));
        }
    }
}
