//! Local time in Europe/Helsinki, the agencies' default time zone.
//!
//! Written by hand rather than pulling a time zone database: Finland follows
//! the EU rule, EET (+02:00) in winter and EEST (+03:00) in summer, switching
//! at 01:00 UTC on the last Sunday of March and of October.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Utc, Weekday};

/// The IANA name of the zone the local times are given in.
pub const HELSINKI: &str = "Europe/Helsinki";

const EET: i32 = 2 * 3600;
const EEST: i32 = 3 * 3600;

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .expect("a valid month");
    let mut day = first_of_next - Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day -= Duration::days(1);
    }
    day
}

/// The moment (UTC) of the EU switch on the last Sunday of `month`.
fn switch_at(year: i32, month: u32) -> DateTime<Utc> {
    last_sunday(year, month)
        .and_hms_opt(1, 0, 0)
        .expect("01:00 exists")
        .and_utc()
}

/// Helsinki's UTC offset at `at`.
pub fn helsinki_offset(at: DateTime<Utc>) -> FixedOffset {
    let summer = at >= switch_at(at.year(), 3) && at < switch_at(at.year(), 10);
    FixedOffset::east_opt(if summer { EEST } else { EET }).expect("a valid offset")
}

/// `at` as a Helsinki wall-clock time, with its offset.
pub fn in_helsinki(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&helsinki_offset(at))
}

/// The moment a Helsinki wall-clock time names (as a form's
/// `datetime-local` gives it). In the hour the clocks go back, the earlier
/// of the two moments; in the hour that is skipped, the moment an hour on.
pub fn from_helsinki_local(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    for offset in [EEST, EET] {
        let candidate = local.and_utc() - chrono::Duration::seconds(offset as i64);
        if helsinki_offset(candidate).local_minus_utc() == offset {
            return candidate;
        }
    }
    local.and_utc() - chrono::Duration::seconds(EET as i64)
}

/// RFC 3339 in Helsinki local time, e.g. `2026-12-01T12:00:00+02:00`.
pub fn helsinki_rfc3339(at: DateTime<Utc>) -> String {
    in_helsinki(at).to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn wall_clock_times_go_back_to_the_moment_they_name() {
        let local = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(
            from_helsinki_local(local("2026-12-01T12:00")),
            utc("2026-12-01T10:00:00Z")
        );
        assert_eq!(
            from_helsinki_local(local("2026-07-01T12:00")),
            utc("2026-07-01T09:00:00Z")
        );
        for t in ["2026-03-29T00:30", "2026-10-25T05:00", "2026-06-01T23:59"] {
            let at = from_helsinki_local(local(t));
            assert_eq!(in_helsinki(at).naive_local(), local(t), "{t}");
        }
    }

    #[test]
    fn last_sundays_are_found() {
        assert_eq!(
            last_sunday(2026, 3),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        assert_eq!(
            last_sunday(2026, 10),
            NaiveDate::from_ymd_opt(2026, 10, 25).unwrap()
        );
        // A month that ends on a Sunday.
        assert_eq!(
            last_sunday(2027, 10),
            NaiveDate::from_ymd_opt(2027, 10, 31).unwrap()
        );
        assert_eq!(
            last_sunday(2026, 12),
            NaiveDate::from_ymd_opt(2026, 12, 27).unwrap()
        );
    }

    #[test]
    fn summer_time_begins_at_one_utc_on_the_last_sunday_of_march() {
        assert_eq!(
            helsinki_rfc3339(utc("2026-03-29T00:59:59Z")),
            "2026-03-29T02:59:59+02:00"
        );
        assert_eq!(
            helsinki_rfc3339(utc("2026-03-29T01:00:00Z")),
            "2026-03-29T04:00:00+03:00"
        );
        // The day before is still winter time at the same hour.
        assert_eq!(
            helsinki_rfc3339(utc("2026-03-28T12:00:00Z")),
            "2026-03-28T14:00:00+02:00"
        );
    }

    #[test]
    fn summer_time_ends_at_one_utc_on_the_last_sunday_of_october() {
        assert_eq!(
            helsinki_rfc3339(utc("2026-10-25T00:59:59Z")),
            "2026-10-25T03:59:59+03:00"
        );
        // 03:00 local happens twice; the second time is winter time.
        assert_eq!(
            helsinki_rfc3339(utc("2026-10-25T01:00:00Z")),
            "2026-10-25T03:00:00+02:00"
        );
    }

    #[test]
    fn midwinter_and_midsummer() {
        assert_eq!(
            helsinki_rfc3339(utc("2026-12-01T10:00:00Z")),
            "2026-12-01T12:00:00+02:00"
        );
        assert_eq!(
            helsinki_rfc3339(utc("2026-06-24T10:00:00Z")),
            "2026-06-24T13:00:00+03:00"
        );
    }
}
