//! Calendar feed tokens: one `calendar-feed` stream per agency.
//!
//! A calendar client cannot send a bearer token, so the feed URL carries a
//! random token instead. Only its SHA-256 is kept (in the event); revoking
//! ends every token the agency was given.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Refused;

/// Events of the `calendar-feed` stream (its id is the agency id).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub enum CalendarFeedEvent {
    FeedTokenIssued {
        agency: String,
        /// SHA-256 of the token, hex; the token itself is never stored.
        token_sha256: String,
        issued_by: String,
        at: DateTime<Utc>,
    },
    FeedTokensRevoked {
        agency: String,
        revoked_by: String,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for CalendarFeedEvent {
    fn event_type(&self) -> String {
        match self {
            CalendarFeedEvent::FeedTokenIssued { .. } => "FeedTokenIssued",
            CalendarFeedEvent::FeedTokensRevoked { .. } => "FeedTokensRevoked",
        }
        .into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Clone, Debug)]
pub enum CalendarFeedCommand {
    Issue {
        agency: String,
        token_sha256: String,
        by: String,
        at: DateTime<Utc>,
    },
    Revoke {
        agency: String,
        by: String,
        at: DateTime<Utc>,
    },
}

/// An agency's live feed tokens, by hash.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalendarFeed {
    pub live: BTreeSet<String>,
}

impl CalendarFeed {
    pub fn accepts(&self, token: &str) -> bool {
        !token.is_empty() && self.live.contains(&token_hash(token))
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

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Aggregate for CalendarFeed {
    const TYPE: &'static str = "calendar-feed";
    type Command = CalendarFeedCommand;
    type Event = CalendarFeedEvent;
    type Error = Refused;
    type Services = ();

    async fn handle(
        &mut self,
        command: CalendarFeedCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refused> {
        let event = match command {
            CalendarFeedCommand::Issue {
                agency,
                token_sha256,
                by,
                at,
            } => CalendarFeedEvent::FeedTokenIssued {
                agency,
                token_sha256,
                issued_by: by,
                at,
            },
            CalendarFeedCommand::Revoke { agency, by, at } => {
                if self.live.is_empty() {
                    return Ok(());
                }
                CalendarFeedEvent::FeedTokensRevoked {
                    agency,
                    revoked_by: by,
                    at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CalendarFeedEvent) {
        match event {
            CalendarFeedEvent::FeedTokenIssued { token_sha256, .. } => {
                self.live.insert(token_sha256);
            }
            CalendarFeedEvent::FeedTokensRevoked { .. } => self.live.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_tokens_are_accepted() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        let mut feed = CalendarFeed::default();
        feed.apply(CalendarFeedEvent::FeedTokenIssued {
            agency: "ngo-support".into(),
            token_sha256: token_hash(&token),
            issued_by: "nora".into(),
            at: verkosto_eventlog::clock::now(),
        });
        assert!(feed.accepts(&token));
        assert!(!feed.accepts(&new_token()));
        assert!(!feed.accepts(""));
        feed.apply(CalendarFeedEvent::FeedTokensRevoked {
            agency: "ngo-support".into(),
            revoked_by: "nora".into(),
            at: verkosto_eventlog::clock::now(),
        });
        assert!(!feed.accepts(&token));
    }
}
