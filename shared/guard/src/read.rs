//! The one guarded read path: [`CaseRead`] decides each item of a read
//! with the policy, and [`CaseRead::finish`] makes the access record
//! durable before it yields the only value an answer with client data can
//! be made of, [`Guarded`].
//!
//! ```text
//! Guard::read(case, reader) ── 404 unless a member (fresh view, or the log)
//!     └─► CaseRead::allows(item) … ── the policy's `judge`, counted
//!           └─► CaseRead::finish(resource, body) ── access record durable
//!                 └─► Guarded<body> ── the response, with consent_version,
//!                                       withheld and consent_fresh, its
//!                                       sealed text opened
//! ```
//!
//! Client text is stored sealed under the case's key (`verkosto-keys`); a
//! read opens it only here, at the end, with the keys of the cases the
//! reader was let read. A value a read does not open stays sealed: a
//! forgotten open shows ciphertext, never another case's text.

use std::collections::{BTreeMap, BTreeSet};

use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;
use verkosto_http::{Caller, RequestId};
use verkosto_policy::{Category, Decision, Item};

use verkosto_keys::CaseKey;

use crate::access::{AccessLog, AccessRecord};
use crate::error::GuardError;
use crate::view::{CaseAccess, Guard};

/// Who reads, through which service: what the access record names.
#[derive(Clone, Debug)]
pub struct Reader {
    /// The reading user's id.
    pub user: String,
    /// The reading user's agency id: whom the policy judges.
    pub agency: String,
    /// The service that answers (`cases`, `meetings`, ...).
    pub service: &'static str,
    /// The HTTP request's id (`X-Request-Id`), if any, for the access record.
    pub request_id: Option<String>,
}

impl Reader {
    pub fn new(service: &'static str, caller: &Caller, request_id: Option<&RequestId>) -> Reader {
        Reader {
            user: caller.0.user.clone(),
            agency: caller.0.agency.clone(),
            service,
            request_id: request_id.map(|r| r.0.clone()),
        }
    }
}

/// One read of one case's client data, under way. Made only by
/// [`Guard::read`], after the membership check.
pub struct CaseRead {
    /// The view of the case the read is decided on.
    case: CaseAccess,
    /// Who reads.
    reader: Reader,
    /// The moment every item is decided at: never before the record's last change.
    at: DateTime<Utc>,
    /// Where the access record goes.
    access: AccessLog,
    /// Categories of the items shown so far.
    returned: BTreeSet<Category>,
    /// Categories of the items withheld so far.
    withheld: BTreeSet<Category>,
    /// Items shown so far.
    items_returned: u64,
    /// Items withheld so far.
    items_withheld: u64,
    /// The case's data key, to open its sealed text; none: the log seals
    /// nothing, or the case's key is gone (then its text shows as null).
    key: Option<CaseKey>,
}

impl CaseRead {
    pub(crate) fn new(
        case: CaseAccess,
        reader: Reader,
        access: AccessLog,
        key: Option<CaseKey>,
    ) -> CaseRead {
        // Decided at the later of now and the record's last change: a
        // reader's clock behind the writer's never undoes a withdrawal.
        let at = verkosto_policy::moment(&case.consent, verkosto_eventlog::clock::now());
        CaseRead {
            case,
            reader,
            at,
            access,
            returned: BTreeSet::new(),
            withheld: BTreeSet::new(),
            items_returned: 0,
            items_withheld: 0,
            key,
        }
    }

    /// `text` opened, if it is sealed text of this case; as it is if it is
    /// not sealed; None if it is sealed and cannot be opened (another
    /// case's, or the key is gone). For text an answer composes (a
    /// calendar's summary); [`Guarded`] opens whole values by itself.
    pub fn open(&self, text: &str) -> Option<String> {
        if !verkosto_keys::is_sealed(text) {
            return Some(text.to_string());
        }
        self.key.as_ref().and_then(|k| k.open(text).ok())
    }

    /// Decides at `now` instead of the process's clock (the tasks service's
    /// injected clock), still never before the record's last change.
    pub fn at(mut self, now: DateTime<Utc>) -> CaseRead {
        self.at = verkosto_policy::moment(&self.case.consent, now);
        self
    }

