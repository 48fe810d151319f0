//! What the domain's unit tests share: agencies, times, a network, a
//! scheduled meeting, and running a command on given events.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::test::TestFramework;
use verkosto_http::Problem;
use verkosto_policy::Category;

use super::*;

pub const LEAD: &str = "assistance-system";
pub const HEALTH: &str = "health-hus";
pub const POLICE: &str = "police-helsinki";
pub const DAY: Duration = Duration::from_secs(24 * 3600);

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub fn now() -> DateTime<Utc> {
    t("2026-11-01T10:00:00Z")
}

pub fn network() -> Network {
    Network {
        case_id: "case-1".into(),
        lead: LEAD.into(),
        members: [LEAD, HEALTH, POLICE].map(String::from).into(),
    }
}

pub fn schedule(starts_at: &str, interpreter: bool, reason: Option<&str>) -> MeetingCommand {
    MeetingCommand::Schedule(schedule_meeting(starts_at, interpreter, reason))
}

pub fn schedule_meeting(
    starts_at: &str,
    interpreter: bool,
    reason: Option<&str>,
) -> ScheduleMeeting {
    let starts_at = t(starts_at);
    ScheduleMeeting {
        meeting_id: "meeting-1".into(),
        network: network(),
        by: LEAD.into(),
        title: "Network meeting".into(),
        starts_at,
        ends_at: starts_at + chrono::Duration::hours(1),
        location: Some("Room 3".into()),
        participants: vec![HEALTH.into()],
        client_attends: true,
        interpreter_language: interpreter.then(|| "ro".into()),
        agenda: vec!["Housing".into()],
        lead_time_override_reason: reason.map(String::from),
        lead_time: DAY,
        at: now(),
    }
}

pub fn scheduled() -> MeetingEvent {
    let starts_at = t("2026-11-05T10:00:00Z");
    MeetingEvent::MeetingScheduled {
        meeting_id: "meeting-1".into(),
        case_id: "case-1".into(),
        lead_agency: LEAD.into(),
        title: "Network meeting".into(),
        starts_at,
        ends_at: starts_at + chrono::Duration::hours(1),
        location: Some("Room 3".into()),
        participants: vec![LEAD.into(), HEALTH.into()],
        client_attends: true,
        interpreter_language: Some("ro".into()),
        agenda: vec!["Housing".into()],
        lead_time_override_reason: None,
        at: now(),
    }
}

pub fn run(
    given: Vec<MeetingEvent>,
    command: MeetingCommand,
) -> Result<Vec<MeetingEvent>, Problem> {
    TestFramework::<Meeting>::with(())
        .given(given)
        .when(command)
        .inspect_result()
        .map_err(Problem::from)
}

pub fn field_of(result: Result<Vec<MeetingEvent>, Problem>) -> (u16, String) {
    let p = result.unwrap_err();
    (p.status, p.field.unwrap_or_default())
}

pub fn minutes(items: &[(&str, &str)]) -> Minutes {
    Minutes {
        notes: vec![Note {
            category: Category::Health,
            text: "Health check done".into(),
        }],
        decisions: vec!["Meet again in December".into()],
        action_items: items
            .iter()
            .map(|(id, assignee)| ActionItem {
                id: id.to_string(),
                description: "Do it".into(),
                category: Category::Health,
                assignee: assignee.to_string(),
                due: None,
            })
            .collect(),
    }
}

pub fn save(m: Minutes) -> MeetingCommand {
    MeetingCommand::SaveMinutes(SaveMinutes {
        by: LEAD.into(),
        network: network(),
        minutes: m,
        at: now(),
    })
}
