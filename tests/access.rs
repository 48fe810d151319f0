//! Access control, table-driven: every case-scoped endpoint against every
//! kind of caller, with the status each must get. Outsiders get 404 (the
//! case's existence is not revealed), members without the role 403, and
//! nobody without a token gets past 401.

use serde_json::{json, Value};
use verkosto_e2e::{both_modes, Mode, Verkosto};

/// Who calls.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// No token.
    Anonymous,
    /// The lead agency's facilitator (fiona).
    Lead,
    /// A liaison of a member agency (hanna).
    Member,
    /// A liaison of an agency outside the network (matti).
    Outsider,
    /// A facilitator of an agency outside the network (sami).
    OutsideFacilitator,
    /// An auditor (aino): history and logs, never client data.
    Auditor,
    /// The administrator.
    Admin,
}

const EVERYONE: [Who; 7] = [
    Who::Anonymous,
    Who::Lead,
    Who::Member,
    Who::Outsider,
    Who::OutsideFacilitator,
    Who::Auditor,
    Who::Admin,
];

fn user(who: Who) -> Option<&'static str> {
    match who {
        Who::Anonymous => None,
        Who::Lead => Some("fiona"),
        Who::Member => Some("hanna"),
        Who::Outsider => Some("matti"),
        Who::OutsideFacilitator => Some("sami"),
        Who::Auditor => Some("aino"),
        Who::Admin => Some("admin"),
    }
}

