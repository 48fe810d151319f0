//! The client's records: `POST/GET /api/v1/cases/{id}/records`.
//!
//! A record is written once, in one category, and never changed: a
//! correction is a new record that names the one it corrects. The body
//! stays in this service's table, sealed under the case's key; the
//! `RecordAdded` event on the shared stream carries only the SHA-256 of the
//! sealed body, so the chain still vouches for it, and an erased body
//! cannot be confirmed by guessing it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, Appended, Error as LogError, ExpectedVersion, NewEvent};
use verkosto_guard::Reader;
use verkosto_http::{
    commit_idempotent, earlier_answer, Caller, JsonBody, Problem, RequestId, WriteConditions,
};
use verkosto_policy::{Category, Item};
use verkosto_types::Text;

use crate::service::{Cases, Member};

/// Events of the `record` stream (its id is the record id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum RecordEvent {
    /// A member agency recorded information about the client, once and for good.
    RecordAdded {
        /// The record's id (`rec-` and a UUIDv7 in hex), the stream's id too.
        record_id: String,
        /// The case whose client the record is about.
        case_id: String,
        /// The category of client data it holds: consent to that category
        /// decides who may read it.
        category: Category,
        /// The member agency that wrote it.
        author_agency: String,
        /// The earlier record of the same case this one corrects; records are
        /// never changed.
        corrects: Option<String>,
        /// SHA-256 (hex) of the body as sealed: the body itself stays in the
        /// cases service.
        body_sha256: String,
        /// When it was recorded.
        at: DateTime<Utc>,
    },
}

/// A record as a reader sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordView {
    /// The record's id.
    pub id: String,
    /// The category of client data it holds.
    pub category: Category,
    /// What was recorded.
    pub body: String,
    /// The member agency that wrote it.
    pub author_agency: String,
    /// When it was recorded.
    pub recorded_at: String,
    /// The earlier record this one corrects, if it is a correction.
    pub corrects: Option<String>,
}

