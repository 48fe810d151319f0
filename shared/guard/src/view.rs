//! [`Guard`]: a fresh view of one case, for filtering a read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use verkosto_eventlog::{Cursor, EventLog, Progress};
use verkosto_policy::{decide, Category, ConsentEvent, ConsentState, Decision};

use crate::access::{AccessLog, AccessRecord};
use crate::filter::ReadFilter;

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Log(#[from] verkosto_eventlog::Error),
    #[error("the access log could not be written: {0}")]
    AccessLog(String),
}

impl From<sqlx::Error> for GuardError {
    fn from(e: sqlx::Error) -> Self {
        GuardError::Log(e.into())
    }
}

/// What a service needs to filter reads of one case.
#[derive(Clone, Debug)]
pub struct CaseAccess {
    pub case_id: String,
    pub lead_agency: String,
    pub pseudonym: String,
    pub minor: bool,
    pub safety_risk: bool,
    /// Member agencies, the lead included.
    pub members: BTreeSet<String>,
    pub consent: Arc<ConsentState>,
    /// False when the feed could not catch up in time: then every filter
    /// made from this view withholds everything.
    pub fresh: bool,
}

impl CaseAccess {
    pub fn is_member(&self, agency: &str) -> bool {
        self.members.contains(agency)
    }

    pub fn consent_version(&self) -> i64 {
        self.consent.version()
    }

    /// The policy's answer for `reader` and `category` now (denied when stale).
    pub fn decide(&self, reader: &str, category: Category, at: DateTime<Utc>) -> Decision {
        if !self.fresh {
            return Decision::Denied(verkosto_policy::Denial::None);
        }
        decide(&self.consent, reader, category, at)
    }

    /// A filter for one read by `reader`, at `at`.
    pub fn filter(&self, reader: &str, at: DateTime<Utc>) -> ReadFilter<'_> {
        ReadFilter::new(self, reader, at)
    }
}

/// Fresh views of cases, and the access log, for one process.
#[derive(Clone)]
pub struct Guard {
    log: EventLog,
    consumer: &'static str,
    progress: Progress,
    access: AccessLog,
    wait: Duration,
    /// Each case's consent record, folded: a changed record is read from
    /// the version the cache has.
    cache: Arc<Mutex<HashMap<String, Arc<ConsentState>>>>,
    /// Each case's whole view, with the head of its streams when it was
    /// loaded: while that head is the latest, the view is current, and a
    /// read costs one query instead of five.
    views: Arc<Mutex<HashMap<String, (Cursor, CaseAccess)>>>,
}

/// How many cases each cache keeps before it starts over.
const CACHE_LIMIT: usize = 10_000;

impl Guard {
    /// `progress` is the [`crate::GuardFeed`] named `consumer`'s; `wait` how
    /// long a read waits for it before failing closed.
    pub fn new(
        log: EventLog,
        consumer: &'static str,
        progress: Progress,
        access: AccessLog,
        wait: Duration,
    ) -> Guard {
        Guard {
            log,
            consumer,
            progress,
            access,
            wait,
            cache: Arc::default(),
            views: Arc::default(),
        }
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// The case as this process may filter by: None when it does not exist
    /// (as far as the log knows). Waits until the feed has seen every
    /// committed change to the case's network and consent record.
    pub async fn case(&self, case_id: &str) -> Result<Option<CaseAccess>, GuardError> {
        let head = self
            .log
            .latest_cursor(&["case", "consent"], case_id)
            .await?;
        let Some(head) = head else {
            return Ok(None);
        };
        let fresh = self.progress.wait_for(head, self.wait).await;
        if !fresh {
            tracing::warn!(case_id, consumer = self.consumer, %head, "consent view is behind; failing closed");
            return self.load(case_id, false).await;
        }
        if let Some((at, view)) = self.views.lock().expect("views lock").get(case_id) {
            if *at == head {
                return Ok(Some(view.clone()));
            }
        }
        // The feed has passed `head`, and the log only grows, so what is
        // loaded now is the view at `head` or later: a later one has a
        // later head, and is never found under this one again.
        let view = self.load(case_id, true).await?;
        if let Some(view) = &view {
            let mut views = self.views.lock().expect("views lock");
            if views.len() >= CACHE_LIMIT {
                views.clear();
            }
            views.insert(case_id.to_string(), (head, view.clone()));
        }
        Ok(view)
    }

    /// The cases whose network holds `agency`.
    pub async fn cases_of(&self, agency: &str) -> Result<Vec<String>, GuardError> {
        Ok(sqlx::query_scalar(
            "SELECT case_id FROM guard_members WHERE consumer = $1 AND agency = $2 ORDER BY case_id",
        )
        .bind(self.consumer)
        .bind(agency)
        .fetch_all(self.log.db().reader())
        .await?)
    }

    async fn load(&self, case_id: &str, fresh: bool) -> Result<Option<CaseAccess>, GuardError> {
        let pool = self.log.db().reader();
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT lead_agency, pseudonym, minor, safety_risk FROM guard_cases \
             WHERE consumer = $1 AND case_id = $2",
        )
        .bind(self.consumer)
        .bind(case_id)
        .fetch_optional(pool)
        .await?;
        let Some((lead_agency, pseudonym, minor, safety_risk)) = row else {
            return Ok(None);
        };
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT agency FROM guard_members WHERE consumer = $1 AND case_id = $2",
        )
        .bind(self.consumer)
        .bind(case_id)
        .fetch_all(pool)
        .await?;
        let consent = self.consent(case_id, &lead_agency).await?;
        Ok(Some(CaseAccess {
            case_id: case_id.to_string(),
            lead_agency,
            pseudonym,
            minor: minor != 0,
            safety_risk: safety_risk != 0,
            members: members.into_iter().collect(),
            consent,
            fresh,
        }))
    }

    /// The consent record, folded: from the cache plus whatever arrived since.
    async fn consent(&self, case_id: &str, lead: &str) -> Result<Arc<ConsentState>, GuardError> {
        let cached = self.cache.lock().expect("cache lock").get(case_id).cloned();
        let from = cached.as_ref().map_or(0, |s| s.version());
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT version, payload FROM guard_consent \
             WHERE consumer = $1 AND case_id = $2 AND version > $3 ORDER BY version",
        )
        .bind(self.consumer)
        .bind(case_id)
        .bind(from)
        .fetch_all(self.log.db().reader())
        .await?;
        if rows.is_empty() {
            if let Some(state) = cached {
                return Ok(state);
            }
        }
        let mut state = match cached {
            Some(s) => (*s).clone(),
            None => ConsentState::new(lead),
        };
        for (_, payload) in rows {
            let event: ConsentEvent = serde_json::from_str(&payload)
                .map_err(|e| GuardError::Log(verkosto_eventlog::Error::Json(e)))?;
            state.apply(&event);
        }
        let state = Arc::new(state);
        let mut cache = self.cache.lock().expect("cache lock");
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        // Keep the newest; a concurrent, staler load must not win.
        let keep = cache
            .get(case_id)
            .is_none_or(|c| c.version() < state.version());
        if keep {
            cache.insert(case_id.to_string(), state.clone());
        }
        Ok(state)
    }

    /// Writes the access record; returns once it is durable. Call it before
    /// sending the data.
    pub async fn record_access(&self, record: AccessRecord) -> Result<(), GuardError> {
        self.access.record(record).await
    }

    pub fn access_log(&self) -> &AccessLog {
        &self.access
    }
}
