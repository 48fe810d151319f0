//! The web app in real headless Chromium (driven through chromedriver with
//! fantoccini): a facilitator, a liaison of another agency and an auditor
//! at work, with axe-core checking every page for accessibility problems
//! and a screenshot of each page kept in `target/browser-artifacts/`.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`scripts/test.sh` installs
//! them and sets `VERKOSTO_CHROMEDRIVER` and `VERKOSTO_AXE_JS`).

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use verkosto_e2e::{Mode, Verkosto};
use verkosto_testkit::ChildProcess;

fn artifacts() -> PathBuf {
    let dir = verkosto_testkit::workspace_root().join("target/browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn axe_source() -> String {
    let path = std::env::var("VERKOSTO_AXE_JS").unwrap_or_else(|_| {
        verkosto_testkit::workspace_root()
            .join("target/axe-4.10.3/axe.min.js")
            .display()
            .to_string()
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("axe-core not found at {path} ({e}); run scripts/test.sh, which installs it")
    })
}

/// A chromedriver on a free port, and a headless Chromium session.
struct Browser {
    _driver: ChildProcess,
    client: Client,
    axe: String,
    base: String,
}

impl Browser {
    async fn start(base: &str, profile: &std::path::Path) -> Browser {
        let driver_bin =
            std::env::var("VERKOSTO_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = verkosto_testkit::free_port();
        let mut cmd = tokio::process::Command::new(&driver_bin);
        cmd.arg(format!("--port={port}"));
        let mut driver = ChildProcess::spawn(cmd).unwrap_or_else(|e| {
            panic!("{driver_bin} did not start ({e}); run scripts/test.sh, which installs it")
        });
        driver
            .wait_for_line(
                "ChromeDriver was started successfully",
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": std::env::var("VERKOSTO_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1280,1600", format!("--user-data-dir={}", profile.display())]
            }),
        );
        // The driver is on loopback: plain HTTP.
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap();
        Browser {
            _driver: driver,
            client,
            axe: axe_source(),
            base: base.to_string(),
        }
    }

    async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// Checks the page with axe-core (WCAG 2.1 A and AA) and keeps a screenshot.
    async fn check(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
        let violations = self.violations().await;
        assert!(
            violations.is_empty(),
            "{name}: accessibility violations: {}",
            Value::Array(violations)
        );
    }

    /// Scrolls `css` to the top of the window, then [`Browser::check`]s:
    /// the screenshot shows that part of a long page.
    async fn check_at(&self, name: &str, css: &str) {
        self.client
            .execute(
                "document.querySelector(arguments[0]).scrollIntoView();",
                vec![json!(css)],
            )
            .await
            .unwrap();
        self.check(name).await;
    }

    /// Whether the page has an element matching `css`.
    async fn has(&self, css: &str) -> bool {
        self.client
            .execute(
                "return document.querySelector(arguments[0]) !== null;",
                vec![json!(css)],
            )
            .await
            .unwrap()
            == json!(true)
    }

    /// Switches the language with the header's switcher (back to the same page).
    async fn language(&self, lang: &str) {
        self.select("#lang-select", lang).await;
        self.submit("form.lang button").await;
    }

    /// What axe-core finds wrong with the current page.
    async fn violations(&self) -> Vec<Value> {
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
                    .then(r => done(r.violations.map(v => ({ id: v.id, help: v.help, nodes: v.nodes.map(n => n.html) }))))
                    .catch(e => done([{ id: 'axe-error', help: String(e), nodes: [] }]));",
                vec![],
            )
            .await
            .unwrap();
        result.as_array().cloned().unwrap_or_default()
    }

    /// Presses a key on whatever has the focus.
    async fn key(&self, key: fantoccini::key::Key) {
        let focused = self.client.active_element().await.unwrap();
        focused.send_keys(&key.to_string()).await.unwrap();
    }

    /// What has the focus: `skip` for the skip link, `sign-in` for the
    /// sign-in button, else its tag.
    async fn focused(&self) -> String {
        self.client
            .execute(
                "const e = document.activeElement;
                 if (e.classList.contains('skip')) return 'skip';
                 if (e.closest && e.closest(\"form[action='/signin']\") && e.tagName === 'BUTTON') return 'sign-in';
                 return e.tagName.toLowerCase();",
                vec![],
            )
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn select(&self, css: &str, value: &str) {
        let select = self.client.find(Locator::Css(css)).await.unwrap();
        select.select_by_value(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Clicks a button that submits a form, and waits for the next page.
    async fn submit(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        for _ in 0..200 {
            // The old page's element goes stale once the new page is there.
            if old.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for _ in 0..200 {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .unwrap();
            if state == "complete" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the page after {css} never finished loading");
    }

    async fn sign_in(&self, user: &str) {
        self.open("/signin").await;
        self.select("#user", user).await;
        self.submit("form[action='/signin'] button").await;
    }

    async fn sign_out(&self) {
        self.submit("form.signout button").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_facilitator_a_liaison_and_an_auditor_in_chromium() {
    let v = Verkosto::start_demo(Mode::Embedded).await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::start(&v.base, profile.path()).await;

    // The checker can fail: a page with an unlabelled image and field.
    b.client
        .goto("data:text/html,<html><body><img src='x.png'><input></body></html>")
        .await
        .unwrap();
    assert!(b.violations().await.len() >= 2);

    // Keyboard only: the skip link comes first, and the sign-in button is
    // reachable with Tab and works with Enter.
    b.open("/signin").await;
    b.key(fantoccini::key::Key::Tab).await;
    assert_eq!(b.focused().await, "skip");
    for _ in 0..20 {
        b.key(fantoccini::key::Key::Tab).await;
        if b.focused().await == "sign-in" {
            break;
        }
    }
    assert_eq!(b.focused().await, "sign-in");
    let old = b.client.find(Locator::Css("html")).await.unwrap();
    b.key(fantoccini::key::Key::Enter).await;
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(b.text().await.contains("Signed in as"));
    b.sign_out().await;

    // The facilitator signs in (in English) and opens a case.
    b.open("/signin").await;
    b.select("#lang-select", "en").await;
    b.submit("form.lang button").await;
    b.check("signin").await;
    b.sign_in("fiona").await;
    b.check("home-facilitator").await;
    b.fill("#pseudonym", "B-2048").await;
    b.fill("#languages", "ro, en").await;
    b.fill("#interpreter_language", "ro").await;
    b.submit("form[action='/cases'] button").await;
    assert!(b.text().await.contains("Case B-2048"));
    let url = b.client.current_url().await.unwrap();
    let case_path = url.path().to_string();

    // Adds an agency, records, consent, and a plan.
    b.fill("#invite-agency", "health-hus").await;
    b.fill("#invite-purpose", "health assessment").await;
    b.submit("form[action$='/invite'] button").await;
    for (category, body) in [
        ("health", "Needs a health check."),
        ("narrative", "The story, told once."),
    ] {
        b.select("#record-category", category).await;
        b.fill("#record-body", body).await;
        b.submit("form[action$='/record'] button").await;
    }
    b.check("case-facilitator").await;

    // The liaison accepts the invitation: the records are withheld.
    b.sign_out().await;
    b.sign_in("hanna").await;
    b.check("home-liaison").await;
    b.submit("form[action$='/accept'] button").await;
    let text = b.text().await;
    assert!(text.contains("2 records are withheld"), "{text}");
    assert!(!text.contains("Needs a health check."));
    b.sign_out().await;

    // The facilitator grants health, drafts and proposes the plan.
    b.sign_in("fiona").await;
    b.open(&case_path).await;
    b.select("#grant-recipient", "health-hus").await;
    b.click("form[action$='/grant'] input[name='c-health']")
        .await;
    b.fill("#grant-purpose", "health assessment").await;
    b.fill("#grant-language", "ro").await;
    b.fill("#grant-interpreter", "booked interpreter").await;
    b.submit("form[action$='/grant'] button").await;
    b.fill("#plan-goals", "I want to feel safe").await;
    b.fill("#m0-description", "Health check").await;
    b.select("#m0-category", "health").await;
    b.select("#m0-agency", "health-hus").await;
    b.submit("form[action$='/plan'] button[value='propose']")
        .await;
    assert!(b
        .text()
        .await
        .contains("Version 1 is waiting for approvals"));
    b.check("case-plan-proposed").await;
    b.submit("form[action$='/plan-approve'] button").await;
    b.fill("#agreement-language", "ro").await;
    b.submit("form[action$='/plan-agreement'] button").await;
    // A meeting, with the interpreter lead-time rule explained in place.
    b.fill("#meeting-title", "Network meeting").await;
    b.client
        .execute(
            "document.querySelector('#meeting-starts').value = '2030-06-01T10:00';
             document.querySelector('#meeting-ends').value = '2030-06-01T11:00';",
            vec![],
        )
        .await
        .unwrap();
    b.fill("#meeting-interpreter", "ro").await;
    b.click("input[name='p-health-hus']").await;
    b.submit("form[action$='/meetings'] button").await;
    assert!(b.text().await.contains("1 June 2030, 10:00"));
    b.check("meeting").await;
    // Minutes with an action item for health-hus, published.
    b.fill("#note0-text", "Discussed the health check").await;
    b.select("#note0-category", "health").await;
    b.fill("#a0-description", "Book the follow-up").await;
    b.select("#a0-category", "health").await;
    b.select("#a0-assignee", "health-hus").await;
    b.submit("button[value='publish']").await;
    assert!(b.text().await.contains("Revision 1"));
    b.check("meeting-minutes").await;
    b.open(&case_path).await;
    b.sign_out().await;

    // The liaison reads health (granted), not the story; approves the plan;
    // the agreed plan gives its agency a task, which it accepts.
    b.sign_in("hanna").await;
    b.open(&case_path).await;
    let text = b.text().await;
    assert!(
        text.contains("Needs a health check.") && !text.contains("The story, told once."),
        "{text}"
    );
    assert!(text.contains("One record is withheld"), "{text}");
    b.submit("form[action$='/plan-approve'] button").await;
    assert!(b.text().await.contains("Version 1 is the agreed plan"));
    b.check("case-liaison").await;
    let mut tries = 0;
    loop {
        b.open("/tasks").await;
        let text = b.text().await;
        if (text.contains("Health check") && text.contains("Book the follow-up")) || tries > 100 {
            break;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.check("tasks-liaison").await;
    b.submit("form[action$='/accept'] button").await;
    assert!(b.text().await.contains("accepted"));
    // Her own calendar link: shown once with its expiry, listed, revoked.
    b.submit("form[action='/calendar-link'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Your new calendar link works until")
            && text.contains("/api/v1/calendar/health-hus.ics?token="),
        "{text}"
    );
    b.check("calendar-link-new").await;
    b.submit("form[action$='/revoke'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("The link was revoked") && text.contains("Revoked"),
        "{text}"
    );
    b.check("calendar-links").await;
    b.sign_out().await;

    // The facilitator withdraws the grant; the auditor moves the timeline
    // back before the withdrawal and sees the earlier matrix.
    b.sign_in("fiona").await;
    b.open(&case_path).await;
    b.fill("input[id^='why-']", "the client asked").await;
    b.submit("form[action$='/withdraw'] button").await;
    b.sign_out().await;
    b.sign_in("aino").await;
    let case_id = case_path.trim_start_matches("/cases/");
    b.open(&format!("/audit?case={case_id}")).await;
    b.check("audit").await;
    let now = b
        .client
        .find(Locator::Css("#matrix-h + p"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(now.contains("Consent version 2"), "{now}");
    // The first timeline entry links to the moment of the grant.
    b.submit("#timeline-h + ol li:first-child a").await;
    let then = b.text().await;
    assert!(then.contains("Consent version 1"), "{then}");
    b.check("audit-earlier").await;
    b.client.close().await.unwrap();
    v.stop().await;
}

/// Signs in over plain HTTP as `user` and returns that session's CSRF
/// token: what an attacker with an account of their own could get.
async fn someone_elses_csrf(base: &str, user: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&format!("{name}=")))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_string()
    };
    let csrf = |page: &str| {
        let at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[at..].split('"').next().unwrap().to_string()
    };
    let r = http.get(format!("{base}/signin")).send().await.unwrap();
    let anonymous = cookie(&r, "vk_csrf");
    let page = r.text().await.unwrap();
    let r = http
        .post(format!("{base}/signin"))
        .header("cookie", &anonymous)
        .form(&[("user", user), ("csrf", &csrf(&page))])
        .send()
        .await
        .unwrap();
    let session = cookie(&r, "vk_session");
    let home = http
        .get(format!("{base}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("action=\"/signout\""), "{home}");
    csrf(&home)
}

/// Sessions as Chromium lives them on http://127.0.0.1 (the demo's
/// address): the cookie's attributes, another session's CSRF token refused,
/// a copied cookie dead after sign-out, and an idle session sending the
/// user to sign in and back to where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_in_chromium() {
    let v = Verkosto::start_with(
        Mode::Embedded,
        &[
            "--demo",
            "--demo-case",
            "off",
            "--session-idle-timeout",
            "4s",
        ],
    )
    .await
    .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::start(&v.base, profile.path()).await;

    // Chromium keeps a Secure cookie over plain HTTP on 127.0.0.1 (a
    // potentially trustworthy origin), so the demo needs no opt-out.
    b.sign_in("fiona").await;
    assert!(b.text().await.contains("Signed in as fiona"));
    let cookie = b.client.get_named_cookie("vk_session").await.unwrap();
    assert_eq!(cookie.secure(), Some(true), "{cookie:?}");
    assert_eq!(cookie.http_only(), Some(true), "{cookie:?}");
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Lax)");
    assert_eq!(cookie.path(), Some("/"));
    // Scripts on the page never see it.
    let seen = b
        .client
        .execute("return document.cookie", vec![])
        .await
        .unwrap();
    assert!(
        !seen.as_str().unwrap_or_default().contains("vk_session"),
        "{seen}"
    );

    // A form carrying another session's CSRF token is refused, and nothing happens.
    let forged = someone_elses_csrf(&v.base, "hanna").await;
    b.open("/").await;
    b.fill("#pseudonym", "FORGED-7").await;
    b.fill("#languages", "fi").await;
    b.client
        .execute(
            "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = arguments[0]);",
            vec![json!(forged)],
        )
        .await
        .unwrap();
    b.submit("form[action='/cases'] button").await;
    let text = b.text().await;
    assert!(text.contains("The form had expired"), "{text}");
    b.open("/").await;
    assert!(!b.text().await.contains("FORGED-7"));

    // Signing out ends the session: the old cookie, put back, opens nothing.
    let old = b.client.get_named_cookie("vk_session").await.unwrap();
    b.sign_out().await;
    assert!(b.text().await.contains("You have signed out"));
    b.client.add_cookie(old).await.unwrap();
    b.open("/").await;
    let text = b.text().await;
    assert!(
        !text.contains("Signed in as") && text.contains("Your session has ended"),
        "{text}"
    );

    // Idle longer than the timeout: the next page is sign-in, saying why,
    // and signing in goes back to that page.
    b.sign_in("fiona").await;
    b.open("/tasks").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    b.open("/tasks").await;
    let text = b.text().await;
    assert!(
        text.contains("Your session ended because you had done nothing for a minute"),
        "{text}"
    );
    b.check("session-ended").await;
    b.select("#user", "fiona").await;
    b.submit("form[action='/signin'] button").await;
    let url = b.client.current_url().await.unwrap();
    assert_eq!(url.path(), "/tasks");
    assert!(b.text().await.contains("Signed in as fiona"));
    b.client.close().await.unwrap();
    v.stop().await;
}

/// Opens a case from the home page; returns its page's path.
async fn open_case(b: &Browser, pseudonym: &str) -> String {
    b.open("/").await;
    b.fill("#pseudonym", pseudonym).await;
    b.fill("#languages", "fi").await;
    b.submit("form[action='/cases'] button").await;
    let path = b.client.current_url().await.unwrap().path().to_string();
    assert!(path.starts_with("/cases/case-"), "{path}");
    path
}

/// Opens `path` until its text holds `wanted` (the auditor's list is a
/// read model, a moment behind the case).
async fn open_until(b: &Browser, path: &str, wanted: &str) -> String {
    for _ in 0..100 {
        b.open(path).await;
        let text = b.text().await;
        if text.contains(wanted) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed {wanted}: {}", b.text().await);
}

/// The end of a case, walked in Finnish (the app's default and most
/// facilitators' language): a facilitator closes a case, places and
/// releases a legal hold, erases it through the confirmation, and sees the
/// erased page; an auditor finds a closed case on the retention list and
/// places a hold. Then the same pages in Swedish and English.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_end_of_a_case_in_chromium() {
    let v = Verkosto::start_demo(Mode::Embedded).await.unwrap();
    let profile = tempfile::tempdir().unwrap();
    let b = Browser::start(&v.base, profile.path()).await;
    b.open("/signin").await;
    b.language("fi").await;
    b.sign_in("fiona").await;
    let erased = open_case(&b, "K-301").await;
    let kept = open_case(&b, "K-302").await;
    let open = open_case(&b, "K-303").await;
    let erased_id = erased.trim_start_matches("/cases/");
    let kept_id = kept.trim_start_matches("/cases/");

    // Closing: the form, then a page naming the case before anything happens.
    b.open(&erased).await;
    assert!(b.text().await.contains("Avoin"));
    b.select("#close-outcome", "goals_met").await;
    b.fill("#close-note", "Asiakas pärjää omillaan.").await;
    b.check_at("closing-open-fi", "#closing-h").await;
    b.submit("form[action$='/close'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Päätetäänkö asiakkuus K-301?")
            && text.contains(&format!("K-301 ({erased_id})"))
            && text.contains("Suunnitelman tavoitteet saavutettiin"),
        "{text}"
    );
    b.check("close-confirm-fi").await;
    b.submit("form[action$='/close'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Päättynyt")
            && text.contains("Suunnitelman tavoitteet saavutettiin")
            && text.contains("Asiakkuus on päättynyt"),
        "{text}"
    );
    assert!(
        !b.has("#record-body").await,
        "a record form on a closed case"
    );
    b.check("case-closed-fi").await;

    // A hold stops erasure, and the page says so; released, erasure is offered.
    b.fill("#hold-reason", "Esitutkinta 5500/R/123/26").await;
    b.submit("form[action$='/legal-hold'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Yksi säilytysvelvoite voimassa")
            && text.contains("Asiakkuutta ei voi poistaa, kun säilytysvelvoite on voimassa"),
        "{text}"
    );
    assert!(!b.has("#erase-reason").await);
    b.check_at("case-on-hold-fi", "#closing-h").await;
    b.submit("form[action*='/holds/'] button").await;
    assert!(b
        .text()
        .await
        .contains("Säilytysvelvoitteita ei ole voimassa."));

    // Erasure: basis and reason, then the page that wants the pseudonym typed.
    b.select("#erase-basis", "data_subject_request").await;
    b.fill("#erase-reason", "Asiakas pyysi tietojensa poistamista")
        .await;
    b.check_at("erase-form-fi", "#closing-h").await;
    b.submit("form[action$='/erase'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Poistetaanko asiakkuus K-301 pysyvästi?")
            && text.contains(&format!("K-301 ({erased_id})"))
            && text.contains("Poistoa ei voi perua."),
        "{text}"
    );
    b.check("erase-confirm-fi").await;
    b.fill("#erase-typed", "K-302").await;
    b.submit("form[action$='/erase'] button").await;
    assert!(b
        .text()
        .await
        .contains("Kirjoittamasi tunnus ei ole K-301. Mitään ei poistettu."));
    b.check("erase-mistyped-fi").await;
    b.fill("#erase-typed", "K-301").await;
    b.submit("form[action$='/erase'] button").await;
    let text = b.text().await;
    assert!(
        text.contains("Asiakkuus on poistettu")
            && text.contains(erased_id)
            && !text.contains("K-301"),
        "{text}"
    );
    b.check("case-erased-fi").await;
    b.open(&erased).await;
    assert!(b.text().await.contains("Asiakkuus on poistettu"));

    // The second case closed, for the auditor.
    b.open(&kept).await;
    b.select("#close-outcome", "transferred").await;
    b.submit("form[action$='/close'] button").await;
    b.submit("form[action$='/close'] button").await;
    b.sign_out().await;

    // The auditor: the retention list from the navigation, a hold placed.
    b.sign_in("aino").await;
    b.submit("nav a[href='/audit/retention']").await;
    let text = open_until(&b, "/audit/retention", kept_id).await;
    assert!(
        text.contains("Ei säilytysvelvoitetta") && !text.contains(erased_id),
        "{text}"
    );
    b.check("retention-fi").await;
    b.fill(
        &format!("#reason-{kept_id}"),
        "Tuomioistuimen määräys 12/2026",
    )
    .await;
    b.submit(&format!(
        "form[action='/audit/retention/{kept_id}/hold'] button"
    ))
    .await;
    open_until(&b, "/audit/retention", "Säilytysvelvoite voimassa").await;
    b.check("retention-on-hold-fi").await;
    for (lang, wanted) in [("sv", "Bevarandekrav gäller"), ("en", "On legal hold")] {
        b.language(lang).await;
        let text = b.text().await;
        assert!(text.contains(wanted), "{lang}: {text}");
        b.check(&format!("retention-{lang}")).await;
    }
    b.sign_out().await;

    // The facilitator's pages in Swedish and English.
    b.sign_in("fiona").await;
    for (lang, state, held, confirm, gone) in [
        (
            "sv",
            "Avslutat",
            "Ett bevarandekrav gäller",
            "Avsluta ärende K-303?",
            "Ärendet har raderats",
        ),
        (
            "en",
            "Closed on",
            "One legal hold in force",
            "Close case K-303?",
            "The case has been erased",
        ),
    ] {
        b.open(&kept).await;
        b.language(lang).await;
        let text = b.text().await;
        assert!(
            text.contains(state) && text.contains(held),
            "{lang}: {text}"
        );
        b.check(&format!("case-closed-{lang}")).await;
        b.check_at(&format!("case-on-hold-{lang}"), "#closing-h")
            .await;
        b.open(&open).await;
        b.check_at(&format!("closing-open-{lang}"), "#closing-h")
            .await;
        b.submit("form[action$='/close'] button").await;
        let text = b.text().await;
        assert!(text.contains(confirm), "{lang}: {text}");
        b.check(&format!("close-confirm-{lang}")).await;
        b.open(&erased).await;
        let text = b.text().await;
        assert!(text.contains(gone), "{lang}: {text}");
        b.check(&format!("case-erased-{lang}")).await;
    }
    b.client.close().await.unwrap();
    v.stop().await;
}
