//! `compactor resume ROLLOUT`: the history a saved session resumes with.

use std::path::PathBuf;

use clap::Args;
use compactor_engine::EstimateContext;
use compactor_protocol::PassThroughList;
use compactor_protocol::display::format_history_truncated;
use compactor_protocol::tokens::TokenCounter;
use serde_json::json;

use crate::error::CliError;
use crate::format;
use crate::rollout::{self, ReadArgs};

/// `compactor resume` flags.
#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// The rollout (JSONL) of a saved session.
    rollout: PathBuf,
    /// Print one JSON object: thread id, item count, token estimate, window generation and the
    /// items themselves.
    #[arg(long)]
    json: bool,
    /// Cut each item's text after this many characters.
    #[arg(long, default_value_t = 120, value_name = "CHARS")]
    max_chars: usize,
    #[command(flatten)]
    read: ReadArgs,
}

pub(crate) async fn run(args: ResumeArgs) -> Result<(), CliError> {
    let saved = rollout::read(&args.rollout, args.read.damaged_lines()).await?;
    for warning in &saved.session.warnings {
        eprintln!("warning: {}: {warning}", saved.path.display());
    }
    let history = &saved.session.history;
    // Counted as the session that wrote the rollout counted (its last `token_count` line says
    // how), or as this command's sessions count.
    let counter =
        saved.session.token_info.and_then(|info| info.token_counter).unwrap_or(TokenCounter::O200k);
    let pass_through = PassThroughList::default();
    let tokens = EstimateContext {
        counter,
        ..EstimateContext::new(saved.base_instructions(), &pass_through)
    }
    .estimate(history);
    let generation = saved.session.window_generation;
    if args.json {
        let value = json!({
            "rollout": saved.path,
            "thread_id": saved.thread_id(),
            "items": history.len(),
            "estimated_tokens": tokens,
            "window_generation": generation,
            "skipped_lines": saved.session.skipped_lines,
            "history": history,
        });
        let text = serde_json::to_string_pretty(&value).map_err(CliError::other)?;
        outln!("{text}");
        return Ok(());
    }
    out!("{}", format_history_truncated(history, args.max_chars));
    let thread = saved.thread_id().map(|id| format!(", thread {id}")).unwrap_or_default();
    let skipped = match saved.session.skipped_lines {
        0 => String::new(),
        1 => ", 1 damaged line skipped".to_owned(),
        n => format!(", {n} damaged lines skipped"),
    };
    outln!(
        "{} items, ~{} tokens (estimate), {} compaction(s) installed{thread}{skipped}",
        history.len(),
        format::count(tokens),
        generation
    );
    Ok(())
}
