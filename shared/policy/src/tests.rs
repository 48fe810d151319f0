use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::state::Method;
use crate::*;

const LEAD: &str = "lead-agency";
const A: &str = "agency-a";
const B: &str = "agency-b";

use Category::{Contact, Health, Identity, Legal, Narrative, Plan};

/// Moments are whole minutes from a fixed instant, so tests read as a timeline.
fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 8, 0, 0).unwrap() + Duration::minutes(minute)
}

fn set(categories: &[Category]) -> BTreeSet<Category> {
    categories.iter().copied().collect()
}

fn obtained() -> Obtained {
    Obtained {
        method: Method::Written,
        language: "fi".into(),
        interpreter: None,
        grantor: Grantor::Client,
    }
}

fn grant(
    id: &str,
    recipient: &str,
    categories: &[Category],
    valid_from: i64,
    valid_until: Option<i64>,
    at: i64,
) -> ConsentEvent {
    ConsentEvent::ConsentGranted {
        grant_id: id.into(),
        recipient: recipient.into(),
        categories: set(categories),
        purpose: "joint plan".into(),
        valid_from: t(valid_from),
        valid_until: valid_until.map(t),
        obtained: obtained(),
        at: t(at),
    }
}

/// A grant in force from the moment it is recorded, with no end.
fn open_grant(id: &str, recipient: &str, categories: &[Category], at: i64) -> ConsentEvent {
    grant(id, recipient, categories, at, None, at)
}

fn withdraw(id: &str, at: i64) -> ConsentEvent {
    ConsentEvent::ConsentWithdrawn {
        grant_id: id.into(),
        reason: "client asked".into(),
        at: t(at),
    }
}

fn refuse(id: &str, agency: &str, categories: &[Category], at: i64) -> ConsentEvent {
    ConsentEvent::ConsentRefused {
        refusal_id: id.into(),
        agency: agency.into(),
        categories: set(categories),
        at: t(at),
    }
}

fn lift(id: &str, at: i64) -> ConsentEvent {
    ConsentEvent::RefusalLifted {
        refusal_id: id.into(),
        at: t(at),
    }
}

fn basis(
    id: &str,
    recipient: &str,
    categories: &[Category],
    valid_until: Option<i64>,
    at: i64,
) -> ConsentEvent {
    ConsentEvent::StatutoryBasisRecorded {
        basis_id: id.into(),
        recipient: recipient.into(),
        categories: set(categories),
        law_reference: "Lastensuojelulaki 25 §".into(),
        valid_until: valid_until.map(t),
        at: t(at),
    }
}

fn end_basis(id: &str, at: i64) -> ConsentEvent {
    ConsentEvent::StatutoryBasisEnded {
        basis_id: id.into(),
        at: t(at),
    }
}

fn state(events: &[ConsentEvent]) -> ConsentState {
    ConsentState::from_events(LEAD, events)
}

fn consent(id: &str) -> Decision {
    Decision::Allowed(Basis::Consent {
        grant_id: id.into(),
    })
}

fn statutory(id: &str) -> Decision {
    Decision::Allowed(Basis::Statutory {
        basis_id: id.into(),
    })
}

fn refused(id: &str) -> Decision {
    Decision::Denied(Denial::Refused {
        refusal_id: id.into(),
    })
}

fn withdrawn(id: &str) -> Decision {
    Decision::Denied(Denial::Withdrawn {
        grant_id: id.into(),
    })
}

fn expired(id: &str) -> Decision {
    Decision::Denied(Denial::Expired {
        grant_id: id.into(),
    })
}

const NONE: Decision = Decision::Denied(Denial::None);

#[test]
fn lead_agency_reads_every_category() {
    // Even a refusal naming the lead does not stop it: it keeps the file.
    let s = state(&[refuse("r1", LEAD, &Category::ALL, 0)]);
    for c in Category::ALL {
        for at in [t(-10), t(0), t(10)] {
            assert_eq!(decide(&s, LEAD, c, at), Decision::Allowed(Basis::Lead));
        }
    }
    assert_eq!(
        decide(&ConsentState::new(LEAD), LEAD, Health, t(0)),
        Decision::Allowed(Basis::Lead)
    );
}

