//! The cases service's state, and the membership extractor every case
//! endpoint takes before its body.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use verkosto_auth::Role;
use verkosto_eventlog::clock::Clock;
use verkosto_eventlog::{AggregateStore, EventLog, Progress};
use verkosto_guard::Guard;
use verkosto_http::{AuthState, Caller, Commands, Problem};

use crate::domain::{not_found, Case};

/// The cases service.
#[derive(Clone)]
pub struct Cases {
    /// The event log: the `case`, `plan` and `record` streams, and the
    /// `cases_*` tables.
    pub log: EventLog,
    /// The `cases_*` read model's progress.
    pub progress: Progress,
    /// The retention read model's progress (closings and holds).
    pub retention_progress: Progress,
    /// The consent guard every read of client data goes through.
    pub guard: Guard,
    /// This service's own read model of the directory's agencies.
    pub agencies: crate::Agencies,
    /// Token verification for the `Caller` extractor.
    pub auth: AuthState,
    /// The process's clock, which tests move: commands are recorded by it
    /// and the retention sweep runs by it.
    pub clock: Clock,
    /// How long a closed case is kept before the sweep erases it.
    pub retention: crate::period::Period,
    /// Bench builds only (`--features bench`): record lists skip consent
    /// filtering and the access log, as the baseline of the read benchmark.
    /// Production builds have no such field, so nothing can switch it on.
    #[cfg(feature = "bench")]
    pub bench_unfiltered_reads: bool,
}

impl FromRef<Cases> for AuthState {
    fn from_ref(c: &Cases) -> AuthState {
        c.auth.clone()
    }
}

/// Who may work with cases at all.
pub(crate) const CASE_WORKERS: [Role; 2] = [Role::Facilitator, Role::Liaison];

impl Cases {
    pub(crate) fn store(&self) -> AggregateStore<Case> {
        AggregateStore::new(self.log.clone())
    }

    /// Where case commands run: writes wait for the `cases` read model.
    pub(crate) fn commands(&self) -> Commands<Case> {
        let clock = self.clock.clone();
        Commands::new(self.log.clone(), self.progress.clone(), "cases")
            .and_read_model(self.retention_progress.clone(), crate::closed::NAME)
            .with_clock(move || clock.now())
    }
}

/// The case, for a caller whose agency is in its network (or, on the
/// `/invitations/` paths, invited to it). Extracted before the body, so an
/// outsider gets 404 whatever it sends: it never learns the case exists.
pub(crate) struct Member(pub Case);

impl FromRequestParts<Cases> for Member {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, c: &Cases) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, c).await?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, c)
            .await
            .map_err(|_| Problem::not_found("no such case"))?;
        let id = params.get("id").map(String::as_str).unwrap_or_default();
        let case = c.store().load(id).await?.aggregate;
        let agency = caller.0.agency.as_str();
        let invitation_path = parts.uri.path().contains("/invitations/");
        if case.erased && (case.is_member(agency) || case.invited.contains_key(agency)) {
            return Err(Problem::gone(id));
        }
        if case.is_member(agency) || invitation_path && case.invited.contains_key(agency) {
            Ok(Member(case))
        } else {
            Err(not_found(id).into())
        }
    }
}

impl Member {
    /// The case, once the caller has one of `roles` (403 otherwise).
    pub(crate) fn allow(self, caller: &Caller, roles: &[Role]) -> Result<Case, Problem> {
        caller.require(roles)?;
        Ok(self.0)
    }
}
