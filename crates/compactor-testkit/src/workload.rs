//! Deterministic workloads for benchmarks (D48): realistic agent histories, their rollouts,
//! and realistic Responses event streams.
//!
//! A generated history looks like a long coding session: the harness's initial context, then
//! user turns (some with a screenshot as a `data:` URL), each followed by steps of encrypted
//! reasoning and a tool call with its output (mostly `shell` function calls, some `apply_patch`
//! custom calls; outputs range from one line to tens of kilobytes of code and logs, with the
//! quotes, backslashes, newlines and non-ASCII text that make JSON escaping work), and an
//! assistant reply. Model-generated items carry server ids as real ones do. A history of
//! 10 000 items is about 5.8 MB of JSON and 1M estimated tokens (the "~1M-token,
//! ~4 MB" of D48 assumes plain text; encrypted reasoning and images weigh more bytes per token).
//!
//! Everything is a pure function of its arguments: two runs measure the same bytes.
//!
//! [`soak`] is the long-session workload: hundreds of turns in a small window.

pub mod soak;

use compactor_protocol::{
    ContentItem, MessagePhase, ReasoningSummary, ResponseItem, RolloutItem, RolloutLine,
    SessionMeta, ToolOutput,
};
use serde_json::Value;

mod accuracy;
mod kinds;

pub use accuracy::{ErrorSummary, RequestEstimate, request_estimates};
pub use kinds::{ContentKind, kind_text};

use crate::events::{
    ResponseObject, ResponseStatus, ev_content_part_added, ev_content_part_done,
    ev_output_item_added, ev_output_item_done, ev_output_text_delta, ev_output_text_done,
    ev_reasoning_summary_text_delta, ev_response, stamp_events, usage,
};

/// The timestamp of every generated rollout line.
const TIMESTAMP: &str = "2026-01-01T00:00:00.000Z";

/// The seed of every generator.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// What generated text is made of: code, logs and prose, with characters JSON must escape.
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
    "}",
    "=>",
    "\"name\":",
    "\"value\"",
    "println!(\"{x}\\n\");",
    "\tindent",
    "héllo",
    "→",
    "0x1f",
    "42",
];

/// The tools of generated calls.
const SHELL: &str = "shell";
const APPLY_PATCH: &str = "apply_patch";

/// A small deterministic generator (xorshift64*).
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
        let mut out = String::with_capacity(bytes + 24);
        while out.len() < bytes {
            out.push_str(WORDS[self.below(WORDS.len() as u64) as usize]);
            out.push(if self.below(10) == 0 { '\n' } else { ' ' });
        }
        out
    }

    /// Base64 text of exactly `bytes` bytes.
    fn base64(&mut self, bytes: usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::with_capacity(bytes);
        while out.len() < bytes {
            let mut bits = self.next();
            for _ in 0..10 {
                if out.len() == bytes {
                    break;
                }
                out.push(ALPHABET[(bits & 63) as usize] as char);
                bits >>= 6;
            }
        }
        out
    }

    /// A server-style id: `prefix` and 24 hex digits.
    fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{:016x}{:08x}", self.next(), self.next() as u32)
    }

    /// A PNG screenshot as a `data:` URL of a log-uniform size between `min` and `max` bytes.
    fn screenshot(&mut self, min: u64, max: u64) -> String {
        let bytes = self.size(min, max);
        format!("data:image/png;base64,iVBORw0KGgo{}", self.base64(bytes))
    }
}

/// Builds histories.
struct HistoryWriter {
    rng: Rng,
    calls: u64,
    history: Vec<ResponseItem>,
}

impl HistoryWriter {
    fn push_reasoning(&mut self) {
        let rng = &mut self.rng;
        let summary = if rng.below(3) == 0 {
            vec![ReasoningSummary::SummaryText { text: rng.words(40, 300) }]
        } else {
            Vec::new()
        };
        let encrypted = rng.size(300, 1_500);
        self.history.push(ResponseItem::Reasoning {
            id: Some(rng.id("rs")),
            summary,
            content: None,
            encrypted_content: Some(rng.base64(encrypted)),
        });
    }

