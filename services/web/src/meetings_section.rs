//! The case page's meetings section: the case's meetings, and for the
//! lead's facilitator the form that schedules one (its POST is
//! `meetings_page::schedule`, which shows the case page again on a refusal).

use maud::{html, Markup};
use serde_json::Value;

use crate::i18n::Lang;
use crate::layout::{csrf, field_error, form_error, invalid, FormError};
use crate::session::{Me, Page};
use crate::{s, Web};

/// The case page's meetings section.
pub async fn section(
    web: &Web,
    page: &Page,
    me: &Me,
    token: &str,
    case_id: &str,
    header: &Value,
    error: Option<&FormError>,
) -> Markup {
    let lang = page.lang;
    let list = web
        .api
        .get(&format!("/api/v1/meetings?case={case_id}"), token)
        .await;
    // A closed case takes no new meetings: no form for one.
    let lead_facilitator = s(&header["lead_agency"]) == me.agency
        && me.is("facilitator")
        && !crate::closing::is_closed(header);
    let members: Vec<&str> = header["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    let value = |name: &str| error.map(|e| e.value("meeting", name)).unwrap_or_default();
    html! {
        section aria-labelledby="meetings-h" {
            h2 id="meetings-h" { (lang.t("meetings-title")) }
            @let meetings = list.body["meetings"].as_array().cloned().unwrap_or_default();
            @if meetings.is_empty() { p { (lang.t("meetings-none")) } }
            ul {
                @for m in &meetings {
                    li {
                        a href={ "/meetings/" (s(&m["id"])) } { (meeting_title(lang, m)) }
                        " – " (lang.moment(s(&m["starts_at"]))) " – " (lang.t(&format!("meeting-status-{}", s(&m["status"]))))
                    }
                }
            }
            @if lead_facilitator {
                h3 { (lang.t("meeting-schedule")) }
                (form_error(error, "meeting", lang))
                form.stacked method="post" action={ "/cases/" (case_id) "/meetings" } {
                    (csrf(page))
                    label for="meeting-title" { (lang.t("meeting-title")) }
                    input id="meeting-title" name="title" required aria-invalid=[invalid(error, "meeting", "title")] value=(value("title"));
                    (field_error(error, "meeting", "title"))
                    label for="meeting-starts" { (lang.t("meeting-starts")) }
                    input type="datetime-local" id="meeting-starts" name="starts_at" required aria-invalid=[invalid(error, "meeting", "starts_at")] value=(value("starts_at"));
                    (field_error(error, "meeting", "starts_at"))
                    label for="meeting-ends" { (lang.t("meeting-ends")) }
                    input type="datetime-local" id="meeting-ends" name="ends_at" required aria-invalid=[invalid(error, "meeting", "ends_at")] value=(value("ends_at"));
                    (field_error(error, "meeting", "ends_at"))
                    label for="meeting-location" { (lang.t("meeting-location")) }
                    input id="meeting-location" name="location" value=(value("location"));
                    fieldset {
                        legend { (lang.t("meeting-participants")) }
                        @for a in &members {
                            label { input type="checkbox" name={ "p-" (a) } value="on" checked[*a == me.agency]; " " (a) } " "
                        }
                        (field_error(error, "meeting", "participants"))
                    }
                    label { input type="checkbox" name="client_attends" value="on" checked; " " (lang.t("meeting-client-attends")) }
                    label for="meeting-interpreter" { (lang.t("meeting-interpreter-language")) }
                    input id="meeting-interpreter" name="interpreter_language" aria-describedby="lead-time-rule" value=(value("interpreter_language"));
                    p.notice id="lead-time-rule" { (lang.t("meeting-lead-time-rule")) }
                    label for="meeting-override" { (lang.t("meeting-override-reason")) }
                    input id="meeting-override" name="lead_time_override_reason" aria-describedby="lead-time-rule" value=(value("lead_time_override_reason"));
                    (field_error(error, "meeting", "lead_time_override_reason"))
                    label for="meeting-agenda" { (lang.t("meeting-agenda")) }
                    textarea id="meeting-agenda" name="agenda" rows="3" { (value("agenda")) }
                    button type="submit" { (lang.t("meeting-schedule-submit")) }
                }
            }
        }
    }
}

/// A meeting's title, or words saying that consent withholds it.
pub(crate) fn meeting_title(lang: Lang, m: &Value) -> String {
    match m["title"].as_str() {
        Some(title) if !title.trim().is_empty() => title.to_string(),
        _ => lang.t("meeting-title-withheld"),
    }
}
