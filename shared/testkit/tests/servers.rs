//! The testkit's servers are real and behave as the crash tests need.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use verkosto_testkit::{free_port, workspace_binary, ChildProcess, NatsServer, PgServer};

/// A bare NATS protocol client: enough for INFO and JetStream API requests.
struct RawNats {
    reader: BufReader<TcpStream>,
    info: String,
}

impl RawNats {
    async fn connect(url: &str) -> RawNats {
        let addr = url.strip_prefix("nats://").unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut info = String::new();
        reader.read_line(&mut info).await.unwrap();
        assert!(info.starts_with("INFO "), "first line: {info:?}");
        // As the operator of `deploy/nats/users.conf`: no one gets in without a user.
        let connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"headers\":true,\
             \"user\":\"operator\",\"pass\":\"{}\"}}\r\nSUB _INBOX.t 1\r\n",
            verkosto_testkit::nats_password("operator")
        );
        reader
            .get_mut()
            .write_all(connect.as_bytes())
            .await
            .unwrap();
        RawNats { reader, info }
    }

    /// Publishes `payload` to `subject` and returns the reply's payload.
    async fn request(&mut self, subject: &str, payload: &str) -> String {
        let msg = format!("PUB {subject} _INBOX.t {}\r\n{payload}\r\n", payload.len());
        self.reader
            .get_mut()
            .write_all(msg.as_bytes())
            .await
            .unwrap();
        let read = async {
            loop {
                let mut line = String::new();
                assert!(
                    self.reader.read_line(&mut line).await.unwrap() > 0,
                    "closed"
                );
                let line = line.trim_end();
                if line == "PING" {
                    self.reader.get_mut().write_all(b"PONG\r\n").await.unwrap();
                } else if let Some(rest) = line.strip_prefix("MSG ") {
                    let len: usize = rest.rsplit(' ').next().unwrap().parse().unwrap();
                    let mut body = vec![0; len + 2];
                    self.reader.read_exact(&mut body).await.unwrap();
                    body.truncate(len);
                    return String::from_utf8(body).unwrap();
                } else {
                    assert!(!line.starts_with("-ERR"), "{line}");
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("a reply within 10 s")
    }
}

#[tokio::test]
async fn nats_server_has_jetstream() {
    let nats = NatsServer::start().await.unwrap();
    assert!(nats.url().starts_with("nats://127.0.0.1:"));
    let client = RawNats::connect(&nats.url()).await;
    assert!(
        client.info.contains("\"jetstream\":true"),
        "INFO: {}",
        client.info
    );
}

#[tokio::test]
async fn nats_restart_keeps_the_store_and_restart_wiped_loses_it() {
    let mut nats = NatsServer::start().await.unwrap();
    let url = nats.url();
    let mut client = RawNats::connect(&url).await;
    let created = client
        .request(
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","subjects":["t.>"],"storage":"file"}"#,
        )
        .await;
    assert!(!created.contains("\"error\""), "{created}");
    let acked = client.request("t.one", "hello").await;
    assert!(acked.contains("\"seq\":1"), "{acked}");
    drop(client);

    nats.kill9().unwrap();
    assert!(TcpStream::connect(url.strip_prefix("nats://").unwrap())
        .await
        .is_err());
    nats.restart().await.unwrap();
    assert_eq!(nats.url(), url, "same port");
    let info = RawNats::connect(&url)
        .await
        .request("$JS.API.STREAM.INFO.T", "")
        .await;
    assert!(
        info.contains("\"messages\":1"),
        "kept after kill -9: {info}"
    );

    nats.restart_wiped().await.unwrap();
    assert_eq!(nats.url(), url, "same port");
    let mut client = RawNats::connect(&url).await;
    assert!(client.info.contains("\"jetstream\":true"));
    let info = client.request("$JS.API.STREAM.INFO.T", "").await;
    assert!(
        info.contains("10059"),
        "stream not found after wipe: {info}"
    );
}

#[tokio::test]
async fn shared_pg_gives_distinct_connectable_databases() {
    let pg = PgServer::shared().await;
    let a = pg.fresh_database().await.unwrap();
    let b = pg.fresh_database().await.unwrap();
    assert_ne!(a, b);
    for url in [&a, &b] {
        let name = url.rsplit('/').next().unwrap();
        assert!(name.starts_with("verkosto_test_"), "{url}");
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(url)
            .await
            .unwrap();
        let current: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(current, name);
        // Empty: a table made in one is not in the other.
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(tables, 0, "{url}");
        sqlx::query("CREATE TABLE mine (x int)")
            .execute(&pool)
            .await
            .unwrap();
        let fsync: String = sqlx::query_scalar("SHOW fsync")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(fsync, "on");
        pool.close().await;
    }
}

#[tokio::test]
async fn private_pg_survives_kill9_and_restart() {
    let mut pg = PgServer::start_private().await.unwrap();
    let url = pg.fresh_database().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t SELECT generate_series(1, 100)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    pg.kill9().unwrap();
    let down = PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(2))
        .connect(&url)
        .await;
    assert!(down.is_err(), "the server is down after kill9");

    pg.restart().await.unwrap();
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 100, "committed rows survive a crash");
    pool.close().await;

    // Again, to be sure a recovered cluster can crash again.
    pg.kill9().unwrap();
    pg.restart().await.unwrap();
    let other = pg.fresh_database().await.unwrap();
    assert_ne!(other, url);
}

#[tokio::test]
async fn child_process_reports_its_address_and_logs_everything() {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.args([
        "-c",
        "echo starting; echo oops >&2; echo 'listening on 127.0.0.1:4321'; exec sleep 60",
    ]);
    let mut child = ChildProcess::spawn(cmd).unwrap();
    assert!(child.pid() > 0);
    let addr = child
        .wait_for_line("listening on ", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(addr, "127.0.0.1:4321");
    let log = std::fs::read_to_string(child.log_path()).unwrap();
    assert!(log.contains("starting") && log.contains("oops"), "{log}");
    let pid = i32::try_from(child.pid()).unwrap();
    child.kill9().await.unwrap();
    // SAFETY: signal 0 only checks whether the (reaped) pid exists.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "killed and reaped");
    child.kill9().await.unwrap();
}

#[tokio::test]
async fn child_process_that_exits_early_is_an_error_with_its_log() {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.args(["-c", "echo 'bad config' >&2; exit 3"]);
    let mut child = ChildProcess::spawn(cmd).unwrap();
    let err = child
        .wait_for_line("listening on ", Duration::from_secs(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad config") && err.contains('3'), "{err}");
}

#[test]
fn free_ports_are_bindable() {
    let port = free_port();
    std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
}

#[test]
fn workspace_binary_is_in_this_profile_dir() {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = workspace_binary("verkosto");
    assert_eq!(bin.file_name().unwrap(), "verkosto");
    assert_eq!(
        bin.parent().unwrap().file_name(),
        profile_dir.file_name(),
        "{}",
        bin.display()
    );
}
