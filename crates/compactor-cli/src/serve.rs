//! `compactor serve`: the embedded reference model on a loopback port until Ctrl-C or SIGTERM.

use std::time::Duration;

use clap::Args;
use compactor_testkit::{
    Mode, RecordLimits, ReferenceModelConfig, SealKey, TestServer, TestServerConfig, stop_signal,
};

use crate::error::CliError;

/// `compactor serve` flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The key that seals compaction items; servers sharing a key accept each other's items
    /// [default: the testkit's fixed key, which the demo and `compact` use too].
    #[arg(long, value_name = "KEY")]
    seal_key: Option<String>,
    /// Seconds a client may take to send a request's head, or to send the next one on an idle
    /// connection, before it is disconnected.
    #[arg(long, default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a client may take to send a request's body before it gets a 408 and is
    /// disconnected.
    #[arg(long, default_value_t = 60, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), CliError> {
    let model = ReferenceModelConfig {
        seal_key: args.seal_key.map(SealKey::new).unwrap_or_default(),
        ..ReferenceModelConfig::default()
    };
    // It serves until stopped, so it records nothing: memory stays flat however many requests
    // come (D65 in docs/decisions.md).
    let config = TestServerConfig {
        mode: Mode::ReferenceModel(model),
        port: args.port,
        record: RecordLimits::none(),
        header_read_timeout: Duration::from_secs(args.header_timeout),
        body_read_timeout: Duration::from_secs(args.body_timeout),
        ..TestServerConfig::default()
    };
    let server = TestServer::start(config).await.map_err(|err| {
        CliError::other(err).context(format!("cannot serve on 127.0.0.1:{}", args.port))
    })?;
    // The first stdout line is the base URL, for scripts; the rest is for people.
    outln!("{}", server.base_url());
    eprintln!("compactor serve: the reference model on one port");
    eprintln!("  HTTP + SSE   POST {}", server.responses_url());
    eprintln!("  WebSocket    {}", server.ws_url());
    eprintln!("  compact v1   POST {}", server.compact_url());
    eprintln!("Stop with Ctrl-C.");
    stop_signal().await;
    eprintln!("stopping");
    server.shutdown().await.map_err(|err| CliError::other(err).context("unclean shutdown"))
}
