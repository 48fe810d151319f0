//! The point-in-time consent matrix as answers show it: members' and
//! auditors' (`?at=`), each cell a decision of the policy.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use verkosto_eventlog::format_time;
use verkosto_http::Problem;
use verkosto_policy::{matrix, ConsentState, Decision};

use crate::domain::agencies_in;

/// Parses `?at=`: RFC 3339 with an offset.
pub(crate) fn parse_at(raw: Option<&str>) -> Result<DateTime<Utc>, Problem> {
    match raw {
        None => Ok(verkosto_eventlog::clock::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                Problem::bad_request(
                    "at: must be an RFC 3339 time with an offset, like 2026-11-22T10:00:00Z",
                )
            }),
    }
}

/// The matrix of a view that may be behind: every cell denied (`stale`).
pub(crate) fn stale_matrix(
    case_id: &str,
    members: &BTreeSet<String>,
    state: &ConsentState,
    at: DateTime<Utc>,
) -> Value {
    let mut answer = matrix_answer(case_id, members, state, at);
    let stale = cell(&Decision::Denied(verkosto_policy::Denial::Stale));
    if let Some(rows) = answer["matrix"].as_object_mut() {
        for row in rows.values_mut() {
            if let Some(row) = row.as_object_mut() {
                for c in row.values_mut() {
                    *c = stale.clone();
                }
            }
        }
    }
    answer
}

/// The matrix answer: every agency in `members` and every agency the record
/// names, with each category's decision at `at`.
pub fn matrix_answer(
    case_id: &str,
    members: &BTreeSet<String>,
    state: &ConsentState,
    at: DateTime<Utc>,
) -> Value {
    let mut agencies: BTreeSet<String> = members.clone();
    agencies.insert(state.lead.clone());
    agencies.extend(agencies_in(state));
    let rows = matrix(state, agencies.iter().map(String::as_str), at);
    let rows: BTreeMap<String, BTreeMap<&str, Value>> = rows
        .into_iter()
        .map(|(agency, row)| {
            let row = row
                .into_iter()
                .map(|(category, decision)| (category.as_str(), cell(&decision)))
                .collect();
            (agency, row)
        })
        .collect();
    json!({
        "case_id": case_id,
        "consent_version": state.version_at(at),
        "as_of": format_time(at),
        "lead_agency": state.lead,
        "matrix": rows,
    })
}

/// The grants in force at `at`, with how each was obtained.
pub fn grants_in_force(state: &ConsentState, at: DateTime<Utc>) -> Value {
    let grants: Vec<Value> = state
        .grants
        .values()
        .filter(|g| g.in_force(at))
        .map(|g| {
            json!({
                "grant_id": g.id,
                "recipient": g.recipient,
                "categories": g.categories,
                "purpose": g.purpose,
                "valid_from": format_time(g.valid_from),
                "valid_until": g.valid_until.map(format_time),
                "obtained": g.obtained,
                "granted_at": format_time(g.granted_at),
            })
        })
        .collect();
    Value::Array(grants)
}

fn cell(decision: &Decision) -> Value {
    let mut cell = json!({ "allowed": decision.allowed(), "basis": decision.word() });
    match decision {
        Decision::Allowed(verkosto_policy::Basis::Consent { grant_id })
        | Decision::Denied(verkosto_policy::Denial::Withdrawn { grant_id })
        | Decision::Denied(verkosto_policy::Denial::Expired { grant_id }) => {
            cell["grant_id"] = json!(grant_id);
        }
        Decision::Allowed(verkosto_policy::Basis::Statutory { basis_id }) => {
            cell["basis_id"] = json!(basis_id);
        }
        Decision::Denied(verkosto_policy::Denial::Refused { refusal_id }) => {
            cell["refusal_id"] = json!(refusal_id);
        }
        _ => {}
    }
    cell
}
