//! The end of a case: closing it, legal holds, and erasure.
//!
//! Erasure destroys the case's data key (crypto-shredding): every sealed
//! field of every event and row of the case becomes unreadable for good,
//! while the log and its hash chain stay as they were. The order makes a
//! crash harmless: `CaseErased` is appended first (durable), then the key
//! is destroyed, by the request and again by the
//! [`ErasedKeys`](crate::shredding::ErasedKeys) reaction,
//! which runs from its checkpoint after a restart. So either neither has
//! happened, or the event is in the log and the key is gone or about to be.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use verkosto_auth::Role;
use verkosto_http::{Action, Caller, Problem, Write};
use verkosto_types::{OptionalText, Text};

use crate::domain::{CaseCommand, ClosingOutcome, LegalBasis};
use crate::service::{Cases, Member};

pub(crate) fn routes() -> Router<Cases> {
    Router::new()
        .route("/api/v1/cases/{id}/close", post(close))
        .route("/api/v1/cases/{id}/legal-hold", post(place_hold))
        .route(
            "/api/v1/cases/{id}/legal-hold/{hold_id}/release",
            post(release_hold),
        )
        .route("/api/v1/cases/{id}/erasure", post(erase))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Closing {
    /// How the case ended.
    outcome: ClosingOutcome,
    /// What the lead adds; sealed like all client text.
    #[serde(default)]
    note: OptionalText<2000>,
}

async fn close(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    write: Write<Closing>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &[Role::Facilitator])?;
    let by = write.agency();
    let answer = |version: i64| (200, json!({ "status": "closed", "version": version }));
    let command = |body: Closing, at| CaseCommand::Close {
        by,
        outcome: body.outcome,
        note: body.note.into_option(),
        at,
    };
    c.commands().run(&id, write, answer, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hold {
    /// Why erasure must wait: an open investigation, a court's order.
    reason: Text<2000>,
}

/// The lead's facilitator (a member) or an auditor (no member of any case):
/// who may place and release legal holds. `Ok(true)` for an auditor. An
/// outsider learns nothing (404); an erased case answers 410.
async fn holder(c: &Cases, caller: &Caller, id: &str) -> Result<bool, Problem> {
    let case = c.store().load(id).await?.aggregate;
    let auditor = caller.0.roles.contains(&Role::Auditor);
    // An auditor is in no network: for them the case need only exist.
    let known = if auditor {
        case.id.is_some()
    } else {
        case.is_member(&caller.0.agency)
    };
    if !known {
        return Err(Problem::not_found(format!("no case {id}")));
    }
    if case.erased {
        return Err(Problem::gone(id));
    }
    if !auditor {
        caller.require(&[Role::Facilitator])?;
    }
    Ok(auditor)
}

async fn place_hold(
    State(c): State<Cases>,
    Path(id): Path<String>,
    write: Write<Hold>,
) -> Result<Response, Problem> {
    let auditor = holder(&c, &write.caller, &id).await?;
    let hold_id = format!("hold-{}", uuid::Uuid::now_v7().simple());
    let by = write.agency();
    let answer = {
        let hold_id = hold_id.clone();
        move |version: i64| (201, json!({ "hold_id": hold_id, "version": version }))
    };
    let command = |body: Hold, at| CaseCommand::PlaceHold {
        by,
        auditor,
        hold_id,
        reason: body.reason.into(),
        at,
    };
    c.commands().run(&id, write, answer, command).await
}

async fn release_hold(
    State(c): State<Cases>,
    Path((id, hold_id)): Path<(String, String)>,
    Action(write): Action,
) -> Result<Response, Problem> {
    let auditor = holder(&c, &write.caller, &id).await?;
    let by = write.agency();
    let answer = {
        let hold_id = hold_id.clone();
        move |version: i64| {
            (
                200,
                json!({ "hold_id": hold_id, "status": "released", "version": version }),
            )
        }
    };
    let command = |(), at| CaseCommand::ReleaseHold {
        by,
        auditor,
        hold_id,
        at,
    };
    c.commands().run(&id, write, answer, command).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Erasure {
    /// Why, for the auditors: it stays readable, so it must not hold the
    /// client's data.
    reason: Text<500>,
    /// The legal ground.
    legal_basis: LegalBasis,
}

async fn erase(
    State(c): State<Cases>,
    member: Member,
    Path(id): Path<String>,
    write: Write<Erasure>,
) -> Result<Response, Problem> {
    member.allow(&write.caller, &[Role::Facilitator])?;
    let by = write.agency();
    let answer = {
        let id = id.clone();
        move |version: i64| {
            (
                200,
                json!({ "case_id": id, "status": "erased", "version": version }),
            )
        }
    };
    let command = |body: Erasure, at| CaseCommand::Erase {
        by,
        sweep: false,
        legal_basis: body.legal_basis,
        reason: body.reason.into(),
        at,
    };
    let outcome = c
        .commands()
        .execute(&id, write, answer.clone(), command)
        .await?;
    // `CaseErased` is durable: now the key goes (the reaction does it
    // again if this process dies first).
    crate::shredding::destroy_keys(&c.log, &id).await?;
    Ok(verkosto_http::command_response(outcome, |a| {
        answer(a.version)
    }))
}
