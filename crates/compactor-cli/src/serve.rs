//! `compactor serve`: the embedded reference model on a loopback port until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use compactor_testkit::{
    ContextWindows, Mode, RecordLimits, ReferenceModelConfig, SealKey, TestServer,
    TestServerConfig, stop_signal,
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
    /// Enforce a context window: `TOKENS` for every model, or `MODEL=TOKENS` for one (repeat
    /// for several). A request whose input is over its model's window fails as the API fails
    /// it: HTTP 400 `context_length_exceeded`, or `response.failed` on a WebSocket
    /// [default: no window].
    #[arg(long, value_name = "[MODEL=]TOKENS")]
    context_window: Vec<WindowArg>,
    /// Append every HTTP request, WebSocket handshake and WebSocket message received to FILE,
    /// one JSON object per line, with credentials redacted.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
}

/// One `--context-window` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WindowArg {
    model: Option<String>,
    tokens: u64,
}

impl FromStr for WindowArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (model, tokens) = match text.rsplit_once('=') {
            Some((model, tokens)) if !model.is_empty() => (Some(model.to_owned()), tokens),
            Some(_) => return Err("the model before `=` is empty".to_owned()),
            None => (None, text),
        };
        let tokens: u64 = tokens
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{tokens:?} is not a number of tokens"))?;
        if tokens == 0 {
            return Err("a window of 0 tokens refuses everything".to_owned());
        }
        Ok(Self { model, tokens })
    }
}

/// The windows the flags set, the later flag winning for the same model.
pub(crate) fn context_windows(args: &[WindowArg]) -> ContextWindows {
    let every = args.iter().rev().find(|arg| arg.model.is_none()).map(|arg| arg.tokens);
    let mut windows = every.map(ContextWindows::every_model).unwrap_or_default();
    for arg in args {
        if let Some(model) = &arg.model {
            windows = windows.with_model(model.clone(), arg.tokens);
        }
    }
    windows
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), CliError> {
    let model = ReferenceModelConfig {
        seal_key: args.seal_key.map(SealKey::new).unwrap_or_default(),
        context_windows: context_windows(&args.context_window),
        ..ReferenceModelConfig::default()
    };
    // It serves until stopped, so it records nothing in memory: memory stays flat however many
    // requests come (D65 in docs/decisions.md); `--record` writes to a file instead (D112).
    let config = TestServerConfig {
        mode: Mode::ReferenceModel(model),
        port: args.port,
        record: RecordLimits::none(),
        header_read_timeout: Duration::from_secs(args.header_timeout),
        body_read_timeout: Duration::from_secs(args.body_timeout),
        record_traffic: args.record.clone(),
        ..TestServerConfig::default()
    };
    let server = TestServer::start(config).await.map_err(|err| {
        CliError::other(err).context(format!("cannot serve on 127.0.0.1:{}", args.port))
    })?;
    // The first stdout line is the base URL, for scripts; the rest is for people.
    outln!("{}", server.base_url());
    // Before the address is out: a client that reads it may signal at once.
    let stop = stop_signal();
    eprintln!("compactor serve: the reference model on one port");
    eprintln!("  HTTP + SSE   POST {}", server.responses_url());
    eprintln!("  WebSocket    {}", server.ws_url());
    eprintln!("  compact v1   POST {}", server.compact_url());
    for arg in &args.context_window {
        match &arg.model {
            Some(model) => eprintln!("  window       {} tokens for {model}", arg.tokens),
            None => eprintln!("  window       {} tokens for every model", arg.tokens),
        }
    }
    if let Some(path) = &args.record {
        eprintln!("  recording to {} (credentials redacted)", path.display());
    }
    eprintln!("Stop with Ctrl-C.");
    stop.await;
    eprintln!("stopping");
    server.shutdown().await.map_err(|err| CliError::other(err).context("unclean shutdown"))
}

#[cfg(test)]
mod tests;
