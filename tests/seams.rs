//! Failures at the seams: a full disk under the embedded store.
//!
//! The data directory sits on its own small tmpfs. With the disk filled,
//! writes answer 503 problems with Retry-After, and nothing is acknowledged
//! that is not in the log; once space is freed, writes succeed again.
//! Needs `mount -t tmpfs` (root in a container that allows it); without it
//! the test says so and passes nothing off as tested.

use std::io::Write;
use std::path::{Path, PathBuf};

use verkosto_e2e::{agency, answer, serve_args, DEV_SEED};

/// A small tmpfs, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .ok()?;
        status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if file
                .write_all(&chunk)
                .and_then(|_| file.sync_all())
                .is_err()
            {
                break;
            }
        }
        // Take the last few bytes too.
        while file.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_503_acknowledges_nothing_and_recovers() {
    // A test of a full disk that cannot fill a disk fails; it does not skip.
    let disk = SmallDisk::mount("16m")
        .expect("a 16 MiB tmpfs to fill (needs root and mount rights, as the test command runs)");
    let data = disk.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let args = serve_args(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--dev-key-seed",
        DEV_SEED,
        "--dev-auth",
        "on",
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = verkosto::app::start(args, listener).await.unwrap();
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let token = {
        let r = http
            .post(format!("{base}/api/v1/dev/token"))
            .json(&serde_json::json!({ "user": "admin" }))
            .send()
            .await
            .unwrap();
        answer(r).await.unwrap().1["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let register = |id: String| {
        let http = http.clone();
        let url = format!("{base}/api/v1/agencies");
        let token = token.clone();
        async move {
            let r = http
                .post(url)
                .bearer_auth(token)
                .json(&agency(&id, "ngo"))
                .send()
                .await
                .unwrap();
            let retry_after = r.headers().get("retry-after").cloned();
            let (status, body) = answer(r).await.unwrap();
            (status, body, retry_after)
        }
    };
    assert_eq!(register("before-full".into()).await.0, 201);

    let filler = disk.fill();
    // Keep writing until the store has no room left: each write is either
    // acknowledged (201, it fitted in pages SQLite already had) or refused
    // with 503; never a 500, never a hang.
    let mut acknowledged = vec!["before-full".to_string()];
    let mut refused = Vec::new();
    for i in 0..400 {
        let id = format!("full-{i}");
        let (status, body, retry_after) = register(id.clone()).await;
        match status {
            201 => acknowledged.push(id),
            503 => {
                assert!(retry_after.is_some(), "503 without Retry-After: {body}");
                assert_eq!(body["status"], 503, "{body}");
                refused.push(id);
                if refused.len() >= 5 {
                    break;
                }
            }
            other => panic!("{id}: {other} {body}"),
        }
    }
    assert!(!refused.is_empty(), "the disk never filled");

    // Space returns: writes succeed again (allow the pool a moment to
    // recover its connections, by retrying while it still answers 503).
    std::fs::remove_file(filler).unwrap();
    let mut recovered = None;
    for attempt in 0..100 {
        let id = format!("after-{attempt}");
        let (status, body, _) = register(id.clone()).await;
        match status {
            201 => {
                acknowledged.push(id);
                recovered = Some(attempt);
                break;
            }
            503 => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            other => panic!("{id}: {other} {body}"),
        }
    }
    let recovered = recovered.expect("writes never recovered after space was freed");

    // Every acknowledged write is in the log; no refused one is.
    let events = verkosto_e2e::read_everything(&running.log).await.unwrap();
    let registered: Vec<&str> = events
        .iter()
        .filter(|e| e.event_type == "AgencyRegistered")
        .map(|e| e.stream_id.as_str())
        .collect();
    for id in &acknowledged {
        assert!(
            registered.contains(&id.as_str()),
            "{id} acknowledged but not in the log"
        );
    }
    for id in &refused {
        assert!(
            !registered.contains(&id.as_str()),
            "{id} refused but in the log"
        );
    }
    println!(
        "disk full: {} writes acknowledged while filling, {} refused with 503, recovered after {} retries",
        acknowledged.len() - 2,
        refused.len(),
        recovered
    );
    running.stop().await;
    drop(disk);
}
