//! The web app over HTTP, in both modes: dev sign-in, a facilitator's case
//! work, a liaison seeing what consent withholds, an auditor's timeline,
//! languages, and CSRF. (Browser tests with axe-core come with the rest
//! of the web issue.)

use std::collections::HashMap;

use verkosto_e2e::{both_modes, Mode, Verkosto};

/// A minimal browser: keeps cookies, follows redirects by hand.
struct Browser<'a> {
    v: &'a Verkosto,
    http: reqwest::Client,
    jar: HashMap<String, String>,
    lang: &'static str,
    /// The CSRF field of the last page, as a form on it would send it.
    csrf: String,
    /// Whether cookies must carry `Secure` (all but the loopback opt-out).
    secure: bool,
    /// Every `Set-Cookie` seen, for checks of the attributes.
    set_cookies: Vec<String>,
}

impl<'a> Browser<'a> {
    fn new(v: &'a Verkosto) -> Browser<'a> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            v,
            http,
            jar: HashMap::new(),
            lang: "en",
            csrf: String::new(),
            secure: true,
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            assert!(
                text.contains("; HttpOnly")
                    && text.contains("; SameSite=Lax")
                    && text.contains("; Path=/")
                    && text.contains("; Secure") == self.secure,
                "{text}"
            );
            self.set_cookies.push(text.to_string());
            let (pair, _) = text.split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.jar.remove(k);
            } else {
                self.jar.insert(k.to_string(), v.to_string());
            }
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String) {
        let mut path = path.to_string();
        for _ in 0..5 {
            let r = self
                .http
                .get(self.v.url(&path))
                .header("cookie", self.cookie_header())
                .header("accept-language", self.lang)
                .send()
                .await
                .unwrap();
            self.keep(&r);
            if r.status().is_redirection() {
                path = r.headers()["location"].to_str().unwrap().to_string();
                continue;
            }
            let status = r.status().as_u16();
            let page = r.text().await.unwrap();
            // Client text reaches people opened, never as ciphertext.
            assert!(
                !page.contains(verkosto_keys::SEALED_PREFIX),
                "{path}: the page shows sealed text"
            );
            if let Some(csrf) = hidden(&page, "csrf") {
                self.csrf = csrf;
            }
            return (status, page);
        }
        panic!("too many redirects");
    }

    /// Posts a form (with the CSRF field of the last page) and follows the answer.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let csrf = self.csrf.clone();
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let r = self
            .http
            .post(self.v.url(path))
            .header("cookie", self.cookie_header())
            .header("accept-language", self.lang)
            .form(&form)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        if r.status().is_redirection() {
            let to = r.headers()["location"].to_str().unwrap().to_string();
            return self.get(&to).await;
        }
        let status = r.status().as_u16();
        let page = r.text().await.unwrap();
        if let Some(csrf) = hidden(&page, "csrf") {
            self.csrf = csrf;
        }
        (status, page)
    }

    async fn sign_in(&mut self, user: &str) {
        let (status, page) = self.get("/").await;
        assert_eq!(status, 200);
        assert!(page.contains("Demo user"), "{page}");
        let (status, _) = self.post("/signin", &[("user", user)]).await;
        assert_eq!(status, 200);
        assert!(self.jar.contains_key("vk_session"));
    }
}

/// The value of a page's hidden field `name` (its first).
fn hidden(page: &str, name: &str) -> Option<String> {
    let at = page.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(page[at..].split('"').next()?.to_string())
}

/// A request as another client would send it: these cookies, no redirects followed.
async fn raw(
    v: &Verkosto,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = http
        .request(method.clone(), v.url(path))
        .header("cookie", cookie)
        .header("accept-language", "en");
    if method == reqwest::Method::POST {
        request = request.form(form);
    }
    request.send().await.unwrap()
}

/// No message id shows through untranslated: every id with a hyphen (all
/// but a few one-word ones) is absent from the page's text.
fn assert_translated(page: &str, lang: &str, path: &str) {
    let text: String = page
        .split('<')
        .filter_map(|part| part.split_once('>').map(|(_, text)| text))
        .collect::<Vec<_>>()
        .join(" ");
    for id in verkosto_web::i18n::message_ids("en") {
        if id.contains('-') {
            assert!(
                !text
                    .split(|c: char| c.is_whitespace() || c == ':')
                    .any(|w| w == id),
                "{lang} {path}: untranslated {id}"
            );
        }
    }
}