#[test]
fn grant_allows_its_categories_only() {
    let s = state(&[open_grant("g1", A, &[Contact, Plan, Health], 0)]);
    for c in Category::ALL {
        let expected = if [Contact, Plan, Health].contains(&c) {
            consent("g1")
        } else {
            NONE
        };
        assert_eq!(decide(&s, A, c, t(1)), expected, "{c}");
    }
}

#[test]
fn grant_allows_only_its_recipient() {
    let s = state(&[open_grant("g1", A, &[Health], 0)]);
    assert_eq!(decide(&s, A, Health, t(0)), consent("g1"));
    assert_eq!(decide(&s, B, Health, t(0)), NONE);
}

#[test]
fn grant_is_not_in_force_before_valid_from() {
    let s = state(&[grant("g1", A, &[Health], 10, None, 0)]);
    assert_eq!(decide(&s, A, Health, t(0)), NONE);
    assert_eq!(decide(&s, A, Health, t(9)), NONE);
    assert_eq!(decide(&s, A, Health, t(10)), consent("g1"));
}

#[test]
fn grant_with_valid_from_in_the_past_starts_when_recorded() {
    let s = state(&[grant("g1", A, &[Health], -100, None, 5)]);
    assert_eq!(decide(&s, A, Health, t(4)), NONE);
    assert_eq!(decide(&s, A, Health, t(5)), consent("g1"));
}

#[test]
fn grant_expires_at_valid_until_with_reason_expired() {
    let s = state(&[grant("g1", A, &[Health], 0, Some(10), 0)]);
    assert_eq!(decide(&s, A, Health, t(9)), consent("g1"));
    assert_eq!(decide(&s, A, Health, t(10)), expired("g1"));
    assert_eq!(decide(&s, A, Health, t(1000)), expired("g1"));
}

#[test]
fn withdrawal_takes_effect_at_its_moment() {
    let s = state(&[open_grant("g1", A, &[Health], 0), withdraw("g1", 5)]);
    assert_eq!(decide(&s, A, Health, t(4)), consent("g1"));
    assert_eq!(decide(&s, A, Health, t(5)), withdrawn("g1"));
}

#[test]
fn withdrawn_grant_is_denied_with_reason_withdrawn() {
    let s = state(&[open_grant("g1", A, &[Health], 0), withdraw("g1", 5)]);
    assert_eq!(decide(&s, A, Health, t(100)), withdrawn("g1"));
    // Only for the grant's own reader and categories.
    assert_eq!(decide(&s, A, Legal, t(100)), NONE);
    assert_eq!(decide(&s, B, Health, t(100)), NONE);
}

#[test]
fn withdrawal_is_a_better_reason_than_expiry() {
    let s = state(&[
        grant("g1", A, &[Health], 0, Some(50), 0),
        grant("g2", A, &[Health], 0, None, 0),
        withdraw("g2", 10),
    ]);
    assert_eq!(decide(&s, A, Health, t(60)), withdrawn("g2"));
    // Before the expiry the other grant still allows.
    assert_eq!(decide(&s, A, Health, t(20)), consent("g1"));
}

#[test]
fn the_latest_withdrawal_explains_the_denial() {
    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        open_grant("g2", A, &[Health], 0),
        open_grant("g3", A, &[Health], 0),
        withdraw("g2", 10),
        withdraw("g1", 20),
        withdraw("g3", 20),
    ]);
    // g1 and g3 tie at 20: the larger id wins the tie.
    assert_eq!(decide(&s, A, Health, t(20)), withdrawn("g3"));
    assert_eq!(decide(&s, A, Health, t(15)), consent("g1"));
}

