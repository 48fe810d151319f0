//! `/api/v1/cases/{id}/plan...`: the plan's HTTP face.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Extension, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, AggregateStore, Appended, Execution};
use verkosto_guard::{CaseRead, Reader};
use verkosto_http::{Action, Caller, Commands, Problem, RequestId, Write};
use verkosto_policy::{Category, Item};
use verkosto_types::parse_field;
use verkosto_types::{Language, Text};

use crate::domain::Case;
use crate::plan::{ClientAgreement, Measure, Network, Plan, PlanCommand, PlanContent};
use crate::service::{Cases, Member, CASE_WORKERS};

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

/// Where plan commands run. No read model of this service shows the plan
/// (reads fold its stream), so a write answers once it is durable.
fn plans(c: &Cases) -> Commands<Plan> {
    Commands::without_read_model(c.log.clone())
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
    plan_store(c)
        .execute(case_id, command, &(), Execution::new(meta))
        .await?;
    Ok(())
}

async fn save_draft(
    State(c): State<Cases>,
    member: Member,
    Path(case_id): Path<String>,
    write: Write<PlanContent>,
) -> Result<Response, Problem> {
    let case = member.allow(&write.caller, &[Role::Facilitator])?;
    require_lead(&case, &write.caller)?;
    let answer = |v: i64| (200, json!({ "status": "draft", "version": v }));
    let network = network(&case_id, &case);
    let command = |content, at| PlanCommand::SaveDraft {
        content,
        network,
        at,
    };
    plans(&c).run(&case_id, write, answer, command).await
}

async fn propose(
    State(c): State<Cases>,
    member: Member,
    Path(case_id): Path<String>,
    Action(write): Action,
) -> Result<Response, Problem> {
    let case = member.allow(&write.caller, &[Role::Facilitator])?;
    require_lead(&case, &write.caller)?;
    // The number is known only once the events are; the stored answer for
    // a retry is rebuilt from the stream version below.
    let current = plan_store(&c).load(&case_id).await?.aggregate.last_version;
    let answer = move |v: i64| {
        (
            200,
            json!({ "plan_version": current + 1, "status": "pending", "version": v }),
        )
    };
    let fresh = |a: &Appended| {
        let n = outcome_plan_version(a).unwrap_or(current + 1);
        (
            200,
            json!({ "plan_version": n, "status": "pending", "version": a.version }),
        )
    };
    let command = |(), at| PlanCommand::Propose { at };
    plans(&c)
        .run_answering(&case_id, write, answer, command, fresh)
        .await
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
    member: Member,
    Path((case_id, n)): Path<(String, String)>,
    Action(write): Action,
) -> Result<Response, Problem> {
    let case = member.allow(&write.caller, &CASE_WORKERS)?;
    let plan_version = parse_version(&n)?;
    let answer = move |v: i64| (200, json!({ "plan_version": plan_version, "version": v }));
    let (agency, network) = (write.agency(), network(&case_id, &case));
    let command = |(), at| PlanCommand::Approve {
        plan_version,
        agency,
        network,
        at,
    };
    plans(&c)
        .run_answering(&case_id, write, answer, command, agreed(plan_version))
        .await
}

/// The fresh answer to a write that may complete the plan's agreement.
fn agreed(plan_version: u32) -> impl FnOnce(&Appended) -> (u16, Value) {
    move |a| {
        (
            200,
            json!({ "plan_version": plan_version, "agreed": agreed_in(a), "version": a.version }),
        )
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Comment {
    /// What should change in the version, for the lead to act on.
    comment: Text<2000>,
}

async fn request_changes(
    State(c): State<Cases>,
    member: Member,
    Path((case_id, n)): Path<(String, String)>,
    write: Write<Comment>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &CASE_WORKERS)?;
    let plan_version = parse_version(&n)?;
    let answer = move |v: i64| {
        (
            200,
            json!({ "plan_version": plan_version, "status": "draft", "version": v }),
        )
    };
    let agency = write.agency();
    let command = |body: Comment, at| PlanCommand::RequestChanges {
        plan_version,
        agency,
        comment: body.comment.into(),
        at,
    };
    plans(&c).run(&case_id, write, answer, command).await
}

async fn client_agreement(
    State(c): State<Cases>,
    member: Member,
    Path((case_id, n)): Path<(String, String)>,
    write: Write<ClientAgreement>,
) -> Result<Response, Problem> {
    let case = member.allow(&write.caller, &[Role::Facilitator])?;
    require_lead(&case, &write.caller)?;
    let plan_version = parse_version(&n)?;
    parse_field::<Language>("language", write.body.language.as_str())?;
    if let Some(i) = &write.body.interpreter {
        parse_field::<Text<200>>("interpreter", i.as_str())?;
    }
    let answer = move |v: i64| (200, json!({ "plan_version": plan_version, "version": v }));
    let network = network(&case_id, &case);
    let command = |agreement, at| PlanCommand::RecordClientAgreement {
        plan_version,
        agreement,
        network,
        at,
    };
    plans(&c)
        .run_answering(&case_id, write, answer, command, agreed(plan_version))
        .await
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
    // The draft is the lead's working copy, with what it was sent back for.
    let draft = match &plan.draft {
        Some(d) if read.case().lead_agency == caller.0.agency => {
            let mut v = visible(d, &mut read);
            v["changes_requested"] = match &plan.changes_requested {
                Some(r) => json!({
                    "plan_version": r.plan_version,
                    "agency": r.agency,
                    "comment": read.keep(Item::Data(Category::Plan), &r.comment),
                    "at": format_time(r.at),
                }),
                None => Value::Null,
            };
            Some(v)
        }
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
