//! Values every service shares, parsed once where they enter.
//!
//! A body field declared as [`AgencyId`] or [`Text<500>`](Text) cannot hold
//! anything else: serde refuses the request while parsing it, and the HTTP
//! layer names the field in its problem (`verkosto_http::parse_json`). So
//! services share these types instead of calling a `check_*` helper after
//! the fact, and no service borrows them from another service.
//!
//! Events keep plain strings: they are stored history, read as it was
//! written, and their schemas in `proto/` do not change with these rules.

mod id;
mod language;
mod refusal;
mod text;
pub mod time;

pub use id::{AgencyId, CaseId, UserId};
pub use language::Language;
pub use refusal::Refusal;
pub use text::{OptionalText, Text};

/// Why a value was refused, in words for the person who sent it. The field
/// is named by whoever parsed it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    fn new(reason: impl Into<String>) -> Invalid {
        Invalid(reason.into())
    }
}

/// Parses `value` as one of these types, naming `field` in the refusal.
/// For values that do not come through a body's serde: a CLI argument, a
/// field of a stored type checked by a domain rule.
pub fn parse_field<T>(field: &str, value: impl Into<String>) -> Result<T, Refusal>
where
    T: TryFrom<String, Error = Invalid>,
{
    T::try_from(value.into()).map_err(|e| Refusal::invalid(field, e.0))
}

/// Implements the traits a parsed string type shares: `Display`, `Deref`
/// to `str`, `AsRef<str>`, serde through `TryFrom<String>`, and a string
/// JSON Schema with `$extra` keywords.
macro_rules! string_type {
    ($name:ident, $schema_name:literal, { $($extra:tt)* }) => {
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl std::str::FromStr for $name {
            type Err = $crate::Invalid;
            fn from_str(s: &str) -> Result<$name, $crate::Invalid> {
                $name::try_from(s.to_string())
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let s = String::deserialize(d)?;
                $name::try_from(s).map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $schema_name.into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", $($extra)* })
            }
        }
    };
}
pub(crate) use string_type;
