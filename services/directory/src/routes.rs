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
use verkosto_eventlog::{EventLog, Execution, Outcome, Progress};
use verkosto_http::{AuthState, Caller, Commands, JsonBody, Problem, Write};

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

    /// The agencies' commands: each waits for the directory's read model.
    fn agency_commands(&self) -> Commands<Agency> {
        Commands::new(self.log.clone(), self.progress.clone(), "directory")
    }

    /// The users' commands: each waits for the directory's read model.
    fn user_commands(&self) -> Commands<User> {
        Commands::new(self.log.clone(), self.progress.clone(), "directory")
    }

    /// Registers an agency, as `execution` says who does (the demo loader,
    /// the bootstrap; the API's is `create_agency`).
    pub async fn register_agency(
        &self,
        id: AgencyId,
        kind: AgencyKind,
        name: LocalizedName,
        execution: Execution,
    ) -> Result<Outcome<Agency>, Problem> {
        name.check()?;
        let id = String::from(id);
        let command = AgencyCommand::Register {
            id: id.clone(),
            kind,
            name,
        };
        self.agency_commands()
            .execute_with(&id, command, execution)
            .await
    }

    /// Registers a user of a known agency, as `execution` says who does
    /// (the demo loader, the bootstrap; the API's is `create_user`).
    pub async fn register_user(
        &self,
        id: UserId,
        agency: String,
        roles: BTreeSet<Role>,
        display_name: Text<200>,
        execution: Execution,
    ) -> Result<Outcome<User>, Problem> {
        self.check_user(&id, &agency, &roles).await?;
        let id = String::from(id);
        let command = UserCommand::Register {
            id: id.clone(),
            agency,
            roles,
            display_name: display_name.into(),
        };
        self.user_commands()
            .execute_with(&id, command, execution)
            .await
    }

    /// What a user's registration needs: a role at least, an agency the
    /// directory knows (or `system`), and an id other than the built-in
    /// admin's.
    async fn check_user(
        &self,
        id: &str,
        agency: &str,
        roles: &BTreeSet<Role>,
    ) -> Result<(), Problem> {
        if roles.is_empty() {
            return Err(Problem::invalid("roles", "must name at least one role"));
        }
        if agency != "system" && self.agency(agency).await?.is_none() {
            return Err(Problem::invalid(
                "agency",
                format!("unknown agency {agency}"),
            ));
        }
        if id == "admin" {
            return Err(Problem::conflict("id: user admin is built in"));
        }
        Ok(())
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
    write: Write<NewAgency>,
) -> Result<Response, Problem> {
    write.caller.require(&[Role::Admin])?;
    write.body.name.check()?;
    let id = write.body.id.clone();
    let stream = id.to_string();
    let answer = move |version: i64| (201, json!({ "id": id, "version": version }));
    let register = |agency: NewAgency, _| AgencyCommand::Register {
        id: agency.id.into(),
        kind: agency.kind,
        name: agency.name,
    };
    d.agency_commands()
        .run(&stream, write, answer, register)
        .await
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
    write: Write<NewUser>,
) -> Result<Response, Problem> {
    write.caller.require(&[Role::Admin])?;
    let NewUser {
        id, agency, roles, ..
    } = &write.body;
    d.check_user(id, agency, roles).await?;
    let id = id.clone();
    let stream = id.to_string();
    let answer = move |version: i64| (201, json!({ "id": id, "version": version }));
    let register = |user: NewUser, _| UserCommand::Register {
        id: user.id.into(),
        agency: user.agency,
        roles: user.roles,
        display_name: user.display_name.into(),
    };
    d.user_commands()
        .run(&stream, write, answer, register)
        .await
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
