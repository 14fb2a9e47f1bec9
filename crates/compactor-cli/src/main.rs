//! `compactor`: a scripted demo session on the embedded provider, and `compact`, `resume`,
//! `show`, `pin` and `serve` for saved sessions and a user's own tests.
//!
//! The binary wires `compactor-core` sessions to either the embedded reference model of
//! `compactor-testkit` (the default: no key, no network) or a real Responses endpoint given with
//! `--base-url` or `compactor.toml`. Settings are layered: the command's defaults, then the
//! config file, then flags.

#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line program")]

/// `println!` that ignores a closed stdout (`compactor resume ROLLOUT | head` must not panic).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed stdout.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod compact;
mod demo;
mod drive;
mod error;
mod format;
mod interrupt;
mod pin;
mod receipt;
mod resume;
mod rollout;
mod serve;
mod settings;
mod show;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::error::{CliError, EXIT_CODES_HELP};

/// Context compaction for LLM agent sessions: a demo, and tools for saved sessions.
///
/// With no --base-url (and none in the config file), commands that talk to a model start the
/// embedded reference model on 127.0.0.1: no key and no network needed.
#[derive(Debug, Parser)]
#[command(name = "compactor", version, about, long_about, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a scripted multi-turn coding session that auto-compacts, and show what happened.
    ///
    /// Starts the embedded reference model on 127.0.0.1 (unless --base-url is given), runs
    /// --turns turns whose tool outputs are large enough to fill a --window token window several
    /// times, compacts inline whenever the context reaches the auto-compact limit, compacts once
    /// by hand before the last turn, and writes the rollout, trace bundles, analytics and a
    /// summary into --out.
    #[command(after_help = EXIT_CODES_HELP)]
    Demo(demo::DemoArgs),
    /// Compact a saved session and append the result to its rollout.
    #[command(after_help = EXIT_CODES_HELP)]
    Compact(compact::CompactArgs),
    /// Print the history a saved session resumes with, one item per line.
    #[command(after_help = EXIT_CODES_HELP)]
    Resume(resume::ResumeArgs),
    /// List a saved session's compactions with their receipts (what each kept, cut, summarized
    /// and dropped, and where the tokens went) and ledger snapshots, its pins, and its progress
    /// ledger. Only reads the rollout.
    #[command(after_help = EXIT_CODES_HELP)]
    Show(show::ShowArgs),
    /// Pin a note or a history item in a saved session, so that every later compaction keeps it
    /// verbatim, or remove a pin.
    ///
    /// Takes the rollout's writer lock: when another process is writing the session, it refuses
    /// (exit 9) and writes nothing.
    #[command(after_help = EXIT_CODES_HELP)]
    Pin(pin::PinArgs),
    /// Serve the embedded reference model (HTTP + SSE and WebSocket on one port) until Ctrl-C.
    ///
    /// The first line on stdout is the base URL to give a client, e.g.
    /// `compactor compact ROLLOUT --base-url URL --api-key-env ""`.
    #[command(after_help = EXIT_CODES_HELP)]
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // The commands say what went wrong themselves; RUST_LOG=warn (or debug) shows the details.
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "error".into()))
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            err.report();
            ExitCode::from(err.exit.code())
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    // The config file is read before the runtime starts: no blocking read on a runtime thread.
    let config_flag: Option<PathBuf> = match &cli.command {
        Command::Demo(args) => args.model.config.clone(),
        Command::Compact(args) => args.model.config.clone(),
        Command::Show(args) => args.config.clone(),
        Command::Resume(_) | Command::Serve(_) | Command::Pin(_) => None,
    };
    let reads_config =
        matches!(cli.command, Command::Demo(_) | Command::Compact(_) | Command::Show(_));
    let toml =
        if reads_config { settings::load_config_file(config_flag.as_deref())? } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| CliError::other(anyhow::Error::new(err).context("cannot start tokio")))?;
    runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => Box::pin(demo::run(args, toml)).await,
            Command::Compact(args) => Box::pin(compact::run(args, toml)).await,
            Command::Resume(args) => resume::run(args).await,
            Command::Show(args) => show::run(args, toml).await,
            Command::Pin(args) => pin::run(args).await,
            Command::Serve(args) => serve::run(args).await,
        }
    })
}