#[test]
fn the_latest_expiry_explains_the_denial() {
    let s = state(&[
        grant("g1", A, &[Health], 0, Some(30), 0),
        grant("g2", A, &[Health], 0, Some(20), 0),
    ]);
    assert_eq!(decide(&s, A, Health, t(25)), consent("g1"));
    assert_eq!(decide(&s, A, Health, t(30)), expired("g1"));
}

#[test]
fn the_smallest_id_allows_when_several_grants_do() {
    let s = state(&[
        open_grant("g2", A, &[Health], 0),
        open_grant("g1", A, &[Health], 1),
    ]);
    assert_eq!(decide(&s, A, Health, t(0)), consent("g2"));
    assert_eq!(decide(&s, A, Health, t(1)), consent("g1"));
}

#[test]
fn refusal_beats_an_earlier_grant() {
    let s = state(&[
        open_grant("g1", A, &[Health, Legal], 0),
        refuse("r1", A, &[Health], 5),
    ]);
    assert_eq!(decide(&s, A, Health, t(4)), consent("g1"));
    assert_eq!(decide(&s, A, Health, t(5)), refused("r1"));
    assert_eq!(decide(&s, A, Legal, t(5)), consent("g1"));
}

#[test]
fn refusal_beats_a_later_grant() {
    let s = state(&[
        refuse("r1", A, &[Health], 0),
        open_grant("g1", A, &[Health], 5),
    ]);
    assert_eq!(decide(&s, A, Health, t(10)), refused("r1"));
    // The refusal names one agency only.
    let s = state(&[
        refuse("r1", B, &[Health], 0),
        open_grant("g1", A, &[Health], 5),
    ]);
    assert_eq!(decide(&s, A, Health, t(10)), consent("g1"));
}

#[test]
fn lifted_refusal_lets_the_grant_through_again() {
    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        refuse("r1", A, &[Health], 5),
        lift("r1", 10),
    ]);
    assert_eq!(decide(&s, A, Health, t(9)), refused("r1"));
    assert_eq!(decide(&s, A, Health, t(10)), consent("g1"));
    // A lifted refusal leaves nothing behind when there is no grant.
    let s = state(&[refuse("r1", A, &[Health], 5), lift("r1", 10)]);
    assert_eq!(decide(&s, A, Health, t(10)), NONE);
}

#[test]
fn statutory_basis_allows_with_its_reference() {
    let s = state(&[basis("s1", A, &[Health, Legal], None, 0)]);
    assert_eq!(decide(&s, A, Health, t(0)), statutory("s1"));
    assert_eq!(decide(&s, A, Legal, t(0)), statutory("s1"));
    assert_eq!(decide(&s, A, Identity, t(0)), NONE);
    assert_eq!(decide(&s, B, Health, t(0)), NONE);
    assert_eq!(decide(&s, A, Health, t(-1)), NONE);
    assert_eq!(s.statutory["s1"].law_reference, "Lastensuojelulaki 25 §");
}

#[test]
fn statutory_basis_comes_before_consent() {
    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        basis("s1", A, &[Health], None, 0),
    ]);
    assert_eq!(decide(&s, A, Health, t(0)), statutory("s1"));
}

#[test]
fn statutory_basis_is_not_overridden_by_refusal() {
    let s = state(&[
        basis("s1", A, &[Health], None, 0),
        refuse("r1", A, &[Health], 5),
    ]);
    assert_eq!(decide(&s, A, Health, t(5)), statutory("s1"));
    let s = state(&[
        refuse("r1", A, &[Health], 0),
        basis("s1", A, &[Health], None, 5),
    ]);
    assert_eq!(decide(&s, A, Health, t(4)), refused("r1"));
    assert_eq!(decide(&s, A, Health, t(5)), statutory("s1"));
}