async fn call(
    v: &Verkosto,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = v.http().request(m, v.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if method != "GET" && method != "DELETE" {
        request = request.json(body);
    }
    verkosto_e2e::answer(request.send().await.unwrap())
        .await
        .unwrap()
}

/// The status `who` must get. Reads of a case: members 200, everyone
/// else 404. Lead-only writes: the lead 2xx, a member 403, outsiders 404.
fn expected(who: Who, kind: Kind) -> u16 {
    if who == Who::Anonymous {
        return 401;
    }
    let outside = matches!(
        who,
        Who::Outsider | Who::OutsideFacilitator | Who::Auditor | Who::Admin
    );
    match kind {
        Kind::MemberRead if outside => 404,
        Kind::MemberRead => 200,
        Kind::WorkerWrite(_) if outside => 404,
        Kind::WorkerWrite(ok) => ok,
        Kind::LeadWrite(ok) => match who {
            Who::Lead => ok,
            Who::Member => 403,
            _ => 404,
        },
        Kind::AuditorOnly => {
            if who == Who::Auditor {
                200
            } else {
                403
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Members read (any role of a member agency that works with cases).
    MemberRead,
    /// Members write (facilitator or liaison); the status they get.
    WorkerWrite(u16),
    /// The lead's facilitator only; the status it gets.
    LeadWrite(u16),
    AuditorOnly,
}

async fn check(mode: Mode) {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let mut tokens = std::collections::HashMap::new();
    for who in EVERYONE {
        if let Some(u) = user(who) {
            tokens.insert(format!("{who:?}"), v.token(u).await.unwrap());
        }
    }
    let token = |who: Who| tokens.get(&format!("{who:?}")).cloned();
    let lead = token(Who::Lead).unwrap();
    let (_, case) = v
        .post(
            &lead,
            "/api/v1/cases",
            &json!({ "pseudonym": "ACL-1", "languages": ["fi"] }),
        )
        .await
        .unwrap();
    let id = case["id"].as_str().unwrap().to_string();
    v.post(
        &lead,
        &format!("/api/v1/cases/{id}/members"),
        &json!({ "agency": "health-hus", "purpose": "p" }),
    )
    .await
    .unwrap();
    v.post(
        &token(Who::Member).unwrap(),
        &format!("/api/v1/cases/{id}/invitations/accept"),
        &json!({}),
    )
    .await
    .unwrap();
    let (_, record) = v
        .post(
            &lead,
            &format!("/api/v1/cases/{id}/records"),
            &json!({ "category": "health", "body": "secret" }),
        )
        .await
        .unwrap();
    assert!(record["id"].is_string());

    let obtained = json!({ "method": "written", "language": "fi" });
    // (method, path, body, kind). Writes that succeed change state, so each
    // is made fresh for the lead by the `body` it carries.
    let table: Vec<(&str, String, Value, Kind)> = vec![
        (
            "GET",
            format!("/api/v1/cases/{id}"),
            json!(null),
            Kind::MemberRead,
        ),
        (
            "GET",
            format!("/api/v1/cases/{id}/records"),
            json!(null),
            Kind::MemberRead,
        ),
        (
            "GET",
            format!("/api/v1/cases/{id}/plan"),
            json!(null),
            Kind::MemberRead,
        ),
        (
            "GET",
            format!("/api/v1/cases/{id}/consent"),
            json!(null),
            Kind::MemberRead,
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/records"),
            json!({ "category": "social", "body": "note" }),
            Kind::WorkerWrite(201),
        ),
        (
            "PUT",
            format!("/api/v1/cases/{id}/flags"),
            json!({ "minor": false, "safety_risk": false }),
            Kind::LeadWrite(200),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/consent/grants"),
            json!({ "recipient": "health-hus", "categories": ["social"], "purpose": "p", "obtained": obtained }),
            Kind::LeadWrite(201),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/consent/refusals"),
            json!({ "agency": "health-hus", "categories": ["identity"] }),
            Kind::LeadWrite(201),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/consent/statutory"),
            json!({ "recipient": "health-hus", "categories": ["legal"], "law_reference": "Act 1/2000" }),
            Kind::LeadWrite(201),
        ),
        (
            "PUT",
            format!("/api/v1/cases/{id}/plan/draft"),
            json!({ "goals": ["g"], "measures": [] }),
            Kind::LeadWrite(200),
        ),
        (
            "POST",
            format!("/api/v1/cases/{id}/tasks"),
            json!({ "description": "d", "category": "social", "assignee": "health-hus" }),
            Kind::LeadWrite(201),
        ),
        (
            "GET",
            format!("/api/v1/audit/cases/{id}/consent/history"),
            json!(null),
            Kind::AuditorOnly,
        ),
        (
            "GET",
            format!("/api/v1/audit/cases/{id}/access-log"),
            json!(null),
            Kind::AuditorOnly,
        ),
        (
            "GET",
            format!("/api/v1/audit/cases/{id}/consent"),
            json!(null),
            Kind::AuditorOnly,
        ),
        (
            "GET",
            "/api/v1/audit/verify".to_string(),
            json!(null),
            Kind::AuditorOnly,
        ),
    ];
    let mut checked = 0;
    for (method, path, body, kind) in &table {
        for who in EVERYONE {
            let want = expected(who, *kind);
            let (got, answer) = call(&v, token(who).as_deref(), method, path, body).await;
            // The member liaison may write records but is not a facilitator:
            // the lead-only rows give it 403 (checked above by `expected`).
            assert_eq!(got, want, "{who:?} {method} {path}: {answer}");
            if got == 404 {
                // Not found looks the same for every outsider: no detail of the case.
                assert!(!answer.to_string().contains("ACL-1"), "{answer}");
            }
            checked += 1;
        }
    }
    // Auditors and admins never see client data, in any answer.
    for who in [Who::Auditor, Who::Admin] {
        for path in [
            format!("/api/v1/cases/{id}/records"),
            "/api/v1/cases".to_string(),
            "/api/v1/tasks".to_string(),
        ] {
            let (_, answer) = call(&v, token(who).as_deref(), "GET", &path, &json!(null)).await;
            assert!(
                !answer.to_string().contains("secret"),
                "{who:?} {path}: {answer}"
            );
        }
    }
    assert!(checked >= 100, "{checked}");
    v.stop().await;
}

both_modes!(
    every_endpoint_answers_every_caller_as_it_must,
    |mode| async move {
        check(mode).await;
    }
);
