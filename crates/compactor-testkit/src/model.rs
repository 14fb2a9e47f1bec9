//! The reference model (D14): deterministic answers for demos and end-to-end tests.
//!
//! - A normal request gets one assistant message that names the last user message (or the tool
//!   output it answers), or a function call when [`ToolCallPolicy`] says so.
//! - A request whose last input item is `{"type":"context_compaction"}` gets one
//!   `context_compaction` item; `{"type":"compaction_trigger"}` gets one `compaction` item. Both
//!   carry a digest of the compacted items sealed with the [`SealKey`].
//! - Sealed items in the input are verified; a tampered one is rejected with
//!   `400 invalid_encrypted_content`.
//! - `usage.input_tokens` counts the instructions, the tools and the full input with
//!   [`TokenCounter::O200k`], as a real server counts with its tokenizer (D120): a session
//!   counting with `O200k` agrees with it, one counting with `Bytes4` learns its error from it
//!   (D123). A sealed item counts by the encrypted-blob rule, so usage drops after a compaction.
//!   `usage.output_tokens` counts the output items the same way.
//! - A model with a context window ([`ContextWindows`]) refuses any request, compaction requests
//!   included, whose input tokens (counted as the usage is) exceed the window, as the API does:
//!   HTTP 400 `context_length_exceeded`, and on a WebSocket a `response.failed` with that code
//!   (D111).
//!
//! The answer is a pure function of the request (plus a per-server id counter), structured as
//! "verify, decide the output items, build the events", so server-managed compaction can later
//! be added as one more decision.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{CompactRequest, ResponseItem, ResponsesApiRequest, ToolSpec};
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::events::{
    DEFAULT_MODEL, ResponseObject, ResponseStatus, assistant_message_item, ev_compacting,
    ev_content_part_added, ev_content_part_done, ev_message_item_added, ev_output_item_added,
    ev_output_item_done, ev_output_text_delta, ev_output_text_done, ev_response,
    function_call_item, unix_now, usage,
};
use crate::faults::ErrorReply;
use crate::seal::SealKey;
use crate::token_cache::TokenCache;

/// How the reference model counts usage: with a real tokenizer, as a server does.
const USAGE_COUNTER: TokenCounter = TokenCounter::O200k;

/// How many user messages a digest quotes (the most recent ones).
const DIGEST_USER_MESSAGES: usize = 8;
/// How many words of each user message a digest or a reply quotes.
const SNIPPET_WORDS: usize = 8;
/// The most characters of a snippet.
const SNIPPET_CHARS: usize = 80;
/// Words per text delta.
const WORDS_PER_DELTA: usize = 4;

/// The reference model's settings.
#[derive(Debug, Clone, Default)]
pub struct ReferenceModelConfig {
    /// The key that seals compaction items (default: [`crate::DEFAULT_SEAL_KEY`]).
    pub seal_key: SealKey,
    /// When the model calls a tool instead of answering with text.
    pub tool_calls: ToolCallPolicy,
    /// Deterministic filler appended to every assistant reply, in bytes, so a demo can fill a
    /// context window quickly.
    pub reply_padding_bytes: usize,
    /// The context window of each model (default: none, every request is answered).
    pub context_windows: ContextWindows,
}

/// The context windows of the reference model's models, in tokens: one for every model, and
/// others for named models.
///
/// # Examples
///
/// ```
/// use compactor_testkit::ContextWindows;
///
/// let windows = ContextWindows::every_model(16_000).with_model("gpt-5", 272_000);
/// assert_eq!(windows.window("gpt-5"), Some(272_000));
/// assert_eq!(windows.window("gpt-5-mini"), Some(16_000));
/// assert_eq!(ContextWindows::default().window("gpt-5"), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextWindows {
    every_model: Option<u64>,
    models: Vec<(String, u64)>,
}

impl ContextWindows {
    /// One window for every model.
    pub fn every_model(tokens: u64) -> Self {
        Self { every_model: Some(tokens), models: Vec::new() }
    }

    /// The same windows, with `tokens` for `model`.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>, tokens: u64) -> Self {
        let model = model.into();
        self.models.retain(|(name, _)| *name != model);
        self.models.push((model, tokens));
        self
    }

    /// The window of `model`, when it has one.
    pub fn window(&self, model: &str) -> Option<u64> {
        self.models
            .iter()
            .find_map(|(name, tokens)| (name == model).then_some(*tokens))
            .or(self.every_model)
    }
}

