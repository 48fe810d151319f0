//! Upcasters: old event shapes read as the current one.
//!
//! Events are never rewritten, so a log keeps every shape an event type ever
//! had. When a type's payload changes, its schema version goes up by one and
//! a function here turns the previous version's payload into the next one.
//! Stored events pass through [`upcast`] once, where rows are decoded
//! (`store::decode_row`), so aggregates, projections, the relay and auditors
//! all see the current shape. The stored text (`payload_text`) and
//! `schema_version` stay as written: they are what the hash chain covers.
//!
//! A version newer than this build knows cannot be read safely (a field may
//! mean something else now), so its payload is withheld (`null`): an
//! aggregate refuses to load it and every projection quarantines it with an
//! alert, instead of applying it half-understood.

use serde_json::Value;

/// Turns a payload of version `n` into version `n + 1`.
pub type Upcaster = fn(Value) -> Value;

/// `(event type, from version, upcaster)`. A type's current version is one
/// more than its highest `from version` here (1 when it has none).
pub const UPCASTERS: &[(&str, i64, Upcaster)] = &[("UserRegistered", 1, user_registered_v1)];

/// The schema version this build writes and reads for `event_type`.
pub fn current_version(event_type: &str) -> i64 {
    UPCASTERS
        .iter()
        .filter(|(t, _, _)| *t == event_type)
        .map(|(_, from, _)| from + 1)
        .max()
        .unwrap_or(1)
}

/// Why a stored payload cannot be read by this build.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpcastError {
    #[error("{event_type} v{version} is newer than this build reads (v{current})")]
    Future {
        /// The event's type name.
        event_type: String,
        /// The stored payload's schema version.
        version: i64,
        /// The newest schema version this build reads.
        current: i64,
    },
    #[error("{event_type} v{version} has no upcaster to v{}", version + 1)]
    Missing { event_type: String, version: i64 },
}

/// The payload of a stored `event_type` event of `version`, in the current
/// shape.
pub fn upcast(event_type: &str, version: i64, mut payload: Value) -> Result<Value, UpcastError> {
    let current = current_version(event_type);
    if version > current {
        return Err(UpcastError::Future {
            event_type: event_type.to_string(),
            version,
            current,
        });
    }
    // Versions below 1 were never written; read them as 1.
    for v in version.max(1)..current {
        let step = UPCASTERS
            .iter()
            .find(|(t, from, _)| *t == event_type && *from == v)
            .ok_or_else(|| UpcastError::Missing {
                event_type: event_type.to_string(),
                version: v,
            })?;
        payload = (step.2)(payload);
    }
    Ok(payload)
}

/// `UserRegistered` v1 → v2: `display_name` became `name`, the word the
/// agency event uses for the same thing. The API still says `display_name`.
fn user_registered_v1(mut payload: Value) -> Value {
    if let Some(body) = payload
        .get_mut("UserRegistered")
        .and_then(Value::as_object_mut)
    {
        if let Some(name) = body.remove("display_name") {
            body.insert("name".to_string(), name);
        }
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v1_user_registered_reads_as_v2() {
        let v1 = json!({ "UserRegistered": { "id": "u", "agency": "a", "roles": ["liaison"], "display_name": "U" } });
        let v2 = json!({ "UserRegistered": { "id": "u", "agency": "a", "roles": ["liaison"], "name": "U" } });
        assert_eq!(upcast("UserRegistered", 1, v1), Ok(v2.clone()));
        assert_eq!(upcast("UserRegistered", 2, v2.clone()), Ok(v2));
        assert_eq!(current_version("UserRegistered"), 2);
        assert_eq!(current_version("CaseOpened"), 1);
    }

    #[test]
    fn a_future_version_is_refused_and_a_broken_v1_passes_through_to_be_quarantined() {
        assert!(matches!(
            upcast("UserRegistered", 3, json!({})),
            Err(UpcastError::Future {
                version: 3,
                current: 2,
                ..
            })
        ));
        assert!(upcast("CaseOpened", 2, json!({})).is_err());
        // Not an object: left as it is, for the reader to refuse.
        assert_eq!(upcast("UserRegistered", 1, json!([1])), Ok(json!([1])));
    }

    #[test]
    fn every_type_has_an_unbroken_chain() {
        for (t, _, _) in UPCASTERS {
            for v in 1..current_version(t) {
                assert!(
                    UPCASTERS.iter().any(|(u, from, _)| u == t && *from == v),
                    "{t}: no upcaster from v{v}"
                );
            }
        }
    }
}
