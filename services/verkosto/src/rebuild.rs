//! `verkosto rebuild`: drop read models and replay the log into them.
//! Each projection's state and checkpoint are reset in one transaction,
//! then the log is fed through them all in commit order, as a running
//! consumer would, reading it once for all of them; a JetStream consumer
//! that resumes later skips what is done.

use std::sync::Arc;

use verkosto_eventlog::{EventLog, Projection};

use crate::config::StoreArgs;

/// The projections this binary knows, by name.
pub fn projection(name: &str) -> Option<Arc<dyn Projection>> {
    Some(match name {
        "directory" => Arc::new(verkosto_directory::DirectoryProjection),
        "cases" => Arc::new(verkosto_cases::CasesProjection),
        "cases-agencies" => Arc::new(verkosto_cases::AgenciesProjection),
        "meetings" => Arc::new(verkosto_meetings::MeetingsProjection),
        "tasks" => Arc::new(verkosto_tasks::TasksProjection),
        guard if guard.starts_with("guard-") => {
            // The name must outlive the process's projection registry.
            let name: &'static str = Box::leak(guard.to_string().into_boxed_str());
            Arc::new(verkosto_guard::GuardFeed::new(name))
        }
        _ => return None,
    })
}

const ALL: [&str; 10] = [
    "directory",
    "cases",
    "cases-agencies",
    "meetings",
    "tasks",
    "guard-all",
    "guard-cases",
    "guard-consent",
    "guard-meetings",
    "guard-tasks",
];

pub async fn run(store: &StoreArgs, names: &[String]) -> anyhow::Result<()> {
    let log = EventLog::connect(&store.url()).await?;
    // Every read model's tables exist, whichever targets ran on this store.
    verkosto_directory::migrate(log.db()).await?;
    verkosto_guard::migrate(log.db()).await?;
    verkosto_cases::migrate(log.db()).await?;
    verkosto_meetings::migrate(log.db()).await?;
    verkosto_tasks::migrate(log.db()).await?;
    let names: Vec<String> = if names.iter().any(|n| n == "all") {
        ALL.iter().map(|n| n.to_string()).collect()
    } else {
        names.to_vec()
    };
    let projections = names
        .iter()
        .map(|name| projection(name).ok_or_else(|| anyhow::anyhow!("no projection called {name}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let started = std::time::Instant::now();
    for projection in &projections {
        log.reset_projection(projection.as_ref()).await?;
    }
    // Progress on a terminal: the slowest projection's checkpoint against
    // the log's head, read beside the replay (nothing is read when hidden).
    let head = log.head_position().await?.max(0) as u64;
    let bar = crate::audit::progress_bar(head, "events");
    let watcher = (!bar.is_hidden()).then(|| {
        let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
        tokio::spawn(watch(log.clone(), names, bar.clone()))
    });
    // One read of the log feeds them all.
    let at = log.catch_up_together(&projections).await;
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    let at = at?;
    bar.set_position(head);
    crate::audit::finish(&bar);
    println!(
        "{}: rebuilt up to {at} in {:.1} s",
        names.join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Moves the bar to the slowest of the named checkpoints, five times a second.
async fn watch(log: EventLog, names: Vec<&'static str>, bar: indicatif::ProgressBar) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let checkpoints: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, position FROM checkpoints")
                .fetch_all(log.db().reader())
                .await
                .unwrap_or_default();
        let slowest = names
            .iter()
            .map(|name| {
                checkpoints
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, position)| *position)
            })
            .min()
            .unwrap_or(0);
        bar.set_position(slowest.max(0) as u64);
    }
}
