//! Calendar feed tokens: one `calendar-feed` stream per agency, holding
//! every token its users were given.
//!
//! A calendar client cannot send a bearer token, so the feed URL carries a
//! random token instead. Each token belongs to one user, expires (180 days
//! unless asked otherwise) and is revoked one by one, by its owner or an
//! admin of the agency. Only its SHA-256 is kept (in the event).
//!
//! Older builds gave one kind of token per agency, with no owner check, no
//! expiry and no id (`FeedTokenIssued`, `FeedTokensRevoked`). Those events
//! stay in the log and still fold, but their tokens are treated as revoked
//! by the upgrade: they were minted by a GET (which link prefetchers follow),
//! never expire, and their URLs went into the gateway's access log. Their
//! owners get a new link in a click.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use verkosto_types::Refusal;

/// How long a token lives unless the caller asks otherwise.
pub const DEFAULT_DAYS: i64 = 180;
/// The longest life a caller may ask for: a year (and a leap day).
pub const MAX_DAYS: i64 = 366;

/// Events of the `calendar-feed` stream (its id is the agency id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CalendarFeedEvent {
    /// An agency-wide token of an older build (no id, no expiry); no longer
    /// written, and its token no longer opens the feed.
    FeedTokenIssued {
        /// The agency whose feed the token opened.
        agency: String,
        /// SHA-256 of the token, hex; the token itself is never stored.
        token_sha256: String,
        /// The user who asked for it.
        issued_by: String,
        /// When it was issued.
        at: DateTime<Utc>,
    },
    /// Every agency-wide token revoked (older builds); no longer written.
    FeedTokensRevoked {
        /// The agency whose tokens were revoked.
        agency: String,
        /// The user who revoked them.
        revoked_by: String,
        /// When they were revoked.
        at: DateTime<Utc>,
    },
    /// A token for one user of the agency, valid until `expires_at`.
    UserFeedTokenIssued {
        /// The agency whose feed the token opens: the owner's.
        agency: String,
        /// The token's id (`feedtoken-` and a UUIDv7 in hex): names it in lists
        /// and revocations, and says nothing of the token.
        token_id: String,
        /// The user it belongs to: they, or an admin of the agency, may revoke
        /// it, and the feed's access records name them.
        owner: String,
        /// SHA-256 of the token, hex; the token itself is never stored.
        token_sha256: String,
        /// When it stops opening the feed (by the log's clock).
        expires_at: DateTime<Utc>,
        /// When it was issued.
        at: DateTime<Utc>,
    },
    /// One token revoked, by its owner or an admin of the agency.
    UserFeedTokenRevoked {
        /// The agency whose feed the token opened.
        agency: String,
        /// The token revoked.
        token_id: String,
        /// The user who revoked it: its owner or an admin of the agency.
        revoked_by: String,
        /// When it was revoked: it opens nothing from then on.
        at: DateTime<Utc>,
    },
}

verkosto_eventlog::domain_event!(CalendarFeedEvent);

#[derive(Clone, Debug)]
pub enum CalendarFeedCommand {
    Issue {
        /// The caller's agency: the feed the token opens.
        agency: String,
        /// The new token's id.
        token_id: String,
        /// The caller: the token's owner.
        owner: String,
        /// SHA-256 of the new token, hex.
        token_sha256: String,
        /// When it is to stop opening the feed.
        expires_at: DateTime<Utc>,
        /// When it is issued.
        at: DateTime<Utc>,
    },
    /// Revokes one token; nothing happens if it is revoked already.
    Revoke {
        /// The caller's agency.
        agency: String,
        /// The token to revoke.
        token_id: String,
        /// The user who revokes it: its owner or an admin of the agency.
        by: String,
        /// When it is revoked.
        at: DateTime<Utc>,
    },
    /// Revokes every live token of `owner`.
    RevokeAllOf {
        /// The caller's agency.
        agency: String,
        /// The user whose tokens are revoked.
        owner: String,
        /// The user who revokes them.
        by: String,
        /// When they are revoked.
        at: DateTime<Utc>,
    },
}

