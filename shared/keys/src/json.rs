//! Sealing JSON payloads by path ([`seal_paths`]), and opening everything
//! sealed in one ([`open_all`]).

use serde_json::Value;

use crate::error::PathError;
use crate::seal::{is_sealed, CaseKey};

/// One step of a path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    /// Into an object's field.
    Field(&'a str),
    /// Into every element of an array.
    Each,
}

fn parse_path(path: &str) -> Result<Vec<Step<'_>>, PathError> {
    let invalid = || PathError {
        path: path.to_string(),
        problem: "not a path (dot-separated field names, each maybe followed by `[]`)".into(),
    };
    let mut steps = Vec::new();
    for segment in path.split('.') {
        let name_end = segment.find(['[', ']']).unwrap_or(segment.len());
        let (name, mut brackets) = segment.split_at(name_end);
        if !name.is_empty() {
            steps.push(Step::Field(name));
        }
        let mut each = 0;
        while let Some(rest) = brackets.strip_prefix("[]") {
            brackets = rest;
            each += 1;
            steps.push(Step::Each);
        }
        if !brackets.is_empty() || (name.is_empty() && each == 0) {
            return Err(invalid());
        }
    }
    Ok(steps)
}

/// What a JSON value is, for an error message.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Calls `leaf` on every string the path reaches in `value`, passing by
/// nulls and absent fields; an error where the payload has another shape
/// than the path expects. `at` is where `value` sits, for the error.
fn visit(
    value: &mut Value,
    steps: &[Step<'_>],
    path: &str,
    at: &str,
    leaf: &mut dyn FnMut(&mut Value),
) -> Result<(), PathError> {
    let mismatch = |expected: &str, found: &Value| PathError {
        path: path.to_string(),
        problem: format!(
            "expects {expected} at `{}`, found {}",
            if at.is_empty() { "(the payload)" } else { at },
            kind(found)
        ),
    };
    if steps.is_empty() && value.is_string() {
        leaf(value);
        return Ok(());
    }
    match (steps.first(), value) {
        (_, Value::Null) => Ok(()),
        (None, other) => Err(mismatch("text", other)),
        (Some(Step::Field(name)), Value::Object(map)) => match map.get_mut(*name) {
            Some(child) => {
                let at = if at.is_empty() {
                    (*name).to_string()
                } else {
                    format!("{at}.{name}")
                };
                visit(child, &steps[1..], path, &at, leaf)
            }
            None => Ok(()),
        },
        (Some(Step::Field(_)), other) => Err(mismatch("an object", other)),
        (Some(Step::Each), Value::Array(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                visit(item, &steps[1..], path, &format!("{at}[{i}]"), leaf)?;
            }
            Ok(())
        }
        (Some(Step::Each), other) => Err(mismatch("an array", other)),
    }
}

/// Seals, in place, every string leaf of `value` that one of `paths`
/// reaches, with `key` for record `context` (the event or row id); returns
/// how many it sealed.
///
/// A path is dot-separated field names, a name followed by `[]` meaning
/// "every element of this array": `title`, `agenda[]`,
/// `minutes.notes[].text`, `action_items[].description`. `[]` alone is every
/// element of the value itself (a payload that is an array), and `a[][]`
/// every element of every array in `a`. A field name may hold any character
/// but `.`, `[` and `]`.
///
/// A null or absent value on the way is left alone. A leaf that is already
/// sealed under `key` (a value copied from another of the case's sealed
/// records) keeps its original seal; anything else, even text that merely
/// looks sealed, is sealed. A path that meets a number, boolean, object or
/// array where it expects text (or an array or object where it expects
/// one of those), or that is not a path, is an error naming the path, and
/// then `value` is left unchanged: every path is checked before any leaf is
/// sealed.
pub fn seal_paths(
    value: &mut Value,
    paths: &[&str],
    key: &CaseKey,
    context: &str,
) -> Result<usize, PathError> {
    let parsed = paths
        .iter()
        .map(|p| parse_path(p).map(|steps| (*p, steps)))
        .collect::<Result<Vec<_>, _>>()?;
    for (path, steps) in &parsed {
        visit(value, steps, path, "", &mut |_| {})?;
    }
    let mut sealed = 0;
    for (path, steps) in &parsed {
        visit(value, steps, path, "", &mut |leaf| {
            if let Value::String(text) = leaf {
                if is_sealed(text) && key.open(text).is_ok() {
                    return;
                }
                *text = key.seal(context, text);
                sealed += 1;
            }
        })
        .expect("checked above");
    }
    Ok(sealed)
}

/// Replaces every sealed string anywhere in `value` (at any depth, whatever
/// the paths were) by its plaintext, opened with `key`; returns how many it
/// opened.
///
/// A sealed string that cannot be opened becomes JSON `null`: all of them
/// when `key` is `None` (the case's key was destroyed: the case is erased),
/// and one sealed under another key or altered. So the result holds no
/// sealed string, and a reader sees that a value was there but not what.
pub fn open_all(value: &mut Value, key: Option<&CaseKey>) -> usize {
    match value {
        Value::String(text) if is_sealed(text) => match key.and_then(|k| k.open(text).ok()) {
            Some(plain) => {
                *text = plain;
                1
            }
            None => {
                *value = Value::Null;
                0
            }
        },
        Value::Array(items) => items.iter_mut().map(|v| open_all(v, key)).sum(),
        Value::Object(map) => map.values_mut().map(|v| open_all(v, key)).sum(),
        _ => 0,
    }
}

/// [`open_all`] for a value holding several cases' text (an inbox, a
/// calendar): each sealed string is opened with the key `key_of` gives for
/// its case ([`sealed_case`](crate::sealed_case)); JSON null where it gives
/// none (a case the reader may not read, or an erased one). Returns how
/// many it opened.
pub fn open_all_with<'k>(
    value: &mut Value,
    key_of: &impl Fn(&str) -> Option<&'k CaseKey>,
) -> usize {
    match value {
        Value::String(text) if is_sealed(text) => {
            let key = crate::sealed_case(text).and_then(key_of);
            open_all(value, key)
        }
        Value::Array(items) => items.iter_mut().map(|v| open_all_with(v, key_of)).sum(),
        Value::Object(map) => map.values_mut().map(|v| open_all_with(v, key_of)).sum(),
        _ => 0,
    }
}

