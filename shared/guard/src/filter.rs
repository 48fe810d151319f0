//! [`ReadFilter`]: the policy applied item by item during one read.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use verkosto_policy::{Basis, Category, Decision};

use crate::access::AccessRecord;
use crate::view::CaseAccess;

/// Decides each item of one read and remembers what it let through and
/// what it withheld, for the response (`withheld`) and the access record.
pub struct ReadFilter<'a> {
    case: &'a CaseAccess,
    reader: String,
    at: DateTime<Utc>,
    returned: BTreeSet<Category>,
    withheld: BTreeSet<Category>,
    items_returned: u64,
    items_withheld: u64,
}

impl<'a> ReadFilter<'a> {
    pub(crate) fn new(case: &'a CaseAccess, reader: &str, at: DateTime<Utc>) -> ReadFilter<'a> {
        ReadFilter {
            case,
            reader: reader.to_string(),
            at,
            returned: BTreeSet::new(),
            withheld: BTreeSet::new(),
            items_returned: 0,
            items_withheld: 0,
        }
    }

    /// May the reader see an item of `category`? `author` is the agency
    /// that wrote it, if it has one: an agency always sees its own items.
    pub fn allows(&mut self, category: Category, author: Option<&str>) -> bool {
        let decision = self.decision(category);
        let own = author.is_some_and(|a| a == self.reader) && self.case.fresh;
        self.count(category, decision.allowed() || own)
    }

    /// Like [`ReadFilter::allows`], under the safety rule for `contact`
    /// data: when the case has `safety_risk`, only the lead and agencies
    /// explicitly allowed `contact` (by consent or statute) see it; having
    /// written it is not enough.
    pub fn allows_item(&mut self, category: Category, author: Option<&str>) -> bool {
        if category == Category::Contact && self.case.safety_risk {
            let decision = self.decision(category);
            return self.count(category, decision.allowed());
        }
        self.allows(category, author)
    }

    /// Whether the reader may see `contact` data of this case at all, e.g. a
    /// meeting's location (counted as one item).
    pub fn allows_contact(&mut self) -> bool {
        let decision = self.decision(Category::Contact);
        let allowed = decision.allowed() || !self.case.safety_risk && self.case.fresh;
        self.count(Category::Contact, allowed)
    }

    pub fn decision(&self, category: Category) -> Decision {
        self.case.decide(&self.reader, category, self.at)
    }

    fn count(&mut self, category: Category, allowed: bool) -> bool {
        if allowed {
            self.returned.insert(category);
            self.items_returned += 1;
        } else {
            self.withheld.insert(category);
            self.items_withheld += 1;
        }
        allowed
    }

    /// How many items were withheld so far.
    pub fn withheld(&self) -> u64 {
        self.items_withheld
    }

    pub fn consent_version(&self) -> i64 {
        self.case.consent_version()
    }

    pub fn fresh(&self) -> bool {
        self.case.fresh
    }

    /// The basis word for a category, as the reader's agency sees it.
    pub fn basis(&self, category: Category) -> &'static str {
        match self.decision(category) {
            Decision::Allowed(Basis::Lead) => "lead",
            d => d.word(),
        }
    }

    /// The access record of this read.
    pub fn record(&self, reader_user: &str, service: &str, resource: &str) -> AccessRecord {
        AccessRecord {
            case_id: self.case.case_id.clone(),
            reader_user: reader_user.to_string(),
            reader_agency: self.reader.clone(),
            service: service.to_string(),
            resource: resource.to_string(),
            returned: self.returned.iter().copied().collect(),
            withheld: self.withheld.iter().copied().collect(),
            items_returned: self.items_returned,
            items_withheld: self.items_withheld,
            consent_version: self.case.consent_version(),
            consent_fresh: self.case.fresh,
            read_at: self.at,
            request_id: None,
        }
    }
}
