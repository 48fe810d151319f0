//! `/api/v1/agencies`, `/api/v1/users` and `/api/v1/dev/token`.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use verkosto_auth::{DevIssuer, Principal, Role};
use verkosto_eventlog::{AggregateStore, EventLog, Execution, Outcome, Progress};
use verkosto_http::{command_response, AuthState, Caller, JsonBody, Problem, WriteConditions};

use verkosto_types::{AgencyId, Text, UserId};

use crate::domain::{Agency, AgencyCommand, AgencyKind, LocalizedName, User, UserCommand};

/// The directory service: its aggregates, its read model's progress, and
/// (in dev mode) the token issuer.
#[derive(Clone)]
pub struct Directory {
    /// The event log: the `agency` and `user` streams, and the read model's tables.
    pub log: EventLog,
    /// How far the directory's read model has got, for read-your-writes.
    pub progress: Progress,
    /// Token verification for the `Caller` extractor.
    pub auth: AuthState,
    /// Issues dev tokens (`/api/v1/dev/token`); none: dev tokens are off.
    pub dev: Option<DevIssuer>,
}

impl FromRef<Directory> for AuthState {
    fn from_ref(d: &Directory) -> AuthState {
        d.auth.clone()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgencyView {
    /// The agency's id.
    pub id: String,
    /// Its kind, as on the wire (`social_services`).
    pub kind: String,
    /// Its name in Finnish, Swedish and English.
    pub name: LocalizedName,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    /// The user's id.
    pub id: String,
    /// The user's agency id.
    pub agency: String,
    /// What the user may do.
    pub roles: Vec<Role>,
    /// The user's name as shown to others.
    pub display_name: String,
}

/// How long a write waits for its own read model before answering.
const READ_YOUR_WRITES: Duration = Duration::from_secs(5);

impl Directory {
    pub async fn agencies(&self) -> Result<Vec<AgencyView>, Problem> {
        self.query_agencies("SELECT id, kind, name FROM dir_agencies ORDER BY id", None)
            .await
    }

    pub async fn agency(&self, id: &str) -> Result<Option<AgencyView>, Problem> {
        let found = self
            .query_agencies(
                "SELECT id, kind, name FROM dir_agencies WHERE id = $1",
                Some(id),
            )
            .await?;
        Ok(found.into_iter().next())
    }

    async fn query_agencies(
        &self,
        sql: &str,
        id: Option<&str>,
    ) -> Result<Vec<AgencyView>, Problem> {
        let mut query = sqlx::query_as::<_, (String, String, String)>(sql);
        if let Some(id) = id {
            query = query.bind(id.to_string());
        }
        let rows = query
            .fetch_all(self.log.db().reader())
            .await
            .map_err(verkosto_eventlog::Error::from)?;
        rows.into_iter()
            .map(|(id, kind, name)| {
                let name = serde_json::from_str(&name).map_err(verkosto_eventlog::Error::from)?;
                Ok(AgencyView { id, kind, name })
            })
            .collect()
    }

    pub async fn users(&self) -> Result<Vec<UserView>, Problem> {
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT id, agency, roles, display_name FROM dir_users ORDER BY id")
                .fetch_all(self.log.db().reader())
                .await
                .map_err(verkosto_eventlog::Error::from)?;
        Ok(rows
            .into_iter()
            .map(|(id, agency, roles, display_name)| UserView {
                id,
                agency,
                roles: roles.split(',').filter_map(Role::parse).collect(),
                display_name,
            })
            .collect())
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserView>, Problem> {
        let row: Option<(String, String, String, String)> =
            sqlx::query_as("SELECT id, agency, roles, display_name FROM dir_users WHERE id = $1")
                .bind(id)
                .fetch_optional(self.log.db().reader())
                .await
                .map_err(verkosto_eventlog::Error::from)?;
        Ok(row.map(|(id, agency, roles, display_name)| UserView {
            id,
            agency,
            roles: roles.split(',').filter_map(Role::parse).collect(),
            display_name,
        }))
    }

    /// Registers an agency (used by the API and the demo loader).
    pub async fn register_agency(
        &self,
        id: AgencyId,
        kind: AgencyKind,
        name: LocalizedName,
        execution: Execution,
    ) -> Result<Outcome<Agency>, Problem> {
        name.check()?;
        let id = String::from(id);
        let store = AggregateStore::<Agency>::new(self.log.clone());
        let outcome = store
            .execute(
                &id.clone(),
                AgencyCommand::Register { id, kind, name },
                &(),
                execution,
            )
            .await?;
        self.wait_for_read_model(&outcome).await;
        Ok(outcome)
    }

    /// Registers a user of a known agency.
    pub async fn register_user(
        &self,
        id: UserId,
        agency: String,
        roles: BTreeSet<Role>,
        display_name: Text<200>,
        execution: Execution,
    ) -> Result<Outcome<User>, Problem> {
        let (id, display_name) = (String::from(id), String::from(display_name));
        if roles.is_empty() {
            return Err(Problem::invalid("roles", "must name at least one role"));
        }
        if agency != "system" && self.agency(&agency).await?.is_none() {
            return Err(Problem::invalid(
                "agency",
                format!("unknown agency {agency}"),
            ));
        }
        if id == "admin" {
            return Err(Problem::conflict("id: user admin is built in"));
        }
        let store = AggregateStore::<User>::new(self.log.clone());
        let command = UserCommand::Register {
            id: id.clone(),
            agency,
            roles,
            display_name,
        };
        let outcome = store.execute(&id, command, &(), execution).await?;
        self.wait_for_read_model(&outcome).await;
        Ok(outcome)
    }

    async fn wait_for_read_model<A>(&self, outcome: &Outcome<A>) {
        if let Outcome::Committed { appended, .. } = outcome {
            if let Some(cursor) = appended.last_cursor() {
                if !self.progress.wait_for(cursor, READ_YOUR_WRITES).await {
                    tracing::warn!(%cursor, "directory read model is behind");
                }
            }
        }
    }
}

pub fn router(directory: Directory) -> Router {
    Router::new()
        .route("/api/v1/dev/token", post(dev_token))
        .route("/api/v1/agencies", post(create_agency).get(list_agencies))
        .route("/api/v1/users", post(create_user).get(list_users))
        .with_state(directory)
}

/// The built-in dev-mode administrator.
pub fn builtin_admin() -> Principal {
    Principal {
        user: "admin".into(),
        agency: "system".into(),
        roles: vec![Role::Admin],
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    /// The user's id, or `admin` for the built-in administrator.
    user: String,
}

async fn dev_token(
    State(d): State<Directory>,
    body: JsonBody<TokenRequest>,
) -> Result<Json<serde_json::Value>, Problem> {
    let Some(issuer) = &d.dev else {
        return Err(Problem::not_found("dev tokens are off"));
    };
    let user = body.value.user;
    let principal = if user == "admin" {
        builtin_admin()
    } else {
        let u = d
            .user(&user)
            .await?
            .ok_or_else(|| Problem::invalid("user", format!("unknown user {user}")))?;
        Principal {
            user: u.id,
            agency: u.agency,
            roles: u.roles,
        }
    };
    let token = issuer.issue(&principal, Duration::from_secs(12 * 3600));
    Ok(Json(
        json!({ "token": token, "user": principal.user, "agency": principal.agency, "roles": principal.roles }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewAgency {
    /// The agency's id, as its users' tokens will carry it in the `agency` claim.
    id: AgencyId,
    /// What kind of agency it is.
    kind: AgencyKind,
    /// Its name in Finnish, Swedish and English, each at most 200 characters.
    name: LocalizedName,
}

async fn create_agency(
    State(d): State<Directory>,
    caller: Caller,
    conditions: WriteConditions,
    body: JsonBody<NewAgency>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Admin])?;
    let NewAgency { id, kind, name } = body.value;
    let answer_id = id.clone();
    let execution = conditions.execution(&caller, &body.raw, move |version| {
        (201, json!({ "id": answer_id, "version": version }))
    });
    let id2 = id.clone();
    let outcome = d.register_agency(id, kind, name, execution).await?;
    Ok(command_response(outcome, |a| {
        (201, json!({ "id": id2, "version": a.version }))
    }))
}

async fn list_agencies(
    State(d): State<Directory>,
    _caller: Caller,
) -> Result<Json<serde_json::Value>, Problem> {
    Ok(Json(json!({ "agencies": d.agencies().await? })))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    /// The user's id, as the user's tokens will carry it in the `sub` claim; `admin`
    /// is built in.
    id: UserId,
    /// The id of a registered agency the user belongs to.
    agency: String,
    /// What the user may do: `facilitator`, `liaison`, `auditor`, `admin`; at least one.
    #[schemars(with = "Vec<String>")]
    roles: BTreeSet<Role>,
    /// The user's name as shown to others.
    display_name: Text<200>,
}

async fn create_user(
    State(d): State<Directory>,
    caller: Caller,
    conditions: WriteConditions,
    body: JsonBody<NewUser>,
) -> Result<Response, Problem> {
    caller.require(&[Role::Admin])?;
    let NewUser {
        id,
        agency,
        roles,
        display_name,
    } = body.value;
    let answer_id = id.clone();
    let execution = conditions.execution(&caller, &body.raw, move |version| {
        (201, json!({ "id": answer_id, "version": version }))
    });
    let id2 = id.clone();
    let outcome = d
        .register_user(id, agency, roles, display_name, execution)
        .await?;
    Ok(command_response(outcome, |a| {
        (201, json!({ "id": id2, "version": a.version }))
    }))
}

async fn list_users(State(d): State<Directory>, caller: Caller) -> Result<Response, Problem> {
    caller.require(&[Role::Admin, Role::Auditor, Role::Facilitator])?;
    Ok((StatusCode::OK, Json(json!({ "users": d.users().await? }))).into_response())
}

/// The directory's operations, for the OpenAPI document.
pub fn api_doc() -> Vec<verkosto_http::openapi::Operation> {
    use verkosto_http::openapi::Operation as Op;
    vec![
        Op::new(
            "post",
            "/api/v1/dev/token",
            "identity",
            "A dev token for a user (dev auth only)",
        )
        .public()
        .body::<TokenRequest>()
        .answer(200, "The token"),
        Op::new("post", "/api/v1/agencies", "identity", "Register an agency")
            .who("admin")
            .body::<NewAgency>()
            .answer(201, "Registered"),
        Op::new("get", "/api/v1/agencies", "identity", "List agencies").answer(200, "The agencies"),
        Op::new("post", "/api/v1/users", "identity", "Register a user")
            .who("admin")
            .body::<NewUser>()
            .answer(201, "Registered"),
        Op::new("get", "/api/v1/users", "identity", "List users")
            .who("admin, auditor or facilitator")
            .answer(200, "The users"),
    ]
}