#[test]
fn ended_statutory_basis_no_longer_allows() {
    let s = state(&[
        open_grant("g1", A, &[Legal], 0),
        basis("s1", A, &[Health, Legal], None, 0),
        basis("s2", B, &[Health], Some(20), 0),
        end_basis("s1", 10),
    ]);
    assert_eq!(decide(&s, A, Health, t(9)), statutory("s1"));
    assert_eq!(decide(&s, A, Health, t(10)), NONE);
    // What the basis covered falls back to the client's consent.
    assert_eq!(decide(&s, A, Legal, t(10)), consent("g1"));
    // A basis that runs out ends the same way.
    assert_eq!(decide(&s, B, Health, t(19)), statutory("s2"));
    assert_eq!(decide(&s, B, Health, t(20)), NONE);
}

#[test]
fn nothing_recorded_means_none() {
    let s = ConsentState::new(LEAD);
    for c in Category::ALL {
        assert_eq!(decide(&s, A, c, t(0)), NONE);
    }
    assert_eq!(s.version(), 0);
    assert_eq!(s.last_change(), None);
}

#[test]
fn author_sees_own_items() {
    let s = state(&[
        refuse("r1", A, &[Health], 0),
        open_grant("g1", B, &[Legal], 0),
    ]);
    let author = Decision::Allowed(Basis::Author);
    assert_eq!(decide_item(&s, A, Health, A, t(1)), author);
    assert_eq!(decide_item(&s, A, Narrative, A, t(1)), author);
    // Someone else's item keeps the plain decision.
    assert_eq!(decide_item(&s, A, Health, B, t(1)), refused("r1"));
    assert_eq!(decide_item(&s, B, Health, A, t(1)), NONE);
    // An allowed read keeps its own basis.
    assert_eq!(decide_item(&s, B, Legal, B, t(1)), consent("g1"));
    assert_eq!(
        decide_item(&s, LEAD, Health, LEAD, t(1)),
        Decision::Allowed(Basis::Lead)
    );
}

#[test]
fn changes_are_in_force_from_the_moment_they_are_recorded() {
    let cases: Vec<(Vec<ConsentEvent>, Decision, Decision)> = vec![
        (vec![open_grant("g1", A, &[Health], 5)], NONE, consent("g1")),
        (
            vec![open_grant("g1", A, &[Health], 0), withdraw("g1", 5)],
            consent("g1"),
            withdrawn("g1"),
        ),
        (
            vec![
                open_grant("g1", A, &[Health], 0),
                refuse("r1", A, &[Health], 5),
            ],
            consent("g1"),
            refused("r1"),
        ),
        (
            vec![refuse("r1", A, &[Health], 0), lift("r1", 5)],
            refused("r1"),
            NONE,
        ),
        (
            vec![basis("s1", A, &[Health], None, 5)],
            NONE,
            statutory("s1"),
        ),
        (
            vec![basis("s1", A, &[Health], None, 0), end_basis("s1", 5)],
            statutory("s1"),
            NONE,
        ),
    ];
    for (events, before, from) in cases {
        let s = state(&events);
        let just_before = t(5) - Duration::nanoseconds(1);
        assert_eq!(decide(&s, A, Health, just_before), before, "{events:?}");
        assert_eq!(decide(&s, A, Health, t(5)), from, "{events:?}");
        assert_eq!(s.version_at(just_before), events.len() as i64 - 1);
        assert_eq!(s.version_at(t(5)), events.len() as i64);
    }
}

#[test]
fn version_counts_changes_and_version_at_counts_those_up_to_a_moment() {
    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        open_grant("g2", B, &[Health], 10),
        withdraw("g1", 10),
        withdraw("unknown", 20),
    ]);
    assert_eq!(s.version(), 4);
    assert_eq!(s.version_at(t(-1)), 0);
    assert_eq!(s.version_at(t(0)), 1);
    assert_eq!(s.version_at(t(9)), 1);
    assert_eq!(s.version_at(t(10)), 3);
    assert_eq!(s.version_at(t(20)), 4);
    assert_eq!(s.version_at(t(1000)), 4);
    assert_eq!(s.last_change(), Some(t(20)));
}

