//! Prints a rollout's compactions and token usage.
//!
//! ```sh
//! cargo run -p compactor-rollout-trace --example inspect_rollout                 # the bundled rollout
//! cargo run -p compactor-rollout-trace --example inspect_rollout -- ROLLOUT.jsonl
//! ```
//!
//! The bundled `examples/rollout.jsonl` is a real session: `compactor-core`'s `minimal_harness`
//! example run with `COMPACTOR_ROLLOUT` set.

#![allow(clippy::print_stdout, reason = "an example prints its results")]

use std::path::PathBuf;

use compactor_protocol::tokens::estimate_history_tokens;
use compactor_protocol::{EventMsg, ResponseItem, RolloutItem};
use compactor_rollout_trace::read_rollout;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/rollout.jsonl"),
        PathBuf::from,
    );
    let contents = read_rollout(&path).await?;
    let report = &contents.report;
    println!("{}: {} lines", path.display(), report.complete_lines);
    for corrupt in &report.corrupt_lines {
        println!("  line {} skipped: {}", corrupt.line_number, corrupt.error);
    }
    if let Some(torn) = &report.torn_tail {
        println!("  an unfinished last line of {} bytes was ignored", torn.len);
    }

    let (mut turns, mut compactions, mut items_since_compaction) = (0, 0, 0);
    let (mut model, mut last_usage) = (String::new(), None);
    for line in &contents.lines {
        match &line.item {
            RolloutItem::SessionMeta(meta) => println!("session {}", meta.id),
            RolloutItem::TurnContext(context) => model.clone_from(&context.model),
            RolloutItem::EventMsg(EventMsg::TurnStarted { .. }) => turns += 1,
            RolloutItem::EventMsg(EventMsg::TokenCount { info: Some(info), .. }) => {
                last_usage = Some(*info);
            }
            RolloutItem::Compacted(compacted) => {
                compactions += 1;
                items_since_compaction = 0;
                let history = compacted.replacement_history.as_deref().unwrap_or_default();
                let users = history.iter().filter(|item| is_user_message(item)).count();
                let before =
                    last_usage.as_ref().map_or(0, |info| info.last_token_usage.total_tokens);
                println!(
                    "compaction {compactions} at {} in turn {turns} ({model}): {before} tokens in \
                     context before; {} items kept ({users} user messages), about {} tokens{}",
                    line.timestamp,
                    history.len(),
                    estimate_history_tokens("", history),
                    if compacted.message.is_empty() { "" } else { ", with a summary" },
                );
            }
            RolloutItem::ResponseItem(_) => items_since_compaction += 1,
            RolloutItem::Pins(pins) => println!("pins changed: {} now", pins.pins.len()),
            RolloutItem::EventMsg(_) | RolloutItem::Unknown { .. } => {}
        }
    }
    if let Some(info) = last_usage {
        let (total, last) = (info.total_token_usage, info.last_token_usage);
        println!(
            "token usage over {turns} turns: {} input ({} cached), {} output; last request {} \
             tokens of a {} window",
            total.input_tokens,
            total.cached_input_tokens,
            total.output_tokens,
            last.total_tokens,
            info.model_context_window.map_or_else(|| "unknown".to_owned(), |w| w.to_string()),
        );
    }
    println!(
        "{compactions} compaction(s); a resumed session starts from the last one and the \
         {items_since_compaction} items recorded after it"
    );
    Ok(())
}

fn is_user_message(item: &ResponseItem) -> bool {
    matches!(item, ResponseItem::Message { role, .. } if role == "user")
}