    /// One tool call and its output.
    fn push_tool_call(&mut self) {
        self.calls += 1;
        let call_id = format!("call_{:024}", self.calls);
        let rng = &mut self.rng;
        let output = match rng.below(100) {
            // A tool that returns a screenshot.
            0 if rng.below(3) == 0 => ToolOutput::Content(vec![
                ContentItem::InputText { text: rng.words(20, 200) },
                ContentItem::InputImage { image_url: rng.screenshot(6_000, 30_000), detail: None },
            ]),
            // A large file or log dump.
            1 => ToolOutput::Text(rng.words(4_000, 24_000)),
            _ => ToolOutput::Text(rng.words(20, 1_500)),
        };
        if rng.below(5) == 0 {
            self.history.push(ResponseItem::CustomToolCall {
                id: Some(rng.id("ctc")),
                status: Some("completed".to_owned()),
                call_id: call_id.clone(),
                name: APPLY_PATCH.to_owned(),
                input: format!("*** Begin Patch\n{}*** End Patch", rng.words(80, 1_200)),
            });
            self.history.push(ResponseItem::CustomToolCallOutput { call_id, name: None, output });
        } else {
            let command = rng.words(10, 120).replace(['\n', '"', '\\', '\t'], " ");
            let arguments = serde_json::json!({
                "command": ["bash", "-lc", command],
                "workdir": "/repo",
                "timeout_ms": 120_000,
            });
            self.history.push(ResponseItem::FunctionCall {
                id: Some(rng.id("fc")),
                name: SHELL.to_owned(),
                namespace: None,
                arguments: arguments.to_string(),
                call_id: call_id.clone(),
            });
            self.history.push(ResponseItem::FunctionCallOutput { call_id, output });
        }
    }

    fn push_user_turn(&mut self) {
        let rng = &mut self.rng;
        let mut content = vec![ContentItem::InputText { text: rng.words(30, 1_200) }];
        if rng.below(80) == 0 {
            content.push(ContentItem::InputImage {
                image_url: rng.screenshot(10_000, 40_000),
                detail: None,
            });
        }
        self.history.push(ResponseItem::Message {
            id: None,
            role: "user".to_owned(),
            content,
            phase: None,
            extra: Default::default(),
        });
        for _ in 0..self.rng.below(8) {
            if self.rng.below(2) == 0 {
                self.push_reasoning();
            }
            self.push_tool_call();
        }
        let rng = &mut self.rng;
        self.history.push(ResponseItem::Message {
            id: Some(rng.id("msg")),
            role: "assistant".to_owned(),
            content: vec![ContentItem::OutputText { text: rng.words(80, 1_000) }],
            phase: Some(MessagePhase::FinalAnswer),
            extra: Default::default(),
        });
    }
}

/// The initial context a harness injects at the start of a session (D15).
pub fn initial_context() -> Vec<ResponseItem> {
    vec![
        ResponseItem::developer_text(
            "<permissions instructions>Commands run in a sandbox with write access to /repo.\
             </permissions instructions>",
        ),
        ResponseItem::user_text(
            "<environment_context>\n  <cwd>/repo</cwd>\n  <shell>bash</shell>\n\
             </environment_context>",
        ),
    ]
}

/// A realistic history of exactly `items` items (see the module docs).
///
/// # Examples
///
/// ```
/// let history = compactor_testkit::workload::realistic_history(1_000);
/// assert_eq!(history.len(), 1_000);
/// ```
pub fn realistic_history(items: usize) -> Vec<ResponseItem> {
    history_with_tool_tail(items, 0)
}

/// A realistic history of exactly `items` items whose last user turn ends with `tail_pairs` tool
/// call/output pairs: the shape that makes pre-compaction trimming pop a long run of outputs.
pub fn history_with_tool_tail(items: usize, tail_pairs: usize) -> Vec<ResponseItem> {
    let mut writer =
        HistoryWriter { rng: Rng(SEED), calls: 0, history: Vec::with_capacity(items + 32) };
    let tail = if tail_pairs > 0 { 1 + 2 * tail_pairs } else { 0 };
    let body = items.saturating_sub(tail);
    writer.history.extend(initial_context());
    while writer.history.len() < body {
        writer.push_user_turn();
    }
    writer.history.truncate(body);
    answer_last_call(&mut writer.history);
    if tail > 0 {
        writer.history.push(ResponseItem::user_text("run every test and fix what fails"));
        for _ in 0..tail_pairs {
            writer.push_tool_call();
        }
    }
    writer.history.truncate(items);
    answer_last_call(&mut writer.history);
    writer.history
}

/// Replaces a call that truncation separated from its output with an assistant reply, so every
/// call in a generated history is answered.
fn answer_last_call(history: &mut [ResponseItem]) {
    if let Some(last) = history.last_mut()
        && last.call_id().is_some()
    {
        *last = ResponseItem::assistant_text("The command was not run.");
    }
}

