//! `/api/v1/webhooks`: an agency registers, lists and removes its webhooks.
//! The `tasks_webhooks` table is written here, in the transaction of the
//! `webhook` event; the secret never leaves this service but once.

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use verkosto_auth::Role;
use verkosto_eventlog::{encode_event, Error as LogError, ExpectedVersion};
use verkosto_http::{command_response, Caller, Commands, Problem, Write};
use verkosto_types::Refusal;

use crate::service::{Tasks, WORKERS};

/// Events of the `webhook` stream (its id is the webhook id). The secret is
/// not in them: it stays in the tasks service's table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum WebhookEvent {
    /// An agency registered a URL for its task deliveries.
    WebhookRegistered {
        /// The webhook's id (`wh-` and a UUIDv7 in hex), the stream's id too.
        webhook_id: String,
        /// The agency it delivers for: new, reassigned and overdue tasks
        /// assigned to it, and overdue ones of the cases it leads.
        agency: String,
        /// Where each delivery is posted.
        url: String,
        /// When it was registered.
        at: chrono::DateTime<chrono::Utc>,
    },
    /// The agency removed the webhook: its undelivered messages stay unsent.
    WebhookRemoved {
        /// The webhook removed: nothing more is delivered to it.
        webhook_id: String,
        /// When it was removed.
        at: chrono::DateTime<chrono::Utc>,
    },
}

verkosto_eventlog::domain_event!(WebhookEvent);

/// The `webhook` stream. Nothing is decided on it: a registration starts
/// it ([`Commands::start_with`], with the secret's row), a removal is
/// appended by hand; so it takes no commands and keeps no state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Webhook;

impl Aggregate for Webhook {
    const TYPE: &'static str = "webhook";
    type Command = Infallible;
    type Event = WebhookEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Infallible,
        _services: &(),
        _sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        match command {}
    }

    fn apply(&mut self, _event: WebhookEvent) {}
}

/// A webhook is an agency's, not a client's: nothing to seal.
impl verkosto_eventlog::DataSubject for Webhook {}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWebhook {
    /// Where to deliver: an absolute https URL to a public address, unless the
    /// operator opened its host (at most 2000 characters).
    url: String,
}

/// The stable code of a refused webhook URL.
const URL_REFUSED: &str = "webhook_url_refused";

/// An agency-wide webhook is the agency's admin's, or a facilitator's whose
/// agency leads a case: the lead facilitator of the contract, who answers
/// for the tasks that flow from the cases the agency leads.
async fn may_register_webhooks(t: &Tasks, caller: &Caller) -> Result<(), Problem> {
    if caller.0.has_role(Role::Admin) {
        return Ok(());
    }
    caller.require(&[Role::Admin, Role::Facilitator])?;
    if t.guard.leads_a_case(&caller.0.agency).await? {
        return Ok(());
    }
    Err(Problem::forbidden(
        "webhooks are registered by an admin, or by a facilitator of an agency that leads a case",
    ))
}

pub(crate) async fn register_webhook(
    State(t): State<Tasks>,
    write: Write<NewWebhook>,
) -> Result<Response, Problem> {
    may_register_webhooks(&t, &write.caller).await?;
    let url = write.body.url.trim().to_string();
    let agency = write.agency();
    let webhook_id = format!("wh-{}", uuid::Uuid::now_v7().simple());
    // The secret is shown once, now; a retry with the same key cannot show it again.
    let answer = {
        let (id, agency, url) = (webhook_id.clone(), agency.clone(), url.clone());
        move |_v| {
            (
                201,
                json!({ "id": id, "agency": agency, "url": url, "secret": null, "note": "the secret was shown in the first answer" }),
            )
        }
    };
    let webhooks = Commands::<Webhook>::without_read_model(t.log.clone()).with_clock({
        let clock = t.clock.clone();
        move || clock.now()
    });
    // A retry answers as the first time did, even if the rules changed since.
    if let Some(first) = webhooks.earlier_answer(&write).await? {
        return Ok(first);
    }
    let parsed = reqwest::Url::parse(&url)
        .ok()
        .filter(|_| url.len() <= 2000)
        .ok_or_else(|| {
            Problem::invalid_code("url", URL_REFUSED, "must be an absolute https URL")
        })?;
    t.outbound
        .check_registration(&parsed)
        .await
        .map_err(|refused| Problem::invalid_code("url", URL_REFUSED, refused.to_string()))?;
    let secret = crate::webhooks::new_secret();
    let registered = |_, at| {
        vec![WebhookEvent::WebhookRegistered {
            webhook_id: webhook_id.clone(),
            agency: agency.clone(),
            url: url.clone(),
            at,
        }]
    };
    let row = (
        webhook_id.clone(),
        agency.clone(),
        url.clone(),
        secret.clone(),
    );
    let outcome = webhooks
        .start_with(&webhook_id, write, answer, registered, |tx, appended| {
            let (id, agency, url, secret) = row;
            let created_at = appended.events[0].occurred_at.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO tasks_webhooks (id, agency, url, secret, created_at, removed) VALUES ($1, $2, $3, $4, $5, 0)")
                    .bind(id)
                    .bind(agency)
                    .bind(url)
                    .bind(secret)
                    .bind(created_at)
                    .execute(&mut **tx)
                    .await
                    .map_err(LogError::from)?;
                Ok(())
            })
        })
        .await?;
    Ok(command_response(outcome, |_| {
        (
            201,
            json!({ "id": webhook_id, "agency": agency, "url": url, "secret": secret }),
        )
    }))
}

pub(crate) async fn list_webhooks(
    State(t): State<Tasks>,
    caller: Caller,
) -> Result<Json<Value>, Problem> {
    caller.require(&WORKERS)?;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT id, url, created_at FROM tasks_webhooks WHERE agency = $1 AND removed = 0 ORDER BY created_at",
    )
    .bind(&caller.0.agency)
    .fetch_all(t.log.db().reader())
    .await
    .map_err(LogError::from)?;
    let hooks: Vec<Value> = rows
        .into_iter()
        .map(|(id, url, created_at)| json!({ "id": id, "url": url, "created_at": created_at }))
        .collect();
    Ok(Json(json!({ "webhooks": hooks })))
}

pub(crate) async fn remove_webhook(
    State(t): State<Tasks>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    caller.require(&WORKERS)?;
    let owner: Option<String> =
        sqlx::query_scalar("SELECT agency FROM tasks_webhooks WHERE id = $1 AND removed = 0")
            .bind(&id)
            .fetch_optional(t.log.db().reader())
            .await
            .map_err(LogError::from)?;
    if owner.as_deref() != Some(caller.0.agency.as_str()) {
        return Err(Problem::not_found(format!("no webhook {id}")));
    }
    let event = WebhookEvent::WebhookRemoved {
        webhook_id: id.clone(),
        at: t.clock.now(),
    };
    let meta = verkosto_eventlog::CommandMeta::new(caller.actor());
    let mut tx = t.log.db().begin().await?;
    let appended = t
        .log
        .append_in(
            &mut tx,
            "webhook",
            &id,
            ExpectedVersion::Any,
            vec![encode_event::<Webhook>(&event)?],
            &meta,
        )
        .await?;
    sqlx::query("UPDATE tasks_webhooks SET removed = 1 WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(LogError::from)?;
    tx.commit().await.map_err(LogError::from)?;
    t.log.announce(&appended);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
