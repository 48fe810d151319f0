//! Sealed text: a string encrypted under a case's data key, bound to the
//! case and to the record (event or row) it belongs to. See [`CaseKey`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use crate::crypto;
use crate::error::SealError;

/// What every sealed value starts with: the format and its version.
pub const SEALED_PREFIX: &str = "vks1.";

/// A case's data key: seals and opens that case's text. Wiped on drop.
/// Cheap to clone (32 bytes and the case id).
///
/// A sealed value is `vks1.<case id>.<context>.<base64url, no padding, of
/// nonce || ciphertext>`: XChaCha20-Poly1305 with a random 24-byte nonce,
/// associated data `vks1|<case id>|<context>`. The case id and the context
/// stay readable (they are ids: a reader needs them to pick the key and to
/// open the value, and a read across cases opens each value with its own
/// case's key); a case id has no `.` (ids are `[a-z0-9-]`), and base64url
/// has none either, so the first `.` after the prefix ends the case id and
/// the last one ends the context, which may hold any character. Callers pass
/// ids as contexts (an event id, a row id): it is not secret.
#[derive(Clone)]
pub struct CaseKey {
    /// The case the key belongs to; part of every seal's associated data.
    case_id: String,
    /// The data key, wiped on drop.
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseKey")
            .field("case_id", &self.case_id)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl CaseKey {
    /// The key of `case_id` with bytes `key`. The key store makes these; a
    /// test may make one from known bytes.
    pub fn new(case_id: impl Into<String>, key: Zeroizing<[u8; 32]>) -> CaseKey {
        CaseKey {
            case_id: case_id.into(),
            key,
        }
    }

    /// The case this key belongs to.
    pub fn case_id(&self) -> &str {
        &self.case_id
    }

    fn aad(&self, context: &str) -> Vec<u8> {
        format!("vks1|{}|{context}", self.case_id).into_bytes()
    }

    /// Seals `plaintext` for record `context` (an event id or row id):
    /// `vks1.<case id>.<context>.<base64url(nonce || ciphertext)>`. A new random nonce
    /// each time, so sealing the same text twice gives two different strings.
    ///
    /// Never fails: any context is accepted and read back whole, dots
    /// included.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        let sealed = crypto::encrypt(&self.key, &self.aad(context), plaintext.as_bytes());
        debug_assert!(!self.case_id.contains('.'), "case ids have no dots");
        let mut out = String::with_capacity(
            SEALED_PREFIX.len()
                + self.case_id.len()
                + context.len()
                + 2
                + sealed.len().div_ceil(3) * 4,
        );
        out.push_str(SEALED_PREFIX);
        out.push_str(&self.case_id);
        out.push('.');
        out.push_str(context);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&sealed, &mut out);
        out
    }

    /// The plaintext of a value [`seal`](Self::seal)ed with this key.
    /// [`SealError::NotSealed`] if it is not a sealed value,
    /// [`SealError::Malformed`] if its parts are broken,
    /// [`SealError::Refused`] if it does not authenticate (another case's or
    /// a replaced key, or an altered ciphertext or context).
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        let (case_id, context, bytes) = split(sealed)?;
        if case_id != self.case_id {
            return Err(SealError::Refused);
        }
        let plain =
            crypto::decrypt(&self.key, &self.aad(context), &bytes).ok_or(SealError::Refused)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Malformed)
    }
}

