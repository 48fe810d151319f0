//! Who is signed in, in which language, and the CSRF token.
//!
//! A session lives on the server, in the `web_sessions` table of the
//! process's database, so every `--target web` replica sees the same
//! sessions and signing out ends one everywhere. The browser holds only an
//! opaque random id (`vk_session`: 256 bits, `HttpOnly`, `Secure`,
//! `SameSite=Lax`, `Path=/`). From that id come three keys (HMAC-SHA256
//! of the id, one label each), and only the id's holder can compute them:
//!
//! - the row's key: the table never holds the id itself, so a copy of the
//!   database gives no cookie to replay;
//! - the key that seals the API token in the row (ChaCha20-Poly1305): a copy
//!   of the database gives no token either, and no key needs sharing
//!   between replicas or surviving a restart;
//! - the CSRF token every form carries, bound to the session: another
//!   session's token never matches, whatever cookies an attacker plants.
//!
//! A session ends when its owner signs out (the row is deleted, so a copied
//! cookie is dead), after `--session-idle-timeout` without a request, at
//! `--session-max-age` however active, or when its API token expires. The
//! next page then sends the browser to sign-in, saying why, and back to
//! where it was after signing in.
//!
//! Before sign-in, the sign-in and language forms carry a double-submit
//! token (the `vk_csrf` cookie): there is no session to bind them to yet.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use http::request::Parts;
use http::HeaderValue;
use maud::Markup;
use ring::{aead, hmac, rand::SecureRandom};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use verkosto_eventlog::Db;

use crate::i18n::Lang;
use crate::Web;

pub const SESSION: &str = "vk_session";
pub const CSRF: &str = "vk_csrf";
pub const LANG: &str = "vk_lang";

const CSRF_LABEL: &[u8] = b"verkosto web session: csrf";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The signed-in user, as the token says (for display; the API checks it).
#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    /// The user's id (the token's `sub`).
    #[serde(rename = "sub")]
    pub user: String,
    /// The user's agency id.
    pub agency: String,
    /// The user's roles as the token names them; empty if it names none.
    #[serde(default)]
    pub roles: Vec<String>,
    /// When the API token expires (seconds since the epoch), if it says.
    #[serde(default)]
    pub exp: Option<i64>,
}

impl Me {
    pub fn is(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// Why a browser's session is no more (shown on the sign-in page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// No request for longer than the idle timeout.
    Idle,
    /// Past the session's maximum age, or its API token expired.
    Expired,
    /// Signed out, or a cookie this server never issued.
    Unknown,
    /// The user signed out just now.
    SignedOut,
}

impl Ended {
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Idle => "idle",
            Ended::Expired => "expired",
            Ended::Unknown => "ended",
            Ended::SignedOut => "signed-out",
        }
    }

    pub fn parse(text: &str) -> Option<Ended> {
        [
            Ended::Idle,
            Ended::Expired,
            Ended::Unknown,
            Ended::SignedOut,
        ]
        .into_iter()
        .find(|e| e.as_str() == text)
    }
}

/// Creates the `web_sessions` table.
pub async fn migrate(db: &Db) -> Result<(), verkosto_eventlog::Error> {
    // One SQL for both backends.
    let migrations = sqlx::migrate!("./migrations");
    db.run_migrations(&migrations, &migrations).await
}

/// The sessions of the web app, and how long they last.
#[derive(Clone)]
pub struct Sessions {
    /// Where the `web_sessions` table is.
    db: Db,
    /// A session unused this long is over.
    pub idle_timeout: Duration,
    /// A session this old is over, however much it is used; also the
    /// cookie's `Max-Age`.
    pub max_age: Duration,
    /// `Secure` on every cookie; off only with `--insecure-cookies-on-loopback`.
    pub secure_cookies: bool,
}

/// A live session, as a page sees it.
#[derive(Clone)]
struct Live {
    /// What the session id gives.
    keys: Keys,
    /// The API token, unsealed.
    token: String,
    /// The token's claims.
    me: Me,
}

