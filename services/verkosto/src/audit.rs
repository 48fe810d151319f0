//! `verkosto audit ...`: auditor tools on the command line.

use std::io::Write;

use crate::config::StoreArgs;

/// Checks the integrity chain of the whole log, with a progress line.
pub async fn verify(store: &StoreArgs) -> anyhow::Result<()> {
    let log = verkosto_eventlog::EventLog::connect(&store.url()).await?;
    let total = log.count().await?.max(1) as u64;
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = log
        .verify(|checked| {
            if interactive {
                let pct = checked * 100 / total;
                let bar = "#".repeat((pct / 4) as usize);
                eprint!("\r[{bar:<25}] {checked}/{total} events");
                let _ = std::io::stderr().flush();
            }
        })
        .await?;
    if interactive {
        eprintln!();
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("the log's integrity chain is broken")
    }
}