/// One user's token, as the stream knows it (never the token itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedToken {
    /// The token's id.
    pub token_id: String,
    /// The user it belongs to.
    pub owner: String,
    /// SHA-256 of the token, hex: what a presented token is checked against.
    pub token_sha256: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops opening the feed.
    pub expires_at: DateTime<Utc>,
    /// When it was revoked (the first revocation stands); none: not revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl FeedToken {
    /// Not revoked and not yet expired at `now`.
    pub fn live_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    /// `revoked`, `expired` or `active` at `now` (revoked wins).
    pub fn state_at(&self, now: DateTime<Utc>) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if now >= self.expires_at {
            "expired"
        } else {
            "active"
        }
    }
}

/// An agency's feed tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalendarFeed {
    /// By token id, in the order issued (ids are UUIDv7).
    pub tokens: BTreeMap<String, FeedToken>,
    /// Agency-wide tokens of an older build: counted, never accepted.
    pub legacy_tokens: usize,
}

impl CalendarFeed {
    /// The live token `token` stands for at `now`, if any.
    pub fn accepts(&self, token: &str, now: DateTime<Utc>) -> Option<&FeedToken> {
        if token.is_empty() {
            return None;
        }
        let hash = token_hash(token);
        self.tokens
            .values()
            .find(|t| t.token_sha256 == hash)
            .filter(|t| t.live_at(now))
    }

    pub fn token(&self, token_id: &str) -> Option<&FeedToken> {
        self.tokens.get(token_id)
    }
}