/// What a session id gives: the row's key, the sealing key, the CSRF token.
#[derive(Clone)]
struct Keys {
    /// The session id: the cookie's value (32 random bytes, base64url).
    id: String,
    /// HMAC-SHA256 key made of the id: derives the others, and checks the CSRF token.
    key: hmac::Key,
    /// The row's key in `web_sessions` (hex): the table never holds the id itself.
    row: String,
    /// The ChaCha20-Poly1305 key the row's token is sealed under.
    seal: [u8; 32],
    /// The session's CSRF token (base64url of a MAC of a fixed label).
    csrf: String,
}

impl Keys {
    /// From the cookie's value; None unless it is 32 bytes of base64url.
    fn of(id: &str) -> Option<Keys> {
        let bytes = B64.decode(id).ok().filter(|b| b.len() == 32)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &bytes);
        let derive = |label: &[u8]| hmac::sign(&key, label);
        let mut seal = [0u8; 32];
        seal.copy_from_slice(derive(b"verkosto web session: seal").as_ref());
        Some(Keys {
            id: id.to_string(),
            row: hex::encode(derive(b"verkosto web session: row").as_ref()),
            seal,
            csrf: B64.encode(derive(CSRF_LABEL).as_ref()),
            key,
        })
    }

    fn new() -> Keys {
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("system randomness");
        Keys::of(&B64.encode(bytes)).expect("a fresh id")
    }

    fn cipher(&self) -> aead::LessSafeKey {
        aead::LessSafeKey::new(
            aead::UnboundKey::new(&aead::CHACHA20_POLY1305, &self.seal).expect("a 32-byte key"),
        )
    }

    /// The token sealed for the row: base64url of nonce ‖ ciphertext ‖ tag.
    fn seal(&self, token: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut nonce)
            .expect("system randomness");
        let mut data = token.as_bytes().to_vec();
        self.cipher()
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(self.row.as_bytes()),
                &mut data,
            )
            .expect("sealing");
        let mut out = nonce.to_vec();
        out.extend(data);
        B64.encode(out)
    }

    fn open(&self, sealed: &str) -> Option<String> {
        let bytes = B64.decode(sealed).ok()?;
        if bytes.len() < aead::NONCE_LEN {
            return None;
        }
        let (nonce, data) = bytes.split_at(aead::NONCE_LEN);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .cipher()
            .open_in_place(nonce, aead::Aad::from(self.row.as_bytes()), &mut data)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_millis() -> i64 {
    verkosto_eventlog::clock::now().timestamp_millis()
}

impl Sessions {
    pub fn new(db: Db, idle_timeout: Duration, max_age: Duration, secure_cookies: bool) -> Self {
        Sessions {
            db,
            idle_timeout,
            max_age,
            secure_cookies,
        }
    }

    /// Starts a session for `token`; returns its id (the cookie's value).
    async fn create(&self, token: &str, user: &str) -> Result<String, sqlx::Error> {
        let keys = Keys::new();
        let now = now_millis();
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_id, token, created_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&keys.row)
        .bind(user)
        .bind(keys.seal(token))
        .bind(now)
        .bind(now)
        .execute(self.db.writer())
        .await?;
        Ok(keys.id)
    }

    async fn delete(&self, keys: &Keys) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(&keys.row)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    async fn forget_token(&self, keys: &Keys) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE web_sessions SET token = '' WHERE id_hash = $1 AND token <> ''")
            .bind(&keys.row)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// The live session of a cookie, or why there is none. A live one is
    /// marked as seen (at most every tenth of the idle timeout, to spare
    /// the database a write per request).
    async fn find(&self, cookie: &str) -> Result<Live, Ended> {
        let keys = Keys::of(cookie).ok_or(Ended::Unknown)?;
        let row: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT token, created_at, seen_at FROM web_sessions WHERE id_hash = $1",
        )
        .bind(&keys.row)
        .fetch_optional(self.db.reader())
        .await
        .map_err(|e| {
            // Fail closed: no database, no session.
            tracing::error!(error = %e, "cannot read web sessions");
            Ended::Unknown
        })?;
        let (sealed, created, seen) = row.ok_or(Ended::Unknown)?;
        let now = now_millis();
        let ended = if now - created >= millis(self.max_age) {
            Some(Ended::Expired)
        } else if now - seen >= millis(self.idle_timeout) {
            Some(Ended::Idle)
        } else {
            None
        };
        let live = keys
            .open(&sealed)
            .and_then(|token| claims(&token).map(|me| (token, me)));
        let ended = ended.or(match &live {
            None => Some(Ended::Unknown),
            Some((_, me)) if me.exp.is_some_and(|exp| exp * 1000 <= now) => Some(Ended::Expired),
            Some(_) => None,
        });
        if let Some(why) = ended {
            // The token goes at once; the row stays a day (the sweeper's),
            // so every tab with this cookie is told why, not just the first.
            let forgotten = match why {
                Ended::Unknown => self.delete(&keys).await,
                _ => self.forget_token(&keys).await,
            };
            if let Err(e) = forgotten {
                tracing::warn!(error = %e, "cannot forget an ended web session");
            }
            return Err(why);
        }
        let (token, me) = live.expect("checked above");
        let touch_every = (millis(self.idle_timeout) / 10).min(60_000);
        if now - seen >= touch_every {
            let touched = sqlx::query("UPDATE web_sessions SET seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(&keys.row)
                .execute(self.db.writer())
                .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "cannot mark a web session as seen");
            }
        }
        Ok(Live { keys, token, me })
    }

    /// Forgets the tokens of ended sessions at once, and the rows a day
    /// later (until then the sign-in page can still say why one ended).
    pub async fn sweep(&self) -> Result<(), sqlx::Error> {
        let now = now_millis();
        let (idle, max) = (millis(self.idle_timeout), millis(self.max_age));
        sqlx::query(
            "UPDATE web_sessions SET token = '' \
             WHERE token <> '' AND (seen_at <= $1 OR created_at <= $2)",
        )
        .bind(now - idle)
        .bind(now - max)
        .execute(self.db.writer())
        .await?;
        let day = 86_400_000;
        sqlx::query("DELETE FROM web_sessions WHERE seen_at <= $1 OR created_at <= $2")
            .bind(now - idle - day)
            .bind(now - max - day)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// A cookie for the whole site (see [`cookie`]).
    pub fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        cookie(name, value, max_age, self.secure_cookies)
    }

    /// Starts a session for `token` and answers with a redirect to `to`
    /// that sets its cookie; ends `replacing` first (a new id at every
    /// sign-in, so an id planted before it is worth nothing).
    pub async fn sign_in(&self, page: &Page, token: &str, to: &str) -> Response {
        if let Some(live) = &page.live {
            if let Err(e) = self.delete(&live.keys).await {
                tracing::warn!(error = %e, "cannot end the previous web session");
            }
        }
        let user = claims(token).map(|m| m.user).unwrap_or_default();
        let id = match self.create(token, &user).await {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a web session");
                return (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "The service is unavailable; try again.",
                )
                    .into_response();
            }
        };
        let mut response = Redirect::to(to).into_response();
        response.headers_mut().append(
            SET_COOKIE,
            self.cookie(SESSION, &id, Some(self.max_age.as_secs() as i64)),
        );
        response
    }

    /// Ends the page's session (the row goes: a copied cookie is dead).
    pub async fn sign_out(&self, page: &Page) -> Result<(), sqlx::Error> {
        match &page.live {
            Some(live) => self.delete(&live.keys).await,
            None => Ok(()),
        }
    }
}

