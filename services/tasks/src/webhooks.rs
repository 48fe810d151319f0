//! Webhooks: an agency registers a URL; each new, reassigned or overdue
//! task of that agency is delivered to it, signed as Standard Webhooks
//! describes (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//! v1,<base64 HMAC-SHA256 over "id.timestamp.body">`), retried with
//! backoff until acknowledged. At least once; the id is stable, so the
//! receiver drops duplicates. One slow or dead receiver blocks nothing else:
//! every delivery has its own schedule and a short timeout.
//!
//! Every delivery is screened by [`crate::outbound`]: a URL or address that
//! may not be called is refused, recorded with its reason and never tried
//! again; redirects are not followed.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use ring::hmac;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::{format_time, Db};

use crate::outbound::{self, Policy};
use verkosto_eventlog::clock::Clock;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A new secret, `whsec_` + base64 of 24 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 24] = std::array::from_fn(|_| rand_byte());
    format!("whsec_{}", B64.encode(bytes))
}

fn rand_byte() -> u8 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 1];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness");
    b[0]
}

/// `v1,<signature>` for one message.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = B64.decode(secret.strip_prefix("whsec_")?).ok()?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", B64.encode(tag.as_ref())))
}

/// How long after the n-th failed attempt to try again.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(16));
    (base * factor).min(Duration::from_secs(3600))
}

/// Settings of the delivery worker.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The first retry's delay; later ones double.
    pub retry_base: Duration,
    /// How long one attempt may take; a message is leased for twice that.
    pub timeout: Duration,
    /// How often the outbox is read for messages due.
    pub poll: Duration,
    /// Where deliveries may go.
    pub policy: Policy,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry_base: Duration::from_millis(500),
            timeout: Duration::from_secs(5),
            poll: Duration::from_millis(200),
            policy: Policy::default(),
        }
    }
}

/// Why a delivery did not land.
#[derive(Debug)]
enum Failure {
    /// The receiver did not acknowledge it: tried again later.
    Failed(String),
    /// The URL or its address may not be called: never tried again.
    Refused(String),
}

type Due = (String, String, String, i64, String, String);

