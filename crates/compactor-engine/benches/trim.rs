//! Trimming and estimation scale linearly (D48): 100 000 items may cost at most 12x
//! 10 000 items. Estimation is counting every item into `HistoryCounts` (D124), which trimming
//! then reads. Prints the timings and the ratio, and exits with status 1 when the target is
//! missed, so `cargo xtask bench` fails.
//!
//! The histories come from `compactor_testkit::workload`: realistic agent sessions whose last
//! turn ends with a long run of tool calls that the window forces trimming to pop, so both
//! estimation and popping are measured. The 1 000-item history is measured for information.
//!
//! Each measured run works on fresh copies of the history, as compaction does (it clones the
//! session's history and trims the clone), and the median run is kept. What would otherwise be
//! measured is the cache size rather than the algorithm: a freshly written 10 000-item copy
//! (5.6 MB) may still sit in a CPU cache that the 100 000-item one (55 MB) overflows. So every
//! run moves the same memory whatever the size: it makes as many copies as add up to about
//! 100 000 items (ten of the 10 000-item history), writes twice the machine's last-level cache
//! (as the kernel reports it) to push them out, then times estimating and trimming each copy in
//! turn; a copy's time is the run's divided by the copies. With one copy per run and only a
//! 64 MB flush, a 480 MB L3 kept the small copy warm and the ratio read 14-16x for work that is
//! linear (D48). The ratio without the flush is printed too, for information.

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

/// The median of `runs` timings of estimating a fresh copy of `history` and trimming it to
/// `window`, with the number of items trimming removed. Each run works on `copies` fresh copies
/// made before the timer starts and times them one after the other, so every size moves the
/// same amount of memory per run; the time of one copy is the run's time divided by `copies`.
/// With `flush`, it is overwritten after the copies are made, so they are read from memory.
fn measure(
    history: &[compactor_protocol::ResponseItem],
    window: u64,
    runs: usize,
    copies: usize,
    mut flush: Option<&mut [u8]>,
) -> (Duration, usize) {
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new(BASE_INSTRUCTIONS, &pass_through);
    let mut times = Vec::with_capacity(runs);
    let mut removed = 0;
    for run in 0..runs {
        let mut batch: Vec<Vec<compactor_protocol::ResponseItem>> =
            (0..copies).map(|_| history.to_vec()).collect();
        if let Some(flush) = flush.as_deref_mut() {
            flush.fill(run as u8);
            black_box(&flush);
        }
        let start = Instant::now();
        for copy in &mut batch {
            // Counting every item is what a resumed session does once; trimming then only
            // reads the counts.
            let counts = HistoryCounts::new(black_box(copy.as_slice()), &context.item_counter());
            let estimate = context.estimate_counted(&counts);
            removed =
                trim_function_call_history_to_fit_context_window(copy, &counts, window, &context);
            black_box(estimate);
        }
        let elapsed = start.elapsed();
        times.push(elapsed / u32::try_from(copies).unwrap_or(u32::MAX));
        drop(batch);
    }
    times.sort_unstable();
    (times[times.len() / 2], removed)
}

fn main() -> std::process::ExitCode {
    let pass_through = PassThroughList::default();
    let mut flush = vec![0u8; cache_flush_bytes()];
    println!("cache flush between runs: {} MB", flush.len() >> 20);
    let mut times = Vec::new();
    let mut warm = Vec::new();
    // Each run moves about the 100 000-item history's 55 MB, whatever the size.
    for (items, runs, copies) in
        [(1_000usize, 15usize, 100usize), (10_000, 15, 10), (100_000, 15, 1)]
    {
        let tail_pairs = items / 20;
        let history = workload::history_with_tool_tail(items, tail_pairs);
        let full = estimate_history(BASE_INSTRUCTIONS, &history, &pass_through);
        let tail = estimate_history("", &history[items - 2 * tail_pairs..], &pass_through);
        // A window that forces about half of the last turn's tool traffic out.
        let window = full - tail / 2;
        let bytes = serde_json::to_vec(&history).map_or(0, |json| json.len());
        let (time, removed) = measure(&history, window, runs, copies, Some(&mut flush));
        let (warm_time, _) = measure(&history, window, runs, copies, None);
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
