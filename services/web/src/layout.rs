//! The frame of every page: language, skip link, navigation, sign-out.

use maud::{html, Markup, DOCTYPE};

use crate::i18n::{Lang, LANGUAGES};
use crate::session::Page;

/// A form's error, shown next to the form (and the field it names), with
/// the values the user had typed, so nothing is lost.
#[derive(Clone, Debug, Default)]
pub struct FormError {
    /// Which form on the page the error is for.
    pub form: String,
    /// The field at fault, as the API named it (`name.fi`); none: the whole form.
    pub field: Option<String>,
    /// What the API said is wrong.
    pub detail: String,
    /// What the user had typed, by field name, to fill the form in again.
    pub values: std::collections::HashMap<String, String>,
}

impl FormError {
    /// Whether this is `form`'s error about field `name` (or a part of it).
    fn names(&self, form: &str, name: &str) -> bool {
        self.form == form
            && self.field.as_deref().is_some_and(|f| {
                f == name
                    || f.starts_with(&format!("{name}["))
                    || f.starts_with(&format!("{name}."))
            })
    }

    pub fn value(&self, form: &str, name: &str) -> String {
        if self.form == form {
            self.values.get(name).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}

/// The error box of `form`, if the error is its.
pub fn form_error(error: Option<&FormError>, form: &str, lang: Lang) -> Markup {
    match error {
        Some(e) if e.form == form => html! {
            div.error role="alert" id={ (form) "-error" } {
                strong { (lang.t("form-error")) } " "
                @if let Some(field) = &e.field { code { (field) } " – " }
                (e.detail)
            }
        },
        _ => html! {},
    }
}

/// The error for one field, placed right after it (empty when the error,
/// if any, is another field's). `name` matches `languages[0]` for `languages`.
pub fn field_error(error: Option<&FormError>, form: &str, name: &str) -> Markup {
    match error.filter(|e| e.names(form, name)) {
        Some(e) => {
            html! { span.error.field-error id={ (form) "-" (name) "-error" } { (e.detail) } }
        }
        None => html! {},
    }
}

/// Whether `name` of `form` is the field in error (for `aria-invalid`).
pub fn invalid(error: Option<&FormError>, form: &str, name: &str) -> Option<&'static str> {
    error.is_some_and(|e| e.names(form, name)).then_some("true")
}

/// The hidden CSRF field every form carries.
pub fn csrf(page: &Page) -> Markup {
    html! { input type="hidden" name="csrf" value=(page.csrf); }
}

pub fn layout(page: &Page, title: &str, body: Markup) -> Markup {
    let lang = page.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.0) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Verkosto" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                a.skip href="#main" { (lang.t("skip-to-content")) }
                header {
                    nav aria-label=(lang.t("nav-label")) {
                        a.brand href="/" { "Verkosto" }
                        @if let Some(me) = &page.me {
                            ul {
                                @if me.is("auditor") {
                                    li { a href="/audit" { (lang.t("nav-audit")) } }
                                    li { a href="/audit/retention" { (lang.t("nav-retention")) } }
                                } @else {
                                    li { a href="/" { (lang.t("nav-cases")) } }
                                    li { a href="/tasks" { (lang.t("nav-tasks")) } }
                                }
                            }
                        }
                    }
                    form.lang method="post" action="/lang" {
                        (csrf(page))
                        label for="lang-select" { (lang.t("language")) }
                        select id="lang-select" name="lang" {
                            @for l in LANGUAGES {
                                option value=(l) selected[l == lang.0] { (Lang(l).t("language-name")) }
                            }
                        }
                        button type="submit" { (lang.t("language-change")) }
                    }
                    @if let Some(me) = &page.me {
                        form.signout method="post" action="/signout" {
                            (csrf(page))
                            span { (lang.ta("signed-in-as", &[("user", me.user.clone()), ("agency", me.agency.clone())])) }
                            " "
                            button type="submit" { (lang.t("sign-out")) }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub const CSS: &str = include_str!("../assets/app.css");
