//! [`Guard`]: a fresh view of one case, for filtering a read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use verkosto_eventlog::{Cursor, EventLog, Progress};
use verkosto_policy::{CaseFacts, ConsentEvent, ConsentState, Decision, Item};

use crate::access::AccessLog;
use crate::error::GuardError;
use crate::feed::fold_case;

/// What a service needs to filter reads of one case.
#[derive(Clone, Debug)]
pub struct CaseAccess {
    /// The case's id.
    pub case_id: String,
    /// The case's lead agency id.
    pub lead_agency: String,
    /// The name the case goes by in place of the client's.
    pub pseudonym: String,
    /// The client is a child (also in `consent.case`).
    pub minor: bool,
    /// The client's whereabouts must be protected (also in `consent.case`).
    pub safety_risk: bool,
    /// Member agencies, the lead included.
    pub members: BTreeSet<String>,
    /// The consent record, with the case's facts the rules need.
    pub consent: Arc<ConsentState>,
    /// When the case was closed; none while it is open. A closed case takes
    /// no new meetings or tasks.
    pub closed_at: Option<DateTime<Utc>>,
    /// False when the feed could not catch up in time, or a consent or case
    /// event of the case could not be read: then every read withholds
    /// everything (and `members` was read from the log itself).
    pub fresh: bool,
}

impl CaseAccess {
    pub fn is_member(&self, agency: &str) -> bool {
        self.members.contains(agency)
    }

    pub fn consent_version(&self) -> i64 {
        self.consent.version()
    }

    /// The case's facts the rules need (flags, coming of age).
    pub fn facts(&self) -> &CaseFacts {
        &self.consent.case
    }

    /// The policy's answer for one item read by `reader` at `at` (denied
    /// on a view that is not fresh).
    pub fn judge(&self, reader: &str, item: Item<'_>, at: DateTime<Utc>) -> Decision {
        verkosto_policy::judge(&self.consent, self.fresh, reader, item, at)
    }
}

/// A consent or case event this process could not read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnreadableEvent {
    /// The case: the event's `stream_id`.
    pub case_id: String,
    /// The event's id, which an operator names to resolve it.
    pub event_id: String,
    /// `case` or `consent`.
    pub stream_type: String,
    /// The event's type name.
    pub event_type: String,
    /// The event's position in the log.
    pub position: i64,
    /// Why it could not be read.
    pub reason: String,
}

