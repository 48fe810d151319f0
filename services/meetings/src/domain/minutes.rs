//! The minutes' rules: what saved minutes may contain, and how published
//! revisions follow each other and are approved.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use verkosto_types::Refusal;

use super::commands::Network;
use super::events::Minutes;

/// A published revision of the minutes; earlier ones are kept.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// Its number, from 1.
    pub revision: u32,
    /// The minutes as published: a correction is a new revision.
    pub minutes: Minutes,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// Agency → when it approved this revision.
    pub approvals: BTreeMap<String, DateTime<Utc>>,
}

/// The rules of the minutes' content that need the network.
pub(super) fn check_minutes(minutes: &Minutes, network: &Network) -> Result<(), Refusal> {
    let mut ids = BTreeSet::new();
    for (i, item) in minutes.action_items.iter().enumerate() {
        if item.id.trim().is_empty() {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].id"),
                "must not be empty",
            ));
        }
        if !ids.insert(item.id.as_str()) {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].id"),
                format!("{} is used twice", item.id),
            ));
        }
        if !network.members.contains(&item.assignee) {
            return Err(Refusal::invalid(
                &format!("action_items[{i}].assignee"),
                format!("{} is not a member of the case's network", item.assignee),
            ));
        }
    }
    Ok(())
}

/// The saved minutes to publish as the next revision, and its number:
/// something must be saved, and differ from the latest revision.
pub(super) fn next_revision<'a>(
    draft: Option<&'a Minutes>,
    revisions: &[Revision],
) -> Result<(&'a Minutes, u32), Refusal> {
    let Some(draft) = draft else {
        return Err(Refusal::conflict("minutes: nothing has been saved yet"));
    };
    if revisions.last().is_some_and(|r| &r.minutes == draft) {
        return Err(Refusal::conflict(
            "minutes: the saved minutes are already published; save a correction first",
        ));
    }
    Ok((draft, revisions.len() as u32 + 1))
}

/// The revision an agency's approval is for: the latest one. `None` when
/// the agency has approved it already.
pub(super) fn to_approve<'a>(
    revisions: &'a [Revision],
    agency: &str,
) -> Result<Option<&'a Revision>, Refusal> {
    let Some(latest) = revisions.last() else {
        return Err(Refusal::conflict("minutes: nothing has been published yet"));
    };
    Ok((!latest.approvals.contains_key(agency)).then_some(latest))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{ApproveMinutes, Meeting, MeetingCommand, MeetingEvent, PublishMinutes};
    use cqrs_es::Aggregate;

    #[test]
    fn action_items_have_unique_ids_and_member_assignees() {
        let twice = minutes(&[("a1", HEALTH), ("a1", POLICE)]);
        assert_eq!(
            field_of(run(vec![scheduled()], save(twice))),
            (422, "action_items[1].id".into())
        );
        let outsider = minutes(&[("a1", "migri")]);
        assert_eq!(
            field_of(run(vec![scheduled()], save(outsider))),
            (422, "action_items[0].assignee".into())
        );
    }

    #[test]
    fn publishing_makes_revisions_and_keeps_the_earlier_ones() {
        let first = minutes(&[("a1", HEALTH), ("a2", POLICE), ("a3", LEAD)]);
        let saved = MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: first.clone(),
            at: now(),
        };
        let publish = MeetingCommand::PublishMinutes(PublishMinutes {
            by: LEAD.into(),
            at: now(),
        });
        let published = run(vec![scheduled(), saved.clone()], publish.clone()).unwrap();
        let MeetingEvent::MinutesPublished {
            revision,
            action_items,
            ..
        } = &published[0]
        else {
            panic!("{published:?}")
        };
        assert_eq!((*revision, action_items.len()), (1, 3));
        // Publishing the same minutes again is refused; a correction is revision 2.
        let mut given = vec![scheduled(), saved, published[0].clone()];
        assert_eq!(field_of(run(given.clone(), publish.clone())).0, 409);
        let corrected = minutes(&[("a1", HEALTH)]);
        given.push(MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: corrected.clone(),
            at: now(),
        });
        let second = run(given.clone(), publish).unwrap();
        assert!(matches!(
            second[0],
            MeetingEvent::MinutesPublished { revision: 2, .. }
        ));
        let mut meeting = Meeting::default();
        for e in given.into_iter().chain(second) {
            meeting.apply(e);
        }
        assert_eq!(meeting.revisions.len(), 2);
        assert_eq!(meeting.revisions[0].minutes, first);
        assert_eq!(meeting.revisions[1].minutes, corrected);
    }

    #[test]
    fn participants_approve_the_latest_revision() {
        let saved = MeetingEvent::MinutesSaved {
            meeting_id: "meeting-1".into(),
            minutes: minutes(&[]),
            at: now(),
        };
        let published = MeetingEvent::MinutesPublished {
            meeting_id: "meeting-1".into(),
            case_id: "case-1".into(),
            lead_agency: LEAD.into(),
            revision: 1,
            action_items: vec![],
            at: now(),
        };
        let approve = |agency: &str| {
            MeetingCommand::ApproveMinutes(ApproveMinutes {
                agency: agency.into(),
                at: now(),
            })
        };
        assert_eq!(field_of(run(vec![scheduled()], approve(HEALTH))).0, 409);
        let given = vec![scheduled(), saved, published];
        assert_eq!(
            run(given.clone(), approve(HEALTH)).unwrap(),
            vec![MeetingEvent::MinutesApproved {
                meeting_id: "meeting-1".into(),
                revision: 1,
                agency: HEALTH.into(),
                at: now(),
            }]
        );
        assert_eq!(field_of(run(given, approve(POLICE))).0, 403);
    }
}