/// Sweeps ended sessions every minute (or every idle timeout, if shorter).
pub async fn run_sweeper(sessions: Sessions, shutdown: CancellationToken) {
    let every = sessions.idle_timeout.min(Duration::from_secs(60));
    loop {
        if let Err(e) = sessions.sweep().await {
            tracing::warn!(error = %e, "sweeping web sessions failed; retrying");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// What every page handler starts from.
pub struct Page {
    /// The language to show the page in (cookie, else `Accept-Language`).
    pub lang: Lang,
    /// The signed-in user's API token; none: nobody signed in.
    pub token: Option<String>,
    /// The signed-in user, as the token says; none: nobody signed in.
    pub me: Option<Me>,
    /// The CSRF token the page's forms carry: the session's, or before
    /// sign-in this browser's double-submit token.
    pub csrf: String,
    /// Why the session the browser presented is over, if it is.
    pub ended: Option<Ended>,
    /// Where the user was, to return there after signing in: this page
    /// for a GET, the page the form was on for a POST.
    pub back: Option<String>,
    /// The session the browser presented, if it is live.
    live: Option<Live>,
    /// The double-submit token was made for this request: the answer sets
    /// its cookie (and no form can carry it yet).
    new_csrf: bool,
    /// `Secure` on the cookies the answer sets.
    secure_cookies: bool,
}

/// A cookie for the whole site: `HttpOnly`, `SameSite=Lax` (a link from an
/// e-mail still opens the page signed in; every form post needs the CSRF
/// token anyway), and `Secure` unless the operator turned that off for
/// plain HTTP on loopback (`--insecure-cookies-on-loopback`).
pub fn cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly{secure}; SameSite=Lax{age}"
    ))
    .expect("cookie header")
}

