//! `verkosto audit ...`: auditor tools on the command line.

use crate::config::StoreArgs;

/// A bar of `total` on stderr, drawn only when stderr is a terminal, so
/// that logs and captured output stay as they are.
pub(crate) fn progress_bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template(&format!("[{{bar:25}}] {{pos}}/{{len}} {what}"))
    {
        bar.set_style(style.progress_chars("## "));
    }
    bar
}

/// Leaves the full bar on its own line (when it was drawn at all).
pub(crate) fn finish(bar: &indicatif::ProgressBar) {
    bar.finish();
    if !bar.is_hidden() {
        eprintln!();
    }
}

/// Checks the integrity chain of the whole log, with a progress bar.
pub async fn verify(store: &StoreArgs) -> anyhow::Result<()> {
    let log = verkosto_eventlog::EventLog::connect(&store.url()).await?;
    let total = log.count().await?.max(1) as u64;
    let bar = progress_bar(total, "events");
    let report = log.verify(|checked| bar.set_position(checked)).await?;
    finish(&bar);
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("the log's integrity chain is broken")
    }
}

/// Prints a case's consent matrix at `at` (default now) and the timeline of
/// changes that led to it, replayed from the log.
pub async fn replay(
    store: &StoreArgs,
    case_id: &str,
    at: Option<&str>,
    as_json: bool,
) -> anyhow::Result<()> {
    let at = match at {
        None => verkosto_eventlog::clock::now(),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| anyhow::anyhow!("--at: {e} (use RFC 3339, like 2026-11-22T10:00:00Z)"))?
            .with_timezone(&chrono::Utc),
    };
    let log = verkosto_eventlog::EventLog::connect(&store.url()).await?;
    let replay = verkosto_consent::replay(&log, case_id)
        .await
        .map_err(|p| anyhow::anyhow!("{}", p.detail))?
        .ok_or_else(|| anyhow::anyhow!("no case {case_id} in this log"))?;
    let timeline = replay.timeline(at);
    let members = std::collections::BTreeSet::new();
    let answer = verkosto_consent::matrix_answer(case_id, &members, &replay.state, at);
    if as_json {
        let out = serde_json::json!({ "consent": answer, "timeline": timeline });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "case {case_id} (lead {}), consent version {} as of {}",
        replay.lead_agency, answer["consent_version"], answer["as_of"]
    );
    println!();
    println!("timeline:");
    if timeline.is_empty() {
        println!("  (no consent changes yet)");
    }
    for e in &timeline {
        println!(
            "  v{:<4} {}  {:<24} by {}@{}  {}",
            e.seq,
            e.at,
            e.event_type,
            e.actor.user,
            e.actor.agency,
            summary(&e.data)
        );
    }
    println!();
    let categories = verkosto_policy::Category::ALL;
    print!("{:<28}", "agency");
    for c in categories {
        print!(" {:<10}", c.as_str());
    }
    println!();
    if let Some(rows) = answer["matrix"].as_object() {
        for (agency, row) in rows {
            print!("{agency:<28}");
            for c in categories {
                let cell = &row[c.as_str()];
                let word = cell["basis"].as_str().unwrap_or("?");
                let mark = if cell["allowed"].as_bool() == Some(true) {
                    "+"
                } else {
                    "-"
                };
                print!(" {:<10}", format!("{mark}{word}"));
            }
            println!();
        }
    }
    println!();
    println!("+ allowed, - denied; the word is the basis or the reason");
    Ok(())
}

/// One line about an event's data: who it concerns and which categories.
fn summary(data: &serde_json::Value) -> String {
    let mut parts = Vec::new();
    for key in ["recipient", "agency"] {
        if let Some(v) = data[key].as_str() {
            parts.push(format!("{key}={v}"));
        }
    }
    if let Some(list) = data["categories"].as_array() {
        let words: Vec<&str> = list.iter().filter_map(|v| v.as_str()).collect();
        parts.push(format!("categories={}", words.join(",")));
    }
    for key in [
        "grant_id",
        "refusal_id",
        "basis_id",
        "law_reference",
        "reason",
    ] {
        if let Some(v) = data[key].as_str() {
            parts.push(format!("{key}={v}"));
        }
    }
    parts.join(" ")
}
