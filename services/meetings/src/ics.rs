//! A hand-written RFC 5545 writer, just enough for a read-only feed:
//! CRLF line ends, lines folded at 75 octets, TEXT values escaped.

use chrono::{DateTime, Utc};

/// One meeting as a calendar event. Holds nothing but what a calendar
/// client may show: the summary is built from the case's pseudonym.
#[derive(Clone, Debug, PartialEq)]
pub struct CalendarEvent {
    /// The event's UID, `<meeting id>@verkosto`: the same through every
    /// change, so calendars update the event instead of adding one.
    pub uid: String,
    /// Raised by each reschedule and by a cancellation.
    pub sequence: u32,
    /// When this version of the event was made.
    pub stamp: DateTime<Utc>,
    /// When the meeting starts.
    pub starts_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// What calendars show as its title: never the meeting's own title, which
    /// may hold client data.
    pub summary: String,
    /// Whether it is cancelled: the event stays, as STATUS:CANCELLED.
    pub cancelled: bool,
    /// Only when the reader may see where the meeting is.
    pub location: Option<String>,
}

/// The whole feed: one VCALENDAR with one VEVENT per meeting.
pub fn calendar(name: &str, events: &[CalendarEvent]) -> String {
    let mut out = String::new();
    let mut line = |text: &str| {
        out.push_str(&fold(text));
        out.push_str("\r\n");
    };
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Verkosto//Meetings//EN");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!("X-WR-CALNAME:{}", escape_text(name)));
    for e in events {
        line("BEGIN:VEVENT");
        line(&format!("UID:{}", escape_text(&e.uid)));
        line(&format!("SEQUENCE:{}", e.sequence));
        line(&format!("DTSTAMP:{}", utc(e.stamp)));
        line(&format!("DTSTART:{}", utc(e.starts_at)));
        line(&format!("DTEND:{}", utc(e.ends_at)));
        line(&format!("SUMMARY:{}", escape_text(&e.summary)));
        if let Some(location) = &e.location {
            line(&format!("LOCATION:{}", escape_text(location)));
        }
        line(if e.cancelled {
            "STATUS:CANCELLED"
        } else {
            "STATUS:CONFIRMED"
        });
        line("TRANSP:OPAQUE");
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

/// A UTC DATE-TIME: `20261201T100000Z`.
pub fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and
/// newlines. Other control characters have no escape and are dropped.
pub fn escape_text(text: &str) -> String {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(normalised.len());
    for c in normalised.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The longest line in octets, without the CRLF (RFC 5545 3.1).
const MAX_OCTETS: usize = 75;

/// Folds one content line: no physical line longer than 75 octets, each
/// continuation starting with one space, never splitting a UTF-8 character.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / MAX_OCTETS * 3);
    let mut used = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if used + len > MAX_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape_text("a\\b; c, d\nnext\r\nline"),
            "a\\\\b\\; c\\, d\\nnext\\nline"
        );
        assert_eq!(escape_text("bell\u{7}"), "bell");
    }

    #[test]
    fn short_lines_are_not_folded() {
        let line = "X".repeat(75);
        assert_eq!(fold(&line), line);
    }

    #[test]
    fn long_lines_fold_at_75_octets() {
        let line = format!("SUMMARY:{}", "x".repeat(200));
        let folded = fold(&line);
        let physical: Vec<&str> = folded.split("\r\n").collect();
        assert!(physical.iter().all(|l| l.len() <= 75), "{physical:?}");
        assert_eq!(physical[0].len(), 75);
        assert!(physical[1..].iter().all(|l| l.starts_with(' ')));
        // Unfolding gives the line back.
        assert_eq!(folded.replace("\r\n ", ""), line);
    }

    #[test]
    fn folding_never_splits_a_character() {
        // 'ä' is two octets: an odd start makes a split fall mid-character.
        let line = format!("LOCATION:{}", "ä".repeat(100));
        let folded = fold(&line);
        for physical in folded.split("\r\n") {
            assert!(physical.len() <= 75);
            assert!(std::str::from_utf8(physical.as_bytes()).is_ok());
        }
        assert_eq!(folded.replace("\r\n ", ""), line);
    }

    #[test]
    fn a_calendar_has_crlf_lines_and_one_event_per_meeting() {
        let event = CalendarEvent {
            uid: "meeting-1@verkosto".into(),
            sequence: 2,
            stamp: t("2026-11-01T09:00:00Z"),
            starts_at: t("2026-12-01T10:00:00Z"),
            ends_at: t("2026-12-01T11:00:00Z"),
            summary: "Network meeting A-1027".into(),
            cancelled: true,
            location: Some("Room 3, Main St. 1; Helsinki".into()),
        };
        let ics = calendar("Verkosto ngo-support", &[event]);
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'));
        for expected in [
            "UID:meeting-1@verkosto",
            "SEQUENCE:2",
            "DTSTART:20261201T100000Z",
            "DTEND:20261201T110000Z",
            "STATUS:CANCELLED",
            "LOCATION:Room 3\\, Main St. 1\\; Helsinki",
        ] {
            assert!(ics.contains(&format!("\r\n{expected}\r\n")), "{expected}");
        }
        assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
    }
}
