//! The demo's scripted coding session: the user's prompts, the `shell` tool, and its large,
//! deterministic outputs (file listings, test logs, search results, git history).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use compactor_core::{ToolCall, ToolFuture, ToolHandler};
use compactor_protocol::{ResponseItem, ToolOutput, ToolSpec};
use serde_json::json;

/// The tool the model calls.
pub(crate) const TOOL_NAME: &str = "shell";

/// The word in every prompt that makes the reference model call the tool.
pub(crate) const TOOL_TRIGGER: &str = "shell";

/// The arguments the reference model calls the tool with.
pub(crate) const TOOL_ARGUMENTS: &str = r#"{"command":"inspect the repository"}"#;

/// The smallest and largest tool output, in bytes (about 2.5k to 3.5k tokens).
const OUTPUT_BYTES: std::ops::RangeInclusive<usize> = 10_000..=14_000;

/// What a user asks, turn by turn; cycled when the demo runs longer.
const PROMPTS: [&str; 12] = [
    "Use the shell to list every file in the repository and describe its layout.",
    "Use the shell to run the test suite and tell me which tests fail.",
    "Use the shell to find the TODO comments and group them by module.",
    "Use the shell to show the recent git history of the storage engine.",
    "Use the shell to list the files under src/storage again and find the largest ones.",
    "Use the shell to rerun the failing tests with backtraces.",
    "Use the shell to search for unwrap() calls in the query planner.",
    "Use the shell to show what changed in the last five commits.",
    "Use the shell to list the benchmark files and their sizes.",
    "Use the shell to run the tests of the write-ahead log.",
    "Use the shell to grep for the error types and where they are constructed.",
    "Use the shell to check who last touched the lexer, then summarize this session.",
];

/// The base instructions of the demo session.
pub(crate) const INSTRUCTIONS: &str = "You are a coding agent working in the `tinydb` repository, \
a small embedded database written in Rust. Use the shell tool to inspect the code before you \
answer, and keep answers short.";

/// The working directory the demo pretends to run in.
pub(crate) const CWD: &str = "/workspace/tinydb";

/// The user prompt of turn `turn` (1-based).
pub(crate) fn prompt(turn: u32) -> String {
    let index = (turn.saturating_sub(1) as usize) % PROMPTS.len();
    let round = (turn.saturating_sub(1) as usize) / PROMPTS.len();
    match round {
        0 => PROMPTS[index].to_owned(),
        _ => format!("{} (round {})", PROMPTS[index], round + 1),
    }
}

/// The harness's initial context: permissions and the environment.
pub(crate) fn initial_context() -> Vec<ResponseItem> {
    vec![
        ResponseItem::developer_text(
            "<permissions instructions>The shell tool runs read-only commands in the repository.</permissions instructions>",
        ),
        ResponseItem::user_text(format!(
            "<environment_context><cwd>{CWD}</cwd><shell>bash</shell></environment_context>"
        )),
    ]
}

/// The `shell` function the model may call.
pub(crate) fn tool_specs() -> Vec<ToolSpec> {
    vec![json!({
        "type": "function",
        "name": TOOL_NAME,
        "description": "Runs a read-only shell command in the repository and returns its output.",
        "strict": false,
        "parameters": {
            "type": "object",
            "properties": {
                "command": { "type": "string", "description": "The command line to run." }
            },
            "required": ["command"],
            "additionalProperties": false
        }
    })]
}

/// Counts what the tool produced, for the progress display.
#[derive(Debug, Default)]
pub(crate) struct ToolStats {
    pub(crate) calls: AtomicU64,
    pub(crate) bytes: AtomicU64,
}

/// The demo's tool handler: every call gets the next output of a deterministic sequence.
#[derive(Debug, Clone)]
pub(crate) struct DemoTools {
    seed: u64,
    stats: Arc<ToolStats>,
}

impl DemoTools {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, stats: Arc::default() }
    }

    pub(crate) fn stats(&self) -> Arc<ToolStats> {
        Arc::clone(&self.stats)
    }
}

impl ToolHandler for DemoTools {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let index = self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let command = serde_json::from_str::<serde_json::Value>(&call.input)
            .ok()
            .and_then(|args| args.get("command").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_else(|| call.input.clone());
        let text = tool_output(self.seed, index, &command);
        self.stats.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

const DIRS: [&str; 8] =
    ["src/storage", "src/query", "src/wal", "src/index", "src/net", "src/util", "tests", "benches"];
const STEMS: [&str; 16] = [
    "page", "btree", "lexer", "parser", "planner", "cursor", "buffer", "log", "segment", "codec",
    "cache", "lock", "txn", "schema", "vacuum", "stats",
];
const VERBS: [&str; 8] =
    ["handle", "split", "merge", "flush", "retry", "validate", "compress", "rebalance"];
const AUTHORS: [&str; 4] = ["Ada Byron", "Grace Hopper", "Ken Thompson", "Barbara Liskov"];

/// Output `index` of the sequence seeded by `seed`: one of four kinds in turn, between 10 and
/// 14 kB, the same for the same inputs on every machine.
pub(crate) fn tool_output(seed: u64, index: u64, command: &str) -> String {
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index);
    let target = rng.usize(OUTPUT_BYTES);
    let mut out = format!("$ {command}\n");
    let mut line = 0u32;
    while out.len() < target {
        line += 1;
        let dir = DIRS[rng.usize(..DIRS.len())];
        let stem = STEMS[rng.usize(..STEMS.len())];
        let verb = VERBS[rng.usize(..VERBS.len())];
        let _ = match index % 4 {
            0 => writeln!(
                out,
                "-rw-r--r-- 1 dev dev {:>7} 2026-05-{:02} {:02}:{:02} ./{dir}/{stem}_{verb}.rs",
                rng.u32(200..60_000),
                rng.u32(1..29),
                rng.u32(0..24),
                rng.u32(0..60)
            ),
            1 => {
                let status = if rng.u8(..20) == 0 { "FAILED" } else { "ok" };
                writeln!(
                    out,
                    "test {}::{stem}::tests::{verb}_{stem}_{line} ... {status} ({} ms)",
                    dir.trim_start_matches("src/").replace('/', "::"),
                    rng.u32(0..900)
                )
            }
            2 => writeln!(
                out,
                "{dir}/{stem}.rs:{}:    // TODO({}): {verb} the {stem} when the {} is full",
                rng.u32(1..2_000),
                AUTHORS[rng.usize(..AUTHORS.len())].split(' ').next().unwrap_or_default(),
                STEMS[rng.usize(..STEMS.len())]
            ),
            _ => writeln!(
                out,
                "commit {:016x}\nAuthor: {}\n    {verb} {stem} in {dir} ({} insertions, {} deletions)",
                rng.u64(..),
                AUTHORS[rng.usize(..AUTHORS.len())],
                rng.u32(1..400),
                rng.u32(0..200)
            ),
        };
    }
    let _ = write!(out, "[{line} lines]");
    out
}

#[cfg(test)]
mod tests;