/// A new random feed token: 256 bits from the OS generator, hex.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// A new token id: names a token in lists and URLs, says nothing of it.
pub fn new_token_id() -> String {
    format!("feedtoken-{}", uuid::Uuid::now_v7().simple())
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Feed tokens are staff's, not the client's: nothing to seal.
impl verkosto_eventlog::DataSubject for CalendarFeed {}

impl Aggregate for CalendarFeed {
    const TYPE: &'static str = "calendar-feed";
    type Command = CalendarFeedCommand;
    type Event = CalendarFeedEvent;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: CalendarFeedCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        match command {
            CalendarFeedCommand::Issue {
                agency,
                token_id,
                owner,
                token_sha256,
                expires_at,
                at,
            } => {
                let event = CalendarFeedEvent::UserFeedTokenIssued {
                    agency,
                    token_id,
                    owner,
                    token_sha256,
                    expires_at,
                    at,
                };
                sink.write(event, self).await;
            }
            CalendarFeedCommand::Revoke {
                agency,
                token_id,
                by,
                at,
            } => {
                // Revoking twice changes nothing (and writes nothing).
                if self
                    .token(&token_id)
                    .is_some_and(|t| t.revoked_at.is_none())
                {
                    let event = CalendarFeedEvent::UserFeedTokenRevoked {
                        agency,
                        token_id,
                        revoked_by: by,
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
            CalendarFeedCommand::RevokeAllOf {
                agency,
                owner,
                by,
                at,
            } => {
                let ids: Vec<String> = self
                    .tokens
                    .values()
                    .filter(|t| t.owner == owner && t.revoked_at.is_none())
                    .map(|t| t.token_id.clone())
                    .collect();
                for token_id in ids {
                    let event = CalendarFeedEvent::UserFeedTokenRevoked {
                        agency: agency.clone(),
                        token_id,
                        revoked_by: by.clone(),
                        at,
                    };
                    sink.write(event, self).await;
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: CalendarFeedEvent) {
        match event {
            // Revoked by the upgrade (see the module's comment): counted only.
            CalendarFeedEvent::FeedTokenIssued { .. } => self.legacy_tokens += 1,
            CalendarFeedEvent::FeedTokensRevoked { .. } => {}
            CalendarFeedEvent::UserFeedTokenIssued {
                token_id,
                owner,
                token_sha256,
                expires_at,
                at,
                ..
            } => {
                self.tokens.insert(
                    token_id.clone(),
                    FeedToken {
                        token_id,
                        owner,
                        token_sha256,
                        created_at: at,
                        expires_at,
                        revoked_at: None,
                    },
                );
            }
            CalendarFeedEvent::UserFeedTokenRevoked { token_id, at, .. } => {
                if let Some(t) = self.tokens.get_mut(&token_id) {
                    t.revoked_at.get_or_insert(at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn issued(
        token: &str,
        id: &str,
        owner: &str,
        at: DateTime<Utc>,
        days: i64,
    ) -> CalendarFeedEvent {
        CalendarFeedEvent::UserFeedTokenIssued {
            agency: "ngo-support".into(),
            token_id: id.into(),
            owner: owner.into(),
            token_sha256: token_hash(token),
            expires_at: at + Duration::days(days),
            at,
        }
    }

    #[test]
    fn a_token_opens_the_feed_until_it_expires_or_is_revoked() {
        let now = verkosto_eventlog::clock::now();
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        let mut feed = CalendarFeed::default();
        feed.apply(issued(&a, "t-a", "nora", now, DEFAULT_DAYS));
        feed.apply(issued(&b, "t-b", "nora", now, 1));
        assert_eq!(
            feed.accepts(&a, now).map(|t| t.token_id.as_str()),
            Some("t-a")
        );
        assert!(feed.accepts(&b, now).is_some());
        assert!(feed.accepts(&new_token(), now).is_none());
        assert!(feed.accepts("", now).is_none());

        // Expiry: the moment itself is already too late.
        let tomorrow = now + Duration::days(1);
        assert!(feed.accepts(&b, tomorrow - Duration::seconds(1)).is_some());
        assert!(feed.accepts(&b, tomorrow).is_none());
        assert_eq!(feed.token("t-b").unwrap().state_at(tomorrow), "expired");
        assert!(feed.accepts(&a, tomorrow).is_some());

        // Revocation: one token, not the other.
        feed.apply(CalendarFeedEvent::UserFeedTokenRevoked {
            agency: "ngo-support".into(),
            token_id: "t-a".into(),
            revoked_by: "nora".into(),
            at: now,
        });
        assert!(feed.accepts(&a, now).is_none());
        assert!(feed.accepts(&b, now).is_some());
        assert_eq!(feed.token("t-a").unwrap().state_at(now), "revoked");
    }

    #[test]
    fn an_old_agency_wide_log_still_folds_and_its_tokens_are_revoked_by_the_upgrade() {
        // Payloads exactly as the older build stored them.
        let now = verkosto_eventlog::clock::now();
        let old = new_token();
        let stored = [
            serde_json::json!({ "FeedTokenIssued": { "agency": "ngo-support",
                "token_sha256": token_hash(&old), "issued_by": "nora", "at": now } }),
            serde_json::json!({ "FeedTokensRevoked": { "agency": "ngo-support",
                "revoked_by": "nora", "at": now } }),
            serde_json::json!({ "FeedTokenIssued": { "agency": "ngo-support",
                "token_sha256": token_hash(&old), "issued_by": "nora", "at": now } }),
        ];
        let mut feed = CalendarFeed::default();
        for payload in stored {
            feed.apply(serde_json::from_value(payload).expect("an old event reads"));
        }
        assert_eq!(feed.legacy_tokens, 2);
        assert!(feed.accepts(&old, now).is_none());
        // New tokens work on the same stream.
        let new = new_token();
        feed.apply(issued(&new, "t-new", "nora", now, 30));
        assert!(feed.accepts(&new, now).is_some());
        assert_eq!(feed.tokens.len(), 1);
    }
}
