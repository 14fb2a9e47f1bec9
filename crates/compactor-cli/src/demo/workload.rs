//! The demo's scripted coding session: the user's prompts, the tools (`shell`, `read_file`,
//! `apply_patch`), the calls the embedded model makes in each turn, and the tools' large,
//! deterministic outputs (file listings, test logs with exit codes, search results, git history,
//! source files).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use compactor_core::{ToolCall, ToolFuture, ToolHandler};
use compactor_protocol::{ResponseItem, ToolOutput, ToolSpec};
use compactor_testkit::{PlannedCall, ScriptedTurn, ToolScript};
use serde_json::{Value, json};

/// The tool that runs a command.
pub(crate) const SHELL: &str = "shell";

/// The tool that reads a file.
pub(crate) const READ_FILE: &str = "read_file";

/// The tool that edits files.
pub(crate) const APPLY_PATCH: &str = "apply_patch";

/// The smallest and largest shell output, in bytes (about 2.5k to 3.5k tokens).
const OUTPUT_BYTES: std::ops::RangeInclusive<usize> = 10_000..=14_000;

/// The smallest and largest file `read_file` returns, in bytes.
const FILE_BYTES: std::ops::RangeInclusive<usize> = 2_000..=3_000;

/// What the agent does in each turn of [`PROMPTS`]: a shell command, the files it reads, and
/// the file it patches. No path here appears in a prompt, a command or a shell output, so a path
/// is in a request only when the history (or the progress ledger) shows that the file was read.
const PLAN: [(&str, &[&str], Option<&str>); 12] = [
    ("find . -name '*.rs' | sort", &["src/storage/pager.rs"], None),
    ("cargo test --workspace", &["tests/wal_recovery.rs"], None),
    ("grep -rn TODO src", &["src/query/optimizer.rs", "src/storage/freelist.rs"], None),
    ("git log --oneline -- src/storage", &["src/storage/overflow.rs"], None),
    ("ls -lS src/storage", &["src/wal/checkpoint.rs"], None),
    ("RUST_BACKTRACE=1 cargo test -p wal", &["src/wal/writer.rs"], Some("src/wal/writer.rs")),
    ("grep -rn 'unwrap()' src/query", &["src/query/executor.rs"], None),
    ("git diff HEAD~5 --stat", &["src/index/bloom.rs"], None),
    ("ls -l benches", &["benches/insert_bench.rs"], None),
    ("cargo test -p wal", &["src/wal/reader.rs"], Some("src/wal/reader.rs")),
    ("grep -rn 'enum .*Error' src", &["src/util/errors.rs"], None),
    ("git log -1 -- src/query", &["src/query/tokenizer.rs"], Some("src/query/tokenizer.rs")),
];

/// The calls the embedded model makes, turn by turn: each turn's prompt starts it, and the
/// model makes all of the turn's calls at once. `forgetful`: the model also reads again, at the
/// start of a turn, every file read earlier whose path the request does not show.
pub(crate) fn script(forgetful: bool) -> ToolScript {
    let turns = PROMPTS
        .iter()
        .zip(PLAN)
        .map(|(prompt, (command, reads, patch))| {
            let mut calls = vec![PlannedCall::new(SHELL, &json!({ "command": command }))];
            calls.extend(reads.iter().map(|path| PlannedCall::new(READ_FILE, &json!({ "path": path }))));
            if let Some(path) = patch {
                let patch = format!(
                    "*** Begin Patch\n*** Update File: {path}\n@@\n-    let n = len;\n+    let n = len.min(MAX);\n+    debug_assert!(n <= MAX);\n*** End Patch\n"
                );
                calls.push(PlannedCall::new(APPLY_PATCH, &json!({ "input": patch })));
            }
            ScriptedTurn { marker: (*prompt).to_owned(), calls }
        })
        .collect();
    ToolScript { turns, forgetful, read_tool: READ_FILE.to_owned() }
}

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
a small embedded database written in Rust. Use the shell, read_file and apply_patch tools to \
inspect and fix the code before you answer, and keep answers short.";

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
            "<permissions instructions>The shell tool runs commands in the repository; apply_patch edits its files.</permissions instructions>",
        ),
        ResponseItem::user_text(format!(
            "<environment_context><cwd>{CWD}</cwd><shell>bash</shell></environment_context>"
        )),
    ]
}

