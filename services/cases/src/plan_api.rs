//! `/api/v1/cases/{id}/plan...`: the plan's HTTP face.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_directory::domain::check_text;
use verkosto_eventlog::{format_time, AggregateStore, Execution, Outcome};
use verkosto_guard::{CaseRead, Reader};
use verkosto_http::{command_response, Caller, JsonBody, Problem, RequestId, WriteConditions};
use verkosto_policy::{Category, Item};

use crate::domain::Case;
use crate::plan::{ClientAgreement, Measure, Network, Plan, PlanCommand, PlanContent};
use crate::routes::{Cases, Member, CASE_WORKERS};

pub(crate) fn routes() -> Router<Cases> {
    Router::new()
        .route("/api/v1/cases/{id}/plan", get(get_plan))
        .route("/api/v1/cases/{id}/plan/draft", put(save_draft))
        .route("/api/v1/cases/{id}/plan/draft/propose", post(propose))
        .route(
            "/api/v1/cases/{id}/plan/versions/{n}/approve",
            post(approve),
        )
        .route(
            "/api/v1/cases/{id}/plan/versions/{n}/request-changes",
            post(request_changes),
        )
        .route(
            "/api/v1/cases/{id}/plan/versions/{n}/client-agreement",
            post(client_agreement),
        )
}

fn network(case_id: &str, case: &Case) -> Network {
    Network {
        case_id: case_id.to_string(),
        lead: case.lead_agency.clone(),
        members: case.members.clone(),
    }
}

fn plan_store(c: &Cases) -> AggregateStore<Plan> {
    AggregateStore::new(c.log.clone())
}

/// 403 unless the caller's agency leads the case.
fn require_lead(case: &Case, caller: &Caller) -> Result<(), Problem> {
    if case.lead_agency == caller.0.agency {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "only the lead agency's facilitator may do this",
        ))
    }
}

fn parse_version(raw: &str) -> Result<u32, Problem> {
    raw.parse()
        .map_err(|_| Problem::invalid("plan_version", "must be a version number, like 1"))
}

async fn run(
    c: &Cases,
    case_id: &str,
    command: PlanCommand,
    execution: Execution,
) -> Result<Outcome<Plan>, Problem> {
    Ok(plan_store(c)
        .execute(case_id, command, &(), execution)
        .await?)
}

/// After the network changed: agrees the pending version if it is now complete.
pub(crate) async fn reconcile(
    c: &Cases,
    case_id: &str,
    case: &Case,
    caller: &Caller,
) -> Result<(), Problem> {
    let mut meta = verkosto_eventlog::CommandMeta::new(caller.actor());
    meta.causation_id = Some("network-changed".into());
    let at = meta.occurred_at;
    let command = PlanCommand::Reconcile {
        network: network(case_id, case),
        at,
    };
    run(c, case_id, command, Execution::new(meta)).await?;
    Ok(())
}