/// The case id, the context and the decoded `nonce || ciphertext` of a
/// sealed value.
fn split(sealed: &str) -> Result<(&str, &str, Vec<u8>), SealError> {
    let rest = sealed
        .strip_prefix(SEALED_PREFIX)
        .ok_or(SealError::NotSealed)?;
    let (case_id, rest) = rest.split_once('.').ok_or(SealError::Malformed)?;
    let (context, encoded) = rest.rsplit_once('.').ok_or(SealError::Malformed)?;
    if case_id.is_empty() {
        return Err(SealError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| SealError::Malformed)?;
    if bytes.len() < crypto::NONCE_LEN + crypto::TAG_LEN {
        return Err(SealError::Malformed);
    }
    Ok((case_id, context, bytes))
}

/// Whether `s` has the shape of a sealed value: the `vks1.` prefix, a
/// context, and base64url of at least a nonce and a tag. Says nothing of
/// whether any key opens it.
pub fn is_sealed(s: &str) -> bool {
    split(s).is_ok()
}

/// The context (record id) a sealed value was sealed for, if `s` is one.
pub fn sealed_context(s: &str) -> Option<&str> {
    split(s).ok().map(|(_, context, _)| context)
}

/// The case whose key sealed `s`, if `s` is a sealed value: a read across
/// cases opens each value with that case's key.
pub fn sealed_case(s: &str) -> Option<&str> {
    split(s).ok().map(|(case_id, _, _)| case_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(case: &str) -> CaseKey {
        CaseKey::new(case, crypto::random_key())
    }

    #[test]
    fn seal_and_open_round_trip() {
        let k = key("case-1");
        for text in ["", "Anna K.", "Äijälä – 日本語 🙂", &"x".repeat(10_000)] {
            let sealed = k.seal("0190f0e2-7c1a-7d5e-8f00-000000000001", text);
            assert!(sealed.starts_with("vks1.case-1.0190f0e2-7c1a-7d5e-8f00-000000000001."));
            assert!(is_sealed(&sealed));
            assert!(text.is_empty() || !sealed.contains(text));
            assert_eq!(k.open(&sealed).unwrap(), text);
        }
        assert_eq!(sealed_context(&k.seal("evt:1_a-b", "t")), Some("evt:1_a-b"));
        assert_eq!(sealed_case(&k.seal("evt:1_a-b", "t")), Some("case-1"));
    }

    #[test]
    fn the_same_text_seals_differently_each_time() {
        let k = key("case-1");
        let a = k.seal("e1", "Anna");
        let b = k.seal("e1", "Anna");
        assert_ne!(a, b);
        assert_eq!(k.open(&a).unwrap(), k.open(&b).unwrap());
    }

    #[test]
    fn another_cases_key_is_refused() {
        let sealed = key("case-1").seal("e1", "Anna");
        assert_eq!(key("case-1").open(&sealed), Err(SealError::Refused));
        assert_eq!(key("case-2").open(&sealed), Err(SealError::Refused));
        // The same bytes under another case id: the case id is bound too.
        let k = key("case-1");
        let moved = CaseKey::new("case-2", k.key.clone());
        assert_eq!(moved.open(&k.seal("e1", "Anna")), Err(SealError::Refused));
    }

    #[test]
    fn tampering_with_the_ciphertext_or_the_context_is_refused() {
        let k = key("case-1");
        let sealed = k.seal("event-1", "Anna");
        // Another record's context.
        let moved = sealed.replacen("event-1", "event-2", 1);
        assert_eq!(k.open(&moved), Err(SealError::Refused));
        // Every single character of the ciphertext changed.
        let start = sealed.rfind('.').unwrap() + 1;
        for i in start..sealed.len() {
            let mut bytes = sealed.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(k.open(&tampered).is_err(), "position {i}");
        }
    }

    #[test]
    fn what_is_not_sealed_is_an_error_never_a_panic() {
        let k = key("case-1");
        assert_eq!(k.open("Anna"), Err(SealError::NotSealed));
        assert_eq!(k.open(""), Err(SealError::NotSealed));
        for bad in [
            "vks1.",
            "vks1.c1",
            "vks1.c1.e1",
            "vks1.c1.e1.",
            "vks1.c1.e1.!!!",
            "vks1.c1.e1.AAAA",
            "vks1.c1.e1.é",
            "vks1..e1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(k.open(bad), Err(SealError::Malformed), "{bad}");
            assert!(!is_sealed(bad), "{bad}");
        }
        // Long enough and well formed, but nobody's seal.
        let forged = format!("vks1.case-1.e1.{}", "A".repeat(60));
        assert!(is_sealed(&forged));
        assert_eq!(k.open(&forged), Err(SealError::Refused));
    }

    #[test]
    fn a_context_with_dots_or_anything_else_round_trips() {
        let k = key("case-1");
        for context in ["", "a.b.c", "row 7|x", "..."] {
            let sealed = k.seal(context, "Anna");
            assert_eq!(sealed_context(&sealed), Some(context));
            assert_eq!(k.open(&sealed).unwrap(), "Anna");
        }
        // Contexts differing only around dots stay apart.
        let sealed = k.seal("a.b", "Anna");
        let moved = sealed.replacen("vks1.case-1.a.b.", "vks1.case-1.a.", 1);
        assert!(k.open(&moved).is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let k = key("case-1");
        let text = format!("{k:?}");
        assert!(text.contains("case-1") && text.contains("redacted"));
        assert!(!text.contains(&format!("{:?}", &k.key[..4])));
    }
}