/// The functions the model may call.
pub(crate) fn tool_specs() -> Vec<ToolSpec> {
    let function = |name: &str, description: &str, argument: &str, about: &str| {
        json!({
            "type": "function",
            "name": name,
            "description": description,
            "strict": false,
            "parameters": {
                "type": "object",
                "properties": { argument: { "type": "string", "description": about } },
                "required": [argument],
                "additionalProperties": false
            }
        })
    };
    vec![
        function(
            SHELL,
            "Runs a shell command in the repository and returns its exit code and output.",
            "command",
            "The command line to run.",
        ),
        function(READ_FILE, "Returns the text of a file.", "path", "The file's path."),
        function(APPLY_PATCH, "Applies a patch to the repository's files.", "input", "The patch."),
    ]
}

/// Counts what the tools produced, for the progress display.
#[derive(Debug, Default)]
pub(crate) struct ToolStats {
    /// Every call.
    pub(crate) calls: AtomicU64,
    /// Every byte of output.
    pub(crate) bytes: AtomicU64,
    /// `read_file` calls of a file read before.
    pub(crate) rereads: AtomicU64,
}

/// The demo's tool handler: every shell call gets the next output of a deterministic sequence,
/// a file its deterministic text, a patch a success.
#[derive(Debug, Clone)]
pub(crate) struct DemoTools {
    seed: u64,
    stats: Arc<ToolStats>,
    /// The files read so far.
    read: Arc<Mutex<BTreeSet<String>>>,
}

impl DemoTools {
    pub(crate) fn new(seed: u64) -> Self {
        Self { seed, stats: Arc::default(), read: Arc::default() }
    }

    pub(crate) fn stats(&self) -> Arc<ToolStats> {
        Arc::clone(&self.stats)
    }
}

impl ToolHandler for DemoTools {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let index = self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let argument = |name: &str| {
            serde_json::from_str::<Value>(&call.input)
                .ok()
                .and_then(|args| args.get(name).and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| call.input.clone())
        };
        let text = match call.name.as_str() {
            READ_FILE => {
                let path = argument("path");
                let again = match self.read.lock() {
                    Ok(mut read) => !read.insert(path.clone()),
                    Err(_) => false,
                };
                if again {
                    self.stats.rereads.fetch_add(1, Ordering::Relaxed);
                }
                file_text(self.seed, &path)
            }
            APPLY_PATCH => {
                let files: Vec<String> = argument("input")
                    .lines()
                    .filter_map(|line| line.strip_prefix("*** Update File: "))
                    .map(|path| format!("M {path}"))
                    .collect();
                format!(
                    "Exit code: 0\nOutput:\nSuccess. Updated the following files:\n{}",
                    files.join("\n")
                )
            }
            _ => {
                let output = tool_output(self.seed, index, &argument("command"));
                let code = if output.contains("FAILED") { 101 } else { 0 };
                format!("Exit code: {code}\nOutput:\n{output}")
            }
        };
        self.stats.bytes.fetch_add(text.len() as u64, Ordering::Relaxed);
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

/// The text of the file at `path`: Rust-like source between 2 and 3 kB, the same for the same
/// seed and path.
pub(crate) fn file_text(seed: u64, path: &str) -> String {
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut rng = fastrand::Rng::with_seed(seed ^ hash);
    let target = rng.usize(FILE_BYTES);
    let mut out = format!("// {path}\n");
    while out.len() < target {
        let stem = STEMS[rng.usize(..STEMS.len())];
        let verb = VERBS[rng.usize(..VERBS.len())];
        let _ = writeln!(
            out,
            "pub fn {verb}_{stem}(len: usize) -> usize {{\n    let n = len;\n    n.saturating_mul({})\n}}",
            rng.u32(2..64)
        );
    }
    out
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