pub(crate) fn routes() -> Router<Cases> {
    Router::new().route(
        "/api/v1/cases/{id}/records",
        post(add_record).get(list_records),
    )
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRecord {
    /// The category of client data the record holds: consent to that
    /// category decides who may read it.
    category: Category,
    /// What is recorded (at most 20 000 characters); it can never be changed.
    body: Text<MAX_BODY_CHARS>,
    /// The id of an earlier record of this case that this one corrects.
    #[serde(default)]
    corrects: Option<String>,
}

const MAX_BODY_CHARS: usize = 20_000;

async fn add_record(
    State(c): State<Cases>,
    caller: Caller,
    conditions: WriteConditions,
    member: Member,
    Path(case_id): Path<String>,
    body: JsonBody<NewRecord>,
) -> Result<Response, Problem> {
    let case = member.allow(&caller, &[Role::Facilitator, Role::Liaison])?;
    if case.closed.is_some() {
        return Err(Problem::conflict(format!(
            "case {case_id} is closed: it takes no new records"
        )));
    }
    let NewRecord {
        category,
        body: text,
        corrects,
    } = body.value;
    let text = String::from(text);
    if let Some(corrected) = &corrects {
        let found: Option<String> =
            sqlx::query_scalar("SELECT id FROM cases_records WHERE id = $1 AND case_id = $2")
                .bind(corrected)
                .bind(&case_id)
                .fetch_optional(c.log.db().reader())
                .await
                .map_err(LogError::from)?;
        if found.is_none() {
            return Err(Problem::invalid(
                "corrects",
                format!("no record {corrected} in this case"),
            ));
        }
    }
    let record_id = format!("rec-{}", uuid::Uuid::now_v7().simple());
    let answer = {
        let id = record_id.clone();
        move |_version: i64| (201, json!({ "id": id }))
    };
    let execution = conditions.execution(&caller, &body.raw, answer.clone());
    if let Some(first) = earlier_answer(&c.log, execution.idempotency.as_ref()).await? {
        return Ok(first);
    }
    let at = execution.meta.occurred_at;
    // Sealed before it is hashed or stored: the row never holds the text.
    let body = c.log.seal(&case_id, &record_id, &text).await?;
    let event = RecordEvent::RecordAdded {
        record_id: record_id.clone(),
        case_id: case_id.clone(),
        category,
        author_agency: caller.0.agency.clone(),
        corrects: corrects.clone(),
        body_sha256: hex::encode(Sha256::digest(body.as_bytes())),
        at,
    };
    let new_event = NewEvent {
        event_type: "RecordAdded".into(),
        schema_version: 1,
        payload: serde_json::to_value(&event).map_err(LogError::from)?,
        sealing: None,
    };

    let mut tx = c.log.db().begin().await?;
    let appended: Appended = c
        .log
        .append_in(
            &mut tx,
            "record",
            &record_id,
            ExpectedVersion::NoStream,
            vec![new_event],
            &execution.meta,
        )
        .await?;
    let position = appended.events[0].position;
    sqlx::query(
        "INSERT INTO cases_records (id, case_id, position, category, body, author_agency, author_user, corrects, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&record_id)
    .bind(&case_id)
    .bind(position)
    .bind(category.as_str())
    .bind(&body)
    .bind(&caller.0.agency)
    .bind(&caller.0.user)
    .bind(&corrects)
    .bind(format_time(at))
    .execute(&mut *tx)
    .await
    .map_err(LogError::from)?;
    let committed = commit_idempotent(&c.log, tx, execution.idempotency.as_ref(), appended.version);
    if let Some(first) = committed.await? {
        return Ok(first);
    }
    c.log.announce(&appended);
    let (status, body) = answer(appended.version);
    Ok(respond(status, body))
}

fn respond(status: u16, body: Value) -> Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    (status, Json(body)).into_response()
}

type RecordRow = (String, String, String, String, String, Option<String>);

async fn list_records(
    State(c): State<Cases>,
    caller: Caller,
    Path(case_id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    #[cfg(feature = "bench")]
    if c.bench_unfiltered_reads {
        return unfiltered_records(&c, &caller, &case_id)
            .await
            .map(IntoResponse::into_response);
    }
    let reader = Reader::new("cases", &caller, request_id.as_deref());
    let mut read = c.guard.read(&case_id, &reader).await?;
    caller.require(&[Role::Facilitator, Role::Liaison])?;
    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT id, category, body, author_agency, recorded_at, corrects FROM cases_records \
         WHERE case_id = $1 ORDER BY position",
    )
    .bind(&case_id)
    .fetch_all(c.log.db().reader())
    .await
    .map_err(LogError::from)?;

    let mut records = Vec::new();
    for (id, category, body, author_agency, recorded_at, corrects) in rows {
        let Ok(category) = category.parse::<Category>() else {
            tracing::error!(record = %id, "record with an unknown category withheld");
            continue;
        };
        let item = Item::Authored {
            category,
            author: &author_agency,
        };
        if read.allows(item) {
            records.push(RecordView {
                id,
                category,
                body,
                author_agency,
                recorded_at,
                corrects,
            });
        }
    }
    Ok(read
        .finish("records", json!({ "records": records }))
        .await?
        .into_response())
}

/// The benchmark's baseline (bench builds only): the same query and answer
/// with no consent filter and no access record.
#[cfg(feature = "bench")]
async fn unfiltered_records(
    c: &Cases,
    caller: &Caller,
    case_id: &str,
) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Facilitator, Role::Liaison])?;
    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT id, category, body, author_agency, recorded_at, corrects FROM cases_records \
         WHERE case_id = $1 ORDER BY position",
    )
    .bind(case_id)
    .fetch_all(c.log.db().reader())
    .await
    .map_err(LogError::from)?;
    let records: Vec<RecordView> = rows
        .into_iter()
        .filter_map(
            |(id, category, body, author_agency, recorded_at, corrects)| {
                Some(RecordView {
                    id,
                    category: category.parse().ok()?,
                    body,
                    author_agency,
                    recorded_at,
                    corrects,
                })
            },
        )
        .collect();
    // Opened like the guarded read: the baseline leaves out only the
    // consent filter and the access record.
    let mut answer = json!({ "records": records, "withheld": 0 });
    c.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}
