//! Finding a case by its pseudonym without the pseudonym being readable
//! where it is looked up: the key store's blind index (a keyed hash of the
//! normalized text) maps it to case ids, and the entries are destroyed
//! with the case's key. A facilitator or liaison searches the cases of
//! their agency (`GET /api/v1/cases?pseudonym=`); an auditor, who is in no
//! network, finds which case a client's pseudonym names
//! (`GET /api/v1/audit/cases?pseudonym=`) and learns nothing but its ids.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::AnyConnection;
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, ApplyError, Error, EventLog, Projection, RecordedEvent};
use verkosto_http::{Caller, Problem};

use crate::service::Cases;

/// The blind index's field for pseudonyms.
pub(crate) const PSEUDONYM: &str = "pseudonym";

/// Indexes each opened case's pseudonym: a reaction, so that every case,
/// however it was opened (the API, the demo loader), is found, and a
/// restart picks up where it stopped.
pub struct PseudonymIndex {
    /// Whose key store holds the index.
    pub log: EventLog,
}

/// The reaction's name (its checkpoint).
pub const PSEUDONYM_INDEX: &str = "cases-pseudonym-index";

#[async_trait::async_trait]
impl Projection for PseudonymIndex {
    fn name(&self) -> &'static str {
        PSEUDONYM_INDEX
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream_type == "case" && event.event_type == "CaseOpened"
    }

    async fn apply(
        &self,
        _conn: &mut AnyConnection,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let Some(keys) = self.log.keys() else {
            return Ok(());
        };
        let case_id = event.stream_id.as_str();
        // An erased case has no key, and is found no more.
        let Some(key) = keys.existing_case_key(case_id).await.map_err(Error::Keys)? else {
            return Ok(());
        };
        let stored = event.payload["CaseOpened"]["pseudonym"]
            .as_str()
            .unwrap_or_default();
        let pseudonym = if verkosto_keys::is_sealed(stored) {
            key.open(stored)
                .map_err(|e| ApplyError::Poison(format!("the pseudonym does not open: {e}")))?
        } else {
            stored.to_string()
        };
        match keys.index(case_id, PSEUDONYM, &pseudonym).await {
            // Erased between the two: nothing to find.
            Err(verkosto_keys::KeyError::NoKey(_)) => Ok(()),
            other => Ok(other.map_err(Error::Keys)?),
        }
    }

    async fn reset(&self, _conn: &mut AnyConnection) -> Result<(), Error> {
        Ok(())
    }
}

/// The ids of the cases whose pseudonym is `pseudonym` (normalized: case,
/// spacing and Unicode forms do not matter).
pub(crate) async fn find(log: &EventLog, pseudonym: &str) -> Result<Vec<String>, Problem> {
    let keys = log
        .keys()
        .ok_or_else(|| Error::Config("no key store: nothing can be found".into()))?;
    Ok(keys.find(PSEUDONYM, pseudonym).await.map_err(Error::Keys)?)
}

/// The longest pseudonym a case may have, as a search term too.
const MAX_PSEUDONYM: usize = 64;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Search {
    /// Only the cases with this pseudonym (exact, but for case, spacing
    /// and Unicode forms).
    pub pseudonym: Option<String>,
}

impl Search {
    /// The pseudonym searched for, checked: 422 naming `pseudonym` when
    /// it is empty or longer than any pseudonym.
    pub(crate) fn pseudonym(&self) -> Result<Option<&str>, Problem> {
        match self.pseudonym.as_deref() {
            None => Ok(None),
            Some(p) if verkosto_keys::normalize(p).is_empty() => {
                Err(Problem::invalid("pseudonym", "must not be empty"))
            }
            Some(p) if p.chars().count() > MAX_PSEUDONYM => Err(Problem::invalid(
                "pseudonym",
                format!("at most {MAX_PSEUDONYM} characters"),
            )),
            Some(p) => Ok(Some(p)),
        }
    }
}

pub(crate) fn routes() -> Router<Cases> {
    Router::new().route("/api/v1/audit/cases", get(audit_search))
}

/// An auditor finds the case a pseudonym names (a client asking who read
/// their data, say): ids, the lead agency and the case's state only.
async fn audit_search(
    State(c): State<Cases>,
    caller: Caller,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    let Query(search) = query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let Some(pseudonym) = search.pseudonym()? else {
        return Err(Problem::invalid("pseudonym", "required"));
    };
    let mut cases = Vec::new();
    for id in find(&c.log, pseudonym).await? {
        let loaded = c.store().load(&id).await?;
        let case = loaded.aggregate;
        if case.id.is_none() || case.erased {
            continue;
        }
        cases.push(json!({
            "case_id": id,
            "lead_agency": case.lead_agency,
            "status": if case.closed.is_some() { "closed" } else { "open" },
            "closed_at": case.closed.as_ref().map(|(at, _)| format_time(*at)),
        }));
    }
    Ok(Json(json!({ "cases": cases })))
}