#[test]
fn clock_going_backwards_does_not_reorder_changes() {
    let s = state(&[
        refuse("r1", B, &[Legal], 10),
        // Recorded after the refusal, though its clock says earlier.
        open_grant("g1", A, &[Health], 5),
    ]);
    assert_eq!(s.changes, vec![t(10), t(10)]);
    assert_eq!(s.grants["g1"].granted_at, t(10));
    assert_eq!(decide(&s, A, Health, t(7)), NONE);
    assert_eq!(decide(&s, A, Health, t(10)), consent("g1"));
    assert_eq!(s.version_at(t(7)), 0);
    assert_eq!(s.version_at(t(10)), 2);

    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        withdraw("g1", 10),
        refuse("r1", A, &[Legal], 3),
    ]);
    assert_eq!(s.refusals["r1"].refused_at, t(10));
    assert_eq!(decide(&s, A, Legal, t(5)), NONE);
}

#[test]
fn withdrawing_an_unknown_grant_changes_only_the_version() {
    let before = state(&[
        open_grant("g1", A, &[Health], 0),
        refuse("r1", A, &[Legal], 0),
        basis("s1", B, &[Health], None, 0),
    ]);
    for unknown in [
        withdraw("g9", 5),
        lift("r9", 5),
        end_basis("s9", 5),
        // Ids live in their own kinds: a grant id does not lift a refusal.
        lift("g1", 5),
        withdraw("r1", 5),
        end_basis("g1", 5),
    ] {
        let mut after = before.clone();
        after.apply(&unknown);
        assert_eq!(after.version(), before.version() + 1);
        after.changes.pop();
        assert_eq!(after, before, "{unknown:?}");
    }
    // A withdrawal that came before its grant does not reach it.
    let s = state(&[withdraw("g1", 0), open_grant("g1", A, &[Health], 1)]);
    assert_eq!(decide(&s, A, Health, t(5)), consent("g1"));
}

#[test]
fn withdrawing_twice_keeps_the_first_moment() {
    let s = state(&[
        open_grant("g1", A, &[Health], 0),
        refuse("r1", A, &[Legal], 0),
        basis("s1", A, &[Identity], None, 0),
        withdraw("g1", 5),
        lift("r1", 5),
        end_basis("s1", 5),
        withdraw("g1", 9),
        lift("r1", 9),
        end_basis("s1", 9),
    ]);
    assert_eq!(s.grants["g1"].withdrawn_at, Some(t(5)));
    assert_eq!(s.refusals["r1"].lifted_at, Some(t(5)));
    assert_eq!(s.statutory["s1"].ended_at, Some(t(5)));
}

#[test]
fn matrix_has_every_category_for_every_agency() {
    let s = state(&[open_grant("g1", A, &[Health], 0)]);
    let m = matrix(&s, [LEAD, A, B], t(0));
    assert_eq!(m.len(), 3);
    for (agency, row) in &m {
        assert_eq!(row.len(), Category::ALL.len());
        for (c, d) in row {
            assert_eq!(*d, decide(&s, agency, *c, t(0)));
        }
    }
    assert_eq!(m[A][&Health], consent("g1"));
}

#[test]
fn category_round_trips_through_its_name() {
    let names: BTreeSet<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(names.len(), 10);
    for c in Category::ALL {
        let name = c.to_string();
        assert_eq!(name, c.as_str());
        assert_eq!(name.parse::<Category>(), Ok(c));
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(json, format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<Category>(&json).unwrap(), c);
    }
    assert_eq!(
        "Health".parse::<Category>(),
        Err(UnknownCategory("Health".into()))
    );
    assert_eq!(
        UnknownCategory("x".into()).to_string(),
        "unknown category \"x\""
    );
    assert!(serde_json::from_str::<Category>("\"finances\"").is_err());
}

