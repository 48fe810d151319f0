//! An event's type name and schema version, derived instead of written by
//! hand: the name is the variant's name as serde writes it (so the stored
//! `event_type` and the payload's tag cannot disagree), the version is what
//! the upcaster table says is current for that name (so the first upcaster
//! of a type moves every new event of it to the new version).

use serde::Serialize;

/// The serde name of `event`'s variant: the single key of an externally
/// tagged enum's JSON, or the string of a unit variant.
pub fn event_type_of<E: Serialize>(event: &E) -> String {
    match serde_json::to_value(event) {
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => {
            map.into_iter().next().map(|(k, _)| k).unwrap_or_default()
        }
        Ok(serde_json::Value::String(unit)) => unit,
        // Events are enums of struct variants; anything else is a bug the
        // append's own serialization reports.
        _ => String::new(),
    }
}

/// Implements cqrs-es's `DomainEvent` for an event enum: the type from
/// serde ([`event_type_of`]), the version from the upcaster table
/// ([`current_version`](crate::current_version)); and
/// [`PersonalData`](crate::PersonalData): the fields each type seals,
///
/// ```ignore
/// domain_event!(MeetingEvent, sealed {
///     MeetingScheduled: ["title", "location", "agenda[]"],
///     RsvpGiven: ["comment"],
/// });
/// ```
///
/// (the variant names must be the serde names), or none: `domain_event!(AgencyEvent)`.
#[macro_export]
macro_rules! domain_event {
    ($event:ty) => {
        $crate::domain_event!($event, sealed {});
    };
    ($event:ty, sealed { $($variant:ident : [$($path:literal),* $(,)?]),* $(,)? }) => {
        impl $crate::PersonalData for $event {
            const SEALED: &'static [(&'static str, &'static [&'static str])] =
                &[$((stringify!($variant), &[$($path),*])),*];
        }
        impl $crate::__cqrs_es::DomainEvent for $event {
            fn event_type(&self) -> String {
                $crate::event_type_of(self)
            }
            fn event_version(&self) -> String {
                $crate::current_version(&$crate::event_type_of(self)).to_string()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use cqrs_es::DomainEvent;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    enum Example {
        // Has an upcaster (v1 -> v2) in the log's table.
        UserRegistered {
            name: String,
        },
        #[serde(rename = "SomethingRenamed")]
        Something {
            n: i64,
        },
        Unit,
    }
    crate::domain_event!(Example);

    #[test]
    fn the_type_is_the_variants_serde_name() {
        let e = Example::UserRegistered { name: "x".into() };
        assert_eq!(e.event_type(), "UserRegistered");
        assert_eq!(Example::Something { n: 1 }.event_type(), "SomethingRenamed");
        assert_eq!(Example::Unit.event_type(), "Unit");
    }

    #[test]
    fn a_type_with_an_upcaster_reports_its_current_version() {
        for (event_type, from, _) in crate::UPCASTERS {
            assert!(crate::current_version(event_type) > *from);
        }
        let e = Example::UserRegistered { name: "x".into() };
        assert_eq!(
            e.event_version(),
            crate::current_version("UserRegistered").to_string()
        );
        assert_ne!(
            e.event_version(),
            "1",
            "UserRegistered has an upcaster from v1"
        );
        assert_eq!(Example::Something { n: 1 }.event_version(), "1");
    }
}
