//! Retention: a closed case is kept for the deployment's period
//! (`--retention`, counted from closing) and then erased by the sweep,
//! through the same command as a person's erasure, unless a legal hold
//! is in force. Auditors list what is due (`GET /api/v1/audit/retention`).
//!
//! The sweep runs hourly and whenever the process's clock is moved (tests
//! move it through the dev-only `POST /api/v1/dev/clock`).

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use verkosto_auth::Role;
use verkosto_eventlog::{format_time, Actor, CommandMeta, Error, Execution, Outcome};
use verkosto_http::{Caller, Problem};

use crate::closed::{closed_cases, Closed};
use crate::domain::{CaseCommand, LegalBasis};
pub use crate::period::Period;
use crate::service::Cases;

/// Erases every case whose retention period ended by the service's clock
/// and that no hold keeps; returns the ids erased. Each goes through the
/// same command and key destruction as a person's erasure; a case a hold
/// was placed on meanwhile is refused by the aggregate and left.
pub(crate) async fn sweep(c: &Cases) -> Result<Vec<String>, Error> {
    let now = c.clock.now();
    let due: Vec<Closed> = closed_cases(c.log.db())
        .await?
        .into_iter()
        .filter(|case| case.holds.is_empty() && c.retention.after(case.closed_at) <= now)
        .collect();
    let mut erased = Vec::new();
    for case in due {
        let mut meta = CommandMeta::new(Actor::system());
        meta.occurred_at = now;
        let command = CaseCommand::Erase {
            by: Actor::system().agency,
            sweep: true,
            legal_basis: LegalBasis::RetentionExpired,
            reason: format!(
                "the retention period ({}) from closing on {} ended",
                c.retention,
                case.closed_at.date_naive()
            ),
            at: now,
        };
        match c
            .commands()
            .execute_with(&case.case_id, command, Execution::new(meta))
            .await
        {
            Ok(Outcome::Committed { .. }) => {
                crate::shredding::destroy_keys(&c.log, &case.case_id).await?;
                tracing::info!(case_id = %case.case_id, period = %c.retention, "retention: the case is erased");
                erased.push(case.case_id);
            }
            Ok(_) => {}
            // A hold placed, or another process erased it, meanwhile.
            Err(refused) if refused.status < 500 => tracing::info!(
                case_id = %case.case_id,
                reason = %refused.detail,
                "retention: the case is due but was not erased"
            ),
            Err(failed) => tracing::warn!(
                case_id = %case.case_id,
                error = %failed.detail,
                "retention: the case is due but could not be erased; the next sweep tries again"
            ),
        }
    }
    Ok(erased)
}

/// How often the sweep runs when the clock is not moved.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Sweeps hourly and whenever the clock moves, until `shutdown`.
pub(crate) async fn run_sweeper(c: Cases, shutdown: CancellationToken) {
    let mut moves = c.clock.moves();
    loop {
        if let Err(e) = sweep(&c).await {
            tracing::warn!(error = %e, "retention sweep failed; it runs again within the hour");
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = moves.next() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

pub(crate) fn routes() -> Router<Cases> {
    Router::new().route("/api/v1/audit/retention", get(list))
}

/// The auditor's list: every closed case not yet erased, when the sweep
/// erases it, and the legal holds that keep it (why, by whom, since when:
/// what the auditor weighs before releasing one). No client data: a hold's
/// reason is written for auditors, and opened for them here.
async fn list(State(c): State<Cases>, caller: Caller) -> Result<Json<Value>, Problem> {
    caller.require(&[Role::Auditor])?;
    // Oldest closing first: the order of erasure, as the period is one.
    let cases: Vec<Value> = closed_cases(c.log.db())
        .await?
        .into_iter()
        .map(|case| {
            let erase_after = c.retention.after(case.closed_at);
            json!({
                "case_id": case.case_id,
                "closed_at": format_time(case.closed_at),
                "outcome": case.outcome,
                "erase_after": format_time(erase_after),
                "legal_hold": !case.holds.is_empty(),
                "hold_ids": case.holds.iter().map(|h| &h.hold_id).collect::<Vec<_>>(),
                "holds": case.holds.iter().map(|h| json!({
                    "hold_id": h.hold_id,
                    "reason": h.reason,
                    "placed_by": h.placed_by,
                    "placed_at": h.placed_at,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut answer = json!({ "period": c.retention.to_string(), "cases": cases });
    c.log.open_sealed(&mut answer).await?;
    Ok(Json(answer))
}