/// Why the reference model does not answer a request with a response.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// An error answer: an HTTP status, or a WebSocket `error` event.
    Error(ErrorReply),
    /// The input is over the model's window: HTTP 400, or a WebSocket `response.failed` of the
    /// response with this id (see [`ErrorReply::context_length_exceeded`]).
    ContextLength {
        /// The input's estimate.
        input_tokens: u64,
        /// The model's window.
        window: u64,
        /// The id of the failed response.
        response_id: String,
    },
}

/// When the reference model answers with a function call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolCallPolicy {
    /// Never: every answer is text.
    #[default]
    Never,
    /// When the last input item is a user message containing `trigger`, answer with one call of
    /// the function `name` with `arguments` (a JSON string). The tool output that comes back gets
    /// a text answer.
    OnUserText {
        /// The text that makes the model call the tool.
        trigger: String,
        /// The function's name.
        name: String,
        /// The call's arguments, a JSON document as a string.
        arguments: String,
    },
    /// A scripted agent: see [`ToolScript`].
    Script(ToolScript),
}

/// A scripted agent that calls several tools per turn.
///
/// When the last input item is a user message that contains the `marker` of one of `turns`
/// (the first that matches), the model answers with all of that turn's calls at once; the
/// outputs that come back get a text answer.
///
/// With `forgetful` set, the model behaves like an agent that lost track of its work in a
/// compaction: before the turn's own calls, it calls `read_tool` again for every file an earlier
/// turn of the script read (the `path` argument of its `read_tool` calls) whose path string does
/// not appear anywhere in the request. A history that still shows the earlier reads, or a
/// progress ledger that lists the files, spares the re-reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolScript {
    /// The turns, in order.
    pub turns: Vec<ScriptedTurn>,
    /// Whether the model reads again the files it cannot find in the request.
    pub forgetful: bool,
    /// The tool that reads a file, by a `path` argument.
    pub read_tool: String,
}

/// One turn of a [`ToolScript`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScriptedTurn {
    /// The text in the user message that starts this turn.
    pub marker: String,
    /// The calls the model makes, all in its first answer.
    pub calls: Vec<PlannedCall>,
}

/// One function call of a [`ScriptedTurn`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlannedCall {
    /// The function's name.
    pub name: String,
    /// The call's arguments, a JSON document as a string.
    pub arguments: String,
}

impl PlannedCall {
    /// A call of `name` with `arguments`.
    pub fn new(name: impl Into<String>, arguments: &Value) -> Self {
        Self { name: name.into(), arguments: arguments.to_string() }
    }

    /// The `path` argument of this call.
    fn path(&self) -> Option<String> {
        let arguments: Value = serde_json::from_str(&self.arguments).ok()?;
        arguments.get("path")?.as_str().map(str::to_owned)
    }
}

impl ToolScript {
    /// The calls answering a user message with `text`, in a request whose items are `input`.
    fn calls(&self, text: &str, input: &[ResponseItem]) -> Vec<PlannedCall> {
        let Some(index) = self.turns.iter().position(|turn| text.contains(&turn.marker)) else {
            return Vec::new();
        };
        let mut calls = Vec::new();
        if self.forgetful {
            let request = serde_json::to_string(input).unwrap_or_default();
            for call in self.turns[..index].iter().flat_map(|turn| &turn.calls) {
                if call.name != self.read_tool {
                    continue;
                }
                let Some(path) = call.path() else { continue };
                let planned = calls.iter().any(|c: &PlannedCall| c.path().as_ref() == Some(&path));
                if !planned && !request.contains(&path) {
                    calls.push(PlannedCall::new(
                        self.read_tool.clone(),
                        &serde_json::json!({ "path": path }),
                    ));
                }
            }
        }
        calls.extend(self.turns[index].calls.iter().cloned());
        calls
    }
}

/// What the compacted history was made of: read back from sealed items in an input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Memory {
    /// The newest compaction generation seen (0: none).
    generation: u64,
    /// Items summarized by all sealed items seen.
    summarized_items: u64,
}

/// The request fields a digest records.
struct DigestScope<'a> {
    model: &'a str,
    /// The estimated tokens of the instructions and the compacted items.
    tokens: u64,
}