/// A rollout holding `history` as the session `thread_id` wrote it: a `session_meta` line and
/// one `response_item` line per item, as JSON lines.
pub fn rollout_jsonl(thread_id: &str, history: &[ResponseItem]) -> Vec<u8> {
    let mut out = Vec::new();
    let meta = SessionMeta {
        id: thread_id.to_owned(),
        originator: Some("compactor-bench".to_owned()),
        ..SessionMeta::default()
    };
    let lines = std::iter::once(RolloutItem::SessionMeta(meta))
        .chain(history.iter().cloned().map(RolloutItem::ResponseItem));
    for item in lines {
        serde_json::to_writer(&mut out, &RolloutLine::new(TIMESTAMP, item))
            .expect("a rollout line serializes");
        out.push(b'\n');
    }
    out
}

/// Realistic responses, stamped as the testkit sends them, until their JSON reaches `min_bytes`.
///
/// Each response is a sampling turn of a coding agent: `response.created` and `.in_progress`;
/// reasoning with summary deltas and encrypted content; then either an assistant message streamed
/// as many small text deltas, or one to three function calls with argument deltas; and a
/// `response.completed` repeating every output item, with usage.
pub fn response_streams(min_bytes: usize) -> Vec<Vec<Value>> {
    let mut rng = Rng(SEED ^ 0x5555);
    let mut responses = Vec::new();
    let mut total = 0usize;
    let mut number = 0u64;
    while total < min_bytes {
        number += 1;
        let events = stamp_events(one_response(&mut rng, number));
        total += events.iter().map(|event| event.to_string().len()).sum::<usize>();
        responses.push(events);
    }
    responses
}

fn one_response(rng: &mut Rng, number: u64) -> Vec<Value> {
    let id = format!("resp_{number:08}");
    let mut response = ResponseObject::new(&id, ResponseStatus::InProgress);
    response.created_at = 1_767_225_600 + number;
    let mut events = vec![
        ev_response("response.created", &response),
        ev_response("response.in_progress", &response),
    ];
    let reasoning_id = rng.id("rs");
    events.push(ev_output_item_added(serde_json::json!({
        "type": "reasoning", "id": reasoning_id, "summary": [],
    })));
    events.push(serde_json::json!({
        "type": "response.reasoning_summary_part.added",
        "item_id": reasoning_id,
        "summary_index": 0,
        "part": { "type": "summary_text", "text": "" },
    }));
    let mut summary = String::new();
    for _ in 0..rng.size(4, 60) {
        let delta = rng.words(8, 40);
        summary.push_str(&delta);
        events.push(ev_reasoning_summary_text_delta(&reasoning_id, &delta, 0));
    }
    let encrypted = rng.size(1_500, 12_000);
    events.push(ev_output_item_done(serde_json::json!({
        "type": "reasoning",
        "id": reasoning_id,
        "summary": [{ "type": "summary_text", "text": summary }],
        "encrypted_content": rng.base64(encrypted),
    })));
    if rng.below(2) == 0 {
        let message_id = rng.id("msg");
        events.push(ev_output_item_added(serde_json::json!({
            "type": "message", "id": message_id, "role": "assistant",
            "status": "in_progress", "content": [],
        })));
        events.push(ev_content_part_added(&message_id));
        let mut text = String::new();
        for _ in 0..rng.size(20, 400) {
            let delta = rng.words(4, 24);
            text.push_str(&delta);
            events.push(ev_output_text_delta(&message_id, &delta));
        }
        events.push(ev_output_text_done(&message_id, &text));
        events.push(ev_content_part_done(&message_id, &text));
        events.push(ev_output_item_done(crate::events::assistant_message_item(&message_id, &text)));
    } else {
        for _ in 0..=rng.below(3) {
            let item_id = rng.id("fc");
            let call_id = rng.id("call");
            let command = rng.words(10, 200).replace(['\n', '"', '\\', '\t'], " ");
            let arguments =
                serde_json::json!({ "command": ["bash", "-lc", command], "workdir": "/repo" })
                    .to_string();
            events.push(ev_output_item_added(serde_json::json!({
                "type": "function_call", "id": item_id, "call_id": call_id, "name": SHELL,
                "arguments": "", "status": "in_progress",
            })));
            let chars: Vec<char> = arguments.chars().collect();
            for piece in chars.chunks(24) {
                events.push(serde_json::json!({
                    "type": "response.function_call_arguments.delta",
                    "item_id": item_id,
                    "delta": piece.iter().collect::<String>(),
                }));
            }
            events.push(serde_json::json!({
                "type": "response.function_call_arguments.done",
                "item_id": item_id,
                "arguments": arguments,
            }));
            events.push(ev_output_item_done(serde_json::json!({
                "type": "function_call", "id": item_id, "call_id": call_id, "name": SHELL,
                "arguments": arguments, "status": "completed",
            })));
        }
    }
    response.status = ResponseStatus::Completed;
    response.usage = Some(usage(rng.size(2_000, 200_000) as i64, rng.size(50, 4_000) as i64));
    events.push(ev_response("response.completed", &response));
    events
}

