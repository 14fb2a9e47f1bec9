//! `compactor serve`: the embedded reference model on a loopback port until Ctrl-C or SIGTERM.

use clap::Args;
use compactor_testkit::{
    Mode, ReferenceModelConfig, SealKey, TestServer, TestServerConfig, stop_signal,
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
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), CliError> {
    let model = ReferenceModelConfig {
        seal_key: args.seal_key.map(SealKey::new).unwrap_or_default(),
        ..ReferenceModelConfig::default()
    };
    let config = TestServerConfig {
        mode: Mode::ReferenceModel(model),
        port: args.port,
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