async fn save_draft(
    State(c): State<Cases>,
    caller: Caller,
    member: Member,
    conditions: WriteConditions,
    Path(case_id): Path<String>,
    body: JsonBody<PlanContent>,
) -> Result<Response, Problem> {
    let case = member.allow(&caller, &[Role::Facilitator])?;
    require_lead(&case, &caller)?;
    let answer = |v: i64| (200, json!({ "status": "draft", "version": v }));
    let execution = conditions.execution(&caller, &body.raw, answer);
    let command = PlanCommand::SaveDraft {
        content: body.value,
        network: network(&case_id, &case),
        at: execution.meta.occurred_at,
    };
    let outcome = run(&c, &case_id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

async fn propose(
    State(c): State<Cases>,
    caller: Caller,
    member: Member,
    conditions: WriteConditions,
    Path(case_id): Path<String>,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    let case = member.allow(&caller, &[Role::Facilitator])?;
    require_lead(&case, &caller)?;
    if !raw.is_empty() {
        verkosto_http::parse_json::<Value>(&raw)?;
    }
    // The number is known only once the events are; the stored answer for
    // a retry is rebuilt from the stream version below.
    let current = plan_store(&c).load(&case_id).await?.aggregate.last_version;
    let answer = move |v: i64| {
        (
            200,
            json!({ "plan_version": current + 1, "status": "pending", "version": v }),
        )
    };
    let execution = conditions.execution(&caller, &raw, answer);
    let command = PlanCommand::Propose {
        at: execution.meta.occurred_at,
    };
    let outcome = run(&c, &case_id, command, execution).await?;
    Ok(command_response(outcome, |a| {
        let n = match &outcome_plan_version(a) {
            Some(n) => *n,
            None => current + 1,
        };
        (
            200,
            json!({ "plan_version": n, "status": "pending", "version": a.version }),
        )
    }))
}

/// The version number a `PlanProposed` in `appended` gave out.
fn outcome_plan_version(appended: &verkosto_eventlog::Appended) -> Option<u32> {
    appended.events.iter().find_map(|e| {
        e.payload
            .pointer("/PlanProposed/plan_version")
            .and_then(Value::as_u64)
            .map(|n| n as u32)
    })
}

fn agreed_in(appended: &verkosto_eventlog::Appended) -> bool {
    appended.events.iter().any(|e| e.event_type == "PlanAgreed")
}

async fn approve(
    State(c): State<Cases>,
    caller: Caller,
    member: Member,
    conditions: WriteConditions,
    Path((case_id, n)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Response, Problem> {
    let case = member.allow(&caller, &CASE_WORKERS)?;
    let plan_version = parse_version(&n)?;
    if !raw.is_empty() {
        verkosto_http::parse_json::<Value>(&raw)?;
    }
    let answer = move |v: i64| (200, json!({ "plan_version": plan_version, "version": v }));
    let execution = conditions.execution(&caller, &raw, answer);
    let command = PlanCommand::Approve {
        plan_version,
        agency: caller.0.agency.clone(),
        network: network(&case_id, &case),
        at: execution.meta.occurred_at,
    };
    let outcome = run(&c, &case_id, command, execution).await?;
    Ok(command_response(outcome, |a| {
        (
            200,
            json!({ "plan_version": plan_version, "agreed": agreed_in(a), "version": a.version }),
        )
    }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Comment {
    comment: String,
}

async fn request_changes(
    State(c): State<Cases>,
    caller: Caller,
    member: Member,
    conditions: WriteConditions,
    Path((case_id, n)): Path<(String, String)>,
    body: JsonBody<Comment>,
) -> Result<Response, Problem> {
    member.allow(&caller, &CASE_WORKERS)?;
    let plan_version = parse_version(&n)?;
    check_text("comment", &body.value.comment, 2000)?;
    let answer = move |v: i64| {
        (
            200,
            json!({ "plan_version": plan_version, "status": "draft", "version": v }),
        )
    };
    let execution = conditions.execution(&caller, &body.raw, answer);
    let command = PlanCommand::RequestChanges {
        plan_version,
        agency: caller.0.agency.clone(),
        comment: body.value.comment,
        at: execution.meta.occurred_at,
    };
    let outcome = run(&c, &case_id, command, execution).await?;
    Ok(command_response(outcome, |a| answer(a.version)))
}

async fn client_agreement(
    State(c): State<Cases>,
    caller: Caller,
    member: Member,
    conditions: WriteConditions,
    Path((case_id, n)): Path<(String, String)>,
    body: JsonBody<ClientAgreement>,
) -> Result<Response, Problem> {
    let case = member.allow(&caller, &[Role::Facilitator])?;
    require_lead(&case, &caller)?;
    let plan_version = parse_version(&n)?;
    crate::domain::check_language("language", &body.value.language)?;
    if let Some(i) = &body.value.interpreter {
        check_text("interpreter", i, 200)?;
    }
    let answer = move |v: i64| (200, json!({ "plan_version": plan_version, "version": v }));
    let execution = conditions.execution(&caller, &body.raw, answer);
    let command = PlanCommand::RecordClientAgreement {
        plan_version,
        agreement: body.value,
        network: network(&case_id, &case),
        at: execution.meta.occurred_at,
    };
    let outcome = run(&c, &case_id, command, execution).await?;
    Ok(command_response(outcome, |a| {
        (
            200,
            json!({ "plan_version": plan_version, "agreed": agreed_in(a), "version": a.version }),
        )
    }))
}

/// A plan version's content as the reader may see it.
fn visible(content: &PlanContent, read: &mut CaseRead) -> Value {
    let goals = read.keep(Item::Data(Category::Plan), json!(content.goals));
    let measures: Vec<&Measure> = content
        .measures
        .iter()
        .filter(|m| read.allows(Item::Data(m.category)))
        .collect();
    json!({ "goals": goals, "measures": measures })
}

async fn get_plan(
    State(c): State<Cases>,
    caller: Caller,
    Path(case_id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let reader = Reader::new("cases", &caller, request_id.as_deref());
    let mut read = c.guard.read(&case_id, &reader).await?;
    caller.require(&CASE_WORKERS)?;
    let loaded = plan_store(&c).load(&case_id).await?;
    let plan = loaded.aggregate;
    let case = c.store().load(&case_id).await?.aggregate;

    let agreed = plan.agreed.as_ref().map(|a| {
        let mut v = visible(&a.content, &mut read);
        v["plan_version"] = json!(a.plan_version);
        v["approved_by"] = json!(a.approved_by);
        v["client_agreement"] = json!(a.client_agreement);
        v["agreed_at"] = json!(format_time(a.agreed_at));
        v
    });
    let awaiting = plan.awaiting(&network(&case_id, &case));
    let pending = plan.pending.as_ref().map(|p| {
        let mut v = visible(&p.content, &mut read);
        v["plan_version"] = json!(p.plan_version);
        v["proposed_at"] = json!(format_time(p.proposed_at));
        v["approved_by"] = json!(p.approvals.keys().collect::<Vec<_>>());
        v["awaiting"] = json!(awaiting);
        v["client_agreement"] = json!(p.client_agreement);
        v
    });
    // The draft is the lead's working copy.
    let draft = match &plan.draft {
        Some(d) if read.case().lead_agency == caller.0.agency => Some(visible(d, &mut read)),
        _ => None,
    };
    let body = json!({
        "agreed": agreed,
        "pending": pending,
        "draft": draft,
        "version": loaded.version,
    });
    let answer = read.finish("plan", body).await?;
    Ok((
        [(axum::http::header::ETAG, format!("\"{}\"", loaded.version))],
        answer,
    )
        .into_response())
}

use axum::response::IntoResponse;
