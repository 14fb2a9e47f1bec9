//! `compactor-testkit`: serves the reference model on a loopback port until Ctrl-C or SIGTERM
//! (D33). The first line on stdout is the base URL.

#![allow(clippy::print_stdout, reason = "the base URL is the binary's output")]

use std::process::ExitCode;

use clap::Parser;
use compactor_testkit::{
    Mode, RecordLimits, ReferenceModelConfig, SealKey, TestServer, TestServerConfig, stop_signal,
};
use tracing_subscriber::EnvFilter;

/// Serve the compactor-testkit reference model on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The loopback port; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The key that seals compaction items; servers sharing a key accept each other's items
    /// (default: the testkit's fixed key).
    #[arg(long, value_name = "KEY")]
    seal_key: Option<String>,
    /// Deterministic filler appended to every assistant reply, in bytes.
    #[arg(long, default_value_t = 0, value_name = "BYTES")]
    reply_padding_bytes: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let model = ReferenceModelConfig {
        seal_key: args.seal_key.map(SealKey::new).unwrap_or_default(),
        reply_padding_bytes: args.reply_padding_bytes,
        ..ReferenceModelConfig::default()
    };
    // Nobody reads this process's records: it keeps none, and stays small however long it runs.
    let config = TestServerConfig {
        mode: Mode::ReferenceModel(model),
        port: args.port,
        record: RecordLimits::none(),
        ..TestServerConfig::default()
    };
    let server = match TestServer::start(config).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!("{}", error_chain(&err));
            return ExitCode::FAILURE;
        }
    };
    // Before the address is out: a client that reads it may signal at once.
    let stop = stop_signal();
    println!("{}", server.base_url());
    stop.await;
    match server.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{}", error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
