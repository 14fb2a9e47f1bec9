//! Trimming and estimation scale linearly (DESIGN §5): 100 000 items may cost at most 12x
//! 10 000 items. Prints the timings and the ratio, and exits with status 1 when the target is
//! missed, so `cargo xtask bench` fails.
//!
//! The generated histories are realistic agent sessions: user turns (some with inline images),
//! reasoning with encrypted content, function and custom tool calls whose outputs vary from a
//! line to several kilobytes, and assistant replies. The last turn ends with a long run of tool
//! calls that the window forces trimming to pop, so both estimation and popping are measured.
//!
//! Each measured run works on a fresh copy of the history, as compaction does (it clones the
//! session's history and trims the clone). Caches are flushed before every run: otherwise the
//! freshly written 10 000-item copy would still sit in the CPU cache while the 100 000-item copy
//! cannot, and the ratio would measure the cache size rather than the algorithm.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use compactor_engine::{
    EstimateContext, estimate_history, trim_function_call_history_to_fit_context_window,
};
use compactor_protocol::{ContentItem, PassThroughList, ResponseItem, ToolOutput};

/// The largest allowed ratio of the 100 000-item time to the 10 000-item time.
const MAX_RATIO: f64 = 12.0;

/// Bytes written between runs to evict the history from the CPU caches.
const CACHE_FLUSH_BYTES: usize = 256 << 20;

const BASE_INSTRUCTIONS: &str = "You are a coding agent working in a repository. Use the tools.";

const WORDS: &[&str] = &[
    "the",
    "function",
    "returns",
    "error",
    "file",
    "test",
    "crate",
    "parse",
    "value",
    "config",
    "when",
    "history",
    "stream",
    "fixed",
    "build",
    "item",
    "token",
    "window",
    "compact",
    "user",
    "src/lib.rs",
    "Cargo.toml",
    "failed",
    "passed",
    "warning:",
    "let",
    "fn",
    "impl",
    "match",
    "{",
];

/// A small deterministic generator (xorshift64*), so every run measures the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Roughly log-uniform between `min` and `max`.
    fn size(&mut self, min: u64, max: u64) -> usize {
        let span = (max as f64 / min as f64).ln();
        (min as f64 * (span * (self.below(1_000) as f64 / 1_000.0)).exp()) as usize
    }

    /// Words, of a log-uniform size between `min` and `max` bytes.
    fn words(&mut self, min: u64, max: u64) -> String {
        let bytes = self.size(min, max);
        let mut out = String::with_capacity(bytes + 16);
        while out.len() < bytes {
            out.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
            out.push(if self.below(12) == 0 { '\n' } else { ' ' });
        }
        out
    }

    /// Base64, of exactly `bytes` bytes.
    fn base64(&mut self, bytes: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        (0..bytes).map(|_| ALPHABET[self.below(64) as usize] as char).collect()
    }
}

/// Appends one tool call and its output: mostly shell function calls, some `apply_patch`
/// custom calls.
fn push_tool_call(rng: &mut Rng, history: &mut Vec<ResponseItem>, call_index: &mut u64) {
    *call_index += 1;
    let call_id = format!("call_{call_index:08}");
    let output = ToolOutput::Text(rng.words(20, 4_000));
    if rng.below(5) == 0 {
        history.push(ResponseItem::CustomToolCall {
            id: None,
            status: None,
            call_id: call_id.clone(),
            name: "apply_patch".into(),
            input: rng.words(100, 1_500),
        });
        history.push(ResponseItem::CustomToolCallOutput { call_id, name: None, output });
    } else {
        let command = rng.words(10, 160).replace(['\n', '"'], " ");
        history.push(ResponseItem::FunctionCall {
            id: None,
            name: "shell".into(),
            namespace: None,
            arguments: format!(r#"{{"command":["bash","-lc","{command}"]}}"#),
            call_id: call_id.clone(),
        });
        history.push(ResponseItem::FunctionCallOutput { call_id, output });
    }
}

/// A realistic history of exactly `items` items whose last turn ends with `tail_pairs` tool
/// call/output pairs.
fn generate(items: usize, tail_pairs: usize) -> Vec<ResponseItem> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut history = Vec::with_capacity(items + 16);
    let mut call_index = 0;
    let body = items - 1 - 2 * tail_pairs;
    while history.len() < body {
        let mut content = vec![ContentItem::InputText { text: rng.words(30, 1_200) }];
        if rng.below(40) == 0 {
            content.push(ContentItem::InputImage {
                image_url: format!("data:image/png;base64,{}", rng.base64(12_000)),
                detail: None,
            });
        }
        history.push(ResponseItem::Message { id: None, role: "user".into(), content, phase: None });
        for _ in 0..rng.below(8) {
            let encrypted = rng.size(300, 2_000);
            history.push(ResponseItem::Reasoning {
                id: None,
                summary: vec![],
                content: None,
                encrypted_content: Some(rng.base64(encrypted)),
            });
            push_tool_call(&mut rng, &mut history, &mut call_index);
        }
        history.push(ResponseItem::assistant_text(rng.words(80, 1_000)));
    }
    history.truncate(body);
    history.push(ResponseItem::user_text("run every test and fix what fails"));
    for _ in 0..tail_pairs {
        push_tool_call(&mut rng, &mut history, &mut call_index);
    }
    history
}

/// The fastest of `runs` timings of estimating a fresh copy of `history` and trimming it to
/// `window`, with the number of items trimming removed.
fn measure(history: &[ResponseItem], window: u64, runs: usize) -> (Duration, usize) {
    let pass_through = PassThroughList::default();
    let context =
        EstimateContext { base_instructions: BASE_INSTRUCTIONS, pass_through: &pass_through };
    let mut flush = vec![0u8; CACHE_FLUSH_BYTES];
    let mut best = Duration::MAX;
    let mut removed = 0;
    for run in 0..runs {
        let mut copy = history.to_vec();
        flush.fill(run as u8);
        black_box(&flush);
        let start = Instant::now();
        let estimate = estimate_history(BASE_INSTRUCTIONS, black_box(&copy), &pass_through);
        removed = trim_function_call_history_to_fit_context_window(&mut copy, window, &context);
        let elapsed = start.elapsed();
        black_box(estimate);
        best = best.min(elapsed);
    }
    (best, removed)
}

fn main() {
    let pass_through = PassThroughList::default();
    let mut times = Vec::new();
    for (items, runs) in [(10_000usize, 25usize), (100_000, 7)] {
        let tail_pairs = items / 20;
        let history = generate(items, tail_pairs);
        let full = estimate_history(BASE_INSTRUCTIONS, &history, &pass_through);
        let tail = estimate_history("", &history[items - 2 * tail_pairs..], &pass_through);
        // A window that forces about half of the last turn's tool traffic out.
        let window = full - tail / 2;
        let bytes = serde_json::to_vec(&history).map_or(0, |json| json.len());
        let (time, removed) = measure(&history, window, runs);
        println!(
            "trim+estimate {:>7} items ({:>5.1} MB, {:>9} tokens, {:>5} removed): {:>8.3} ms",
            history.len(),
            bytes as f64 / 1e6,
            full,
            removed,
            time.as_secs_f64() * 1e3,
        );
        times.push(time);
    }
    let ratio = times[1].as_secs_f64() / times[0].as_secs_f64();
    println!("ratio 100k/10k: {ratio:.2}x (target at most {MAX_RATIO}x)");
    if ratio > MAX_RATIO {
        println!("FAILED: trimming and estimation do not scale linearly");
        std::process::exit(1);
    }
}
