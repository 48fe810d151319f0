//! `/api/v1/cases/{id}/consent...`: changes by the lead facilitator, and
//! the point-in-time matrix for members.

use std::collections::BTreeSet;

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_guard::{CaseAccess, Reader};
use verkosto_http::{Action, Caller, Commands, Problem, RequestId, Write};
use verkosto_policy::{check_grant, Category, GrantRefusal, Obtained};
use verkosto_types::parse_field;
use verkosto_types::{AgencyId, Text};

use crate::domain::{Consent, ConsentCommand, Network};
use crate::matrix::{grants_in_force, matrix_answer, parse_at, stale_matrix};
use crate::service::ConsentService;

pub fn router(service: ConsentService) -> Router {
    Router::new()
        .route("/api/v1/cases/{id}/consent", get(consent_matrix))
        .route("/api/v1/cases/{id}/consent/grants", post(grant))
        .route(
            "/api/v1/cases/{id}/consent/grants/{grant_id}/withdraw",
            post(withdraw),
        )
        .route("/api/v1/cases/{id}/consent/refusals", post(refuse))
        .route(
            "/api/v1/cases/{id}/consent/refusals/{refusal_id}/lift",
            post(lift_refusal),
        )
        .route(
            "/api/v1/cases/{id}/consent/statutory",
            post(record_statutory),
        )
        .route(
            "/api/v1/cases/{id}/consent/statutory/{basis_id}/end",
            post(end_statutory),
        )
        .merge(crate::audit::routes())
        .with_state(service)
}

impl ConsentService {
    /// The case, fresh; 404 unless the caller's agency is a member.
    async fn member_view(&self, case_id: &str, caller: &Caller) -> Result<CaseAccess, Problem> {
        let access = self
            .guard
            .case(case_id)
            .await?
            .filter(|c| c.is_member(&caller.0.agency))
            .ok_or_else(|| Problem::not_found(format!("no case {case_id}")))?;
        if !access.fresh {
            // Changes need the current network; never decide on a stale one.
            return Err(Problem::unavailable(
                "this service's view of the case is behind; try again",
            ));
        }
        Ok(access)
    }
}

/// A fresh view of the case, for a caller whose agency is in its network.
/// Extracted before the body, so an outsider gets 404 whatever it sends.
struct Member(CaseAccess);

impl FromRequestParts<ConsentService> for Member {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, s: &ConsentService) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, s).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, s)
            .await
            .map_err(|_| Problem::not_found("no such case"))?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        Ok(Member(s.member_view(id, &caller).await?))
    }
}

impl Member {
    /// The network for a change by the lead facilitator (403 otherwise).
    fn lead_network(self, caller: &Caller) -> Result<Network, Problem> {
        let access = self.0;
        caller.require(&[Role::Facilitator])?;
        if access.lead_agency != caller.0.agency {
            return Err(Problem::forbidden(
                "only the lead agency's facilitator changes consent",
            ));
        }
        Ok(Network {
            lead: access.lead_agency,
            members: access.members,
        })
    }
}

