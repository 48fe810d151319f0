//! Logs: JSON in production, readable in a terminal.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(json: Option<bool>) {
    let filter = EnvFilter::try_from_env("VERKOSTO_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,async_nats=warn,tower_http=info"));
    let json = json.unwrap_or_else(|| !std::io::stderr().is_terminal());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.try_init()
    };
}
