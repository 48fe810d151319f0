//! Who is signed in, in which language, and the CSRF token: all from
//! cookies. The session cookie holds the API token (`HttpOnly`, `Secure`,
//! `SameSite=Lax`); every form carries the CSRF cookie's value back
//! (double submit), and every POST checks it.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http::header::{ACCEPT_LANGUAGE, COOKIE, SET_COOKIE};
use http::request::Parts;
use http::HeaderValue;
use maud::Markup;
use serde::Deserialize;

use crate::i18n::Lang;
use crate::Web;

pub const SESSION: &str = "vk_session";
pub const CSRF: &str = "vk_csrf";
pub const LANG: &str = "vk_lang";

/// The signed-in user, as the token says (for display; the API checks it).
#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    #[serde(rename = "sub")]
    pub user: String,
    pub agency: String,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl Me {
    pub fn is(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }
}

/// What every page handler starts from.
pub struct Page {
    pub lang: Lang,
    pub token: Option<String>,
    pub me: Option<Me>,
    pub csrf: String,
    new_csrf: bool,
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
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("system randomness");
    hex::encode(bytes)
}

impl FromRequestParts<Web> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _web: &Web) -> Result<Self, Response> {
        let jar = cookies(parts);
        let accept = parts
            .headers
            .get(ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = Lang::choose(jar.get(LANG).map(String::as_str), accept);
        let token = jar.get(SESSION).filter(|t| !t.is_empty()).cloned();
        let me = token.as_deref().and_then(claims);
        let (csrf, new_csrf) = match jar.get(CSRF) {
            Some(c) if c.len() == 32 => (c.clone(), false),
            _ => (random_hex(), true),
        };
        Ok(Page {
            lang,
            token: token.filter(|_| me.is_some()),
            me,
            csrf,
            new_csrf,
        })
    }
}

/// A cookie for the whole site.
pub fn cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite=Lax{age}"
    ))
    .expect("cookie header")
}

impl Page {
    /// The page as a response, setting the CSRF cookie if it was new.
    pub fn respond(&self, markup: Markup) -> Response {
        let mut response = markup.into_response();
        self.add_cookies(&mut response);
        response
    }

    pub fn add_cookies(&self, response: &mut Response) {
        if self.new_csrf {
            response
                .headers_mut()
                .append(SET_COOKIE, cookie(CSRF, &self.csrf, None));
        }
    }

    /// The API token for a form post: the page's answer instead when the
    /// form lacks this browser's CSRF token (403) or nobody is signed in.
    pub fn form_token(&self, form: &HashMap<String, String>) -> Result<&str, Box<Response>> {
        if !self.csrf_ok(form) {
            return Err(Box::new(crate::forbidden(self)));
        }
        self.token
            .as_deref()
            .ok_or_else(|| Box::new(crate::to_signin()))
    }

    /// Whether a submitted form carries this browser's CSRF token.
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        !self.new_csrf && form.get("csrf").is_some_and(|c| c == &self.csrf)
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
