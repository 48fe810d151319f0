//! `verkosto`: the one binary. Parses settings and hands over to [`verkosto::app`].

use clap::Parser;
use verkosto::config::{AdminCommand, AuditCommand, Cli, Command, GuardCommand, KeysCommand};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One line that says what went wrong and what to do; no backtrace.
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("verkosto: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(mut cli: Cli) -> anyhow::Result<()> {
    cli.command.load_secret_files()?;
    match cli.command {
        Command::Serve(args) => {
            let telemetry = verkosto::telemetry::init_with_traces(
                args.log_json,
                args.otlp_endpoint.as_deref(),
                &args.service_name(),
            )?;
            let served = verkosto::app::serve(*args).await;
            // The exporter waits on its own thread; the last spans go now.
            tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
            served
        }
        Command::Audit { store, command } => {
            verkosto::telemetry::init(Some(false));
            match command {
                AuditCommand::Verify => verkosto::audit::verify(&store).await,
                AuditCommand::Replay { case_id, at, json } => {
                    verkosto::audit::replay(&store, &case_id, at.as_deref(), json).await
                }
            }
        }
        Command::Admin { store, command } => {
            verkosto::telemetry::init(Some(false));
            match command {
                AdminCommand::Bootstrap(args) => verkosto::admin::bootstrap(&store, &args).await,
            }
        }
        Command::Guard { store, command } => {
            verkosto::telemetry::init(Some(false));
            match command {
                GuardCommand::Unreadable => verkosto::guard_cli::unreadable(&store).await,
                GuardCommand::Resolve {
                    event,
                    reason,
                    operator,
                } => verkosto::guard_cli::resolve(&store, &event, &reason, &operator).await,
            }
        }
        Command::Keys { store, command } => {
            verkosto::telemetry::init(Some(false));
            match command {
                KeysCommand::Rotate => verkosto::keys_cli::rotate(&store).await,
            }
        }
        Command::Backup { store, dir } => {
            verkosto::telemetry::init(Some(false));
            verkosto::keys_cli::backup(&store, &dir).await
        }
        Command::Restore { store, dir } => {
            verkosto::telemetry::init(Some(false));
            verkosto::keys_cli::restore(&store, &dir).await
        }
        Command::Rebuild { store, projections } => {
            verkosto::telemetry::init(Some(false));
            verkosto::rebuild::run(&store, &projections).await
        }
        Command::Proto { write, dir } => verkosto::proto::run(&dir, write),
    }
}
