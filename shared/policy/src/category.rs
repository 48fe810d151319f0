//! The fixed list of categories: each piece of client data is in exactly one.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Identity,
    Contact,
    Narrative,
    Health,
    Legal,
    Residence,
    Social,
    Plan,
    Meetings,
    Tasks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCategory(pub String);

impl std::fmt::Display for UnknownCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown category {:?}", self.0)
    }
}

impl std::error::Error for UnknownCategory {}

impl Category {
    pub const ALL: [Category; 10] = [
        Category::Identity,
        Category::Contact,
        Category::Narrative,
        Category::Health,
        Category::Legal,
        Category::Residence,
        Category::Social,
        Category::Plan,
        Category::Meetings,
        Category::Tasks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Identity => "identity",
            Category::Contact => "contact",
            Category::Narrative => "narrative",
            Category::Health => "health",
            Category::Legal => "legal",
            Category::Residence => "residence",
            Category::Social => "social",
            Category::Plan => "plan",
            Category::Meetings => "meetings",
            Category::Tasks => "tasks",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Category {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCategory(s.to_string()))
    }
}
