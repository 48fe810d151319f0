//! Scale-out: two processes of every service (and two relays) on one
//! PostgreSQL log and one JetStream stream. Under a load spread over both
//! processes of each service, every event is handled exactly once per
//! consumer (the processes' applied counts add up to the log), no task
//! exists twice, one relay leads, and when the leader is killed the other
//! takes over with the stream still equal to the log.

use std::time::Duration;

use verkosto_e2e::scaleout::{self, check_once_each, gauge, run_load, wait_for_consumers};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_per_service_handle_each_event_once() {
    let mut split = scaleout::start(2).await.unwrap();
    let log = verkosto_eventlog::EventLog::connect(&split.database_url)
        .await
        .unwrap();

    let report = run_load(&split, 24, 8).await.unwrap();
    println!(
        "{} commands in {:.1} s ({:.0}/s) over two processes per service",
        report.commands,
        report.elapsed.as_secs_f64(),
        report.per_second()
    );
    let checked = check_once_each(&split, &log, report.tasks_expected)
        .await
        .unwrap();
    println!("{checked:?}");

    // Exactly one relay leads; kill it, and the standby takes over.
    let relays = split.bases("relay");
    let mut leaders = Vec::new();
    for base in &relays {
        if gauge(base, "verkosto_relay_leading").await.unwrap() == Some(1) {
            leaders.push(base.clone());
        }
    }
    assert_eq!(
        leaders.len(),
        1,
        "one relay leads: {leaders:?} of {relays:?}"
    );
    split.kill9_at(&leaders[0]).await.unwrap();
    let more = run_load(&split, 4, 4).await.unwrap();
    let checked = check_once_each(&split, &log, report.tasks_expected + more.tasks_expected)
        .await
        .unwrap();
    println!("after the relay's failover: {checked:?}");
    split.stop().await;
}

/// A read model rebuilt from the log (as `verkosto rebuild` does) has a
/// checkpoint that knows no stream sequence; the running process must pick
/// the stream up again from the start and keep following it, even when that
/// takes many batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuilt_read_model_keeps_following_the_stream() {
    let split = scaleout::start(1).await.unwrap();
    let log = verkosto_eventlog::EventLog::connect(&split.database_url)
        .await
        .unwrap();
    // Enough events for several batches (a batch is at most 500).
    let before = run_load(&split, 40, 8).await.unwrap();
    use verkosto_eventlog::Projection;
    let projection = verkosto_tasks::TasksProjection;
    log.reset_projection(&projection).await.unwrap();
    log.catch_up(&projection).await.unwrap();
    let after = run_load(&split, 4, 4).await.unwrap();
    // The tasks made after the rebuild reach the rebuilt read model.
    let want = (before.tasks_expected + after.tasks_expected) as i64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let tasks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tasks_tasks")
            .fetch_one(log.db().reader())
            .await
            .unwrap();
        if tasks == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rebuilt read model stopped at {tasks} of {want} tasks"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let consumers = [projection.name().to_string()];
    wait_for_consumers(&log, &consumers, Duration::from_secs(60))
        .await
        .unwrap();
    split.stop().await;
}