/// Sends what the outbox owes, until `shutdown`.
pub async fn run_delivery(db: Db, clock: Clock, settings: Delivery, shutdown: CancellationToken) {
    let http = settings.policy.client(settings.timeout);
    loop {
        if let Err(e) = deliver_due(&db, &clock, &settings, &http).await {
            tracing::warn!(error = %e, "webhook delivery pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(settings.poll) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn deliver_due(
    db: &Db,
    clock: &Clock,
    settings: &Delivery,
    http: &reqwest::Client,
) -> Result<(), sqlx::Error> {
    let now = clock.now();
    let due: Vec<Due> = sqlx::query_as(
        "SELECT o.message_id, o.payload, w.url, o.attempts, w.secret, w.id \
         FROM tasks_webhook_outbox o JOIN tasks_webhooks w ON w.id = o.webhook_id \
         WHERE o.delivered_at IS NULL AND o.refused_at IS NULL AND o.next_attempt_at <= $1 \
         AND w.removed = 0 \
         ORDER BY o.next_attempt_at LIMIT 64",
    )
    .bind(format_time(now))
    .fetch_all(db.writer())
    .await?;
    let mut sends = JoinSet::new();
    // Another process of the tasks service may have read the same rows:
    // lease each one first, so only one of them sends it. If this process
    // dies mid-send, the lease runs out and the message is sent again.
    let lease_until = now + chrono::Duration::from_std(settings.timeout * 2).unwrap_or_default();
    for (message_id, payload, url, attempts, secret, hook) in due {
        let leased = sqlx::query(
            "UPDATE tasks_webhook_outbox SET next_attempt_at = $1 \
             WHERE message_id = $2 AND delivered_at IS NULL AND next_attempt_at <= $3",
        )
        .bind(format_time(lease_until))
        .bind(&message_id)
        .bind(format_time(now))
        .execute(db.writer())
        .await?
        .rows_affected();
        if leased == 0 {
            continue;
        }
        let http = http.clone();
        let policy = settings.policy.clone();
        sends.spawn(async move {
            let result = send(&http, &policy, &url, &secret, &message_id, &payload).await;
            (message_id, hook, attempts, result)
        });
    }
    while let Some(joined) = sends.join_next().await {
        let Ok((message_id, hook, attempts, result)) = joined else {
            continue;
        };
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE tasks_webhook_outbox SET delivered_at = $1, attempts = $2 WHERE message_id = $3",
                )
                .bind(format_time(clock.now()))
                .bind(attempts + 1)
                .bind(&message_id)
                .execute(db.writer())
                .await?;
            }
            Err(Failure::Refused(reason)) => {
                tracing::warn!(%message_id, webhook = %hook, %reason, "webhook delivery refused; not retried");
                sqlx::query(
                    "UPDATE tasks_webhook_outbox SET attempts = $1, refused_at = $2, last_error = $3 \
                     WHERE message_id = $4",
                )
                .bind(attempts + 1)
                .bind(format_time(clock.now()))
                .bind(format!("refused: {reason}"))
                .bind(&message_id)
                .execute(db.writer())
                .await?;
            }
            Err(Failure::Failed(reason)) => {
                let attempts = attempts + 1;
                let next: DateTime<Utc> = clock.now()
                    + chrono::Duration::from_std(backoff(settings.retry_base, attempts as u32))
                        .unwrap_or_default();
                tracing::info!(%message_id, attempts, %reason, "webhook delivery failed; will retry");
                sqlx::query(
                    "UPDATE tasks_webhook_outbox SET attempts = $1, next_attempt_at = $2, last_error = $3 \
                     WHERE message_id = $4",
                )
                .bind(attempts)
                .bind(format_time(next))
                .bind(reason)
                .bind(&message_id)
                .execute(db.writer())
                .await?;
            }
        }
    }
    Ok(())
}

async fn send(
    http: &reqwest::Client,
    policy: &Policy,
    url: &str,
    secret: &str,
    message_id: &str,
    payload: &str,
) -> Result<(), Failure> {
    // Checked again at every delivery: the allowlist may have changed since
    // registration. A name's addresses are checked by the client's resolver.
    let url = reqwest::Url::parse(url)
        .map_err(|_| Failure::Refused("the stored URL is malformed".into()))?;
    policy
        .check_url(&url)
        .map_err(|r| Failure::Refused(r.to_string()))?;
    let timestamp = Utc::now().timestamp();
    let signature = sign(secret, message_id, timestamp, payload)
        .ok_or_else(|| Failure::Failed("the stored secret is malformed".into()))?;
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", message_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(payload.to_string())
        .send()
        .await
        .map_err(|e| match outbound::refusal_of(&e) {
            Some(refused) => Failure::Refused(refused.to_string()),
            None => Failure::Failed(e.to_string()),
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_redirection() {
        Err(Failure::Failed(format!(
            "answered {status}; redirects are not followed"
        )))
    } else {
        Err(Failure::Failed(format!("answered {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_standard_webhooks_example() {
        // From the Standard Webhooks specification's test vectors.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, id, 1614265330, body).unwrap(),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn retries_back_off_and_are_capped() {
        let base = Duration::from_millis(500);
        assert_eq!(backoff(base, 1), Duration::from_millis(500));
        assert_eq!(backoff(base, 2), Duration::from_millis(1000));
        assert_eq!(backoff(base, 3), Duration::from_millis(2000));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }

    #[test]
    fn secrets_are_fresh_and_usable() {
        let a = new_secret();
        assert_ne!(a, new_secret());
        assert!(sign(&a, "m", 1, "{}").is_some());
    }
}
