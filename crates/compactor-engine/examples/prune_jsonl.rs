//! Prunes and trims a history read from a JSONL file, one Responses API item per line, with no
//! model call and no network.
//!
//! ```sh
//! cargo run -p compactor-engine --example prune_jsonl                      # the bundled history
//! cargo run -p compactor-engine --example prune_jsonl -- HISTORY.jsonl [TARGET_TOKENS] [WINDOW]
//! ```
//!
//! It prints the estimate before and after `prune` (old tool outputs masked, then the oldest
//! call/output pairs dropped until the target is met), the pruned history, and what trimming the
//! trailing tool traffic to fit a smaller window would remove.

#![allow(clippy::print_stdout, reason = "an example prints its results")]

use std::error::Error;
use std::path::PathBuf;

use compactor_engine::{
    EstimateContext, HistoryCounts, PruneConfig, prune,
    trim_function_call_history_to_fit_context_window,
};
use compactor_protocol::display::format_history_truncated;
use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/history.jsonl"),
        PathBuf::from,
    );
    let target_tokens: u64 = args.next().map_or(Ok(2_000), |arg| arg.parse())?;
    let window: u64 = args.next().map_or(Ok(target_tokens / 2), |arg| arg.parse())?;

    let text = std::fs::read_to_string(&path)
        .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
    let mut history = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let item: ResponseItem = serde_json::from_str(line)
            .map_err(|err| format!("{}:{}: {err}", path.display(), index + 1))?;
        history.push(item);
    }

    let pass_through = PassThroughList::default();
    // Counted the way the reference estimates (four bytes a token), each item once.
    let estimate = EstimateContext::new("", &pass_through);
    let counts = HistoryCounts::new(&history, &estimate.item_counter());
    let config = PruneConfig { protected_user_turns: 1, target_tokens };
    let pruned = prune(&history, &counts, &config, &estimate, &ContextualMarkers::default());
    let report = pruned.report;
    println!("{}: {} items", path.display(), history.len());
    println!(
        "prune to {target_tokens} tokens: {} -> {} tokens, {} outputs masked, {} call pairs \
         dropped ({} items)",
        report.tokens_before,
        report.tokens_after,
        report.masked_outputs,
        report.dropped_pairs,
        report.dropped_items,
    );
    println!("{}", format_history_truncated(&pruned.history, 100));

    let mut trimmed = history.clone();
    let removed =
        trim_function_call_history_to_fit_context_window(&mut trimmed, &counts, window, &estimate);
    println!(
        "trim to a {window}-token window: {removed} trailing items removed, {} -> {} tokens",
        estimate.estimate(&history),
        estimate.estimate(&trimmed),
    );
    Ok(())
}
