//! `verkosto rebuild`: drop read models and replay the log into them.
//! Each projection's state and checkpoint are reset in one transaction,
//! then the log is fed through them all in commit order, as a running
//! consumer would, reading it once for all of them; a JetStream consumer
//! that resumes later skips what is done.
//!
//! The read models are the modules' (`crate::app::modules`) and the consent
//! guard's feed of each target that runs one. A module's reactions (tasks'
//! `tasks-reactions`) are not read models: they append, and are never
//! rebuilt.

use std::sync::Arc;

use clap::ValueEnum as _;
use verkosto_eventlog::{EventLog, Projection};

use crate::app::{self, guard_consumer, runs_guard, Settings};
use crate::config::{StoreArgs, Target};

/// Every read model a target runs: each module's, in the order the modules
/// start, then the guard's feed of each target that runs one.
pub(crate) fn all() -> Vec<Arc<dyn Projection>> {
    let mut all: Vec<Arc<dyn Projection>> = app::modules(Settings::default())
        .into_iter()
        .flat_map(|m| m.projections)
        .collect();
    for &target in Target::value_variants() {
        if runs_guard(target) {
            all.push(Arc::new(verkosto_guard::GuardFeed::new(guard_consumer(
                target,
            ))));
        }
    }
    all
}

/// The projections this binary knows, by name.
pub fn projection(name: &str) -> Option<Arc<dyn Projection>> {
    if let Some(known) = all().into_iter().find(|p| p.name() == name) {
        return Some(known);
    }
    // A guard feed of another name (a test's).
    name.starts_with("guard-").then(|| {
        // The name must outlive the process's projection registry.
        let name: &'static str = Box::leak(name.to_string().into_boxed_str());
        Arc::new(verkosto_guard::GuardFeed::new(name)) as Arc<dyn Projection>
    })
}

pub async fn run(store: &StoreArgs, names: &[String]) -> anyhow::Result<()> {
    let log = EventLog::connect(&store.url()).await?;
    // Every read model's tables exist, whichever targets ran on this store.
    for module in app::modules(Settings::default()) {
        if !module.projections.is_empty() {
            module.migrate(log.db()).await?;
        }
    }
    verkosto_guard::migrate(log.db()).await?;
    let names: Vec<String> = if names.iter().any(|n| n == "all") {
        all().iter().map(|p| p.name().to_string()).collect()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::app::{modules, modules_of, target_name};

    /// What the process of `target` runs from the log: its modules' read
    /// models and reactions, and the guard's feed.
    fn consumers(target: Target) -> Vec<&'static str> {
        let mut names = Vec::new();
        for m in modules_of(target, Settings::default()) {
            names.extend(m.projections.iter().map(|p| p.name()));
            names.extend(m.reactions.iter().map(|r| r.name));
        }
        if runs_guard(target) {
            names.push(guard_consumer(target));
        }
        names
    }

    #[test]
    fn every_projection_and_reaction_has_a_name_of_its_own() {
        let mut seen = BTreeSet::new();
        for m in modules(Settings::default()) {
            for name in m
                .projections
                .iter()
                .map(|p| p.name())
                .chain(m.reactions.iter().map(|r| r.name))
            {
                assert!(seen.insert(name), "{name} twice (again in {})", m.name);
            }
        }
        for &target in Target::value_variants() {
            let guard = guard_consumer(target);
            assert!(seen.insert(guard), "{guard} twice");
        }
    }

    #[test]
    fn every_target_but_the_relay_runs_a_module_and_every_module_runs() {
        let targets: Vec<String> = Target::value_variants()
            .iter()
            .map(|&t| target_name(t))
            .collect();
        for &target in Target::value_variants() {
            let count = modules_of(target, Settings::default()).len();
            match target {
                Target::Relay => assert_eq!(count, 0, "the relay runs no service"),
                _ => assert!(count > 0, "{target:?} runs no module"),
            }
        }
        for m in modules(Settings::default()) {
            assert!(m.runs_in("all"), "{} is missing from --target all", m.name);
            for t in m.targets {
                assert!(targets.iter().any(|n| n == t), "{}: no target {t}", m.name);
            }
        }
    }

    #[test]
    fn rebuild_all_names_the_read_models_the_targets_run() {
        let rebuilt: Vec<&str> = all().iter().map(|p| p.name()).collect();
        // What `rebuild all` named before the modules said it themselves.
        assert_eq!(
            rebuilt,
            [
                "directory",
                "cases",
                "cases-agencies",
                "cases-retention",
                "meetings",
                "tasks",
                "guard-all",
                "guard-cases",
                "guard-consent",
                "guard-meetings",
                "guard-tasks",
            ]
        );
        let run: BTreeSet<&str> = Target::value_variants()
            .iter()
            .flat_map(|&t| consumers(t))
            .collect();
        let reactions: BTreeSet<&str> = modules(Settings::default())
            .iter()
            .flat_map(|m| m.reactions.iter().map(|r| r.name).collect::<Vec<_>>())
            .collect();
        let rebuilt: BTreeSet<&str> = rebuilt.into_iter().collect();
        assert_eq!(
            rebuilt,
            run.difference(&reactions).copied().collect::<BTreeSet<_>>()
        );
        for name in &rebuilt {
            assert!(projection(name).is_some(), "{name}");
        }
        assert!(projection("guard-web").is_some());
        assert!(projection("tasks-reactions").is_none());
    }
}
