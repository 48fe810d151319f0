//! The blind index's tokens: a keyed hash of a field's normalized text, so
//! that a case can be found by an exact name without the name being stored.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use unicode_normalization::UnicodeNormalization;

/// The text a token is made of: Unicode NFKC (so a precomposed `ä` and `a`
/// with a combining diaeresis, or a full-width letter and its plain form,
/// are the same), lowercased, surrounding whitespace trimmed and every run
/// of whitespace inside made one space. `"  Anna  K "` gives `"anna k"`.
pub fn normalize(text: &str) -> String {
    let folded: String = text.nfkc().collect::<String>().to_lowercase();
    let folded: String = folded.nfkc().collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// HMAC-SHA256 under `key` of the field and the normalized text, in hex.
/// The field's length goes first, so no field and text pair can be made to
/// hash like another.
pub(crate) fn token(key: &[u8; 32], field: &str, text: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"vkbi1");
    mac.update(&(field.len() as u64).to_be_bytes());
    mac.update(field.as_bytes());
    mac.update(normalize(text).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_folds_case_space_and_composition() {
        assert_eq!(normalize("  Anna  K "), "anna k");
        assert_eq!(normalize("ANNA\t\n K"), "anna k");
        assert_eq!(
            normalize("Äijälä"),
            normalize("A\u{308}ija\u{308}la\u{308}")
        );
        assert_eq!(normalize("Ａｎｎａ"), "anna");
        assert_eq!(normalize("Anna\u{a0}K"), "anna k");
        assert_eq!(normalize("   "), "");
    }

    #[test]
    fn tokens_depend_on_key_field_and_normalized_text() {
        let key = [7u8; 32];
        let t = token(&key, "name", "  Anna  K ");
        assert_eq!(t.len(), 64);
        assert_eq!(t, token(&key, "name", "anna k"));
        assert_ne!(t, token(&key, "alias", "anna k"));
        assert_ne!(t, token(&[8u8; 32], "name", "anna k"));
        // The field's boundary is part of the hash.
        assert_ne!(token(&key, "ab", "c"), token(&key, "a", "bc"));
    }
}
