//! Free text from people, bounded.

use std::borrow::Cow;

use crate::Invalid;

/// Free text of at most `MAX` characters: not blank, no control characters
/// but newline and tab, no bidirectional embeddings, overrides or isolates.
/// Those make text display in another order than it is stored ("Trojan
/// Source"), e.g. a name that reads as someone else's in a list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<const MAX: usize>(String);

/// Checks `text` as [`Text`] does.
pub fn check(text: &str, max: usize) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(Invalid::new("must not be empty"));
    }
    if text.chars().count() > max {
        return Err(Invalid(format!("must be at most {max} characters")));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(Invalid::new("must not contain control characters"));
    }
    if text
        .chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(Invalid::new(
            "must not contain bidirectional override characters",
        ));
    }
    Ok(())
}

/// What [`check`] lets through, as a JSON Schema pattern: something
/// besides spaces, no control characters but newline and tab, no bidi
/// controls. In the schema, so that generated bodies (an API fuzzer's) can
/// be valid ones.
pub const PATTERN: &str = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069][^\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$";

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Text<MAX>, Invalid> {
        check(&s, MAX)?;
        Ok(Text(s))
    }
}

impl<const MAX: usize> std::str::FromStr for Text<MAX> {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Text<MAX>, Invalid> {
        Text::try_from(s.to_string())
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(t: Text<MAX>) -> String {
        t.0
    }
}

impl<const MAX: usize> std::ops::Deref for Text<MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> AsRef<str> for Text<MAX> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> std::fmt::Display for Text<MAX> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<const MAX: usize> serde::Serialize for Text<MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de, const MAX: usize> serde::Deserialize<'de> for Text<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text<MAX>, D::Error> {
        let s = String::deserialize(d)?;
        Text::try_from(s).map_err(serde::de::Error::custom)
    }
}

impl<const MAX: usize> schemars::JsonSchema for Text<MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Text{MAX}").into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string", "minLength": 1, "maxLength": MAX, "pattern": PATTERN
        })
    }
}

/// Optional free text, as forms send it: absent, `null` and blank all mean
/// "not given"; anything else must be a [`Text`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionalText<const MAX: usize>(pub Option<Text<MAX>>);

impl<const MAX: usize> OptionalText<MAX> {
    pub fn into_option(self) -> Option<String> {
        self.0.map(Text::into_string)
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de, const MAX: usize> serde::Deserialize<'de> for OptionalText<MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<OptionalText<MAX>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) if !s.trim().is_empty() => Text::try_from(s)
                .map(|t| OptionalText(Some(t)))
                .map_err(serde::de::Error::custom),
            _ => Ok(OptionalText(None)),
        }
    }
}

impl<const MAX: usize> serde::Serialize for OptionalText<MAX> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<const MAX: usize> schemars::JsonSchema for OptionalText<MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("OptionalText{MAX}").into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": "null" },
                { "type": "string", "maxLength": MAX, "pattern": r"^\s*$" },
                { "type": "string", "maxLength": MAX, "pattern": PATTERN }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Result<Text<10>, Invalid> {
        Text::try_from(s.to_string())
    }

    #[test]
    fn text_is_bounded_and_printable() {
        assert!(text("Liisa").is_ok());
        assert!(text("two\nlines\t").is_ok());
        assert_eq!(text("  "), Err(Invalid::new("must not be empty")));
        assert!(text("a\u{0}b").is_err());
        assert!(text("abcdefghijk").is_err());
        assert!(text("ab\u{202E}cd").is_err());
        // Characters, not bytes.
        assert!(text("ääääääääää").is_ok());
    }

    #[test]
    fn optional_text_treats_blank_as_absent() {
        #[derive(serde::Deserialize)]
        struct Form {
            #[serde(default)]
            note: OptionalText<5>,
        }
        let parse = |s: &str| serde_json::from_str::<Form>(s).map(|f| f.note.into_option());
        assert_eq!(parse("{}").unwrap(), None);
        assert_eq!(parse(r#"{"note":null}"#).unwrap(), None);
        assert_eq!(parse(r#"{"note":"  "}"#).unwrap(), None);
        assert_eq!(parse(r#"{"note":"ok"}"#).unwrap(), Some("ok".into()));
        assert!(parse(r#"{"note":"too long"}"#).is_err());
    }
}