/// The environment variable naming the folder where benches write their ratios for
/// `cargo xtask bench`, one `<bench>.json` file each.
pub const BENCH_RESULTS_ENV: &str = "COMPACTOR_BENCH_RESULTS";

/// Every ratio `cargo xtask bench` checks, with its target and what it compares: the one place
/// the targets live (D48). A bench reports a ratio through [`MeasuredRatio::new`], which takes
/// its target from here; `cargo xtask bench` expects each of these names, and its tests check that
/// D48 in `docs/decisions.md` lists the same names and bounds.
pub const TARGETS: &[(&str, Target, &str)] = &[
    (
        "v2_prepare_install_vs_to_vec",
        Target::AtMost(2.0),
        "v2 preparation + installation of 10 000 items vs one serde_json::to_vec",
    ),
    (
        "trim_estimate_100k_vs_10k",
        Target::AtMost(12.0),
        "trimming + estimation of 100 000 items vs 10 000 items",
    ),
    (
        "o200k_count_10k_vs_to_vec",
        Target::AtMost(60.0),
        "counting 10 000 items with o200k from scratch vs one serde_json::to_vec (D128)",
    ),
    (
        "cached_estimate_10k_vs_to_vec",
        Target::AtMost(0.05),
        "a turn's estimate at 10 000 items with cached counts vs one serde_json::to_vec (D128)",
    ),
    (
        "sse_decode_vs_serde_value",
        Target::AtLeast(1.0),
        "SSE decoding of a 50 MB event stream vs serde_json Value parsing (throughput)",
    ),
    (
        "websocket_decode_vs_serde_value",
        Target::AtLeast(1.0),
        "WebSocket decoding of a 50 MB event stream vs serde_json Value parsing (throughput)",
    ),
    (
        "sse_decode_vs_async_openai",
        Target::AtLeast(1.5),
        "SSE decoding of the same bytes vs async-openai's stream event types over \
         eventsource-stream (throughput)",
    ),
    (
        "ws_turn_time_vs_to_vec",
        Target::AtMost(1.5),
        "the WebSocket transport's work for a normal turn at 10 000 items vs one \
         serde_json::to_vec of the history",
    ),
    (
        "ws_turn_memory_vs_history_json",
        Target::AtMost(0.2),
        "the memory a normal WebSocket turn at 10 000 items adds vs the history's JSON",
    ),
    (
        "request_parse_vs_derived",
        Target::AtLeast(2.0),
        "typed parse of a 10 000-item request on one thread, the general item reading's time \
         (derived for all but messages) vs the testkit's reading (items by the direct reader)",
    ),
    (
        "e2e_ws_wall_vs_serialize_transfer",
        Target::AtMost(4.0),
        "manual v2 compaction of 10 000 items over WebSocket vs one serialization + loopback \
         transfer",
    ),
    (
        "e2e_ws_client_cpu_vs_to_vec",
        Target::AtMost(2.5),
        "client CPU of a manual v2 compaction of 10 000 items over WebSocket vs one \
         serde_json::to_vec of the request",
    ),
    (
        "e2e_ws_peak_memory_vs_history_json",
        Target::AtMost(4.0),
        "client peak memory of a manual v2 compaction over WebSocket vs the history's JSON",
    ),
    (
        "e2e_http_wall_vs_serialize_transfer",
        Target::AtMost(4.0),
        "manual v2 compaction of 10 000 items over HTTP vs one serialization + loopback transfer",
    ),
    (
        "e2e_http_client_cpu_vs_to_vec",
        Target::AtMost(2.5),
        "client CPU of a manual v2 compaction of 10 000 items over HTTP vs one \
         serde_json::to_vec of the request",
    ),
    (
        "e2e_http_peak_memory_vs_history_json",
        Target::AtMost(4.0),
        "client peak memory of a manual v2 compaction over HTTP vs the history's JSON",
    ),
    (
        "soak_ws_client_cpu_vs_to_vec_recorded",
        Target::AtMost(60.0),
        "client CPU of a 300-turn soak over WebSocket vs one to_vec of its rollout",
    ),
    (
        "soak_ws_peak_memory_vs_final_history_json",
        Target::AtMost(200.0),
        "client peak memory of a 300-turn soak over WebSocket vs its final history's JSON",
    ),
    (
        "soak_ws_rollout_bytes_per_turn_last_vs_first_100",
        Target::AtMost(1.2),
        "rollout bytes per turn of a soak over WebSocket: the last 100 turns vs the first 100",
    ),
    (
        "soak_http_client_cpu_vs_to_vec_recorded",
        Target::AtMost(60.0),
        "client CPU of a 300-turn soak over HTTP vs one to_vec of its rollout",
    ),
    (
        "soak_http_peak_memory_vs_final_history_json",
        Target::AtMost(200.0),
        "client peak memory of a 300-turn soak over HTTP vs its final history's JSON",
    ),
    (
        "soak_http_rollout_bytes_per_turn_last_vs_first_100",
        Target::AtMost(1.2),
        "rollout bytes per turn of a soak over HTTP: the last 100 turns vs the first 100",
    ),
];

