//! The time rules of scheduling and rescheduling: not in the past, an end
//! after the start, the interpreter lead time unless a reason is given, and
//! nothing moved or cancelled once it has been held.

use std::time::Duration;

use chrono::{DateTime, Utc};
use verkosto_types::Refusal;

fn hours(d: Duration) -> u64 {
    d.as_secs().div_ceil(3600)
}

/// The time rules shared by scheduling and rescheduling.
pub(super) fn check_times(
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    interpreter_needed: bool,
    override_reason: Option<&str>,
    lead_time: Duration,
    now: DateTime<Utc>,
) -> Result<(), Refusal> {
    if starts_at < now {
        return Err(Refusal::invalid("starts_at", "must not be in the past"));
    }
    if ends_at <= starts_at {
        return Err(Refusal::invalid("ends_at", "must be after starts_at"));
    }
    let lead = chrono::Duration::from_std(lead_time).unwrap_or(chrono::Duration::MAX);
    let too_soon = now.checked_add_signed(lead).is_some_and(|t| starts_at < t);
    let has_reason = override_reason.is_some_and(|r| !r.trim().is_empty());
    if interpreter_needed && too_soon && !has_reason {
        return Err(Refusal::invalid(
            "starts_at",
            format!(
                "a meeting with an interpreter must be set at least {} h ahead (the interpreter lead time); \
                 to set it sooner, give lead_time_override_reason",
                hours(lead_time)
            ),
        ));
    }
    Ok(())
}

/// An override reason only counts when it says something.
pub(super) fn override_reason(r: Option<String>) -> Option<String> {
    r.filter(|r| !r.trim().is_empty())
}

/// A meeting whose attendance is recorded has been held: it is neither
/// moved nor cancelled any more.
pub(super) fn check_not_held(attendance_recorded: bool) -> Result<(), Refusal> {
    if attendance_recorded {
        Err(Refusal::conflict("the meeting has been held"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{CancelMeeting, MeetingCommand, MeetingEvent, RescheduleMeeting};

    #[test]
    fn an_interpreter_needs_the_lead_time_unless_a_reason_is_given() {
        let soon = "2026-11-01T20:00:00Z";
        let refused = run(vec![], schedule(soon, true, None)).unwrap_err();
        assert_eq!(refused.status, 422);
        assert!(
            refused.detail.starts_with("starts_at: "),
            "{}",
            refused.detail
        );
        assert!(refused.detail.contains("24 h"), "{}", refused.detail);
        // A blank reason is no reason.
        assert_eq!(
            field_of(run(vec![], schedule(soon, true, Some("  ")))).1,
            "starts_at"
        );
        let events = run(vec![], schedule(soon, true, Some("court date tomorrow"))).unwrap();
        let MeetingEvent::MeetingScheduled {
            lead_time_override_reason,
            ..
        } = &events[0]
        else {
            panic!("{events:?}")
        };
        assert_eq!(
            lead_time_override_reason.as_deref(),
            Some("court date tomorrow")
        );
        // Without an interpreter, soon is fine.
        assert!(run(vec![], schedule(soon, false, None)).is_ok());
    }

    #[test]
    fn rescheduling_and_cancelling_raise_the_sequence() {
        let reschedule = MeetingCommand::Reschedule(RescheduleMeeting {
            by: LEAD.into(),
            starts_at: t("2026-11-06T10:00:00Z"),
            ends_at: t("2026-11-06T11:00:00Z"),
            reason: "room taken".into(),
            lead_time_override_reason: None,
            lead_time: DAY,
            at: now(),
        });
        let events = run(vec![scheduled()], reschedule.clone()).unwrap();
        assert!(matches!(
            events[0],
            MeetingEvent::MeetingRescheduled { sequence: 1, .. }
        ));
        let cancelled = run(
            vec![scheduled(), events[0].clone()],
            MeetingCommand::Cancel(CancelMeeting {
                by: LEAD.into(),
                reason: "client moved".into(),
                at: now(),
            }),
        )
        .unwrap();
        assert!(matches!(
            cancelled[0],
            MeetingEvent::MeetingCancelled { sequence: 2, .. }
        ));
        // Nothing more happens to a cancelled meeting.
        let again = run(
            vec![scheduled(), events[0].clone(), cancelled[0].clone()],
            reschedule,
        );
        assert_eq!(field_of(again).0, 409);
    }
}
