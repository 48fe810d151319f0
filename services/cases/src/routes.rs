//! `/api/v1/cases`, its network, and `/api/v1/invitations`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, Outcome};
use verkosto_guard::Reader;
use verkosto_http::{command_response, Action, Caller, Problem, RequestId, Write};
use verkosto_types::{AgencyId, CaseId, Language, Text};

use crate::domain::{self, not_found, CaseCommand, Flags};
use crate::projection;
use crate::search::Search;
use crate::service::{Cases, Member, CASE_WORKERS};

pub fn router(cases: Cases) -> Router {
    Router::new()
        .route("/api/v1/cases", post(open_case).get(list_cases))
        .route("/api/v1/cases/{id}", get(get_case))
        .route("/api/v1/cases/{id}/flags", put(set_flags))
        .route("/api/v1/cases/{id}/members", post(invite))
        .route("/api/v1/cases/{id}/members/{agency}", delete(remove_member))
        .route("/api/v1/invitations", get(invitations))
        .route("/api/v1/cases/{id}/invitations/accept", post(accept))
        .route("/api/v1/cases/{id}/invitations/decline", post(decline))
        .merge(crate::records::routes())
        .merge(crate::closing::routes())
        .merge(crate::retention::routes())
        .merge(crate::search::routes())
        .merge(crate::plan_api::routes())
        .with_state(cases)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewCase {
    /// What the network is to call the client, in place of their name.
    pseudonym: Text<64>,
    // The schema says what open_case checks, so that generated bodies
    // (an API fuzzer's stateful phase) can open a case.
    /// The languages the client speaks (1 to 10 ISO 639 codes).
    #[schemars(length(min = 1, max = 10))]
    languages: Vec<Language>,
    /// The language an interpreter speaks with the client, if one is needed.
    #[serde(default)]
    interpreter_language: Option<Language>,
    /// The flags to open the case with; none set when not given.
    #[serde(default)]
    flags: Flags,
}

async fn open_case(State(c): State<Cases>, write: Write<NewCase>) -> Result<Response, Problem> {
    write.caller.require(&[Role::Facilitator])?;
    let languages = &write.body.languages;
    if languages.is_empty() || languages.len() > 10 {
        return Err(Problem::invalid(
            "languages",
            "must name 1 to 10 languages the client speaks",
        ));
    }
    write.body.flags.check("flags.")?;
    let case_id = CaseId::new_v7(uuid::Uuid::now_v7().simple()).to_string();
    let lead = write.agency();
    let answer = {
        let (id, lead) = (case_id.clone(), lead.clone());
        move |version: i64| {
            (
                201,
                json!({ "id": id, "lead_agency": lead, "version": version }),
            )
        }
    };
    let command = |body: NewCase, at| CaseCommand::Open {
        case_id: case_id.clone(),
        pseudonym: body.pseudonym.into(),
        lead_agency: lead,
        languages: body.languages.into_iter().map(String::from).collect(),
        interpreter_language: body.interpreter_language.map(String::from),
        flags: body.flags,
        at,
    };
    c.commands().run(&case_id, write, answer, command).await
}

async fn list_cases(
    State(c): State<Cases>,
    caller: Caller,
    query: Result<Query<Search>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, Problem> {
    let Query(search) = query.map_err(|e| Problem::bad_request(format!("query: {e}")))?;
    let found = match search.pseudonym()? {
        Some(pseudonym) => Some(crate::search::find(&c.log, pseudonym).await?),
        None => None,
    };
    let rows = projection::cases_of(c.log.db(), &caller.0.agency).await?;
    let cases: Vec<Value> = rows
        .into_iter()
        .filter(|row| found.as_ref().is_none_or(|ids| ids.contains(&row.0)))
        .map(
            |(id, pseudonym, lead, minor, safety_risk, opened_at, version, closed_at)| {
                json!({
                    "id": id,
                    "pseudonym": pseudonym,
                    "lead_agency": lead,
                    "flags": { "minor": minor != 0, "safety_risk": safety_risk != 0 },
                    "opened_at": opened_at,
                    "status": if closed_at.is_some() { "closed" } else { "open" },
                    "closed_at": closed_at,
                    "version": version,
                })
            },
        )
        .collect();
    // Only cases the caller's agency is in: their pseudonyms, opened.
    let mut answer = json!({ "cases": cases });
    c.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}

async fn get_case(
    State(c): State<Cases>,
    caller: Caller,
    Path(id): Path<String>,
    request_id: Option<Extension<RequestId>>,
) -> Result<Response, Problem> {
    let reader = Reader::new("cases", &caller, request_id.as_deref());
    let read = c.guard.read(&id, &reader).await?;
    // The header itself comes straight from the case's stream: exact.
    let loaded = c.store().load(&id).await?;
    let case = loaded.aggregate;
    if !case.is_member(&caller.0.agency) {
        return Err(not_found(&id).into());
    }
    let invited: Vec<Value> = case
        .invited
        .iter()
        .map(|(agency, inv)| {
            json!({ "agency": agency, "purpose": inv.purpose, "invited_at": format_time(inv.at) })
        })
        .collect();
    let warnings = domain::warnings(
        &case.flags,
        &case.languages,
        case.interpreter_language.as_deref(),
        c.agencies
            .any_child_welfare(&case.members)
            .await
            .unwrap_or(false),
    );
    let body = json!({
        "id": id,
        "pseudonym": case.pseudonym,
        "lead_agency": case.lead_agency,
        "members": case.members,
        "invited": invited,
        "flags": case.flags,
        "languages": case.languages,
        "interpreter_language": case.interpreter_language,
        "version": loaded.version,
        "warnings": warnings,
        "status": if case.closed.is_some() { "closed" } else { "open" },
        "closed_at": case.closed.as_ref().map(|(at, _)| format_time(*at)),
        "outcome": case.closed.as_ref().map(|(_, outcome)| outcome),
        "legal_holds": case.holds.keys().collect::<Vec<_>>(),
        // Who placed each hold, when and why: what the lead weighs before
        // releasing one.
        "legal_hold_details": case.holds.iter().map(|(id, hold)| json!({
            "hold_id": id,
            "reason": hold.reason,
            "placed_by": hold.by_agency,
            "placed_at": format_time(hold.at),
        })).collect::<Vec<_>>(),
    });
    // The header holds no category of client data, but it is a read of
    // the case: it is logged like any other.
    let answer = read.finish("case", body).await?;
    Ok((
        [(axum::http::header::ETAG, format!("\"{}\"", loaded.version))],
        answer,
    )
        .into_response())
}

async fn set_flags(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    write: Write<Flags>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &[Role::Facilitator])?;
    write.body.check("")?;
    let shown = json!(write.body);
    let answer = move |version: i64| (200, json!({ "flags": shown, "version": version }));
    let by = write.agency();
    let command = |flags, at| CaseCommand::SetFlags { by, flags, at };
    c.commands().run(&id, write, answer, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Invite {
    /// The agency to invite: one the directory knows.
    agency: AgencyId,
    /// Why the agency is wanted in the network; the invited agency sees it.
    purpose: Text<500>,
}

async fn invite(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    write: Write<Invite>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &[Role::Facilitator])?;
    let agency = write.body.agency.to_string();
    if !c.agencies.is_known(&agency).await? {
        return Err(Problem::invalid(
            "agency",
            format!("unknown agency {agency}"),
        ));
    }
    let answer = move |version: i64| {
        (
            201,
            json!({ "status": "invited", "agency": agency, "version": version }),
        )
    };
    let by = write.agency();
    let command = |body: Invite, at| CaseCommand::Invite {
        by,
        agency: body.agency.into(),
        purpose: body.purpose.into(),
        at,
    };
    c.commands().run(&id, write, answer, command).await
}

async fn remove_member(
    State(c): State<Cases>,
    member: Member,
    Path((id, agency)): Path<(String, String)>,
    Action(write): Action,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &[Role::Facilitator])?;
    let caller = write.caller.clone();
    let by = write.agency();
    let command = |(), at| CaseCommand::Remove { by, agency, at };
    let none = |_| (204, Value::Null);
    let outcome = c.commands().execute(&id, write, none, command).await?;
    if let Outcome::Committed { aggregate, .. } = &outcome {
        // The removed agency's approval is no longer needed: the pending
        // plan version may now be complete.
        crate::plan_api::reconcile(&c, &id, aggregate, &caller).await?;
    }
    Ok(command_response(outcome, |_| (204, Value::Null)))
}

async fn invitations(State(c): State<Cases>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(&CASE_WORKERS)?;
    let rows = projection::invitations_of(c.log.db(), &caller.0.agency).await?;
    let invitations: Vec<Value> = rows
        .into_iter()
        .map(|(case_id, pseudonym, lead, purpose, invited_at)| {
            json!({
                "case_id": case_id,
                "pseudonym": pseudonym,
                "lead_agency": lead,
                "purpose": purpose,
                "invited_at": invited_at,
            })
        })
        .collect();
    // An invited agency sees the pseudonym and the purpose, nothing else.
    let mut answer = json!({ "invitations": invitations });
    c.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}

async fn accept(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    Action(write): Action,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &CASE_WORKERS)?;
    let agency = write.agency();
    let answer = {
        let agency = agency.clone();
        move |version: i64| {
            (
                200,
                json!({ "status": "member", "agency": agency, "version": version }),
            )
        }
    };
    let command = |(), at| CaseCommand::Accept { agency, at };
    c.commands().run(&id, write, answer, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Decline {
    /// Why the agency declines; the lead agency gets a task that quotes it.
    reason: Text<1000>,
}

async fn decline(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    write: Write<Decline>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &CASE_WORKERS)?;
    let answer = |version: i64| (200, json!({ "status": "declined", "version": version }));
    let agency = write.agency();
    let command = |body: Decline, at| CaseCommand::Decline {
        agency,
        reason: body.reason.into(),
        at,
    };
    c.commands().run(&id, write, answer, command).await
}

/// The cases service's operations, for the OpenAPI document.
pub fn api_doc() -> Vec<verkosto_http::openapi::Operation> {
    use crate::plan::{ClientAgreement, PlanContent};
    use verkosto_http::openapi::{Operation as Op, Source};
    let lead = "the lead agency's facilitator";
    let workers = "a facilitator or liaison of a member agency";
    // The links let a client (and an API fuzzer) go from a new case to
    // everything that takes its id.
    let new_case = [
        ("id", Source::Answer("/id")),
        ("case", Source::Answer("/id")),
    ];
    let this_case = [("id", Source::Path("id"))];
    vec![
        Op::new(
            "post",
            "/api/v1/cases",
            "cases",
            "Open a case (the caller's agency leads it)",
        )
        .who("facilitator")
        .body::<NewCase>()
        .answer(201, "Opened: id, lead_agency, version")
        .links_under(201, "/api/v1/cases/{id}", &new_case)
        .links_under(201, "/api/v1/audit/cases/{id}", &new_case)
        .link(201, "get", "/api/v1/meetings", &new_case)
        .link(201, "get", "/api/v1/tasks", &new_case),
        Op::new(
            "get",
            "/api/v1/cases",
            "cases",
            "The cases whose network holds the caller's agency",
        )
        .query(
            "pseudonym",
            "Only the cases with this pseudonym (found through the blind index)",
        )
        .answer(
            200,
            "The cases: id, pseudonym, lead_agency, flags, status, closed_at",
        )
        .answer(422, "An empty or overlong pseudonym"),
        Op::new(
            "get",
            "/api/v1/audit/cases",
            "audit",
            "The cases a pseudonym names: ids, lead agency and state only",
        )
        .who("an auditor")
        .query("pseudonym", "The pseudonym (required)")
        .answer(200, "cases: case_id, lead_agency, status, closed_at")
        .answer(422, "No, an empty or an overlong pseudonym"),
        Op::new(
            "get",
            "/api/v1/audit/retention",
            "audit",
            "Closed cases and when the retention sweep erases them",
        )
        .who("an auditor")
        .answer(
            200,
            "period, cases: case_id, closed_at, outcome, erase_after, legal_hold, hold_ids, \
             holds (hold_id, reason, placed_by, placed_at)",
        ),
        Op::new("get", "/api/v1/cases/{id}", "cases", "The case header")
            .who("a member agency")
            .answer(
                200,
                "Header, network, flags, warnings, status, closed_at, outcome, legal_holds, \
                 legal_hold_details, version, consent_version",
            ),
        Op::new("put", "/api/v1/cases/{id}/flags", "cases", "Set the flags")
            .who(lead)
            .body::<Flags>()
            .answer(200, "Set"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/members",
            "cases",
            "Invite an agency into the network",
        )
        .who(lead)
        .body::<Invite>()
        .answer(201, "Invited")
        .link(
            201,
            "delete",
            "/api/v1/cases/{id}/members/{agency}",
            &[
                ("id", Source::Path("id")),
                ("agency", Source::Sent("/agency")),
            ],
        ),
        Op::new(
            "delete",
            "/api/v1/cases/{id}/members/{agency}",
            "cases",
            "Withdraw an invitation or remove a member",
        )
        .who(lead)
        .answer(204, "Removed"),
        Op::new(
            "get",
            "/api/v1/invitations",
            "cases",
            "The caller agency's pending invitations",
        )
        .who("facilitator or liaison")
        .answer(200, "The invitations"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/invitations/accept",
            "cases",
            "Accept an invitation",
        )
        .who("facilitator or liaison of the invited agency")
        .answer(200, "A member now"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/invitations/decline",
            "cases",
            "Decline an invitation (the lead gets a task)",
        )
        .who("facilitator or liaison of the invited agency")
        .body::<Decline>()
        .answer(200, "Declined"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/records",
            "cases",
            "Record client information (append-only)",
        )
        .who(workers)
        .body::<crate::records::NewRecord>()
        .answer(201, "Recorded: id"),
        Op::new(
            "get",
            "/api/v1/cases/{id}/records",
            "cases",
            "The records the caller's agency may read",
        )
        .who(workers)
        .answer(200, "records, withheld, consent_version"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/close",
            "cases",
            "Close the case: no new records, meetings or tasks; open tasks are cancelled",
        )
        .who(lead)
        .body::<crate::closing::Closing>()
        .answer(200, "Closed")
        .answer(409, "Closed already"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/legal-hold",
            "cases",
            "Place a legal hold: the case is not erased until it is released",
        )
        .who("the lead agency's facilitator or an auditor")
        .body::<crate::closing::Hold>()
        .answer(201, "Placed: hold_id")
        .links_under(
            201,
            "/api/v1/cases/{id}/legal-hold/{hold_id}",
            &[
                ("id", Source::Path("id")),
                ("hold_id", Source::Answer("/hold_id")),
            ],
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/legal-hold/{hold_id}/release",
            "cases",
            "Release a legal hold",
        )
        .who("the lead agency's facilitator or an auditor")
        .answer(200, "Released"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/erasure",
            "cases",
            "Erase a closed case: its keys are destroyed, every later read answers 410",
        )
        .who(lead)
        .body::<crate::closing::Erasure>()
        .answer(200, "Erased")
        .answer(409, "Open, or under a legal hold")
        .answer(410, "Erased already"),
        Op::new(
            "get",
            "/api/v1/cases/{id}/plan",
            "plan",
            "The agreed plan and the pending version, filtered by consent",
        )
        .who(workers)
        .answer(200, "agreed, pending, withheld, consent_version"),
        Op::new(
            "put",
            "/api/v1/cases/{id}/plan/draft",
            "plan",
            "Save the draft",
        )
        .who(lead)
        .body::<PlanContent>()
        .answer(200, "Saved")
        .link(
            200,
            "post",
            "/api/v1/cases/{id}/plan/draft/propose",
            &this_case,
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/plan/draft/propose",
            "plan",
            "Propose the draft as version n",
        )
        .who(lead)
        .answer(200, "plan_version")
        .links_under(
            200,
            "/api/v1/cases/{id}/plan/versions/{n}",
            &[
                ("id", Source::Path("id")),
                ("n", Source::Answer("/plan_version")),
            ],
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/plan/versions/{n}/approve",
            "plan",
            "Approve version n",
        )
        .who(workers)
        .answer(
            200,
            "Approved; agreed tells whether it is now the agreed plan",
        ),
        Op::new(
            "post",
            "/api/v1/cases/{id}/plan/versions/{n}/request-changes",
            "plan",
            "Send version n back to draft",
        )
        .who(workers)
        .body::<crate::plan_api::Comment>()
        .answer(200, "Back to draft"),
        Op::new(
            "post",
            "/api/v1/cases/{id}/plan/versions/{n}/client-agreement",
            "plan",
            "Record the client's agreement to version n",
        )
        .who(lead)
        .body::<ClientAgreement>()
        .answer(200, "Recorded"),
    ]
}