    /// The case as the guard sees it (network, flags, consent record).
    pub fn case(&self) -> &CaseAccess {
        &self.case
    }

    /// The reading agency.
    pub fn agency(&self) -> &str {
        &self.reader.agency
    }

    /// The moment the read is decided at.
    pub fn moment(&self) -> DateTime<Utc> {
        self.at
    }

    /// May the reader see `item`? Counted for `withheld` and the record.
    pub fn allows(&mut self, item: Item<'_>) -> bool {
        let allowed = self.decision(item).allowed();
        let category = match item {
            Item::Data(c) | Item::Authored { category: c, .. } => c,
            Item::Location => Category::Contact,
        };
        if allowed {
            self.returned.insert(category);
            self.items_returned += 1;
        } else {
            self.withheld.insert(category);
            self.items_withheld += 1;
        }
        allowed
    }

    /// `value` if the reader may see `item`, else None (counted).
    pub fn keep<T>(&mut self, item: Item<'_>, value: T) -> Option<T> {
        self.allows(item).then_some(value)
    }

    /// The policy's answer for `item`, not counted (e.g. to show a basis).
    pub fn decision(&self, item: Item<'_>) -> Decision {
        self.case.judge(&self.reader.agency, item, self.at)
    }

    pub fn fresh(&self) -> bool {
        self.case.fresh
    }

    pub fn consent_version(&self) -> i64 {
        self.case.consent_version()
    }

    fn record(&self, resource: &str) -> AccessRecord {
        AccessRecord {
            case_id: self.case.case_id.clone(),
            reader_user: self.reader.user.clone(),
            reader_agency: self.reader.agency.clone(),
            service: self.reader.service.to_string(),
            resource: resource.to_string(),
            returned: self.returned.iter().copied().collect(),
            withheld: self.withheld.iter().copied().collect(),
            items_returned: self.items_returned,
            items_withheld: self.items_withheld,
            consent_version: self.case.consent_version(),
            consent_fresh: self.case.fresh,
            read_at: self.at,
            request_id: self.reader.request_id.clone(),
            auditor: false,
        }
    }

    /// Makes the access record durable, then yields the answer: `body` with
    /// `consent_version`, `withheld` and `consent_fresh`.
    pub async fn finish<T>(self, resource: &str, body: T) -> Result<Guarded<T>, GuardError> {
        self.access.record(self.record(resource)).await?;
        Ok(Guarded {
            body,
            consent_version: Some(self.case.consent_version()),
            withheld: self.items_withheld,
            consent_fresh: self.case.fresh,
            keys: self.key.into_iter().collect(),
        })
    }
}

/// A read across several cases (an inbox, a calendar feed): a case the
/// reader's agency is not in shows nothing, and every case read leaves its
/// own access record.
pub struct ReadSet {
    /// Where each case's read is opened.
    guard: Guard,
    /// Who reads, the same for every case.
    reader: Reader,
    /// The moment to decide at instead of the process's clock; none: the clock.
    now: Option<DateTime<Utc>>,
    /// Each case asked for, by id; none where the case does not exist or the
    /// reader's agency is not in its network.
    reads: BTreeMap<String, Option<CaseRead>>,
}

impl ReadSet {
    pub fn new(guard: &Guard, reader: Reader) -> ReadSet {
        ReadSet {
            guard: guard.clone(),
            reader,
            now: None,
            reads: BTreeMap::new(),
        }
    }

    /// Decides at `now` instead of the process's clock (see [`CaseRead::at`]).
    pub fn at(mut self, now: DateTime<Utc>) -> ReadSet {
        self.now = Some(now);
        self
    }

    /// The read of `case_id`, or None when the reader's agency is not (or no
    /// longer) in its network.
    pub async fn case(&mut self, case_id: &str) -> Result<Option<&mut CaseRead>, GuardError> {
        if !self.reads.contains_key(case_id) {
            let read = match self.guard.read(case_id, &self.reader).await {
                Ok(read) => Some(match self.now {
                    Some(now) => read.at(now),
                    None => read,
                }),
                Err(GuardError::NotFound(_)) => None,
                Err(e) => return Err(e),
            };
            self.reads.insert(case_id.to_string(), read);
        }
        Ok(self.reads.get_mut(case_id).and_then(Option::as_mut))
    }