/// Fresh views of cases, and the access log, for one process.
#[derive(Clone)]
pub struct Guard {
    /// The log: stream heads, and the network when the view is stale.
    log: EventLog,
    /// The name of this process's [`crate::GuardFeed`]: its rows in the guard tables.
    consumer: &'static str,
    /// How far that feed has got.
    progress: Progress,
    /// Where reads are recorded.
    pub(crate) access: AccessLog,
    /// How long a read waits for the feed before it fails closed (stale).
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
            return self.stale(case_id, None).await;
        }
        if let Some((at, view)) = self.views.lock().expect("views lock").get(case_id) {
            if *at == head {
                return Ok(Some(view.clone()));
            }
        }
        // The feed has passed `head`, and the log only grows, so what is
        // loaded now is the view at `head` or later: a later one has a
        // later head, and is never found under this one again.
        let view = self.load(case_id).await?;
        if let Some(view) = view.as_ref().filter(|v| !v.fresh) {
            tracing::warn!(
                case_id,
                consumer = self.consumer,
                "the case has unreadable consent or case events; failing closed"
            );
            return self.stale(case_id, Some(view.clone())).await;
        }
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

    /// Whether `agency` leads at least one case, as this process's view
    /// knows (a case opened a moment ago may not be in it yet).
    pub async fn leads_a_case(&self, agency: &str) -> Result<bool, GuardError> {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT case_id FROM guard_cases WHERE consumer = $1 AND lead_agency = $2 LIMIT 1",
        )
        .bind(self.consumer)
        .bind(agency)
        .fetch_optional(self.log.db().reader())
        .await?;
        Ok(found.is_some())
    }

    /// A view that may be behind: it withholds everything, and its network
    /// is folded from the log itself, so that an agency removed a moment
    /// ago is no member here either. None when the log has no such case.
    /// `loaded` is the view from this process's copy, if already read.
    async fn stale(
        &self,
        case_id: &str,
        loaded: Option<CaseAccess>,
    ) -> Result<Option<CaseAccess>, GuardError> {
        let changes = fold_case(&self.log, case_id).await?;
        if changes.erased(case_id) {
            return Err(GuardError::Gone(case_id.to_string()));
        }
        let Some(members) = changes.members(case_id) else {
            return Ok(loaded);
        };
        if !changes.all_read() {
            // A case event may have changed the network: no one can be
            // shown to be a member.
            let case_events_read = changes.unreadable_streams().all(|s| s != "case");
            if !case_events_read {
                return Err(GuardError::NetworkUnreadable(case_id.to_string()));
            }
        }
        let loaded = match loaded {
            Some(view) => Some(view),
            None => self.load(case_id).await?,
        };
        let Some(mut view) = loaded else {
            return Ok(None);
        };
        view.members = members;
        view.fresh = false;
        Ok(Some(view))
    }

    async fn load(&self, case_id: &str) -> Result<Option<CaseAccess>, GuardError> {
        let pool = self.log.db().reader();
        type CaseRow = (
            String,
            String,
            i64,
            i64,
            Option<String>,
            String,
            i64,
            Option<String>,
            i64,
        );
        let row: Option<CaseRow> = sqlx::query_as(
            "SELECT lead_agency, pseudonym, minor, safety_risk, comes_of_age, minor_may_consent, \
             (SELECT COUNT(*) FROM guard_unreadable u WHERE u.consumer = c.consumer \
              AND u.case_id = c.case_id), closed_at, erased FROM guard_cases c \
             WHERE consumer = $1 AND case_id = $2",
        )
        .bind(self.consumer)
        .bind(case_id)
        .fetch_optional(pool)
        .await?;
        let Some((
            lead_agency,
            pseudonym,
            minor,
            safety_risk,
            comes_of_age,
            may_consent,
            unreadable,
            closed_at,
            erased,
        )) = row
        else {
            return Ok(None);
        };
        if erased != 0 {
            return Err(GuardError::Gone(case_id.to_string()));
        }
        let facts = CaseFacts {
            safety_risk: safety_risk != 0,
            minor: minor != 0,
            comes_of_age: comes_of_age.and_then(|d| d.parse().ok()),
            minor_may_consent: may_consent
                .split(',')
                .filter_map(|w| w.parse().ok())
                .collect(),
        };
        let members: Vec<String> = sqlx::query_scalar(
            "SELECT agency FROM guard_members WHERE consumer = $1 AND case_id = $2",
        )
        .bind(self.consumer)
        .bind(case_id)
        .fetch_all(pool)
        .await?;
        let consent = self.consent(case_id, &lead_agency, &facts).await?;
        Ok(Some(CaseAccess {
            case_id: case_id.to_string(),
            lead_agency,
            pseudonym,
            minor: facts.minor,
            safety_risk: facts.safety_risk,
            members: members.into_iter().collect(),
            consent,
            closed_at: closed_at.and_then(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .ok()
                    .map(|t| t.with_timezone(&Utc))
            }),
            fresh: unreadable == 0,
        }))
    }

    /// The consent and case events this process could not read, of every
    /// case: while a case has one, its reads withhold everything.
    pub async fn unreadable(&self) -> Result<Vec<UnreadableEvent>, GuardError> {
        let rows: Vec<(String, String, String, String, i64, String)> = sqlx::query_as(
            "SELECT case_id, event_id, stream_type, event_type, position, reason \
             FROM guard_unreadable WHERE consumer = $1 ORDER BY position",
        )
        .bind(self.consumer)
        .fetch_all(self.log.db().reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(case_id, event_id, stream_type, event_type, position, reason)| UnreadableEvent {
                    case_id,
                    event_id,
                    stream_type,
                    event_type,
                    position,
                    reason,
                },
            )
            .collect())
    }

    /// The consent record, folded, with the case's facts: from the cache
    /// plus whatever arrived since (copied only when either changed).
    async fn consent(
        &self,
        case_id: &str,
        lead: &str,
        facts: &CaseFacts,
    ) -> Result<Arc<ConsentState>, GuardError> {
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
            if let Some(state) = cached.as_ref().filter(|s| s.case == *facts) {
                return Ok(state.clone());
            }
        }
        let mut state = match cached {
            Some(s) => (*s).clone(),
            None => ConsentState::new(lead),
        };
        state.case = facts.clone();
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
            .is_none_or(|c| c.version() < state.version() || c.case != state.case);
        if keep {
            cache.insert(case_id.to_string(), state.clone());
        }
        Ok(state)
    }
}
