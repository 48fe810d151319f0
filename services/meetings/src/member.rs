//! Who may touch a meeting: the membership extractors, checked before
//! any role and before the body is read (an outsider gets 404 whatever it
//! sends), and where the meeting commands run.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use verkosto_auth::Role;
use verkosto_eventlog::LoadedAggregate;
use verkosto_guard::{CaseAccess, CaseRead, Reader};
use verkosto_http::{Caller, Commands, Problem, RequestId};

use crate::domain::{not_found, Meeting};
use crate::Meetings;

/// Who works with meetings: facilitators and liaisons of member agencies.
pub(crate) const CASE_WORKERS: [Role; 2] = [Role::Facilitator, Role::Liaison];

impl Meetings {
    /// Where meeting commands run: writes wait for the `meetings` read model.
    pub(crate) fn commands(&self) -> Commands<Meeting> {
        Commands::new(self.log.clone(), self.progress.clone(), "meetings")
    }

    /// The case as the guard sees it, or 404 unless `agency` is a member.
    pub(crate) async fn member_view(
        &self,
        case_id: &str,
        agency: &str,
        missing: impl FnOnce() -> Problem,
    ) -> Result<CaseAccess, Problem> {
        self.guard
            .case(case_id)
            .await?
            .filter(|c| c.is_member(agency))
            .ok_or_else(missing)
    }
}

fn case_not_found(case_id: &str) -> Problem {
    Problem::not_found(format!("no case {case_id}"))
}

/// The case of `/cases/{id}/meetings`, for a caller whose agency is in its
/// network. Extracted before the body: an outsider gets 404 whatever it sends.
pub(crate) struct CaseMember(pub CaseAccess);

impl FromRequestParts<Meetings> for CaseMember {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let caller = Caller::from_request_parts(parts, m).await?;
        let id = path_id(parts, m).await?;
        let case = m
            .member_view(&id, &caller.0.agency, || case_not_found(&id))
            .await?;
        Ok(CaseMember(case))
    }
}

/// A meeting, for a caller whose agency is in its case's network (404
/// otherwise, before any role check and before the body is read).
pub(crate) struct MeetingMember {
    /// The meeting the path names.
    pub meeting: Meeting,
    /// Its case as the guard sees it: the network commands check.
    pub case: CaseAccess,
}

impl FromRequestParts<Meetings> for MeetingMember {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let (caller, id, loaded) = meeting_of_path(parts, m).await?;
        let case = m
            .member_view(&loaded.aggregate.case_id, &caller.0.agency, || {
                not_found(&id).into()
            })
            .await?;
        Ok(MeetingMember {
            meeting: loaded.aggregate,
            case,
        })
    }
}

/// A meeting being read: its case's guarded read, for a caller whose
/// agency is in the network (404 naming only the meeting otherwise).
pub(crate) struct MeetingRead {
    /// The meeting the path names.
    pub meeting: Meeting,
    /// The meeting stream's version: the answer's ETag.
    pub version: i64,
    /// The guarded read of its case: consent item by item, then the access
    /// record.
    pub read: CaseRead,
}

impl FromRequestParts<Meetings> for MeetingRead {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, m: &Meetings) -> Result<Self, Problem> {
        let (caller, id, loaded) = meeting_of_path(parts, m).await?;
        let reader = Reader::new("meetings", &caller, parts.extensions.get::<RequestId>());
        let read = m
            .guard
            .read(&loaded.aggregate.case_id, &reader)
            .await
            .map_err(|e| e.or_not_found(|| not_found(&id).into()))?;
        Ok(MeetingRead {
            meeting: loaded.aggregate,
            version: loaded.version,
            read,
        })
    }
}

/// The caller, and the meeting the path names (404 if there is none).
async fn meeting_of_path(
    parts: &mut Parts,
    m: &Meetings,
) -> Result<(Caller, String, LoadedAggregate<Meeting>), Problem> {
    let caller = Caller::from_request_parts(parts, m).await?;
    let id = path_id(parts, m).await?;
    let loaded = m.commands().store().load(&id).await?;
    if loaded.aggregate.id.is_none() {
        return Err(not_found(&id).into());
    }
    Ok((caller, id, loaded))
}

async fn path_id(parts: &mut Parts, m: &Meetings) -> Result<String, Problem> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, m)
        .await
        .map_err(|_| Problem::not_found("no such resource"))?;
    Ok(params.get("id").cloned().unwrap_or_default())
}
