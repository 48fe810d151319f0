//! How long a closed case is kept: `--retention`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, Months, Utc};

/// How long a closed case is kept: years, months and days, as a
/// deployment's law states it (`6y`, `18mo`, `90d`, or a sum: `2y6mo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Whole months (a year is twelve): calendar months, not 30 days.
    pub months: u32,
    /// Days on top.
    pub days: u32,
}

impl Default for Period {
    /// Six years: the longest period Finnish and Swedish social and health
    /// care law asks of most client records of adults. A deployment whose
    /// law differs says so with `--retention`.
    fn default() -> Period {
        Period {
            months: 72,
            days: 0,
        }
    }
}

impl Period {
    /// When a case closed at `closed_at` is due for erasure.
    pub fn after(&self, closed_at: DateTime<Utc>) -> DateTime<Utc> {
        closed_at
            .checked_add_months(Months::new(self.months))
            .and_then(|t| t.checked_add_days(Days::new(self.days.into())))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Period, String> {
        let wrong = || {
            format!(
                "`{text}` is not a retention period like 6y, 18mo or 90d (years, months, days; \
                 parts may be summed: 2y6mo)"
            )
        };
        let mut period = Period { months: 0, days: 0 };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(wrong());
        }
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(wrong)?;
            let n: u32 = rest[..digits].parse().map_err(|_| wrong())?;
            rest = &rest[digits..];
            let unit = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let months = match &rest[..unit] {
                "y" => n.checked_mul(12),
                "mo" => Some(n),
                "d" => {
                    period.days = period.days.checked_add(n).ok_or_else(wrong)?;
                    Some(0)
                }
                _ => None,
            };
            period.months = months
                .and_then(|m| period.months.checked_add(m))
                .ok_or_else(wrong)?;
            rest = &rest[unit..];
        }
        // Longer than a century is a typo, and none is no retention at all.
        if period.months == 0 && period.days == 0 || period.months > 1200 {
            return Err(wrong());
        }
        Ok(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (years, months) = (self.months / 12, self.months % 12);
        let parts = [(years, "y"), (months, "mo"), (self.days, "d")];
        for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
            write!(f, "{n}{unit}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use verkosto_eventlog::format_time;

    fn parse_time(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn periods_read_as_the_law_states_them() {
        let p = |s: &str| s.parse::<Period>();
        assert_eq!(
            p("6y"),
            Ok(Period {
                months: 72,
                days: 0
            })
        );
        assert_eq!(
            p("18mo"),
            Ok(Period {
                months: 18,
                days: 0
            })
        );
        assert_eq!(
            p("2y6mo10d"),
            Ok(Period {
                months: 30,
                days: 10
            })
        );
        assert_eq!(p("90d").unwrap().to_string(), "90d");
        assert_eq!(p("2y6mo").unwrap().to_string(), "2y6mo");
        for wrong in [
            "",
            "6",
            "y",
            "6x",
            "0y",
            "6 y",
            "-1y",
            "101y",
            "99999999999d",
        ] {
            let error = p(wrong).unwrap_err();
            assert!(error.contains("6y, 18mo or 90d"), "{wrong}: {error}");
        }
    }

    #[test]
    fn a_period_counts_calendar_months_from_closing() {
        let closed = parse_time("2024-02-29T12:00:00.000000Z").unwrap();
        let six_years = Period::default();
        // No 29 February in 2030: the end of the month.
        assert_eq!(
            format_time(six_years.after(closed)),
            "2030-02-28T12:00:00.000000Z"
        );
        let ninety_days: Period = "90d".parse().unwrap();
        assert_eq!(
            format_time(ninety_days.after(closed)),
            "2024-05-29T12:00:00.000000Z"
        );
    }
}