    /// Makes every case's access record durable, then yields the answer:
    /// `body` with the total `withheld`, and `consent_fresh` only if every
    /// case's view was fresh.
    pub async fn finish<T>(self, resource: &str, body: T) -> Result<Guarded<T>, GuardError> {
        let reads: Vec<CaseRead> = self.reads.into_values().flatten().collect();
        let withheld = reads.iter().map(|r| r.items_withheld).sum();
        let fresh = reads.iter().all(|r| r.case.fresh);
        // All in one go, so they share a batch (and a flush) of the log.
        let records = reads.iter().map(|r| r.record(resource)).collect();
        self.guard.access.record_all(records).await?;
        Ok(Guarded {
            body,
            consent_version: None,
            withheld,
            consent_fresh: fresh,
            keys: reads.into_iter().filter_map(|r| r.key).collect(),
        })
    }
}

/// An answer with client data: made only by [`CaseRead::finish`] or
/// [`ReadSet::finish`], so it was filtered and its access record is durable.
#[derive(Debug)]
#[must_use]
pub struct Guarded<T> {
    /// The filtered answer.
    body: T,
    /// The consent record's version, for a read of one case; none across cases.
    consent_version: Option<i64>,
    /// How many items were withheld, over every case read.
    withheld: u64,
    /// Whether every case's view was fresh.
    consent_fresh: bool,
    /// The data keys of the cases read: each opens only its own case's text.
    keys: Vec<CaseKey>,
}

impl<T> Guarded<T> {
    /// The body as it was built, for an answer in another format (a
    /// calendar feed): its sealed text is not opened here, so open what it
    /// shows with [`CaseRead::open`] while building it.
    pub fn into_body(self) -> T {
        self.body
    }
}

impl<T: Into<Value>> Guarded<T> {
    /// The JSON answer: the body's fields with `withheld`,
    /// `consent_fresh` and, for one case, `consent_version` (unless the
    /// body names the version it shows, as a matrix of a past moment does).
    pub fn into_json(self) -> Value {
        let mut value: Value = self.body.into();
        let keys = self.keys;
        verkosto_keys::open_all_with(&mut value, &|case: &str| {
            keys.iter().find(|k| k.case_id() == case)
        });
        if let Value::Object(map) = &mut value {
            map.insert("withheld".into(), self.withheld.into());
            map.insert("consent_fresh".into(), self.consent_fresh.into());
            if let Some(v) = self.consent_version {
                map.entry("consent_version").or_insert(v.into());
            }
        }
        value
    }
}

impl<T: Into<Value>> IntoResponse for Guarded<T> {
    fn into_response(self) -> Response {
        Json(self.into_json()).into_response()
    }
}

impl Guard {
    /// Opens a guarded read of the case for `reader`: the one way to read
    /// a case's client data. [`GuardError::NotFound`] unless the reader's
    /// agency is in the network, by a fresh view or, when the view may be
    /// behind, by the log itself.
    pub async fn read(&self, case_id: &str, reader: &Reader) -> Result<CaseRead, GuardError> {
        let view = self
            .case(case_id)
            .await?
            .filter(|v| v.is_member(&reader.agency))
            .ok_or_else(|| GuardError::NotFound(case_id.to_string()))?;
        let key = self.log().opening_key(case_id).await?;
        Ok(CaseRead::new(
            view,
            reader.clone(),
            self.access.clone(),
            key,
        ))
    }

    /// Records an auditor's read of a case's history or access log (no
    /// client data), durably, before it is answered.
    pub async fn record_audit(
        &self,
        case_id: &str,
        reader: &Reader,
        resource: &str,
    ) -> Result<(), GuardError> {
        let version = self.log().stream_version("consent", case_id).await?;
        self.access
            .record(AccessRecord {
                case_id: case_id.to_string(),
                reader_user: reader.user.clone(),
                reader_agency: reader.agency.clone(),
                service: reader.service.to_string(),
                resource: resource.to_string(),
                returned: Vec::new(),
                withheld: Vec::new(),
                items_returned: 0,
                items_withheld: 0,
                consent_version: version,
                consent_fresh: true,
                read_at: verkosto_eventlog::clock::now(),
                request_id: reader.request_id.clone(),
                auditor: true,
            })
            .await
    }
}