fn case_id(page: &str) -> String {
    let start = page.find("/cases/case-").expect("a case link") + "/cases/".len();
    page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

both_modes!(
    a_facilitator_a_liaison_and_an_auditor_at_work,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let mut fiona = Browser::new(&v);
        fiona.sign_in("fiona").await;

        // Opening a case with a mistake keeps what was typed and names the field.
        let (status, page) = fiona
            .post(
                "/cases",
                &[
                    ("pseudonym", "W-1"),
                    ("languages", "Romanian"),
                    ("interpreter_language", "ro"),
                ],
            )
            .await;
        assert_eq!(status, 422);
        assert!(
            page.contains("languages[0]") && page.contains("value=\"W-1\""),
            "{page}"
        );
        let (status, page) = fiona
            .post(
                "/cases",
                &[
                    ("pseudonym", "W-1"),
                    ("languages", "ro, en"),
                    ("interpreter_language", "ro"),
                    ("safety_risk", "true"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Case W-1"));
        let (_, home) = fiona.get("/").await;
        let case = case_id(&home);

        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/invite"),
                &[("agency", "health-hus"), ("purpose", "care")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let (status, _) = fiona
            .post(
                &format!("/cases/{case}/record"),
                &[("category", "health"), ("body", "Needs a check-up")],
            )
            .await;
        assert_eq!(status, 200);
        let (status, _) = fiona
            .post(
                &format!("/cases/{case}/record"),
                &[("category", "narrative"), ("body", "The story, once")],
            )
            .await;
        assert_eq!(status, 200);

        // The liaison accepts the invitation and sees that both records are withheld.
        let mut hanna = Browser::new(&v);
        hanna.sign_in("hanna").await;
        let (_, home) = hanna.get("/").await;
        assert!(home.contains("W-1"), "{home}");
        let (status, page) = hanna
            .post(&format!("/invitations/{case}/accept"), &[])
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("2 records are withheld"), "{page}");
        assert!(!page.contains("Needs a check-up"));

        // The lead grants health; the liaison now reads it, and not the story.
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/grant"),
                &[
                    ("recipient", "health-hus"),
                    ("c-health", "on"),
                    ("purpose", "care"),
                    ("method", "written"),
                    ("language", "ro"),
                    ("grantor", "self"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let (_, page) = hanna.get(&format!("/cases/{case}")).await;
        assert!(
            page.contains("Needs a check-up") && !page.contains("The story, once"),
            "{page}"
        );
        assert!(page.contains("One record is withheld"), "{page}");

        // A refusal and a legal basis, through their forms.
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/refuse"),
                &[("agency", "health-hus"), ("c-identity", "on")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/statutory"),
                &[
                    ("recipient", "health-hus"),
                    ("c-legal", "on"),
                    ("law_reference", ""),
                ],
            )
            .await;
        assert_eq!(status, 422);
        assert!(page.contains("law_reference"), "{page}");
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/statutory"),
                &[
                    ("recipient", "health-hus"),
                    ("c-legal", "on"),
                    ("law_reference", "Health Care Act 1326/2010"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Consent version 3"), "{page}");

        // The plan: drafted and proposed by the lead, approved by both, agreed.
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/plan"),
                &[
                    ("goals", "I want to feel safe\nI want to work"),
                    ("m0-description", "Health check"),
                    ("m0-category", "health"),
                    ("m0-responsible_agency", "health-hus"),
                    ("m0-due", "2030-01-01"),
                    ("m1-description", ""),
                    ("then", "propose"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Version 1 is waiting for approvals"),
            "{page}"
        );
        for b in [&mut fiona, &mut hanna] {
            let (status, page) = b
                .post(&format!("/cases/{case}/plan-approve"), &[("version", "1")])
                .await;
            assert_eq!(status, 200, "{page}");
        }
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/plan-agreement"),
                &[("version", "1"), ("method", "verbal"), ("language", "ro")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Version 1 is the agreed plan"), "{page}");
        // An empty draft is refused next to the form, with nothing lost.
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/plan"),
                &[
                    ("goals", ""),
                    ("m0-description", "Keep me"),
                    ("m0-category", "social"),
                    ("m0-responsible_agency", "health-hus"),
                    ("then", "save"),
                ],
            )
            .await;
        assert_eq!(status, 422);
        assert!(page.contains("goals") && page.contains("Keep me"), "{page}");

        // A meeting: scheduled in Helsinki time, minutes written and published.
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/meetings"),
                &[
                    ("title", "Network meeting"),
                    ("starts_at", "2030-06-01T10:00"),
                    ("ends_at", "2030-06-01T11:00"),
                    ("location", "Room 4"),
                    ("p-assistance-system", "on"),
                    ("p-health-hus", "on"),
                    ("client_attends", "on"),
                    ("interpreter_language", "ro"),
                    ("agenda", "Plan\nHousing"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("1 June 2030, 10:00 – 1 June 2030, 11:00"),
            "{page}"
        );
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/meetings"),
                &[
                    ("title", "Too soon"),
                    ("starts_at", "2020-01-01T10:00"),
                    ("ends_at", "2020-01-01T11:00"),
                    ("p-health-hus", "on"),
                ],
            )
            .await;
        assert_eq!(status, 422);
        assert!(
            page.contains("starts_at") && page.contains("value=\"Too soon\""),
            "{page}"
        );
        let (_, case_page) = fiona.get(&format!("/cases/{case}")).await;
        let start = case_page
            .find("/meetings/meeting-")
            .expect("a meeting link")
            + "/meetings/".len();
        let meeting: String = case_page[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let (status, page) = fiona
            .post(
                &format!("/meetings/{meeting}/minutes"),
                &[
                    ("note0-category", "health"),
                    ("note0-text", "Discussed the health check"),
                    ("decisions", "Meet again"),
                    ("a0-description", "Book the check"),
                    ("a0-category", "health"),
                    ("a0-assignee", "health-hus"),
                    ("then", "publish"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Revision 1") && page.contains("Book the check"),
            "{page}"
        );
        let (_, page) = hanna.get(&format!("/meetings/{meeting}")).await;
        assert!(page.contains("Discussed the health check"), "{page}");
        let (status, page) = hanna
            .post(&format!("/meetings/{meeting}/approve"), &[])
            .await;
        assert_eq!(status, 200, "{page}");
        let (status, page) = hanna.post("/calendar-link", &[]).await;
        assert_eq!(status, 200);
        let at = page
            .find("/api/v1/calendar/health-hus.ics?token=")
            .expect("the new link is shown");
        let url: String = page[at..].chars().take_while(|c| *c != '<').collect();
        assert!(
            page.contains("Your new calendar link works until "),
            "{page}"
        );
        assert_eq!(
            v.http().get(v.url(&url)).send().await.unwrap().status(),
            200
        );
        // Listed with a revoke button; revoking ends the feed.
        let (status, page) = hanna.get("/calendar-link").await;
        assert_eq!(status, 200);
        assert!(!page.contains(&url), "the link is shown only once");
        let at = page
            .find("/calendar-link/feedtoken-")
            .expect("a revoke button")
            + "/calendar-link/".len();
        let id: String = page[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let (status, page) = hanna
            .post(&format!("/calendar-link/{id}/revoke"), &[])
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("The link was revoked") && page.contains("Revoked"),
            "{page}"
        );
        assert!(
            !page.contains("/revoke\""),
            "no revoke button for a revoked link: {page}"
        );
        assert_eq!(
            v.http().get(v.url(&url)).send().await.unwrap().status(),
            404
        );

        // Every page renders in each language, with nothing untranslated.
        for lang in ["fi", "sv", "en"] {
            fiona.lang = lang;
            for path in [
                "/".to_string(),
                format!("/cases/{case}"),
                format!("/meetings/{meeting}"),
                "/tasks".to_string(),
                "/calendar-link".to_string(),
            ] {
                let (status, page) = fiona.get(&path).await;
                assert_eq!(status, 200, "{lang} {path}");
                assert!(page.contains(&format!("lang=\"{lang}\"")), "{lang} {path}");
                assert_translated(&page, lang, &path);
            }
        }
        fiona.lang = "en";

        // The auditor sees the timeline and the matrix, never the records.
        let mut aino = Browser::new(&v);
        aino.sign_in("aino").await;
        let (status, page) = aino.get(&format!("/audit?case={case}")).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("consent given") && page.contains("health-hus"),
            "{page}"
        );
        assert!(!page.contains("Needs a check-up"));
        let (status, page) = aino
            .get(&format!("/audit?case={case}&at=2020-01-01T00:00:00Z"))
            .await;
        assert_eq!(status, 200);
        assert!(page.contains("Consent version 0"), "{page}");
        let (status, csv) = aino
            .get(&format!("/audit/access-log.csv?case={case}"))
            .await;
        assert_eq!(status, 200);
        assert!(
            csv.starts_with("seq,at,user") && csv.contains("hanna"),
            "{csv}"
        );
        for lang in ["fi", "sv", "en"] {
            aino.lang = lang;
            let (_, page) = aino.get(&format!("/audit?case={case}")).await;
            assert_translated(&page, lang, "/audit");
        }
        aino.lang = "en";
        let (_, page) = aino.get("/audit?verify=1").await;
        assert!(page.contains("The log is intact"), "{page}");
        v.stop().await;
    }
);

both_modes!(
    pages_speak_three_languages_and_forms_need_their_token,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let mut b = Browser::new(&v);
        b.lang = "sv-FI, fi;q=0.5";
        let (_, page) = b.get("/signin").await;
        assert!(
            page.contains("lang=\"sv\"") && page.contains("Logga in"),
            "{page}"
        );
        b.lang = "fi";
        let (_, page) = b.get("/signin").await;
        assert!(
            page.contains("lang=\"fi\"") && page.contains("Kirjaudu"),
            "{page}"
        );
        // The switcher wins over the browser.
        let (_, page) = b.post("/lang", &[("lang", "en")]).await;
        assert!(page.contains("lang=\"en\""), "{page}");
        b.sign_in("fiona").await;

        // A form without the CSRF token is refused.
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .post(v.url("/cases"))
            .header("cookie", format!("vk_session={}", b.jar["vk_session"]))
            .form(&[("pseudonym", "X"), ("languages", "fi")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
        v.stop().await;
    }
);

/// A small OpenID Connect provider: it signs in "fiona" at once, checks
/// PKCE, and signs its tokens with its own key. Its issuer has a path, as a
/// Keycloak realm's does, and its discovery document names what the
/// specification requires. Returns the issuer and the ID token's claims
/// to change (`"stranger": true` signs it with a key not in its JWKS).
async fn fake_identity_provider() -> (String, IdTokenChanges) {
    use axum::extract::{Form, Query, State};
    use axum::response::{IntoResponse, Redirect};
    use axum::routing::{get, post};
    use base64::Engine;
    use sha2::Digest;
    use std::sync::{Arc, Mutex};

    type Grant = (String, String, String);
    #[derive(Clone)]
    struct Idp {
        base: String,
        issuer: Arc<verkosto_auth::DevIssuer>,
        /// code → (PKCE challenge, nonce, redirect URI)
        codes: Arc<Mutex<HashMap<String, Grant>>>,
        changes: IdTokenChanges,
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/realms/verkosto", listener.local_addr().unwrap());
    let (_, issuer) = verkosto_auth::Verifier::dev();
    let changes = IdTokenChanges::default();
    let idp = Idp {
        base: base.clone(),
        issuer: Arc::new(issuer),
        codes: Arc::default(),
        changes: changes.clone(),
    };
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(i): State<Idp>| async move {
                axum::Json(serde_json::json!({
                    "issuer": i.base, "authorization_endpoint": format!("{}/authorize", i.base),
                    "token_endpoint": format!("{}/token", i.base), "jwks_uri": format!("{}/jwks", i.base),
                    "response_types_supported": ["code"], "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["EdDSA"],
                }))
            }),
        )
        .route("/jwks", get(|State(i): State<Idp>| async move { axum::Json(i.issuer.jwks()) }))
        .route(
            "/authorize",
            get(|State(i): State<Idp>, Query(q): Query<HashMap<String, String>>| async move {
                assert_eq!(q["client_id"], "verkosto-web");
                assert_eq!(q["code_challenge_method"], "S256");
                assert_eq!(q["response_type"], "code");
                assert!(q["scope"].split(' ').any(|s| s == "openid"), "{q:?}");
                let code = format!("code-{}", i.codes.lock().unwrap().len());
                i.codes.lock().unwrap().insert(
                    code.clone(),
                    (q["code_challenge"].clone(), q["nonce"].clone(), q["redirect_uri"].clone()),
                );
                Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], q["state"])).into_response()
            }),
        )
        .route(
            "/token",
            post(|State(i): State<Idp>, Form(f): Form<HashMap<String, String>>| async move {
                let Some((challenge, nonce, redirect)) = i.codes.lock().unwrap().remove(&f["code"]) else {
                    return axum::http::StatusCode::BAD_REQUEST.into_response();
                };
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let proof = b64.encode(sha2::Sha256::digest(f["code_verifier"].as_bytes()));
                if proof != challenge || f["redirect_uri"] != redirect || f["client_id"] != "verkosto-web" {
                    return axum::http::StatusCode::BAD_REQUEST.into_response();
                }
                let now = chrono::Utc::now().timestamp();
                let claims = |aud: &str| serde_json::json!({
                    "iss": i.base, "aud": aud, "sub": "fiona", "agency": "assistance-system",
                    "roles": ["facilitator"], "nonce": nonce, "iat": now, "nbf": now, "exp": now + 600,
                });
                let access_token = i.issuer.issue_claims(&claims("verkosto"));
                // at_hash: the left half of the access token's hash (SHA-512 for Ed25519).
                let hash = sha2::Sha512::digest(access_token.as_bytes());
                let mut id_claims = claims("verkosto-web");
                id_claims["at_hash"] = b64.encode(&hash[..32]).into();
                let mut stranger = false;
                for (claim, value) in i.changes.lock().unwrap().iter() {
                    match (claim.as_str(), value) {
                        ("stranger", v) => stranger = v == true,
                        (_, serde_json::Value::Null) => {
                            id_claims.as_object_mut().unwrap().remove(claim);
                        }
                        _ => id_claims[claim] = value.clone(),
                    }
                }
                let id_token = if stranger {
                    verkosto_auth::Verifier::dev().1.issue_claims(&id_claims)
                } else {
                    i.issuer.issue_claims(&id_claims)
                };
                axum::Json(serde_json::json!({
                    "token_type": "Bearer", "access_token": access_token, "id_token": id_token,
                }))
                .into_response()
            }),
        )
        .with_state(idp);
    let app = axum::Router::new().nest("/realms/verkosto", app);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, changes)
}

/// Claims the fake provider puts into its next ID tokens (null: leaves it out).
type IdTokenChanges = std::sync::Arc<std::sync::Mutex<serde_json::Map<String, serde_json::Value>>>;

/// Follows a sign-in with the provider from `path` on, cookies kept (only
/// Verkosto's), to the first answer that is not a redirect or to `until`.
async fn walk(b: &mut Browser<'_>, path: &str, until: Option<&str>) -> (u16, String) {
    let mut url = b.v.url(path);
    for _ in 0..6 {
        let r = b
            .http
            .get(&url)
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap();
        if r.url().as_str().starts_with(&b.v.base) {
            b.keep(&r);
        }
        if !r.status().is_redirection() {
            return (r.status().as_u16(), r.text().await.unwrap());
        }
        let location = r.headers()["location"].to_str().unwrap().to_string();
        if Some(location.as_str()) == until {
            return (r.status().as_u16(), location);
        }
        url = if location.starts_with('/') {
            b.v.url(&location)
        } else {
            location
        };
    }
    panic!("too many redirects");
}

/// Verkosto with the demo directory, no dev sign-in, and sign-in through
/// the identity provider at `idp` (its keys verify the API tokens too).
async fn signing_in_through(idp: &str) -> Verkosto {
    let jwks = format!("{idp}/jwks");
    Verkosto::start_with(
        Mode::Embedded,
        &[
            "--demo",
            "--demo-case",
            "off",
            "--dev-auth",
            "off",
            "--jwks-url",
            &jwks,
            "--jwt-issuer",
            idp,
            "--jwt-algorithms",
            "EdDSA",
            "--oidc-issuer",
            idp,
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_in_with_the_organisations_identity_provider() {
    let (idp, _) = fake_identity_provider().await;
    let v = signing_in_through(&idp).await;
    let mut b = Browser::new(&v);
    let (_, page) = b.get("/signin").await;
    assert!(
        page.contains("/oidc/start") && !page.contains("Demo user"),
        "{page}"
    );

    // Follow the whole dance: to the provider and back, cookies kept.
    let mut url = v.url("/oidc/start");
    let mut last = String::new();
    for _ in 0..6 {
        let r = b
            .http
            .get(&url)
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap();
        if r.url().as_str().starts_with(&v.base) {
            b.keep(&r);
        }
        if !r.status().is_redirection() {
            last = format!("{} {}", r.status(), r.text().await.unwrap());
            break;
        }
        let location = r.headers()["location"].to_str().unwrap().to_string();
        url = if location.starts_with('/') {
            v.url(&location)
        } else {
            location
        };
    }
    assert!(b.jar.contains_key("vk_session"), "{:?} {last}", b.jar);
    let (status, home) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("Signed in as fiona") && home.contains("Open a case"),
        "{home}"
    );
    // The provider's token stays on the server: the cookie is an opaque
    // id, which the API does not take for a token.
    let r = v
        .http()
        .get(v.url("/api/v1/cases"))
        .bearer_auth(&b.jar["vk_session"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(!b.jar["vk_session"].contains('.'), "{:?}", b.jar);

    // Back where the user was: a page asked for signed out, then the dance.
    let (_, page) = b.post("/signout", &[]).await;
    assert!(page.contains("You have signed out"), "{page}");
    let r = b
        .http
        .get(v.url("/tasks"))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/signin?next=%2Ftasks");
    let (_, page) = b.get(&location).await;
    assert!(page.contains("/oidc/start?next=%2Ftasks"), "{page}");
    let mut url = v.url("/oidc/start?next=%2Ftasks");
    for _ in 0..6 {
        let r = b
            .http
            .get(&url)
            .header("cookie", b.cookie_header())
            .send()
            .await
            .unwrap();
        if r.url().as_str().starts_with(&v.base) {
            b.keep(&r);
        }
        let location = r.headers()["location"].to_str().unwrap().to_string();
        if location == "/tasks" {
            break;
        }
        url = if location.starts_with('/') {
            v.url(&location)
        } else {
            location
        };
    }
    let (status, page) = b.get("/tasks").await;
    assert_eq!(status, 200);
    assert!(page.contains("Signed in as fiona"), "{page}");

    // A callback with a state that was never issued is refused.
    let r = b
        .http
        .get(v.url("/oidc/callback?code=code-9&state=forged"))
        .header("cookie", "vk_oidc=real.verifier.nonce")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    v.stop().await;
}

/// What the `openidconnect` crate checks in the provider's answer, each
/// refused with the error page (502) and no session: a callback whose
/// `state` is not the one sent, an ID token with another nonce (a replay),
/// for another audience, from another issuer, expired, signed by a key not
/// the provider's, with an `at_hash` not of its access token, or without
/// Verkosto's claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sign_in_with_a_forged_or_stale_answer_is_refused() {
    let (idp, changes) = fake_identity_provider().await;
    let v = signing_in_through(&idp).await;
    let mut b = Browser::new(&v);

    // A state other than the one this browser was sent off with.
    let r = b.http.get(v.url("/oidc/start")).send().await.unwrap();
    b.keep(&r);
    let to_provider = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to_provider.starts_with(&idp), "{to_provider}");
    let r = b.http.get(&to_provider).send().await.unwrap();
    let back = r.headers()["location"].to_str().unwrap().to_string();
    let (before, state) = back.split_once("state=").unwrap();
    assert!(
        !state.is_empty() && b.jar["vk_oidc"].starts_with(state),
        "{back}"
    );
    let r = b
        .http
        .get(format!("{before}state=x{state}"))
        .header("cookie", b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let page = r.text().await.unwrap();
    assert!(page.contains("state does not match"), "{page}");

    let now = chrono::Utc::now().timestamp();
    let cases = [
        (serde_json::json!({ "nonce": "replayed" }), "Invalid nonce"),
        (
            serde_json::json!({ "aud": "another-app" }),
            "Invalid audiences",
        ),
        (
            serde_json::json!({ "aud": ["verkosto-web", "another-app"] }),
            "`another-app` is not a trusted audience",
        ),
        (
            serde_json::json!({ "iss": "http://127.0.0.1:9/realms/other" }),
            "Invalid issuer",
        ),
        (
            serde_json::json!({ "iat": now - 1200, "nbf": now - 1200, "exp": now - 600 }),
            "ID token expired",
        ),
        (
            serde_json::json!({ "stranger": true }),
            "Signature verification failed",
        ),
        (
            serde_json::json!({ "at_hash": "AAAAAAAAAAAAAAAAAAAAAA" }),
            "at_hash does not match",
        ),
        (
            serde_json::json!({ "agency": null }),
            "agency and roles are required",
        ),
        (
            serde_json::json!({ "roles": ["superuser"] }),
            "unknown role superuser",
        ),
    ];
    for (change, refusal) in cases {
        *changes.lock().unwrap() = change.as_object().unwrap().clone();
        let (status, page) = walk(&mut b, "/oidc/start", None).await;
        assert_eq!(status, 502, "{change}: {page}");
        assert!(
            page.contains("Sign-in failed: ID token: ") && page.contains(refusal),
            "{change}: {page}"
        );
        assert!(!b.jar.contains_key("vk_session"), "{change}: {:?}", b.jar);
    }

    // The same provider, answering truly again: signed in.
    changes.lock().unwrap().clear();
    let (status, _) = walk(&mut b, "/oidc/start", Some("/")).await;
    assert_eq!(status, 303);
    assert!(b.jar.contains_key("vk_session"), "{:?}", b.jar);
    let (_, home) = b.get("/").await;
    assert!(home.contains("Signed in as fiona"), "{home}");
    v.stop().await;
}

both_modes!(another_sessions_csrf_token_is_refused, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let mut fiona = Browser::new(&v);
    fiona.sign_in("fiona").await;
    let session = fiona.jar["vk_session"].clone();
    // The attacker's own token, planted as the CSRF cookie too (a
    // double-submit check compares the two and takes it).
    let mut mallory = Browser::new(&v);
    mallory.sign_in("hanna").await;
    let (_, _) = mallory.get("/").await;
    let forged = mallory.csrf.clone();
    let r = raw(
        &v,
        reqwest::Method::POST,
        "/cases",
        &format!("vk_session={session}; vk_csrf={forged}"),
        &[
            ("pseudonym", "FORGED-1"),
            ("languages", "fi"),
            ("csrf", &forged),
        ],
    )
    .await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("The form had expired"), "{page}");
    // Nothing happened; the session's own token still works.
    let (_, home) = fiona.get("/").await;
    assert!(!home.contains("FORGED-1"), "{home}");
    assert_ne!(forged, fiona.csrf);
    let (status, page) = fiona
        .post("/cases", &[("pseudonym", "OWN-1"), ("languages", "fi")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Case OWN-1"), "{page}");
    v.stop().await;
});

both_modes!(
    signing_out_kills_a_copied_session_cookie,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let mut fiona = Browser::new(&v);
        fiona.sign_in("fiona").await;
        let (_, _) = fiona.get("/").await;
        let copied = fiona.cookie_header();
        let csrf = fiona.csrf.clone();
        let (status, page) = fiona.post("/signout", &[]).await;
        assert_eq!(status, 200);
        assert!(!fiona.jar.contains_key("vk_session"));
        // The copy opens nothing, and its form posts do nothing.
        let r = raw(&v, reqwest::Method::GET, "/", &copied, &[]).await;
        assert_eq!(r.status(), 303);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/signin"),
            "{:?}",
            r.headers()
        );
        let r = raw(
            &v,
            reqwest::Method::POST,
            "/cases",
            &copied,
            &[
                ("pseudonym", "AFTER-1"),
                ("languages", "fi"),
                ("csrf", &csrf),
            ],
        )
        .await;
        assert_eq!(r.status(), 303);
        assert!(page.contains("You have signed out"), "{page}");
        fiona.sign_in("fiona").await;
        let (_, home) = fiona.get("/").await;
        assert!(!home.contains("AFTER-1"), "{home}");
        v.stop().await;
    }
);

both_modes!(the_session_cookie_is_an_opaque_id, |mode| async move {
    let v = Verkosto::start_demo(mode).await.unwrap();
    let mut fiona = Browser::new(&v);
    fiona.sign_in("fiona").await;
    // HttpOnly, Secure, SameSite=Lax, Path=/ (`keep` checks every cookie),
    // with the session's maximum age; an id, not the API token.
    let session = fiona.jar["vk_session"].clone();
    let r = v
        .http()
        .get(v.url("/api/v1/cases"))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(session.len() >= 43 && !session.contains('.'), "{session}");
    let set = fiona
        .set_cookies
        .iter()
        .find(|c| c.starts_with("vk_session=") && !c.starts_with("vk_session=;"))
        .unwrap()
        .clone();
    assert!(set.ends_with("; Max-Age=43200"), "{set}");
    v.stop().await;
});

both_modes!(a_session_ends_after_its_idle_timeout, |mode| async move {
    let v = Verkosto::start_with(
        mode,
        &[
            "--demo",
            "--demo-case",
            "off",
            "--session-idle-timeout",
            "2s",
        ],
    )
    .await
    .unwrap();
    let mut b = Browser::new(&v);
    b.sign_in("fiona").await;
    let session = b.jar["vk_session"].clone();
    // Activity keeps it alive past the idle timeout...
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(3) {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let (status, page) = b.get("/tasks").await;
        assert_eq!(status, 200);
        assert!(page.contains("Signed in as fiona"), "{page}");
    }
    // ... and a pause longer than it ends it: the next page is sign-in,
    // saying why, and signing in goes back to where the user was.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let r = raw(&v, reqwest::Method::GET, "/tasks", &b.cookie_header(), &[]).await;
    b.keep(&r);
    assert!(!b.jar.contains_key("vk_session"));
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, "/signin?ended=idle&next=%2Ftasks");
    // Another tab with the old cookie is told the same.
    let r = raw(
        &v,
        reqwest::Method::GET,
        "/",
        &format!("vk_session={}", session),
        &[],
    )
    .await;
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        "/signin?ended=idle"
    );
    let (status, page) = b.get(&location).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Your session ended because you had done nothing for a minute"),
        "{page}"
    );
    assert_eq!(hidden(&page, "next").as_deref(), Some("/tasks"));
    // Never to another site.
    let r = b
        .http
        .post(v.url("/signin"))
        .header("cookie", b.cookie_header())
        .form(&[
            ("user", "fiona"),
            ("next", "//evil.example"),
            ("csrf", &b.csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"].to_str().unwrap(), "/");
    let r = b
        .http
        .post(v.url("/signin"))
        .header("cookie", b.cookie_header())
        .form(&[("user", "fiona"), ("next", "/tasks"), ("csrf", &b.csrf)])
        .send()
        .await
        .unwrap();
    b.keep(&r);
    assert_eq!(r.headers()["location"].to_str().unwrap(), "/tasks");
    let (status, page) = b.get("/tasks").await;
    assert_eq!(status, 200);
    assert!(page.contains("Signed in as fiona"), "{page}");
    v.stop().await;
});

both_modes!(
    a_session_ends_at_its_max_age_however_busy,
    |mode| async move {
        let v = Verkosto::start_with(
            mode,
            &["--demo", "--demo-case", "off", "--session-max-age", "3s"],
        )
        .await
        .unwrap();
        let mut b = Browser::new(&v);
        b.sign_in("fiona").await;
        assert!(b
            .set_cookies
            .iter()
            .any(|c| c.starts_with("vk_session=") && c.ends_with("; Max-Age=3")));
        let started = std::time::Instant::now();
        let cookie = b.cookie_header();
        let mut ended = None;
        while started.elapsed() < std::time::Duration::from_secs(6) {
            let r = raw(&v, reqwest::Method::GET, "/", &cookie, &[]).await;
            if r.status() == 303 {
                ended = Some((started.elapsed(), r.headers()["location"].clone()));
                break;
            }
            assert_eq!(r.status(), 200);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let (after, location) = ended.expect("the session outlived its max age");
        assert!(after >= std::time::Duration::from_millis(2500), "{after:?}");
        assert_eq!(location, "/signin?ended=expired");
        let (_, page) = b.get("/").await;
        assert!(page.contains("Your session has expired"), "{page}");
        v.stop().await;
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cookies_are_secure_unless_plain_http_on_loopback_is_asked_for() {
    // Asked for, on loopback: no `Secure`, and the demo works.
    let v = Verkosto::start_with(
        Mode::Embedded,
        &[
            "--demo",
            "--demo-case",
            "off",
            "--insecure-cookies-on-loopback",
        ],
    )
    .await
    .unwrap();
    let mut b = Browser::new(&v);
    b.secure = false;
    b.sign_in("fiona").await;
    let (status, page) = b.get("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Signed in as fiona"), "{page}");
    v.stop().await;

    // Anywhere else another machine could reach it, the process refuses.
    for (listen, extra) in [
        ("0.0.0.0:0", None),
        ("127.0.0.1:0", Some("https://verkosto.example.fi")),
        ("127.0.0.1:0", Some("http://verkosto.example.fi")),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec![
            "--demo",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--insecure-cookies-on-loopback",
        ];
        if let Some(url) = extra {
            flags.extend(["--public-url", url]);
        }
        let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
        let refused = verkosto::app::start(verkosto_e2e::serve_args(&flags), listener).await;
        let error = refused.err().expect("refused").to_string();
        assert!(error.contains("--insecure-cookies-on-loopback"), "{error}");
    }
}

/// The first legal hold's id in a page's release button.
fn hold_id(page: &str) -> Option<String> {
    let at = page.find("/holds/hold-")? + "/holds/".len();
    Some(
        page[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect(),
    )
}

/// Opens a case through the home page's form; returns its id.
async fn open_case(b: &mut Browser<'_>, pseudonym: &str) -> String {
    let (status, page) = b
        .post("/cases", &[("pseudonym", pseudonym), ("languages", "fi")])
        .await;
    assert_eq!(status, 200, "{page}");
    let at = page
        .find("action=\"/cases/case-")
        .expect("the case's forms")
        + "action=\"/cases/".len();
    page[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

both_modes!(
    a_case_is_closed_held_and_erased_through_its_forms,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let mut fiona = Browser::new(&v);
        fiona.sign_in("fiona").await;
        let case = open_case(&mut fiona, "END-1").await;
        let path = format!("/cases/{case}");
        let (status, page) = fiona
            .post(
                &format!("{path}/meetings"),
                &[
                    ("title", "Last meeting"),
                    ("starts_at", "2030-06-01T10:00"),
                    ("ends_at", "2030-06-01T11:00"),
                    ("p-assistance-system", "on"),
                ],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        let (_, page) = fiona.get(&path).await;
        let meeting = meeting_id(&page);

        // Open: closing is offered; holds and erasure say why they are not.
        let (_, page) = fiona.get(&path).await;
        assert!(
            page.contains(&format!("action=\"{path}/close\""))
                && page.contains("A legal hold can be placed once the case is closed.")
                && page.contains("A case can be erased only after it has been closed.")
                && !page.contains("/erase\"")
                && !page.contains("/legal-hold\""),
            "{page}"
        );

        // Closing asks first, naming the case; nothing happens until confirmed.
        let close = [("outcome", "moved_away"), ("note", "Moved to Tampere")];
        let (status, page) = fiona.post(&format!("{path}/close"), &close).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Close case END-1?")
                && page.contains(&format!("You are closing case END-1 ({case})."))
                && page.contains("The client moved away from the area")
                && page.contains("name=\"confirm\" value=\"yes\""),
            "{page}"
        );
        let (_, page) = fiona.get(&path).await;
        assert!(page.contains("<dd>Open</dd>"), "closed unconfirmed: {page}");
        let mut confirmed = close.to_vec();
        confirmed.push(("confirm", "yes"));
        let (status, page) = fiona.post(&format!("{path}/close"), &confirmed).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Closed on ")
                && page.contains("The client moved away from the area")
                && page.contains("This case is closed: no new records")
                && page.contains("No legal holds are in force."),
            "{page}"
        );
        // No forms for what a closed case refuses.
        for gone in ["/record\"", "/invite\"", "/meetings\"", "/close\""] {
            assert!(!page.contains(&format!("{path}{gone}")), "{gone}: {page}");
        }

        // A hold: counted in the header, erasure not offered, and a stale
        // erasure form is refused without asking.
        let (status, page) = fiona
            .post(
                &format!("{path}/legal-hold"),
                &[("reason", "pre-trial investigation 5500/R/123/26")],
            )
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("One legal hold in force")
                && page.contains("cannot be erased while a legal hold is in force")
                && !page.contains(&format!("{path}/erase\"")),
            "{page}"
        );
        let hold = hold_id(&page).expect("a release button");
        let erase = [
            ("legal_basis", "data_subject_request"),
            ("reason", "the client asked"),
        ];
        let (status, page) = fiona.post(&format!("{path}/erase"), &erase).await;
        assert_eq!(status, 409, "{page}");
        assert!(
            page.contains("cannot be erased while a legal hold"),
            "{page}"
        );
        let (status, page) = fiona
            .post(&format!("{path}/holds/{hold}/release"), &[])
            .await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("No legal holds are in force.")
                && page.contains(&format!("{path}/erase\"")),
            "{page}"
        );

        // Erasure: a page that names the case and wants its pseudonym typed.
        let (status, page) = fiona.post(&format!("{path}/erase"), &erase).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Erase case END-1 permanently?")
                && page.contains(&format!("case END-1 ({case})"))
                && page.contains("This cannot be undone.")
                && page.contains("The client asked for their data to be erased"),
            "{page}"
        );
        let mut confirmed = erase.to_vec();
        confirmed.push(("confirm", "yes"));
        let mut mistyped = confirmed.clone();
        mistyped.push(("typed", "END-2"));
        let (status, page) = fiona.post(&format!("{path}/erase"), &mistyped).await;
        assert_eq!(status, 422, "{page}");
        assert!(
            page.contains("What you typed is not END-1. Nothing was erased."),
            "{page}"
        );
        let (status, _) = fiona.get(&path).await;
        assert_eq!(status, 200, "erased without the pseudonym");
        confirmed.push(("typed", " END-1 "));
        let (status, page) = fiona.post(&format!("{path}/erase"), &confirmed).await;
        assert_eq!(status, 410, "{page}");
        assert!(
            page.contains("The case has been erased")
                && page.contains(&format!("Case {case} has been erased"))
                && !page.contains("END-1"),
            "{page}"
        );
        // Every way to it now says the same: its page, its meeting, its forms.
        for path in [path.clone(), format!("/meetings/{meeting}")] {
            let (status, page) = fiona.get(&path).await;
            assert_eq!(status, 410, "{path}: {page}");
            assert!(page.contains("The case has been erased"), "{path}: {page}");
        }
        let (status, page) = fiona
            .post(
                &format!("{path}/record"),
                &[("category", "health"), ("body", "late")],
            )
            .await;
        assert_eq!(status, 410, "{page}");
        assert!(page.contains("The case has been erased"), "{page}");
        let (_, home) = fiona.get("/").await;
        assert!(!home.contains(&case), "{home}");

        // The auditor sees the erasure and who did it.
        let mut aino = Browser::new(&v);
        aino.sign_in("aino").await;
        let (_, page) = aino.get(&format!("/audit?case={case}")).await;
        assert!(
            page.contains("The case was erased on")
                && page.contains("by fiona (assistance-system)")
                && page.contains("The client asked for their data to be erased"),
            "{page}"
        );
        v.stop().await;
    }
);

/// The id of the first meeting a case page lists.
fn meeting_id(page: &str) -> String {
    let at = page.find("href=\"/meetings/").expect("a meeting") + "href=\"/meetings/".len();
    page[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

both_modes!(
    an_auditor_keeps_a_closed_case_with_a_legal_hold,
    |mode| async move {
        let v = Verkosto::start_demo(mode).await.unwrap();
        let mut fiona = Browser::new(&v);
        fiona.sign_in("fiona").await;
        let open = open_case(&mut fiona, "KEEP-0").await;
        let case = open_case(&mut fiona, "KEEP-1").await;
        let (status, page) = fiona
            .post(
                &format!("/cases/{case}/close"),
                &[("outcome", "transferred"), ("note", ""), ("confirm", "yes")],
            )
            .await;
        assert_eq!(status, 200, "{page}");

        // The list comes from a read model: the closed case shows up soon.
        let mut aino = Browser::new(&v);
        aino.sign_in("aino").await;
        let (_, home) = aino.get("/").await;
        assert!(home.contains("href=\"/audit/retention\""), "{home}");
        let mut page = String::new();
        for _ in 0..100 {
            let (status, p) = aino.get("/audit/retention").await;
            assert_eq!(status, 200, "{p}");
            page = p;
            if page.contains(&case) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            page.contains(&case)
                && !page.contains(&open)
                && page.contains(
                    "Closed cases are erased automatically 6 years after they were closed"
                )
                && page.contains("No hold"),
            "{page}"
        );
        assert!(
            !page.contains("KEEP-1"),
            "the list shows no pseudonyms: {page}"
        );

        // An empty reason is refused by the case's row, with nothing placed.
        let (status, page) = aino
            .post(&format!("/audit/retention/{case}/hold"), &[("reason", "")])
            .await;
        assert_eq!(status, 422, "{page}");
        assert!(
            page.contains(&format!("id=\"hold-{case}-error\"")) && page.contains("No hold"),
            "{page}"
        );
        let (status, _) = aino
            .post(
                &format!("/audit/retention/{case}/hold"),
                &[("reason", "court order 12/2026")],
            )
            .await;
        assert_eq!(status, 200);
        let mut page = String::new();
        for _ in 0..100 {
            (_, page) = aino.get("/audit/retention").await;
            if page.contains("On legal hold") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(page.contains("On legal hold"), "{page}");
        // Why, beside the release button: what the auditor weighs.
        assert!(page.contains("court order 12/2026"), "{page}");
        let hold = hold_id(&page).expect("a release button");

        // The lead sees the auditor's hold, and cannot erase under it.
        let (_, page) = fiona.get(&format!("/cases/{case}")).await;
        assert!(
            page.contains("One legal hold in force")
                && page.contains(&hold)
                && !page.contains(&format!("/cases/{case}/erase\"")),
            "{page}"
        );

        // Every page of the end of a case, in each language.
        let (_, open_page) = fiona.get(&format!("/cases/{open}")).await;
        assert!(open_page.contains("Close the case"), "{open_page}");
        for (lang, closed, held, confirm, retention) in [
            (
                "fi",
                "Päättynyt",
                "Yksi säilytysvelvoite voimassa",
                "Päätetäänkö asiakkuus KEEP-0?",
                "Säilytysvelvoite voimassa",
            ),
            (
                "sv",
                "Avslutat",
                "Ett bevarandekrav gäller",
                "Avsluta ärende KEEP-0?",
                "Bevarandekrav gäller",
            ),
            (
                "en",
                "Closed on",
                "One legal hold in force",
                "Close case KEEP-0?",
                "On legal hold",
            ),
        ] {
            fiona.lang = lang;
            aino.lang = lang;
            let path = format!("/cases/{case}");
            let (_, page) = fiona.get(&path).await;
            assert!(
                page.contains(closed) && page.contains(held),
                "{lang}: {page}"
            );
            assert_translated(&page, lang, &path);
            let (_, page) = fiona.get(&format!("/cases/{open}")).await;
            assert_translated(&page, lang, "open case");
            let (status, page) = fiona
                .post(
                    &format!("/cases/{open}/close"),
                    &[("outcome", "other"), ("note", "")],
                )
                .await;
            assert_eq!(status, 200, "{page}");
            assert!(page.contains(confirm), "{lang}: {page}");
            assert_translated(&page, lang, "close confirmation");
            let (_, page) = aino.get("/audit/retention").await;
            assert!(page.contains(retention), "{lang}: {page}");
            assert_translated(&page, lang, "/audit/retention");
        }
        fiona.lang = "en";
        aino.lang = "en";

        // Released by the auditor: the lead may erase again.
        let (status, _) = aino
            .post(
                &format!("/audit/retention/{case}/holds/{hold}/release"),
                &[],
            )
            .await;
        assert_eq!(status, 200);
        let (_, page) = fiona.get(&format!("/cases/{case}")).await;
        assert!(
            page.contains("No legal holds are in force.")
                && page.contains(&format!("/cases/{case}/erase\"")),
            "{page}"
        );
        for (lang, title) in [
            ("fi", "Poistetaanko asiakkuus KEEP-1 pysyvästi?"),
            ("sv", "Radera ärende KEEP-1 permanent?"),
            ("en", "Erase case KEEP-1 permanently?"),
        ] {
            fiona.lang = lang;
            let (status, page) = fiona
                .post(
                    &format!("/cases/{case}/erase"),
                    &[("legal_basis", "opened_in_error"), ("reason", "test")],
                )
                .await;
            assert_eq!(status, 200, "{page}");
            assert!(page.contains(title), "{lang}: {page}");
            assert_translated(&page, lang, "erase confirmation");
        }
        v.stop().await;
    }
);
