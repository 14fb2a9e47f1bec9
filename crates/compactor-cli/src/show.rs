//! `compactor show ROLLOUT`: the session's compactions with their receipts, and its pins. It only
//! reads the rollout, so it works on a session another process is writing (D145).

use std::path::PathBuf;

use clap::Args;
use compactor_engine::rebuild_legacy_compacted;
use compactor_protocol::ContextualMarkers;
use compactor_rollout_trace::{Replay, read_rollout};
use serde_json::json;

use crate::error::{CliError, Exit};
use crate::receipt::{pin_lines, receipt_lines};
use crate::rollout::{self, ReadArgs};

/// `compactor show` flags.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The rollout (JSONL) of a saved session; it is only read.
    rollout: PathBuf,
    /// Print one JSON object: thread id, every compaction with its receipt, and the pins.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    read: ReadArgs,
}

pub(crate) async fn run(args: ShowArgs) -> Result<(), CliError> {
    let saved = rollout::read(&args.rollout, args.read.damaged_lines()).await?;
    for warning in &saved.session.warnings {
        eprintln!("warning: {}: {warning}", saved.path.display());
    }
    // The compactions come from the lines themselves; `rollout::read` reconstructed the session.
    let contents = read_rollout(&saved.path).await.map_err(|err| {
        CliError::new(Exit::BadRollout, err)
            .context(format!("cannot read rollout {}", saved.path.display()))
    })?;
    let markers = ContextualMarkers::default();
    let records = Replay::new(&rebuild_legacy_compacted, &markers).compactions(&contents.lines);
    let session = &saved.session;
    if args.json {
        let compactions: Vec<_> = records
            .iter()
            .map(|record| {
                json!({
                    "timestamp": record.timestamp,
                    "rolled_back": record.rolled_back,
                    "forked": record.forked,
                    "history_items": record.history_items,
                    "pins": record.pins,
                    "receipt": record.receipt,
                })
            })
            .collect();
        let value = json!({
            "rollout": saved.path,
            "thread_id": saved.thread_id(),
            "window_generation": session.window_generation,
            "history_items": session.history.len(),
            "compactions": compactions,
            "pins": session.pins,
            "pin_slot": session.pin_slot,
        });
        let text = serde_json::to_string_pretty(&value).map_err(CliError::other)?;
        outln!("{text}");
        return Ok(());
    }
    let thread = saved.thread_id().map(|id| format!(" (thread {id})")).unwrap_or_default();
    outln!(
        "{}{thread}: {} compaction(s), {} pin(s), {} items in the history",
        saved.path.display(),
        records.len(),
        session.pins.len(),
        session.history.len()
    );
    for (index, record) in records.iter().enumerate() {
        let mut notes = Vec::new();
        if record.rolled_back {
            notes.push("rolled back");
        }
        if record.forked {
            notes.push("copied by a fork");
        }
        let notes =
            if notes.is_empty() { String::new() } else { format!(" [{}]", notes.join(", ")) };
        let items = record
            .history_items
            .map_or_else(|| "a legacy summary".to_owned(), |items| format!("{items} items"));
        outln!("\nCompaction {} at {}: installed {items}{notes}", index + 1, record.timestamp);
        match record.receipt {
            Some(receipt) => {
                for line in receipt_lines(receipt, "  ") {
                    outln!("{line}");
                }
            }
            None => outln!("  no receipt (written by an older version)"),
        }
    }
    outln!();
    if session.pins.is_empty() {
        outln!("No pins.");
    } else {
        outln!("Pins (kept verbatim at the head of every compacted history):");
        for line in pin_lines(&session.pins, "  ") {
            outln!("{line}");
        }
    }
    Ok(())
}