#[test]
fn events_round_trip_through_json() {
    let events = vec![
        grant("g1", A, &[Health, Legal], -5, Some(100), 0),
        ConsentEvent::ConsentGranted {
            grant_id: "g2".into(),
            recipient: B.into(),
            categories: set(&[]),
            purpose: "ääkköset".into(),
            valid_from: t(0),
            valid_until: None,
            obtained: Obtained {
                method: Method::Verbal,
                language: "so".into(),
                interpreter: Some("tulkki".into()),
                grantor: Grantor::Guardian,
            },
            at: t(0) + Duration::milliseconds(1),
        },
        withdraw("g1", 1),
        refuse("r1", A, &Category::ALL, 2),
        lift("r1", 3),
        basis("s1", A, &[Health], Some(50), 4),
        basis("s2", A, &[Health], None, 4),
        end_basis("s1", 5),
    ];
    for e in &events {
        let json = serde_json::to_string(e).unwrap();
        let back: ConsentEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, e, "{json}");
        assert_eq!(back.at(), e.at());
        assert!(json.starts_with(&format!("{{\"{}\":", e.name())), "{json}");
    }
    let all = serde_json::to_string(&events).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<ConsentEvent>>(&all).unwrap(),
        events
    );
}

#[test]
fn obtained_defaults_to_the_client_without_interpreter() {
    let o: Obtained = serde_json::from_str(r#"{"method":"electronic","language":"sv"}"#).unwrap();
    assert_eq!(o.grantor, Grantor::Client);
    assert_eq!(o.interpreter, None);
    assert_eq!(
        serde_json::to_value(Grantor::Client).unwrap(),
        serde_json::json!("self")
    );
    assert!(serde_json::from_str::<Obtained>(
        r#"{"method":"written","language":"fi","signed":true}"#
    )
    .is_err());
}

#[test]
fn decision_word_and_source_id_for_every_variant() {
    let cases = [
        (Decision::Allowed(Basis::Lead), "lead", None, true),
        (statutory("s1"), "statutory", Some("s1"), true),
        (consent("g1"), "consent", Some("g1"), true),
        (Decision::Allowed(Basis::Author), "author", None, true),
        (refused("r1"), "refused", Some("r1"), false),
        (withdrawn("g2"), "withdrawn", Some("g2"), false),
        (expired("g3"), "expired", Some("g3"), false),
        (NONE, "none", None, false),
    ];
    for (decision, word, source, allowed) in cases {
        assert_eq!(decision.word(), word);
        assert_eq!(decision.source_id(), source, "{word}");
        assert_eq!(decision.allowed(), allowed, "{word}");
    }
}

#[test]
fn basis_and_denial_serialize_with_their_word_as_tag() {
    use serde_json::{json, to_value};
    let consent = Basis::Consent {
        grant_id: "g1".into(),
    };
    assert_eq!(
        to_value(consent).unwrap(),
        json!({"basis": "consent", "grant_id": "g1"})
    );
    assert_eq!(to_value(Basis::Lead).unwrap(), json!({"basis": "lead"}));
    let refusal = Denial::Refused {
        refusal_id: "r1".into(),
    };
    assert_eq!(
        to_value(refusal).unwrap(),
        json!({"reason": "refused", "refusal_id": "r1"})
    );
    assert_eq!(to_value(Denial::None).unwrap(), json!({"reason": "none"}));
}

// Recording a known id again must not rewrite history: the first stands.

#[test]
fn reused_refusal_id_keeps_the_earlier_refusal_in_history() {
    let events = [
        refuse("r1", A, &[Health], 0),
        lift("r1", 5),
        refuse("r1", A, &[Health], 10),
    ];
    let replay_up_to_2 = state(&events[..1]);
    assert_eq!(decide(&replay_up_to_2, A, Health, t(2)), refused("r1"));
    assert_eq!(decide(&state(&events), A, Health, t(2)), refused("r1"));
}

#[test]
fn reused_basis_id_keeps_the_earlier_basis_in_history() {
    let events = [
        basis("s1", A, &[Health], None, 0),
        basis("s1", B, &[Health], None, 10),
    ];
    let replay_up_to_2 = state(&events[..1]);
    assert_eq!(decide(&replay_up_to_2, A, Health, t(2)), statutory("s1"));
    assert_eq!(decide(&state(&events), A, Health, t(2)), statutory("s1"));
}