/// Opens every sealed string in `value` for which `key_of` gives its case's
/// key, and leaves every other as it is (sealed): for a value that must
/// keep its shape whether or not its text can be read, as an aggregate
/// replayed from an erased case's events. Returns how many it opened.
pub fn open_known<'k>(value: &mut Value, key_of: &impl Fn(&str) -> Option<&'k CaseKey>) -> usize {
    match value {
        Value::String(text) if is_sealed(text) => {
            let opened = crate::sealed_case(text)
                .and_then(key_of)
                .and_then(|key| key.open(text).ok());
            match opened {
                Some(plain) => {
                    *text = plain;
                    1
                }
                None => 0,
            }
        }
        Value::Array(items) => items.iter_mut().map(|v| open_known(v, key_of)).sum(),
        Value::Object(map) => map.values_mut().map(|v| open_known(v, key_of)).sum(),
        _ => 0,
    }
}

/// Every sealed string in `value`, at any depth, in document order.
pub fn sealed_strings(value: &Value) -> Vec<&str> {
    fn collect<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::String(text) if is_sealed(text) => out.push(text),
            Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
            Value::Object(map) => map.values().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    collect(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto;
    use serde_json::json;

    fn key(case: &str) -> CaseKey {
        CaseKey::new(case, crypto::random_key())
    }

    const PATHS: &[&str] = &[
        "title",
        "agenda[]",
        "minutes.notes[].text",
        "minutes.decisions[]",
        "action_items[].description",
        "location",
    ];

    fn payload() -> Value {
        json!({
            "meeting_id": "m-1",
            "title": "Anna K:n tilanne",
            "agenda": ["Asuminen", null, "Terveys"],
            "minutes": {
                "notes": [
                    {"text": "Anna kertoi...", "by": "u-1"},
                    {"text": null, "by": "u-2"},
                    {"by": "u-3"}
                ],
                "decisions": []
            },
            "action_items": [{"description": "Soita Annalle", "due": 3}],
            "location": null,
            "count": 7
        })
    }

    #[test]
    fn open_known_opens_what_it_has_keys_for_and_leaves_the_rest_sealed() {
        let (one, two) = (key("case-1"), key("case-2"));
        let mut value = json!({ "a": one.seal("ctx", "first"), "b": [two.seal("ctx", "second")] });
        let sealed_two = value["b"][0].clone();
        let opened = open_known(&mut value, &|case: &str| (case == "case-1").then_some(&one));
        assert_eq!(opened, 1);
        assert_eq!(value["a"], "first");
        // Kept as it was, not nulled: the shape holds for a decoder.
        assert_eq!(value["b"][0], sealed_two);
    }

    #[test]
    fn paths_parse_into_steps() {
        use Step::*;
        assert_eq!(parse_path("title").unwrap(), vec![Field("title")]);
        assert_eq!(
            parse_path("minutes.notes[].text").unwrap(),
            vec![Field("minutes"), Field("notes"), Each, Field("text")]
        );
        assert_eq!(parse_path("[]").unwrap(), vec![Each]);
        assert_eq!(parse_path("a[][]").unwrap(), vec![Field("a"), Each, Each]);
        for bad in [
            "", "a.", ".a", "a..b", "a[", "a]", "a[x]", "a[]b", "a[].[x]",
        ] {
            assert!(parse_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seal_paths_seals_the_string_leaves_and_open_all_restores_them() {
        let k = key("case-1");
        let original = payload();
        let mut value = original.clone();
        let n = seal_paths(&mut value, PATHS, &k, "evt-1").unwrap();
        // title, two agenda items, one note, one action item.
        assert_eq!(n, 5);
        assert!(is_sealed(value["title"].as_str().unwrap()));
        assert!(is_sealed(value["agenda"][0].as_str().unwrap()));
        assert_eq!(value["agenda"][1], Value::Null);
        assert!(is_sealed(
            value["minutes"]["notes"][0]["text"].as_str().unwrap()
        ));
        assert_eq!(value["minutes"]["notes"][1]["text"], Value::Null);
        assert!(value["minutes"]["notes"][2].get("text").is_none());
        assert!(is_sealed(
            value["action_items"][0]["description"].as_str().unwrap()
        ));
        assert_eq!(value["location"], Value::Null);
        // What is not on a path stays as it was.
        assert_eq!(value["meeting_id"], "m-1");
        assert_eq!(value["minutes"]["notes"][0]["by"], "u-1");
        assert_eq!(value["action_items"][0]["due"], 3);
        assert_eq!(sealed_strings(&value).len(), 5);
        let text = value.to_string();
        for plain in ["Anna", "Asuminen", "Terveys", "Soita"] {
            assert!(!text.contains(plain), "{plain} in {text}");
        }

        assert_eq!(open_all(&mut value, Some(&k)), 5);
        assert_eq!(value, original);
    }

    #[test]
    fn an_already_sealed_leaf_keeps_its_seal() {
        let k = key("case-1");
        let copied = k.seal("evt-0", "Anna K:n tilanne");
        let mut value = json!({"title": copied, "agenda": ["Asuminen"]});
        assert_eq!(seal_paths(&mut value, PATHS, &k, "evt-1").unwrap(), 1);
        assert_eq!(value["title"], copied);
        // Sealing twice changes nothing.
        let once = value.clone();
        assert_eq!(seal_paths(&mut value, PATHS, &k, "evt-1").unwrap(), 0);
        assert_eq!(value, once);
        assert_eq!(open_all(&mut value, Some(&k)), 2);
        assert_eq!(
            value,
            json!({"title": "Anna K:n tilanne", "agenda": ["Asuminen"]})
        );

        // Text that only looks sealed (nobody's seal, or another case's) is
        // sealed all the same: no plaintext slips through.
        let forged = format!("vks1.case-1.x.{}", "A".repeat(60));
        let foreign = key("case-2").seal("evt-9", "toinen");
        let mut value = json!({"title": forged, "agenda": [foreign]});
        assert_eq!(seal_paths(&mut value, PATHS, &k, "evt-1").unwrap(), 2);
        assert_eq!(k.open(value["title"].as_str().unwrap()).unwrap(), forged);
        assert_eq!(
            k.open(value["agenda"][0].as_str().unwrap()).unwrap(),
            foreign
        );
    }

    #[test]
    fn a_path_meeting_something_other_than_text_is_an_error_naming_it() {
        let k = key("case-1");
        for (paths, at) in [
            (&["count"][..], "`count`, found a number"),
            (&["minutes"][..], "text at `minutes`, found an object"),
            (
                &["minutes.notes[].by", "action_items[].due"][..],
                "`action_items[0].due`",
            ),
            (&["title[]"][..], "an array at `title`, found text"),
            (&["title.x"][..], "an object at `title`"),
        ] {
            let mut value = payload();
            let err = seal_paths(&mut value, paths, &k, "evt-1").unwrap_err();
            assert!(paths.contains(&err.path.as_str()), "{err}");
            assert!(err.problem.contains(at), "{err}");
            // Nothing was sealed, not even the paths before the bad one.
            assert_eq!(value, payload());
        }
        let mut value = payload();
        let err = seal_paths(&mut value, &["title", "a..b"], &k, "e").unwrap_err();
        assert_eq!(err.path, "a..b");
        assert_eq!(value, payload());
    }

    #[test]
    fn open_all_without_a_key_leaves_no_sealed_string_and_no_plaintext() {
        let k = key("case-1");
        let mut value = payload();
        seal_paths(&mut value, PATHS, &k, "evt-1").unwrap();
        let mut erased = value.clone();
        assert_eq!(open_all(&mut erased, None), 0);
        assert!(sealed_strings(&erased).is_empty());
        assert_eq!(erased["title"], Value::Null);
        assert_eq!(erased["agenda"], json!([null, null, null]));
        assert_eq!(
            erased["minutes"]["notes"][0],
            json!({"text": null, "by": "u-1"})
        );
        assert_eq!(erased["meeting_id"], "m-1");
        let text = erased.to_string();
        for plain in ["Anna", "Asuminen", "Terveys", "Soita"] {
            assert!(!text.contains(plain), "{plain} in {text}");
        }
        // Another case's key opens nothing either.
        let mut other = value.clone();
        assert_eq!(open_all(&mut other, Some(&key("case-1"))), 0);
        assert_eq!(other, erased);
    }

    #[test]
    fn a_payload_that_is_an_array_is_reached_with_brackets() {
        let k = key("case-1");
        let mut value = json!([{"name": "Anna"}, {"name": "Kalle"}, null]);
        assert_eq!(
            seal_paths(&mut value, &["[].name"], &k, "row-1").unwrap(),
            2
        );
        assert_eq!(sealed_strings(&value).len(), 2);
        open_all(&mut value, Some(&k));
        assert_eq!(value, json!([{"name": "Anna"}, {"name": "Kalle"}, null]));
        let mut text = json!("Anna");
        assert_eq!(
            seal_paths(&mut text, &["[]"], &k, "r").unwrap_err().path,
            "[]"
        );
    }

    #[test]
    fn open_all_with_opens_each_cases_text_with_its_own_key() {
        let (a, b) = (key("case-a"), key("case-b"));
        let mut value = json!({"items": [
            {"title": a.seal("e1", "Anna")},
            {"title": b.seal("e2", "Bea")},
            {"title": key("case-c").seal("e3", "Cecilia")},
        ]});
        let ring = [a.clone(), b.clone()];
        let key_of = |case: &str| ring.iter().find(|k| k.case_id() == case);
        assert_eq!(open_all_with(&mut value, &key_of), 2);
        assert_eq!(
            value,
            json!({"items": [{"title": "Anna"}, {"title": "Bea"}, {"title": null}]})
        );
    }
}
