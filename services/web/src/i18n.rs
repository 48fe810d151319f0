//! Every text of the web app, in Finnish, Swedish and English, from the
//! Fluent files in `i18n/`. The language comes from the `lang` cookie (set by
//! the switcher), else from `Accept-Language`, else Finnish.

use std::collections::HashMap;
use std::sync::OnceLock;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The languages of the app, in the order the switcher shows them.
pub const LANGUAGES: [&str; 3] = ["fi", "sv", "en"];

pub const SOURCES: [(&str, &str); 3] = [
    ("fi", include_str!("../i18n/fi.ftl")),
    ("sv", include_str!("../i18n/sv.ftl")),
    ("en", include_str!("../i18n/en.ftl")),
];

type Bundle = FluentBundle<FluentResource>;

fn bundles() -> &'static HashMap<&'static str, Bundle> {
    static BUNDLES: OnceLock<HashMap<&'static str, Bundle>> = OnceLock::new();
    BUNDLES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(lang, source)| {
                let id: LanguageIdentifier = lang.parse().expect("language id");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // Plain text around arguments: no Unicode isolation marks in HTML.
                bundle.set_use_isolating(false);
                let resource = FluentResource::try_new(source.to_string())
                    .unwrap_or_else(|(_, errors)| panic!("{lang}.ftl does not parse: {errors:?}"));
                bundle
                    .add_resource(resource)
                    .unwrap_or_else(|errors| panic!("{lang}.ftl: {errors:?}"));
                (*lang, bundle)
            })
            .collect()
    })
}

/// One language's texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lang(pub &'static str);

impl Lang {
    /// From a `lang` cookie value or an `Accept-Language` header.
    pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(l) = cookie.and_then(known) {
            return Lang(l);
        }
        if let Some(header) = accept_language {
            let mut ranked: Vec<(f32, &str)> = header
                .split(',')
                .filter_map(|part| {
                    let mut pieces = part.trim().split(';');
                    let tag = pieces.next()?.trim();
                    let q = pieces
                        .find_map(|p| p.trim().strip_prefix("q="))
                        .and_then(|q| q.parse().ok())
                        .unwrap_or(1.0);
                    Some((q, tag))
                })
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
            if let Some(l) = ranked
                .iter()
                .find_map(|(_, tag)| known(tag.split('-').next().unwrap_or("")))
            {
                return Lang(l);
            }
        }
        Lang("fi")
    }

    /// The text for `id`.
    pub fn t(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The text for `id` with arguments.
    pub fn ta(&self, id: &str, args: &[(&str, String)]) -> String {
        let mut fluent = FluentArgs::new();
        for (k, v) in args {
            fluent.set(*k, FluentValue::from(v.clone()));
        }
        self.format(id, Some(&fluent))
    }

    /// The text for `id` with a `count`, for plural forms.
    pub fn tn(&self, id: &str, count: u64) -> String {
        let mut fluent = FluentArgs::new();
        fluent.set("count", FluentValue::from(count));
        self.format(id, Some(&fluent))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let bundle = &bundles()[self.0];
        let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) else {
            tracing::error!(id, lang = self.0, "missing message");
            return id.to_string();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, args, &mut errors)
            .into_owned()
    }
}

fn known(tag: &str) -> Option<&'static str> {
    let tag = tag.to_ascii_lowercase();
    LANGUAGES.into_iter().find(|l| *l == tag)
}

/// Every message id of one language's file.
pub fn message_ids(lang: &str) -> Vec<String> {
    let source = SOURCES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, s)| *s)
        .unwrap_or("");
    source
        .lines()
        .filter(|line| !line.starts_with([' ', '#', '\t']) && line.contains(" ="))
        .filter_map(|line| line.split(" =").next())
        .map(|id| id.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_message_and_each_formats() {
        let reference = message_ids("en");
        assert!(reference.len() > 50, "{}", reference.len());
        for lang in LANGUAGES {
            let ids = message_ids(lang);
            for id in &reference {
                assert!(ids.contains(id), "{lang} lacks {id}");
            }
            for id in &ids {
                assert!(reference.contains(id), "{lang} has {id}, which en lacks");
                let text = Lang(bundles().get_key_value(lang).unwrap().0).t(id);
                assert_ne!(&text, id, "{lang}: {id} does not format");
            }
        }
    }

    #[test]
    fn the_language_comes_from_the_cookie_then_the_browser() {
        assert_eq!(Lang::choose(Some("sv"), Some("en")), Lang("sv"));
        assert_eq!(
            Lang::choose(None, Some("de-DE, en;q=0.8, sv;q=0.9")),
            Lang("sv")
        );
        assert_eq!(Lang::choose(None, Some("en-GB")), Lang("en"));
        assert_eq!(Lang::choose(Some("xx"), None), Lang("fi"));
    }
}

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Lang {
    /// A moment (RFC 3339) in Helsinki time, written the way the language
    /// writes it: `1.6.2030 klo 10.00`, `1.6.2030 kl. 10:00`, `1 June 2030, 10:00`.
    /// Anything that does not parse is shown as it is.
    pub fn moment(&self, rfc3339: &str) -> String {
        use chrono::{Datelike, Timelike};
        let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
            return rfc3339.to_string();
        };
        let local = verkosto_types::time::in_helsinki(t.with_timezone(&chrono::Utc));
        let (d, m, y, h, min) = (
            local.day(),
            local.month(),
            local.year(),
            local.hour(),
            local.minute(),
        );
        match self.0 {
            "fi" => format!("{d}.{m}.{y} klo {h}.{min:02}"),
            "sv" => format!("{d}.{m}.{y} kl. {h}:{min:02}"),
            _ => format!("{d} {} {y}, {h}:{min:02}", EN_MONTHS[m as usize - 1]),
        }
    }

    /// A date (`YYYY-MM-DD`), the language's way.
    pub fn date(&self, iso: &str) -> String {
        use chrono::Datelike;
        let Ok(date) = chrono::NaiveDate::parse_from_str(iso, "%Y-%m-%d") else {
            return iso.to_string();
        };
        let (d, m, y) = (date.day(), date.month(), date.year());
        match self.0 {
            "fi" | "sv" => format!("{d}.{m}.{y}"),
            _ => format!("{d} {} {y}", EN_MONTHS[m as usize - 1]),
        }
    }
}

#[cfg(test)]
mod date_tests {
    use super::*;

    #[test]
    fn moments_and_dates_are_written_the_languages_way_in_helsinki_time() {
        let t = "2030-06-01T07:00:00Z";
        assert_eq!(Lang("fi").moment(t), "1.6.2030 klo 10.00");
        assert_eq!(Lang("sv").moment(t), "1.6.2030 kl. 10:00");
        assert_eq!(Lang("en").moment(t), "1 June 2030, 10:00");
        assert_eq!(
            Lang("en").moment("2030-12-24T10:30:00Z"),
            "24 December 2030, 12:30"
        );
        assert_eq!(Lang("fi").date("2030-01-10"), "10.1.2030");
        assert_eq!(Lang("en").date("2030-01-10"), "10 January 2030");
        assert_eq!(Lang("en").moment("soon"), "soon");
    }
}
