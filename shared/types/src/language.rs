//! Language codes.

use crate::{string_type, Invalid};

/// An ISO 639 language code of 2 or 3 lowercase letters, like `ro`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Language(String);

impl TryFrom<String> for Language {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Language, Invalid> {
        if (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_lowercase()) {
            Ok(Language(s))
        } else {
            Err(Invalid::new(
                "must be an ISO 639 language code of 2 or 3 lowercase letters, like \"ro\"",
            ))
        }
    }
}

string_type!(Language, "Language", {
    "minLength": 2, "maxLength": 3, "pattern": "^[a-z]{2,3}$"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_two_or_three_lowercase_letters() {
        for good in ["ro", "fi", "ckb"] {
            assert!(Language::try_from(good.to_string()).is_ok());
        }
        for bad in ["", "r", "RO", "rom-a", "r1"] {
            assert!(Language::try_from(bad.to_string()).is_err(), "{bad:?}");
        }
    }
}