/// The reference model of one server; ids are numbered per server.
#[derive(Debug)]
pub(crate) struct ReferenceModel {
    config: ReferenceModelConfig,
    next_id: AtomicU64,
    /// Requests refused for an input over the window.
    refused_over_window: AtomicU64,
    /// The usage counts of the items of recent requests (D162).
    tokens: TokenCache,
}

impl ReferenceModel {
    pub(crate) fn new(config: ReferenceModelConfig) -> Self {
        Self {
            config,
            next_id: AtomicU64::new(1),
            refused_over_window: AtomicU64::new(0),
            tokens: TokenCache::new(USAGE_COUNTER),
        }
    }

    /// The input tokens of a request: its instructions, its tools and its items.
    fn input_tokens(&self, instructions: &str, tools: &[ToolSpec], input: &[ResponseItem]) -> u64 {
        let tools = if tools.is_empty() { 0 } else { USAGE_COUNTER.json_tokens(tools) };
        self.history_tokens(instructions, input).saturating_add(tools)
    }

    /// The tokens of `instructions` and `input`, counted as the usage counts them.
    pub(crate) fn history_tokens(&self, instructions: &str, input: &[ResponseItem]) -> u64 {
        self.tokens.history_tokens(instructions, input)
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// The events answering a `/responses` request whose resolved input is `full_input`.
    pub(crate) fn respond(
        &self,
        request: &ResponsesApiRequest<'_>,
        full_input: &[ResponseItem],
    ) -> Result<Vec<Value>, Refusal> {
        let memory = self.verify_sealed(full_input).map_err(Refusal::Error)?;
        let response_id = self.next_id("resp");
        // Each item is serialized once for the estimate; the digest reuses it.
        let input_tokens = self.input_tokens(&request.instructions, &request.tools, full_input);
        if let Some(window) = self.window_exceeded(&request.model, input_tokens) {
            return Err(Refusal::ContextLength { input_tokens, window, response_id });
        }
        let mut response = ResponseObject::new(&response_id, ResponseStatus::InProgress);
        response.model = if request.model.is_empty() {
            DEFAULT_MODEL.to_owned()
        } else {
            request.model.to_string()
        };
        response.tools = request.tools.to_vec();
        response.tool_choice = Value::from(request.tool_choice.as_ref());
        response.parallel_tool_calls = request.parallel_tool_calls;

        let mut events = vec![ev_response("response.created", &response)];
        let mut output = Vec::new();
        if request.generate != Some(false) {
            let scope = |trigger: &ResponseItem| DigestScope {
                model: &response.model,
                tokens: input_tokens.saturating_sub(USAGE_COUNTER.item_tokens(trigger)),
            };
            match full_input.split_last() {
                Some((
                    trigger @ ResponseItem::ContextCompaction { encrypted_content: None, .. },
                    before,
                )) => {
                    let scope = scope(trigger);
                    let item = self.sealed_item("context_compaction", "cc", before, &scope, memory);
                    events.push(ev_output_item_done(item.clone()));
                    output.push(item);
                }
                Some((trigger @ ResponseItem::CompactionTrigger, before)) => {
                    let scope = scope(trigger);
                    let item = self.sealed_item("compaction", "cmp", before, &scope, memory);
                    events.push(ev_output_item_done(item.clone()));
                    output.push(item);
                }
                _ => {
                    // Server-managed compaction (`context_management`): past the threshold the
                    // server compacts by itself and answers after the compaction item.
                    if let Some(threshold) = compact_threshold(request)
                        && input_tokens > threshold
                    {
                        let scope = DigestScope { model: &response.model, tokens: input_tokens };
                        let mut item =
                            self.sealed_item("compaction", "cmp", full_input, &scope, memory);
                        item["created_by"] = Value::from("server");
                        let id = item["id"].as_str().unwrap_or_default().to_owned();
                        events.push(ev_compacting(&id));
                        events.push(ev_output_item_done(item.clone()));
                        output.push(item);
                    }
                    let calls = self.tool_calls(full_input);
                    if calls.is_empty() {
                        let text = self.reply_text(full_input, memory);
                        let id = self.next_id("msg");
                        events.extend(message_events(&id, &text));
                        let item = assistant_message_item(&id, &text);
                        events.push(ev_output_item_done(item.clone()));
                        output.push(item);
                    }
                    for call in calls {
                        let mut added = call.clone();
                        added["status"] = Value::from("in_progress");
                        events.push(ev_output_item_added(added));
                        events.push(ev_output_item_done(call.clone()));
                        output.push(call);
                    }
                }
            }
            response.usage = Some(usage(saturate(input_tokens), saturate(output_tokens(&output))));
        } else {
            response.usage = Some(usage(0, 0));
        }
        response.status = ResponseStatus::Completed;
        response.output = output;
        events.push(ev_response("response.completed", &response));
        Ok(events)
    }

    /// The JSON answer of `/responses/compact`: the retained user messages and one sealed
    /// `compaction` item.
    pub(crate) fn compact(
        &self,
        request: &CompactRequest<'_>,
        input: &[ResponseItem],
    ) -> Result<Value, ErrorReply> {
        let memory = self.verify_sealed(input)?;
        let input_tokens = self.input_tokens(&request.instructions, &request.tools, input);
        if let Some(window) = self.window_exceeded(&request.model, input_tokens) {
            return Err(ErrorReply::context_length_exceeded(input_tokens, window));
        }
        let mut output: Vec<Value> = input
            .iter()
            .filter(|item| item.role() == Some("user"))
            .filter_map(|item| serde_json::to_value(item).ok())
            .collect();
        let scope = DigestScope { model: &request.model, tokens: input_tokens };
        output.push(self.sealed_item("compaction", "cmp", input, &scope, memory));
        let usage = usage(saturate(input_tokens), saturate(output_tokens(&output)));
        Ok(json!({
            "id": self.next_id("resp"),
            "object": "response.compaction",
            "created_at": unix_now(),
            "output": output,
            "usage": crate::events::usage_json(&usage),
        }))
    }

    /// The window of `model`, when an input of `input_tokens` exceeds it (and is refused).
    fn window_exceeded(&self, model: &str, input_tokens: u64) -> Option<u64> {
        let model = if model.is_empty() { DEFAULT_MODEL } else { model };
        let window = self.config.context_windows.window(model)?;
        if input_tokens <= window {
            return None;
        }
        self.refused_over_window.fetch_add(1, Ordering::Relaxed);
        Some(window)
    }

    /// How many requests were refused for an input over the window.
    pub(crate) fn refused_over_window(&self) -> u64 {
        self.refused_over_window.load(Ordering::Relaxed)
    }

    /// Opens every sealed compaction item of `input`.
    fn verify_sealed(&self, input: &[ResponseItem]) -> Result<Memory, ErrorReply> {
        let mut memory = Memory::default();
        for (index, item) in input.iter().enumerate() {
            let (ResponseItem::Compaction { encrypted_content: sealed, .. }
            | ResponseItem::ContextCompaction { encrypted_content: Some(sealed), .. }) = item
            else {
                continue;
            };
            let digest = self.config.seal_key.open(sealed).map_err(|err| {
                ErrorReply::invalid_request(
                    "invalid_encrypted_content",
                    &format!(
                        "The encrypted content of input[{index}] ({}) could not be verified: {err}.",
                        item.item_type()
                    ),
                )
            })?;
            let number = |key: &str| digest.get(key).and_then(Value::as_u64).unwrap_or(0);
            memory.generation = memory.generation.max(number("generation"));
            memory.summarized_items =
                memory.summarized_items.saturating_add(number("summarized_items"));
        }
        Ok(memory)
    }

    /// A sealed item of `kind` summarizing `items`.
    fn sealed_item(
        &self,
        kind: &str,
        id_prefix: &str,
        items: &[ResponseItem],
        scope: &DigestScope<'_>,
        memory: Memory,
    ) -> Value {
        let mut types: BTreeMap<&str, u64> = BTreeMap::new();
        for item in items {
            *types.entry(item.item_type()).or_default() += 1;
        }
        // Read from the end: only the quoted messages' texts are built, not every user message's.
        let mut recent: Vec<String> = items
            .iter()
            .rev()
            .filter(|item| item.role() == Some("user"))
            .filter_map(ResponseItem::message_text)
            .take(DIGEST_USER_MESSAGES)
            .map(|text| snippet(&text))
            .collect();
        recent.reverse();
        let sealed_before = items.iter().filter(|item| item.is_compaction()).count();
        let summarized = (items.len() - sealed_before) as u64;
        let digest = json!({
            "v": 1,
            "kind": kind,
            "model": scope.model,
            "generation": memory.generation + 1,
            "items": items.len(),
            "summarized_items": summarized.saturating_add(memory.summarized_items),
            "tokens": scope.tokens,
            "types": types,
            "user_messages": recent,
        });
        json!({
            "type": kind,
            "id": self.next_id(id_prefix),
            "encrypted_content": self.config.seal_key.seal(&digest),
        })
    }

    /// The function calls to answer with, per the policy; none for a text answer.
    fn tool_calls(&self, input: &[ResponseItem]) -> Vec<Value> {
        let Some(last) = input.last() else { return Vec::new() };
        let Some(text) = last.message_text().filter(|_| last.role() == Some("user")) else {
            return Vec::new();
        };
        match &self.config.tool_calls {
            ToolCallPolicy::Never => Vec::new(),
            ToolCallPolicy::OnUserText { trigger, name, arguments } => {
                if !text.contains(trigger.as_str()) {
                    return Vec::new();
                }
                vec![function_call_item(&self.next_id("call"), name, arguments)]
            }
            ToolCallPolicy::Script(script) => script
                .calls(&text, input)
                .iter()
                .map(|call| function_call_item(&self.next_id("call"), &call.name, &call.arguments))
                .collect(),
        }
    }

    /// The deterministic reply to `input`.
    fn reply_text(&self, input: &[ResponseItem], memory: Memory) -> String {
        let user_turns = input.iter().filter(|item| item.role() == Some("user")).count();
        let mut text = match input.last() {
            Some(
                ResponseItem::FunctionCallOutput { call_id, output }
                | ResponseItem::CustomToolCallOutput { call_id, output, .. },
            ) => {
                let output = output.text();
                format!(
                    "Tool call {call_id} returned {} bytes: \"{}\".",
                    output.len(),
                    snippet(&output)
                )
            }
            _ => {
                let last_user = input
                    .iter()
                    .rev()
                    .filter(|item| item.role() == Some("user"))
                    .find_map(ResponseItem::message_text);
                match last_user {
                    Some(text) => {
                        format!("Reply to user message {user_turns}: \"{}\".", snippet(&text))
                    }
                    None => "Hello from the reference model.".to_owned(),
                }
            }
        };
        if memory.generation > 0 {
            text.push_str(&format!(
                " (memory: {} compaction(s) covering {} earlier items)",
                memory.generation, memory.summarized_items
            ));
        }
        if self.config.reply_padding_bytes > 0 {
            text.push(' ');
            const FILLER: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
            text.extend(FILLER.chars().cycle().take(self.config.reply_padding_bytes));
        }
        text
    }
}

/// The events of one assistant message with `text`, before its `output_item.done`.
fn message_events(id: &str, text: &str) -> Vec<Value> {
    let mut events = vec![ev_message_item_added(id), ev_content_part_added(id)];
    let words: Vec<&str> = text.split_inclusive(' ').collect();
    for chunk in words.chunks(WORDS_PER_DELTA) {
        events.push(ev_output_text_delta(id, &chunk.concat()));
    }
    events.push(ev_output_text_done(id, text));
    events.push(ev_content_part_done(id, text));
    events
}

/// The first words of `text`, on one line, cut at a character limit.
fn snippet(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().take(SNIPPET_WORDS).collect();
    let joined = words.join(" ");
    match joined.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

fn output_tokens(output: &[Value]) -> u64 {
    output
        .iter()
        .filter_map(|item| ResponseItem::deserialize(item).ok())
        .map(|item| USAGE_COUNTER.item_tokens(&item))
        .fold(0, u64::saturating_add)
}

fn saturate(tokens: u64) -> i64 {
    i64::try_from(tokens).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;

/// The `compact_threshold` of a request's `context_management`, when it asks for compaction.
fn compact_threshold(request: &ResponsesApiRequest<'_>) -> Option<u64> {
    request
        .context_management
        .as_ref()?
        .iter()
        .map(|compactor_protocol::ContextManagement::Compaction { compact_threshold }| {
            *compact_threshold
        })
        .next()
}