impl ConsentService {
    /// Where consent changes run. The guard's view follows them with its
    /// own freshness check (every read asks the log for the head), so a
    /// change answers once it is durable.
    fn commands(&self) -> Commands<Consent> {
        Commands::without_read_model(self.log.clone())
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewGrant {
    recipient: AgencyId,
    categories: BTreeSet<Category>,
    purpose: Text<500>,
    #[serde(default)]
    valid_from: Option<DateTime<Utc>>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
    obtained: Obtained,
}

async fn grant(
    State(s): State<ConsentService>,
    member: Member,
    Path(case_id): Path<String>,
    write: Write<NewGrant>,
) -> Result<Response, Problem> {
    let facts = member.0.facts().clone();
    let network = member.lead_network(&write.caller)?;
    let obtained = &write.body.obtained;
    let now = verkosto_eventlog::clock::now();
    if let Err(GrantRefusal::MinorMayNotConsent { categories }) =
        check_grant(&facts, obtained.grantor, &write.body.categories, now)
    {
        let words: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        return Err(Problem::invalid(
            "obtained.grantor",
            format!(
                "the client is a minor and not recorded as able to consent to {} personally \
                 (the case's minor_may_consent): a guardian or representative must give it",
                words.join(", ")
            ),
        ));
    }
    parse_field::<Text<16>>("obtained.language", obtained.language.as_str())?;
    if let Some(i) = &obtained.interpreter {
        parse_field::<Text<200>>("obtained.interpreter", i.as_str())?;
    }
    let grant_id = new_id("grant");
    let answer = {
        let id = grant_id.clone();
        move |v: i64| (201, json!({ "grant_id": id, "consent_version": v }))
    };
    let command = |body: NewGrant, at| ConsentCommand::Grant {
        grant_id,
        recipient: body.recipient.into(),
        categories: body.categories,
        purpose: body.purpose.into(),
        valid_from: body.valid_from,
        valid_until: body.valid_until,
        obtained: body.obtained,
        network,
        at,
    };
    s.commands().run(&case_id, write, answer, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Text<1000>,
}

async fn withdraw(
    State(s): State<ConsentService>,
    member: Member,
    Path((case_id, grant_id)): Path<(String, String)>,
    write: Write<Reason>,
) -> Result<Response, Problem> {
    member.lead_network(&write.caller)?;
    let command = |body: Reason, at| ConsentCommand::Withdraw {
        grant_id,
        reason: body.reason.into(),
        at,
    };
    s.commands()
        .run(&case_id, write, version_answer, command)
        .await
}

/// The answer to a consent change: the record's new version.
fn version_answer(v: i64) -> (u16, Value) {
    (200, json!({ "consent_version": v }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewRefusal {
    agency: AgencyId,
    /// Missing or empty: every category.
    #[serde(default)]
    categories: BTreeSet<Category>,
}

async fn refuse(
    State(s): State<ConsentService>,
    member: Member,
    Path(case_id): Path<String>,
    write: Write<NewRefusal>,
) -> Result<Response, Problem> {
    let network = member.lead_network(&write.caller)?;
    let refusal_id = new_id("refusal");
    let answer = {
        let id = refusal_id.clone();
        move |v: i64| (201, json!({ "refusal_id": id, "consent_version": v }))
    };
    let command = |body: NewRefusal, at| ConsentCommand::Refuse {
        refusal_id,
        agency: body.agency.into(),
        categories: body.categories,
        network,
        at,
    };
    s.commands().run(&case_id, write, answer, command).await
}

async fn lift_refusal(
    State(s): State<ConsentService>,
    member: Member,
    Path((case_id, refusal_id)): Path<(String, String)>,
    Action(write): Action,
) -> Result<Response, Problem> {
    member.lead_network(&write.caller)?;
    let command = |(), at| ConsentCommand::LiftRefusal { refusal_id, at };
    s.commands()
        .run(&case_id, write, version_answer, command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewStatutory {
    recipient: AgencyId,
    categories: BTreeSet<Category>,
    law_reference: Text<300>,
    #[serde(default)]
    valid_until: Option<DateTime<Utc>>,
}

async fn record_statutory(
    State(s): State<ConsentService>,
    member: Member,
    Path(case_id): Path<String>,
    write: Write<NewStatutory>,
) -> Result<Response, Problem> {
    let network = member.lead_network(&write.caller)?;
    let basis_id = new_id("basis");
    let answer = {
        let id = basis_id.clone();
        move |v: i64| (201, json!({ "basis_id": id, "consent_version": v }))
    };
    let command = |body: NewStatutory, at| ConsentCommand::RecordStatutory {
        basis_id,
        recipient: body.recipient.into(),
        categories: body.categories,
        law_reference: body.law_reference.into(),
        valid_until: body.valid_until,
        network,
        at,
    };
    s.commands().run(&case_id, write, answer, command).await
}

async fn end_statutory(
    State(s): State<ConsentService>,
    member: Member,
    Path((case_id, basis_id)): Path<(String, String)>,
    Action(write): Action,
) -> Result<Response, Problem> {
    member.lead_network(&write.caller)?;
    let command = |(), at| ConsentCommand::EndStatutory { basis_id, at };
    s.commands()
        .run(&case_id, write, version_answer, command)
        .await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<String>,
    /// `true`: also list the grants in force at `at`, with their ids.
    #[serde(default)]
    grants: bool,
}

async fn consent_matrix(
    State(s): State<ConsentService>,
    caller: Caller,
    Path(case_id): Path<String>,
    query: Result<Query<AtQuery>, axum::extract::rejection::QueryRejection>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let reader = Reader::new("consent", &caller, request_id.as_deref());
    let read = s.guard.read(&case_id, &reader).await?;
    let Query(query) = query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let at = match query.at.as_deref() {
        Some(_) => parse_at(query.at.as_deref())?,
        None => read.moment(),
    };
    let access = read.case();
    let mut answer = if read.fresh() {
        matrix_answer(&access.case_id, &access.members, &access.consent, at)
    } else {
        // A record that may be behind shows nothing as allowed.
        stale_matrix(&access.case_id, &access.members, &access.consent, at)
    };
    if query.grants {
        answer["grants"] = if read.fresh() {
            grants_in_force(&access.consent, at)
        } else {
            json!([])
        };
    }
    let resource = if query.grants {
        "consent/grants"
    } else {
        "consent"
    };
    Ok(read.finish(resource, answer).await?.into_response())
}

/// The consent service's operations (and the auditor's), for the OpenAPI document.
pub fn api_doc() -> Vec<verkosto_http::openapi::Operation> {
    use verkosto_http::openapi::{Operation as Op, Source};
    let lead = "the lead agency's facilitator";
    vec![
        Op::new(
            "get",
            "/api/v1/cases/{id}/consent",
            "consent",
            "The consent matrix at a moment",
        )
        .who("a member agency")
        .query("at", "RFC 3339 time; default now")
        .query("grants", "true: also the grants in force")
        .answer(200, "consent_version, as_of, matrix"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/grants",
            "consent",
            "Record a consent",
        )
        .who(lead)
        .body::<NewGrant>()
        .answer(201, "grant_id, consent_version")
        .link(
            201,
            "post",
            "/api/v1/cases/{id}/consent/grants/{grant_id}/withdraw",
            &[
                ("id", Source::Path("id")),
                ("grant_id", Source::Answer("/grant_id")),
            ],
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/grants/{grant_id}/withdraw",
            "consent",
            "Withdraw a consent (at once, everywhere)",
        )
        .who(lead)
        .body::<Reason>()
        .answer(200, "consent_version"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/refusals",
            "consent",
            "Record a refusal (beats every grant)",
        )
        .who(lead)
        .body::<NewRefusal>()
        .answer(201, "refusal_id, consent_version")
        .link(
            201,
            "post",
            "/api/v1/cases/{id}/consent/refusals/{refusal_id}/lift",
            &[
                ("id", Source::Path("id")),
                ("refusal_id", Source::Answer("/refusal_id")),
            ],
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/refusals/{refusal_id}/lift",
            "consent",
            "Lift a refusal",
        )
        .who(lead)
        .answer(200, "consent_version"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/statutory",
            "consent",
            "Record a statutory basis",
        )
        .who(lead)
        .body::<NewStatutory>()
        .answer(201, "basis_id, consent_version")
        .link(
            201,
            "post",
            "/api/v1/cases/{id}/consent/statutory/{basis_id}/end",
            &[
                ("id", Source::Path("id")),
                ("basis_id", Source::Answer("/basis_id")),
            ],
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/consent/statutory/{basis_id}/end",
            "consent",
            "End a statutory basis",
        )
        .who(lead)
        .answer(200, "consent_version"),
        Op::new(
            "get",
            "/api/v1/audit/cases/{id}/consent/history",
            "audit",
            "Every consent event of a case",
        )
        .who("auditor")
        .answer(200, "events"),
        Op::new(
            "get",
            "/api/v1/audit/cases/{id}/consent",
            "audit",
            "The consent matrix at a moment, replayed",
        )
        .who("auditor")
        .query("at", "RFC 3339 time; default now")
        .answer(200, "consent_version, as_of, matrix, timeline"),
        Op::new(
            "get",
            "/api/v1/audit/cases/{id}/access-log",
            "audit",
            "Every read of the case's client data",
        )
        .who("auditor")
        .answer(200, "reads"),
        Op::new(
            "get",
            "/api/v1/audit/verify",
            "audit",
            "Check the integrity chain of the whole log",
        )
        .who("auditor")
        .answer(200, "ok, events_checked, first_broken"),
    ]
}
