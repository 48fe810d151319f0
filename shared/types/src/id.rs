//! Ids. They appear in stream subjects, URLs and SQL keys, so each allows
//! only what all three can hold as it is.

use crate::{string_type, Invalid};

/// 2 to 64 characters of `a-z`, `0-9` and `-`, starting with one of
/// `first`.
fn check(s: &str, first: fn(char) -> bool) -> bool {
    (2..=64).contains(&s.len())
        && s.starts_with(first)
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An agency's id, e.g. `police-helsinki`: 2 to 64 characters of `a-z`,
/// `0-9` and `-`, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgencyId(String);

impl TryFrom<String> for AgencyId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<AgencyId, Invalid> {
        if check(&s, |c| c.is_ascii_lowercase()) {
            Ok(AgencyId(s))
        } else {
            Err(Invalid::new(
                "must be 2 to 64 characters of a-z, 0-9 and '-', starting with a letter",
            ))
        }
    }
}

string_type!(AgencyId, "AgencyId", {
    "minLength": 2, "maxLength": 64, "pattern": "^[a-z][a-z0-9-]*$"
});

/// A user's id: the `sub` of the user's tokens. Like [`AgencyId`], but it
/// may start with a digit too, so that an identity provider's subjects fit
/// as they are (Keycloak's are lowercase UUIDs, which start with a digit
/// more often than not).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl TryFrom<String> for UserId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<UserId, Invalid> {
        if check(&s, |c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
            Ok(UserId(s))
        } else {
            Err(Invalid::new(
                "must be 2 to 64 characters of a-z, 0-9 and '-', starting with a letter or digit",
            ))
        }
    }
}

string_type!(UserId, "UserId", {
    "minLength": 2, "maxLength": 64, "pattern": "^[a-z0-9][a-z0-9-]*$"
});

/// A case's id, `case-` and a UUIDv7 in simple form as the cases service
/// makes them; any id of the [`AgencyId`] shape is accepted, so that ids
/// made by older builds or tests still parse.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaseId(String);

impl CaseId {
    /// A new id, unique and in creation order.
    pub fn new_v7(uuid_simple: impl std::fmt::Display) -> CaseId {
        CaseId(format!("case-{uuid_simple}"))
    }
}

impl TryFrom<String> for CaseId {
    type Error = Invalid;
    fn try_from(s: String) -> Result<CaseId, Invalid> {
        if check(&s, |c| c.is_ascii_lowercase()) {
            Ok(CaseId(s))
        } else {
            Err(Invalid::new("is not a case id"))
        }
    }
}

string_type!(CaseId, "CaseId", {
    "minLength": 2, "maxLength": 64, "pattern": "^[a-z][a-z0-9-]*$"
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agency_ids_are_lowercase_words() {
        assert!(AgencyId::try_from("police-helsinki".to_string()).is_ok());
        for bad in [
            "",
            "a",
            "Police",
            "1police",
            "pol ice",
            "pol_ice",
            "a.b",
            &"a".repeat(65),
        ] {
            assert!(
                AgencyId::try_from(bad.to_string()).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn user_ids_may_start_with_a_digit() {
        for good in ["liisa", "0b5e6f1c-0d6a-4b53-9d5e-0123456789ab", "42"] {
            assert!(
                UserId::try_from(good.to_string()).is_ok(),
                "{good:?} refused"
            );
        }
        for bad in [
            "",
            "x",
            "Liisa",
            "-liisa",
            "li sa",
            "auth0|123",
            "a.b",
            &"a".repeat(65),
        ] {
            assert!(
                UserId::try_from(bad.to_string()).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn a_new_case_id_parses() {
        let id = CaseId::new_v7("0192f0c4aabb7cc0a1b2c3d4e5f60718");
        assert_eq!(CaseId::try_from(id.to_string()), Ok(id));
    }

    #[test]
    fn serde_refuses_what_parsing_refuses() {
        let err = serde_json::from_str::<AgencyId>("\"Police\"").unwrap_err();
        assert!(err.to_string().contains("starting with a letter"), "{err}");
        let ok: AgencyId = serde_json::from_str("\"police\"").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"police\"");
    }
}
