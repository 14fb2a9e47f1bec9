//! Trimming and estimation scale linearly (D48): 100 000 items may cost at most 12x
//! 10 000 items. Estimation is counting every item into `HistoryCounts` (D124), which trimming
//! then reads. Prints the timings and the ratio, and exits with status 1 when the target is
//! missed, so `cargo xtask bench` fails.
//!
//! The histories come from `compactor_testkit::workload`: realistic agent sessions whose last
//! turn ends with a long run of tool calls that the window forces trimming to pop, so both
//! estimation and popping are measured. The 1 000-item history is measured for information.
//!
//! Each measured run works on a fresh copy of the history, as compaction does (it clones the
//! session's history and trims the clone). Caches are flushed before every run: otherwise the
//! freshly written 10 000-item copy would still sit in the CPU cache while the 100 000-item copy
//! cannot, and the ratio would measure the cache size rather than the algorithm. The flush writes
//! twice the machine's last-level cache, as the kernel reports it: a fixed 64 MB flush left both
//! copies in a 480 MB L3 and the ratio read 14-16x where the work is linear (D48). The ratio with
//! warm caches is printed too, for information.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_engine::{
    EstimateContext, HistoryCounts, estimate_history,
    trim_function_call_history_to_fit_context_window,
};
use compactor_protocol::PassThroughList;
use compactor_testkit::workload::{self, MeasuredRatio};

/// The least written between runs to evict the history from the CPU caches, and what is written
/// when the kernel does not say how large the caches are.
const MIN_CACHE_FLUSH_BYTES: usize = 64 << 20;
const DEFAULT_CACHE_FLUSH_BYTES: usize = 1 << 30;
/// The most written, so a machine reporting an absurd cache does not exhaust memory.
const MAX_CACHE_FLUSH_BYTES: usize = 4 << 30;

/// Twice the largest CPU cache the kernel reports for the first CPU (Linux sysfs), clamped to
/// [`MIN_CACHE_FLUSH_BYTES`]..=[`MAX_CACHE_FLUSH_BYTES`].
fn cache_flush_bytes() -> usize {
    let largest = (0..8)
        .filter_map(|index| {
            let path = format!("/sys/devices/system/cpu/cpu0/cache/index{index}/size");
            parse_cache_size(std::fs::read_to_string(path).ok()?.trim())
        })
        .max();
    match largest {
        Some(bytes) => bytes.saturating_mul(2).clamp(MIN_CACHE_FLUSH_BYTES, MAX_CACHE_FLUSH_BYTES),
        None => DEFAULT_CACHE_FLUSH_BYTES,
    }
}

/// A sysfs cache size such as `491520K` or `2M`.
fn parse_cache_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let value: usize = digits.parse().ok()?;
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return None,
    };
    value.checked_mul(scale)
}

const BASE_INSTRUCTIONS: &str = "You are a coding agent working in a repository. Use the tools.";

/// The fastest of `runs` timings of estimating a fresh copy of `history` and trimming it to
/// `window`, with the number of items trimming removed. With `flush`, it is overwritten before
/// each run so the copy is read from memory.
fn measure(
    history: &[compactor_protocol::ResponseItem],
    window: u64,
    runs: usize,
    mut flush: Option<&mut [u8]>,
) -> (Duration, usize) {
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new(BASE_INSTRUCTIONS, &pass_through);
    let mut best = Duration::MAX;
    let mut removed = 0;
    for run in 0..runs {
        let mut copy = history.to_vec();
        if let Some(flush) = flush.as_deref_mut() {
            flush.fill(run as u8);
            black_box(&flush);
        }
        let start = Instant::now();
        // Counting every item is what a resumed session does once; trimming then only reads
        // the counts.
        let counts = HistoryCounts::new(black_box(&copy), &context.item_counter());
        let estimate = context.estimate_counted(&counts);
        removed =
            trim_function_call_history_to_fit_context_window(&mut copy, &counts, window, &context);
        let elapsed = start.elapsed();
        black_box(estimate);
        best = best.min(elapsed);
    }
    (best, removed)
}

fn main() -> std::process::ExitCode {
    let pass_through = PassThroughList::default();
    let mut flush = vec![0u8; cache_flush_bytes()];
    println!("cache flush between runs: {} MB", flush.len() >> 20);
    let mut times = Vec::new();
    let mut warm = Vec::new();
    for (items, runs) in [(1_000usize, 40usize), (10_000, 25), (100_000, 15)] {
        let tail_pairs = items / 20;
        let history = workload::history_with_tool_tail(items, tail_pairs);
        let full = estimate_history(BASE_INSTRUCTIONS, &history, &pass_through);
        let tail = estimate_history("", &history[items - 2 * tail_pairs..], &pass_through);
        // A window that forces about half of the last turn's tool traffic out.
        let window = full - tail / 2;
        let bytes = serde_json::to_vec(&history).map_or(0, |json| json.len());
        let (time, removed) = measure(&history, window, runs, Some(&mut flush));
        let (warm_time, _) = measure(&history, window, runs, None);
        println!(
            "trim+estimate {:>7} items ({:>5.1} MB, {:>9} tokens, {:>5} removed): {:>8.3} ms \
             (warm caches {:>8.3} ms)",
            history.len(),
            bytes as f64 / 1e6,
            full,
            removed,
            time.as_secs_f64() * 1e3,
            warm_time.as_secs_f64() * 1e3,
        );
        times.push(time);
        warm.push(warm_time);
    }
    let ratio = MeasuredRatio::new(
        "trim_estimate_100k_vs_10k",
        times[2].as_secs_f64() / times[1].as_secs_f64(),
        format!(
            "{:.2} ms vs {:.2} ms; with warm caches {:.2}x ({:.2} ms vs {:.2} ms)",
            times[2].as_secs_f64() * 1e3,
            times[1].as_secs_f64() * 1e3,
            warm[2].as_secs_f64() / warm[1].as_secs_f64(),
            warm[2].as_secs_f64() * 1e3,
            warm[1].as_secs_f64() * 1e3,
        ),
    );
    match workload::report("trim", &[ratio]) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            println!("cannot write the bench results: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
