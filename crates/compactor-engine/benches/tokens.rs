//! What counting tokens costs (D128), as ratios to one `serde_json::to_vec` of the same
//! 10 000-item history, measured in one run:
//!
//! - counting every item of the history from scratch with `O200k`, as a resume or a rollback
//!   does (`HistoryCounts::new`): `o200k_count_10k_vs_to_vec`;
//! - a turn's estimate with cached counts: counting the items a step adds (a call and its
//!   output) and computing the usage gate (`context_usage`): `cached_estimate_10k_vs_to_vec`.
//!
//! Their targets are in the testkit's `workload::TARGETS`.
//!
//! Counting from scratch with `Bytes4` is printed for information. The history is
//! `compactor_testkit::workload::realistic_history`; each timing is the fastest of several runs,
//! alternating with the serialization it is compared with. Exits with status 1 when a target is
//! missed.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_engine::{
    ContextUsageInput, HistoryCounts, ItemCounter, ReasoningAccounting, context_usage,
};
use compactor_protocol::tokens::{TokenCalibration, TokenCounter};
use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem, ToolOutput};
use compactor_testkit::workload::{self, ContentKind, MeasuredRatio, kind_text};

const ITEMS: usize = 10_000;

/// The fastest of `runs` timings of `work`.
fn fastest<T>(runs: usize, mut work: impl FnMut() -> T) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let start = Instant::now();
        black_box(work());
        best = best.min(start.elapsed());
    }
    best
}

fn ms(time: Duration) -> f64 {
    time.as_secs_f64() * 1e3
}

fn main() -> std::process::ExitCode {
    let history = workload::realistic_history(ITEMS);
    let pass_through = PassThroughList::default();
    let markers = ContextualMarkers::default();
    let o200k = ItemCounter { counter: TokenCounter::O200k, pass_through: &pass_through };
    let bytes4 = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    // The vocabulary loads on first use; a session pays that once, not per count.
    black_box(TokenCounter::O200k.text_tokens("warm up"));

    let mut to_vec = Duration::MAX;
    let mut from_scratch = Duration::MAX;
    let mut from_scratch_bytes4 = Duration::MAX;
    for _ in 0..5 {
        to_vec =
            to_vec.min(fastest(3, || serde_json::to_vec(black_box(&history)).map(|v| v.len())));
        from_scratch =
            from_scratch.min(fastest(1, || HistoryCounts::new(black_box(&history), &o200k)));
        from_scratch_bytes4 = from_scratch_bytes4
            .min(fastest(1, || HistoryCounts::new(black_box(&history), &bytes4)));
    }

    // One step of a turn: the model's call comes back and the tool's output is recorded; then
    // the gate is checked. Only the two new items are counted.
    let counts = HistoryCounts::new(&history, &o200k);
    let call = ResponseItem::FunctionCall {
        id: Some("fc_bench".to_owned()),
        name: "shell".to_owned(),
        namespace: None,
        arguments: r#"{"command":["bash","-lc","cargo test"]}"#.to_owned(),
        call_id: "call_bench".to_owned(),
    };
    let output = ResponseItem::FunctionCallOutput {
        call_id: "call_bench".to_owned(),
        output: ToolOutput::Text(kind_text(ContentKind::Code, 1, 4_000)),
    };
    let mut items = history.clone();
    items.push(call.clone());
    items.push(output.clone());
    let calibration = TokenCalibration::observe(None, 1_030_000, 1_000_000);
    let step = || {
        let mut counts = counts.clone();
        let start = Instant::now();
        counts.push(black_box(&call), &o200k);
        counts.push(black_box(&output), &o200k);
        let usage = context_usage(&ContextUsageInput {
            items: black_box(&items),
            counts: &counts,
            last_total_tokens: 1_000_000,
            history_len_at_last_usage: None,
            reasoning: ReasoningAccounting::Estimated,
            markers: &markers,
            calibration,
        });
        (start.elapsed(), usage)
    };
    let mut per_turn = Duration::MAX;
    for _ in 0..50 {
        per_turn = per_turn.min(step().0);
    }

    let tokens = counts.total();
    println!(
        "history: {ITEMS} items, {tokens} o200k tokens; to_vec {:.3} ms; from scratch: o200k \
         {:.1} ms, bytes4 {:.2} ms; one step with cached counts {:.1} us",
        ms(to_vec),
        ms(from_scratch),
        ms(from_scratch_bytes4),
        per_turn.as_secs_f64() * 1e6,
    );
    let ratios = [
        MeasuredRatio::new(
            "o200k_count_10k_vs_to_vec",
            from_scratch.as_secs_f64() / to_vec.as_secs_f64(),
            format!("{:.1} ms vs {:.2} ms", ms(from_scratch), ms(to_vec)),
        ),
        MeasuredRatio::new(
            "cached_estimate_10k_vs_to_vec",
            per_turn.as_secs_f64() / to_vec.as_secs_f64(),
            format!("{:.1} us vs {:.2} ms", per_turn.as_secs_f64() * 1e6, ms(to_vec)),
        ),
    ];
    match workload::report("tokens", &ratios) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
