//! The binary's own contract: the committed `proto/` matches the code, the
//! audit command checks the log, and SIGTERM shuts down cleanly.

use std::time::Duration;

use verkosto_testkit::ChildProcess;

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn committed_proto_matches_the_code() {
    let stale = verkosto::proto::stale_files(&workspace_root().join("proto"));
    assert!(
        stale.is_empty(),
        "proto/ is stale: {stale:?}; run `just proto`"
    );
}

#[tokio::test]
async fn serve_answers_health_checks_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = verkosto_testkit::verkosto();
    cmd.args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path());
    let mut child = ChildProcess::spawn(cmd).unwrap();
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(60))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/metrics"] {
        let r = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("verkosto_log_head_position"), "{metrics}");
    // Demo data is there: six agency kinds and users for every role.
    let token: serde_json::Value = http
        .post(format!("http://{addr}/api/v1/dev/token"))
        .json(&serde_json::json!({ "user": "fiona" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(token["roles"], serde_json::json!(["facilitator"]));
    let agencies: serde_json::Value = http
        .get(format!("http://{addr}/api/v1/agencies"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(agencies["agencies"].as_array().unwrap().len() >= 6);
    // And one worked example case, which the facilitator sees.
    let cases: serde_json::Value = http
        .get(format!("http://{addr}/api/v1/cases"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cases["cases"][0]["pseudonym"], "A-1027", "{cases}");
    // The web app opens at the root: to the sign-in page, with the demo users.
    let page = http.get(format!("http://{addr}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.url().path() == "/signin");
    let html = page.text().await.unwrap();
    assert!(html.contains("fiona") && html.contains("<html"), "{html}");

    let status = child.terminate().await.unwrap();
    assert!(status.success(), "exit status {status}");

    // Every read model rebuilds from the log, with the server gone.
    let out = verkosto_testkit::verkosto()
        .args(["rebuild", "all", "--data-dir"])
        .arg(dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rebuilt up to") && text.contains("cases") && text.contains("guard-all"),
        "{text}"
    );

    // The audit command checks the same store, after the server is gone.
    let out = verkosto_testkit::verkosto()
        .args(["audit", "--data-dir"])
        .arg(dir.path())
        .arg("verify")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["events_checked"].as_u64().unwrap() >= 14);
}
