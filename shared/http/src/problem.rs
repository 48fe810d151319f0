//! RFC 9457 problem details: the one shape of every error answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer. `detail` names the offending field for bad input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    /// The problem type: `https://verkosto.fi/problems/<kind>` (`type` in JSON).
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase (`Not Found`).
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, in English; for bad input it starts with the field.
    pub detail: String,
    /// The request field at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `code` and `errors`, when the answer carries them (boxed: every
    /// handler returns this type, and most never fill it).
    #[serde(flatten)]
    pub coded: Option<Box<Coded>>,
}

/// A stable machine code that clients translate by.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Coded {
    /// The code (`rate_limited`, …).
    pub code: String,
    /// For bad input: each offending field with its code.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The case the answer is about, when that is the point: the erased
    /// case of a 410.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
}

/// One offending field of a bad input.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldError {
    /// The field's name, as in the request (`obtained.grantor`).
    pub field: String,
    /// The field's code, a stable word clients translate by.
    pub code: String,
    /// What is wrong with it, in English.
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Problem {
        Problem {
            kind: format!("https://verkosto.fi/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            coded: None,
        }
    }

    /// 400: the request cannot be read (malformed JSON, bad header).
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }

    /// 422: a field's value breaks a rule. `detail` should start with the field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Problem {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-field",
            format!("{field}: {}", detail.into()),
        );
        p.field = Some(field.to_string());
        p
    }

    /// 422 with a stable `code`, for the field and in `errors`.
    pub fn invalid_code(field: &str, code: &str, detail: impl Into<String>) -> Problem {
        let detail = detail.into();
        let mut p = Problem::invalid(field, detail.clone());
        p.coded = Some(Box::new(Coded {
            code: code.to_string(),
            errors: vec![FieldError {
                field: field.to_string(),
                code: code.to_string(),
                detail,
            }],
            case_id: None,
        }));
        p
    }

    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404, also for things that exist but the caller may not know of.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::PRECONDITION_FAILED, "stale-version", detail)
    }

    /// 410: the case was erased; its data no longer exists anywhere.
    pub fn gone(case_id: &str) -> Problem {
        let mut p = Problem::new(
            StatusCode::GONE,
            "erased",
            format!("case {case_id} was erased; its data no longer exists"),
        );
        p.coded = Some(Box::new(Coded {
            code: "erased".into(),
            errors: Vec::new(),
            case_id: Some(case_id.to_string()),
        }));
        p
    }

    pub fn unavailable(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// 500. The cause is logged by the caller, never sent.
    pub fn internal() -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred; it has been logged",
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // Unavailable is temporary (a database restart, a full disk being
        // cleared): tell clients when to retry rather than to give up.
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .entry(header::RETRY_AFTER)
                .or_insert(HeaderValue::from_static("1"));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.detail)
    }
}

impl std::error::Error for Problem {}