pub fn cookies(parts: &Parts) -> HashMap<String, String> {
    cookies_of(&parts.headers)
}

/// The request's cookies, by name.
pub fn cookies_of(headers: &http::HeaderMap) -> HashMap<String, String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn claims(token: &str) -> Option<Me> {
    let payload = token.split('.').nth(1)?;
    let bytes = B64.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    hex::encode(bytes)
}

/// `text` percent-encoded for a URL's query (all but `A-Za-z0-9-_.`).
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path on this site to return to: `/…`, never `//…` or `/\…` (which
/// browsers read as another host), nor the sign-in machinery itself.
pub fn local_path(path: &str) -> Option<String> {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control())
        && !["/signin", "/signout", "/oidc/", "/lang"]
            .iter()
            .any(|p| path.starts_with(p));
    ok.then(|| path.to_string())
}

/// The path of a same-host `Referer`, for returning after a POST. Ports
/// are not compared: a gateway may pass on the host without its port.
pub fn referer_path(headers: &http::HeaderMap) -> Option<String> {
    let hostname = |authority: &str| {
        let end = if authority.starts_with('[') {
            authority.find(']').map_or(authority.len(), |i| i + 1)
        } else {
            authority.find(':').unwrap_or(authority.len())
        };
        authority[..end].to_ascii_lowercase()
    };
    let host = headers.get(http::header::HOST)?.to_str().ok()?;
    let referer = headers.get(http::header::REFERER)?.to_str().ok()?;
    let (_, rest) = referer.split_once("://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    (hostname(authority) == hostname(host))
        .then(|| local_path(path))
        .flatten()
}

impl FromRequestParts<Web> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, Response> {
        let jar = cookies(parts);
        let accept = parts
            .headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = Lang::choose(jar.get(LANG).map(String::as_str), accept);
        let (live, ended) = match jar.get(SESSION).filter(|c| !c.is_empty()) {
            None => (None, None),
            Some(cookie) => match web.sessions.find(cookie).await {
                Ok(live) => (Some(live), None),
                Err(why) => (None, Some(why)),
            },
        };
        let back = if parts.method == http::Method::GET {
            parts
                .uri
                .path_and_query()
                .and_then(|p| local_path(p.as_str()))
        } else {
            referer_path(&parts.headers)
        };
        // Signed in: the session's token. Not yet: the double-submit cookie's.
        let (csrf, new_csrf) = match (&live, jar.get(CSRF)) {
            (Some(live), _) => (live.keys.csrf.clone(), false),
            (None, Some(c)) if c.len() == 32 => (c.clone(), false),
            (None, _) => (random_hex(), true),
        };
        Ok(Page {
            lang,
            token: live.as_ref().map(|l| l.token.clone()),
            me: live.as_ref().map(|l| l.me.clone()),
            csrf,
            ended,
            back,
            live,
            new_csrf,
            secure_cookies: web.sessions.secure_cookies,
        })
    }
}