/// Which side of a ratio a target bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// The ratio may be at most this.
    AtMost(f64),
    /// The ratio must be at least this.
    AtLeast(f64),
}

/// One ratio a bench measured, with its D48 target.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasuredRatio {
    /// A stable name, e.g. `trim_estimate_100k_vs_10k`.
    pub name: String,
    /// What is compared with what.
    pub description: String,
    /// The measured ratio.
    pub value: f64,
    /// The target it must meet.
    pub target: Target,
    /// The measurements behind the ratio, e.g. `12.1 ms / 4.3 ms`.
    pub details: String,
}

impl MeasuredRatio {
    /// The ratio `name` of [`TARGETS`], measured as `value`, with its target and description
    /// from there. A name that is not in [`TARGETS`] gets a target no value meets, so a bench
    /// cannot report a ratio nobody checks.
    pub fn new(name: &str, value: f64, details: String) -> Self {
        let (target, description) = TARGETS
            .iter()
            .find(|(known, _, _)| *known == name)
            .map_or((Target::AtMost(f64::NEG_INFINITY), "not a ratio of TARGETS"), |entry| {
                (entry.1, entry.2)
            });
        Self { name: name.to_owned(), description: description.to_owned(), value, target, details }
    }

    /// Whether the ratio meets its target.
    pub fn passes(&self) -> bool {
        match self.target {
            Target::AtMost(limit) => self.value <= limit,
            Target::AtLeast(limit) => self.value >= limit,
        }
    }

    /// The JSON record `cargo xtask bench` reads.
    pub fn to_json(&self) -> Value {
        let (bound, limit) = match self.target {
            Target::AtMost(limit) => ("at_most", limit),
            Target::AtLeast(limit) => ("at_least", limit),
        };
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "value": self.value,
            "bound": bound,
            "target": limit,
            "pass": self.passes(),
            "details": self.details,
        })
    }
}

/// Prints `ratios` with pass or fail and, when [`BENCH_RESULTS_ENV`] names a folder, writes them
/// there as `<bench>.json`. Returns whether every target holds.
///
/// # Errors
///
/// When the results file cannot be written.
#[allow(clippy::print_stdout, reason = "benches report on the terminal")]
pub fn report(bench: &str, ratios: &[MeasuredRatio]) -> std::io::Result<bool> {
    for ratio in ratios {
        let (sign, limit) = match ratio.target {
            Target::AtMost(limit) => ("<=", limit),
            Target::AtLeast(limit) => (">=", limit),
        };
        let verdict = if ratio.passes() { "PASS" } else { "FAIL" };
        println!(
            "{verdict} {}: {:.2}x (target {sign} {limit}x) [{}]",
            ratio.name, ratio.value, ratio.details
        );
    }
    if let Some(dir) = std::env::var_os(BENCH_RESULTS_ENV) {
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        let records: Vec<Value> = ratios.iter().map(MeasuredRatio::to_json).collect();
        let json = serde_json::json!({ "bench": bench, "ratios": records });
        std::fs::write(dir.join(format!("{bench}.json")), format!("{json:#}\n"))?;
    }
    Ok(ratios.iter().all(MeasuredRatio::passes))
}

#[cfg(test)]
mod tests;
