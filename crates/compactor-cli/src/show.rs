//! `compactor show ROLLOUT`: the session's compactions with their receipts and ledger
//! snapshots, its pins, and its progress ledger. It only reads the rollout, so it works on a
//! session another process is writing (D145).

use std::path::PathBuf;

use clap::Args;
use compactor_core::ProgressLedger;
use compactor_engine::{DefaultTools, Ledger, LedgerRules, rebuild_legacy_compacted};
use compactor_protocol::{LedgerSnapshot, ResponseItem};
use compactor_rollout_trace::Replay;
use serde_json::json;

use crate::error::CliError;
use crate::format;
use crate::receipt::{pin_lines, receipt_lines};
use crate::rollout::{self, ReadArgs};
use crate::settings::{self, ConfigFile};

/// `compactor show` flags.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The rollout (JSONL) of a saved session; it is only read.
    rollout: PathBuf,
    /// Print one JSON object: thread id, every compaction with its receipt and ledger snapshot,
    /// the pins, and the progress ledger.
    #[arg(long)]
    json: bool,
    /// The compactor.toml whose `[compaction]` ledger settings the next compaction would use
    /// [default: ./compactor.toml when it exists]
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    read: ReadArgs,
}

pub(crate) async fn run(args: ShowArgs, file: Option<ConfigFile>) -> Result<(), CliError> {
    // The rollout is read once: a writer appending to it meanwhile cannot make the session and
    // the compactions shown disagree. The compactions come from the lines themselves.
    let contents = rollout::read_contents(&args.rollout, args.read.damaged_lines()).await?;
    let lines = contents.lines.clone();
    let saved = rollout::reconstruct(&args.rollout, contents);
    for warning in &saved.session.warnings {
        eprintln!("warning: {}: {warning}", saved.path.display());
    }
    // The ledger is rendered as the next compaction of this session would render it: within the
    // budget its model's window and the config file give (D154).
    let mut config = settings::cli_defaults(saved.model());
    if let Some(file) = &file {
        file.toml.apply(&mut config);
    }
    let markers = config.contextual_markers.clone();
    let ledger_on = config.compaction.ledger == ProgressLedger::On;
    let ledger_budget = config.compaction.ledger_budget(&config.model);
    let replay = Replay::new(&rebuild_legacy_compacted, &markers);
    let records = replay.compactions(&lines);
    // The ledger a resumed session would hold, described by the default tools (D153).
    let rules = LedgerRules { tools: &DefaultTools, markers: &markers };
    let ledger = Ledger::from_rollout(replay.surviving(&lines).map(|line| &line.item), &rules);
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
                    "ledger": record.ledger,
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
            "ledger": ledger.snapshot(),
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
        if let Some(snapshot) = record.ledger {
            outln!("  ledger: {}", ledger_counts(snapshot));
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
    outln!();
    let rendered = if ledger_on { ledger.render(ledger_budget) } else { None };
    match rendered.as_ref().and_then(ResponseItem::message_text) {
        Some(text) => {
            outln!(
                "Progress ledger (laid out after the pins in the next compacted history, \
                 within {} tokens):",
                format::count(ledger_budget)
            );
            for line in text.lines() {
                outln!("  {line}");
            }
        }
        None if !ledger_on => outln!("No progress ledger: the config file turns it off."),
        None => outln!("No progress ledger."),
    }
    Ok(())
}

/// How many entries of each kind a ledger snapshot holds.
fn ledger_counts(snapshot: &LedgerSnapshot) -> String {
    format!(
        "{} file(s), {} command(s), {} patch(es), {} request(s), {} open item(s)",
        snapshot.files.len(),
        snapshot.commands.len(),
        snapshot.patches.len(),
        snapshot.requests.len(),
        snapshot.open_items.len()
    )
}