impl Page {
    /// The page as a response, setting the CSRF cookie if it was new.
    pub fn respond(&self, markup: Markup) -> Response {
        let mut response = markup.into_response();
        // Pages hold client data, which no browser cache should keep; and a
        // browser keeps a 410 (the erased page) as fresh forever otherwise.
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        self.add_cookies(&mut response);
        response
    }

    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        cookie(name, value, max_age, self.secure_cookies)
    }

    pub fn add_cookies(&self, response: &mut Response) {
        let headers = response.headers_mut();
        if self.new_csrf {
            headers.append(SET_COOKIE, self.cookie(CSRF, &self.csrf, None));
        }
        if self.ended.is_some() {
            // The browser forgets a dead session's id.
            headers.append(SET_COOKIE, self.cookie(SESSION, "", Some(0)));
        }
    }

    /// To the sign-in page, saying why the session ended (if it did) and
    /// where to come back to.
    pub fn to_signin(&self) -> Response {
        let mut query = Vec::new();
        if let Some(why) = self.ended {
            query.push(format!("ended={}", why.as_str()));
        }
        if let Some(back) = self.back.as_deref().filter(|b| *b != "/") {
            query.push(format!("next={}", encode(back)));
        }
        let to = if query.is_empty() {
            "/signin".to_string()
        } else {
            format!("/signin?{}", query.join("&"))
        };
        let mut response = Redirect::to(&to).into_response();
        self.add_cookies(&mut response);
        response
    }

    /// The API token for a form post: the page's answer instead when the
    /// session has ended or nobody is signed in (to sign-in, nothing done),
    /// or the form lacks this session's CSRF token (403).
    pub fn form_token(&self, form: &HashMap<String, String>) -> Result<&str, Box<Response>> {
        if self.ended.is_some() {
            return Err(Box::new(self.to_signin()));
        }
        if !self.csrf_ok(form) {
            return Err(Box::new(crate::forbidden(self)));
        }
        self.token
            .as_deref()
            .ok_or_else(|| Box::new(self.to_signin()))
    }

    /// Whether a submitted form carries this session's CSRF token (before
    /// sign-in: this browser's double-submit token).
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        let Some(given) = form.get("csrf") else {
            return false;
        };
        match &self.live {
            // The token is a MAC keyed by the session id: checked as one,
            // in constant time.
            Some(live) => B64
                .decode(given)
                .is_ok_and(|tag| hmac::verify(&live.keys.key, CSRF_LABEL, &tag).is_ok()),
            None => !self.new_csrf && given == &self.csrf,
        }
    }

    pub fn signed_in(&self) -> bool {
        self.live.is_some()
    }
}

/// A submitted form's field, trimmed ("" when absent).
pub fn field(form: &HashMap<String, String>, name: &str) -> String {
    form.get(name)
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// A submitted form's field, or None when it is absent or blank.
pub fn optional_field(form: &HashMap<String, String>, name: &str) -> Option<String> {
    Some(field(form, name)).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_token_opens_only_with_its_own_session_id() {
        let (a, b) = (Keys::new(), Keys::new());
        let sealed = a.seal("header.payload.signature");
        assert!(!sealed.contains("payload"));
        assert_eq!(
            Keys::of(&a.id).unwrap().open(&sealed).as_deref(),
            Some("header.payload.signature")
        );
        assert_eq!(b.open(&sealed), None);
        assert_ne!(a.csrf, b.csrf);
        assert_ne!(a.row, b.row);
        assert!(Keys::of("short").is_none());
    }

    #[test]
    fn a_referer_counts_only_from_this_host() {
        let headers = |host: &str, referer: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::HOST, host.parse().unwrap());
            h.insert(http::header::REFERER, referer.parse().unwrap());
            h
        };
        let back = |host, referer| referer_path(&headers(host, referer));
        assert_eq!(
            back("localhost", "http://localhost:8080/cases/x").as_deref(),
            Some("/cases/x")
        );
        assert_eq!(back("a.fi:443", "https://a.fi").as_deref(), Some("/"));
        assert_eq!(back("a.fi", "https://a.fi.evil/cases/x"), None);
        assert_eq!(back("a.fi", "https://evil/cases/x"), None);
    }

    #[test]
    fn only_paths_on_this_site_are_returned_to() {
        assert_eq!(local_path("/cases/x?y=1").as_deref(), Some("/cases/x?y=1"));
        for bad in [
            "//evil",
            "/\\evil",
            "https://evil",
            "/signin?next=/",
            "evil",
        ] {
            assert_eq!(local_path(bad), None, "{bad}");
        }
    }
}