/// Maps the log's errors once. Causes of 5xx go to the log, not the client.
impl From<verkosto_eventlog::Error> for Problem {
    fn from(e: verkosto_eventlog::Error) -> Problem {
        use verkosto_eventlog::Error as E;
        match e {
            E::Conflict { .. } => Problem::precondition_failed(e.to_string()),
            E::Busy(_) | E::IdempotencyRace => {
                Problem::new(StatusCode::CONFLICT, "busy", "the resource is busy; retry")
            }
            E::Erased(case) => Problem::gone(&case),
            E::Keys(ref keys) => {
                tracing::error!(error = %keys, "key store");
                Problem::unavailable("the key store is unavailable; nothing was changed")
            }
            E::Database(ref db) if is_unavailable(db) => {
                tracing::error!(error = %e, "database unavailable");
                Problem::unavailable("the store is unavailable; the write was not accepted")
            }
            // Most often a newer version's event during a rolling upgrade:
            // a process of that version can serve it. Nothing was changed.
            E::Corrupt(_) => {
                tracing::error!(error = %e, "a stream holds an event this version cannot read");
                Problem::unavailable(
                    "this resource holds changes this version cannot read; nothing was changed",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Problem::internal()
            }
        }
    }
}

fn is_unavailable(e: &verkosto_eventlog::SqlxError) -> bool {
    use verkosto_eventlog::SqlxError as S;
    match e {
        S::Io(_) | S::PoolTimedOut | S::PoolClosed | S::WorkerCrashed => true,
        S::Database(d) => d.code().is_some_and(|code| unavailable_code(&code)),
        _ => false,
    }
}

/// Database error codes that mean "the store cannot take writes now", not
/// "this request is wrong": the answer is 503 and nothing was acknowledged.
/// PostgreSQL: disk full, I/O error, admin or crash shutdown, cannot connect
/// now, read-only transaction. SQLite (extended codes, whose low byte is the
/// primary code): READONLY (8), IOERR (10, e.g. 1034 IOERR_FSYNC, 778
/// IOERR_WRITE), FULL (13), CANTOPEN (14).
fn unavailable_code(code: &str) -> bool {
    if code.len() == 5 {
        // A PostgreSQL SQLSTATE (SQLite's codes have at most four digits).
        return matches!(
            code,
            "53100" | "58030" | "57P01" | "57P02" | "57P03" | "25006"
        );
    }
    code.parse::<i64>()
        .is_ok_and(|sqlite| matches!(sqlite & 0xff, 8 | 10 | 13 | 14))
}

/// Errors of a command run: domain rejections carry their own problem.
impl<E> From<verkosto_eventlog::ExecuteError<E>> for Problem
where
    E: std::error::Error + Into<Problem>,
{
    fn from(e: verkosto_eventlog::ExecuteError<E>) -> Problem {
        use verkosto_eventlog::ExecuteError as X;
        match e {
            X::Rejected(domain) => domain.into(),
            X::PreconditionFailed { expected, actual } => Problem::precondition_failed(format!(
                "If-Match: version {expected} is stale; the current version is {actual}"
            )),
            X::IdempotencyKeyReused => Problem::invalid(
                "Idempotency-Key",
                "this key was already used with a different request",
            ),
            X::Log(e) => e.into(),
        }
    }
}

/// The one place a domain's refusal becomes an HTTP answer.
impl From<verkosto_types::Refusal> for Problem {
    fn from(r: verkosto_types::Refusal) -> Problem {
        use verkosto_types::Refusal as R;
        match r {
            R::Invalid { field, detail } => Problem::invalid(&field, detail),
            R::Conflict(detail) => Problem::conflict(detail),
            R::NotAllowed(detail) => Problem::forbidden(detail),
            R::Unknown(detail) => Problem::not_found(detail),
            R::Gone(case_id) => Problem::gone(&case_id),
        }
    }
}

#[cfg(test)]
mod unavailable_tests {
    use super::unavailable_code;

    #[test]
    fn disk_full_and_io_errors_are_unavailable_and_others_are_not() {
        // PostgreSQL disk_full, io_error, shutdowns, read_only_sql_transaction.
        for code in ["53100", "58030", "57P01", "57P02", "57P03", "25006"] {
            assert!(unavailable_code(code), "{code}");
        }
        // SQLite FULL, IOERR and its extended codes (FSYNC, WRITE), READONLY, CANTOPEN.
        for code in ["13", "10", "1034", "778", "266", "8", "14"] {
            assert!(unavailable_code(code), "{code}");
        }
        // Unique violation, syntax error, SQLite CONSTRAINT_UNIQUE, BUSY.
        for code in ["23505", "42601", "2067", "5", "19"] {
            assert!(!unavailable_code(code), "{code}");
        }
    }
}

#[cfg(test)]
mod gone_tests {
    use super::Problem;

    #[test]
    fn an_erased_case_answers_410_with_its_id_however_it_is_found() {
        let from_domain: Problem = verkosto_types::Refusal::gone("case-1").into();
        let from_log: Problem = verkosto_eventlog::Error::Erased("case-1".into()).into();
        for p in [from_domain, from_log, Problem::gone("case-1")] {
            let json = serde_json::to_value(&p).unwrap();
            assert_eq!(json["status"], 410, "{json}");
            assert_eq!(json["code"], "erased", "{json}");
            assert_eq!(json["case_id"], "case-1", "{json}");
        }
    }
}
