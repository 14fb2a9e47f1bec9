//! Builders for the server events a Responses server streams, schema-complete per D44, and the
//! SSE writer.
//!
//! Builders return `serde_json::Value`s so a test can script any shape, including odd ones. The
//! server stamps each batch as it sends it ([`stamp_events`]): every event gets a
//! `sequence_number` (increasing per response, from 0), item and delta events get their
//! `output_index`, and a `response.completed` whose `output` is empty gets the batch's finished
//! items.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use compactor_protocol::{InputTokensDetails, OutputTokensDetails, ResponseUsage};
use serde_json::{Map, Value, json};

/// The model name builders and the reference model report when the request names none.
pub const DEFAULT_MODEL: &str = "compactor-reference";

/// The `status` of a response object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// `in_progress`: in `response.created` and `response.in_progress`.
    InProgress,
    /// `completed`.
    Completed,
    /// `failed`.
    Failed,
    /// `incomplete`.
    Incomplete,
}

impl ResponseStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::InProgress => "in_progress",
            ResponseStatus::Completed => "completed",
            ResponseStatus::Failed => "failed",
            ResponseStatus::Incomplete => "incomplete",
        }
    }
}

/// The `response` object carried by `response.created`, `.completed`, `.failed` and
/// `.incomplete`, with every field the official schema requires.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseObject {
    /// The response id, e.g. `resp_1`.
    pub id: String,
    /// The response's status.
    pub status: ResponseStatus,
    /// The model that served it.
    pub model: String,
    /// Unix seconds.
    pub created_at: u64,
    /// The output items (on completion).
    pub output: Vec<Value>,
    /// The request's tools, echoed.
    pub tools: Vec<Value>,
    /// The request's tool choice, echoed.
    pub tool_choice: Value,
    /// The request's parallel flag, echoed.
    pub parallel_tool_calls: bool,
    /// Token usage (on completion); `null` otherwise.
    pub usage: Option<ResponseUsage>,
    /// The error of a failed response.
    pub error: Option<Value>,
    /// Why a response is incomplete.
    pub incomplete_details: Option<Value>,
}

impl ResponseObject {
    /// A response with no output, no tools, `tool_choice: "auto"`, the default model, created now.
    pub fn new(id: &str, status: ResponseStatus) -> Self {
        Self {
            id: id.to_owned(),
            status,
            model: DEFAULT_MODEL.to_owned(),
            created_at: unix_now(),
            output: Vec::new(),
            tools: Vec::new(),
            tool_choice: Value::from("auto"),
            parallel_tool_calls: false,
            usage: None,
            error: None,
            incomplete_details: None,
        }
    }

    /// The JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": self.status.as_str(),
            "model": self.model,
            "output": self.output,
            "tools": self.tools,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
            "usage": self.usage.map(|usage| usage_json(&usage)),
            "error": self.error,
            "incomplete_details": self.incomplete_details,
        })
    }
}

/// Usage with both detail objects present (zeros) and `total = input + output`.
pub fn usage(input_tokens: i64, output_tokens: i64) -> ResponseUsage {
    ResponseUsage {
        input_tokens,
        input_tokens_details: Some(InputTokensDetails { cached_tokens: 0, cache_write_tokens: 0 }),
        output_tokens,
        output_tokens_details: Some(OutputTokensDetails { reasoning_tokens: 0 }),
        total_tokens: input_tokens.saturating_add(output_tokens),
    }
}

/// The wire JSON of a usage object; absent details are written as zeros, so the object is always
/// schema-complete.
pub fn usage_json(usage: &ResponseUsage) -> Value {
    let input = usage.input_tokens_details.unwrap_or_default();
    let output = usage.output_tokens_details.unwrap_or_default();
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": input.cached_tokens,
            "cache_write_tokens": input.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": { "reasoning_tokens": output.reasoning_tokens },
        "total_tokens": usage.total_tokens,
    })
}

/// An event carrying a response object: `{"type": kind, "response": {...}}`.
pub fn ev_response(kind: &str, response: &ResponseObject) -> Value {
    json!({ "type": kind, "response": response.to_json() })
}

/// `response.created` for a new, in-progress response.
pub fn ev_response_created(id: &str) -> Value {
    ev_response("response.created", &ResponseObject::new(id, ResponseStatus::InProgress))
}

/// `response.in_progress`.
pub fn ev_response_in_progress(id: &str) -> Value {
    ev_response("response.in_progress", &ResponseObject::new(id, ResponseStatus::InProgress))
}

/// `response.completed` with all-zero usage.
pub fn ev_completed(id: &str) -> Value {
    ev_completed_with_usage(id, usage(0, 0))
}

/// `response.completed` with `input_tokens = total_tokens = n`: the lever that pushes a session's
/// usage over its auto-compact limit.
pub fn ev_completed_with_tokens(id: &str, input_tokens: i64) -> Value {
    ev_completed_with_usage(id, usage(input_tokens, 0))
}

/// `response.completed` with the given usage.
pub fn ev_completed_with_usage(id: &str, usage: ResponseUsage) -> Value {
    let mut response = ResponseObject::new(id, ResponseStatus::Completed);
    response.usage = Some(usage);
    ev_response("response.completed", &response)
}

/// `response.failed` with `error{code, message}`.
pub fn ev_failed(id: &str, code: &str, message: &str) -> Value {
    let mut response = ResponseObject::new(id, ResponseStatus::Failed);
    response.error = Some(json!({ "code": code, "message": message }));
    ev_response("response.failed", &response)
}

/// `response.incomplete` with `incomplete_details.reason`.
pub fn ev_incomplete(id: &str, reason: &str) -> Value {
    let mut response = ResponseObject::new(id, ResponseStatus::Incomplete);
    response.incomplete_details = Some(json!({ "reason": reason }));
    response.usage = Some(usage(0, 0));
    ev_response("response.incomplete", &response)
}

/// `response.output_item.added` for any item.
pub fn ev_output_item_added(item: Value) -> Value {
    item_event("response.output_item.added", item)
}

/// `response.output_item.done` for any item.
pub fn ev_output_item_done(item: Value) -> Value {
    item_event("response.output_item.done", item)
}

fn item_event(kind: &str, item: Value) -> Value {
    let mut event = Map::new();
    event.insert("type".to_owned(), Value::from(kind));
    event.insert("item".to_owned(), item);
    Value::Object(event)
}

/// `response.output_item.added` of an empty, in-progress assistant message.
pub fn ev_message_item_added(id: &str) -> Value {
    ev_output_item_added(json!({
        "type": "message",
        "id": id,
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }))
}

/// `response.content_part.added` of an empty `output_text` part.
pub fn ev_content_part_added(item_id: &str) -> Value {
    json!({
        "type": "response.content_part.added",
        "item_id": item_id,
        "content_index": 0,
        "part": output_text_part(""),
    })
}

/// `response.content_part.done` of an `output_text` part.
pub fn ev_content_part_done(item_id: &str, text: &str) -> Value {
    json!({
        "type": "response.content_part.done",
        "item_id": item_id,
        "content_index": 0,
        "part": output_text_part(text),
    })
}

/// `response.output_text.delta`, with `logprobs: []`.
pub fn ev_output_text_delta(item_id: &str, delta: &str) -> Value {
    json!({
        "type": "response.output_text.delta",
        "item_id": item_id,
        "content_index": 0,
        "delta": delta,
        "logprobs": [],
    })
}

/// `response.output_text.done`, with `logprobs: []`.
pub fn ev_output_text_done(item_id: &str, text: &str) -> Value {
    json!({
        "type": "response.output_text.done",
        "item_id": item_id,
        "content_index": 0,
        "text": text,
        "logprobs": [],
    })
}

/// An assistant message item with one `output_text` part.
pub fn assistant_message_item(id: &str, text: &str) -> Value {
    json!({
        "type": "message",
        "id": id,
        "role": "assistant",
        "status": "completed",
        "content": [output_text_part(text)],
    })
}

/// `response.output_item.done` of an assistant message.
pub fn ev_assistant_message(id: &str, text: &str) -> Value {
    ev_output_item_done(assistant_message_item(id, text))
}

/// A reasoning item whose `encrypted_content` is base64 of 550 bytes of `b` plus the raw texts, so
/// the estimator sees a realistic size.
pub fn reasoning_item(id: &str, summary: &[&str], raw: &[&str]) -> Value {
    let mut blob = vec![b'b'; 550];
    for text in raw {
        blob.extend_from_slice(text.as_bytes());
    }
    let mut item = json!({
        "type": "reasoning",
        "id": id,
        "summary": summary
            .iter()
            .map(|text| json!({ "type": "summary_text", "text": text }))
            .collect::<Vec<_>>(),
        "encrypted_content": BASE64.encode(blob),
    });
    if !raw.is_empty()
        && let Some(map) = item.as_object_mut()
    {
        let content: Vec<Value> =
            raw.iter().map(|text| json!({ "type": "reasoning_text", "text": text })).collect();
        map.insert("content".to_owned(), Value::from(content));
    }
    item
}

/// `response.output_item.done` of a reasoning item (see [`reasoning_item`]).
pub fn ev_reasoning_item(id: &str, summary: &[&str], raw: &[&str]) -> Value {
    ev_output_item_done(reasoning_item(id, summary, raw))
}

/// `response.output_item.added` of a reasoning item without encrypted content yet.
pub fn ev_reasoning_item_added(id: &str, summary: &[&str]) -> Value {
    ev_output_item_added(json!({
        "type": "reasoning",
        "id": id,
        "summary": summary
            .iter()
            .map(|text| json!({ "type": "summary_text", "text": text }))
            .collect::<Vec<_>>(),
    }))
}

/// `response.reasoning_summary_text.delta`.
pub fn ev_reasoning_summary_text_delta(item_id: &str, delta: &str, summary_index: i64) -> Value {
    json!({
        "type": "response.reasoning_summary_text.delta",
        "item_id": item_id,
        "summary_index": summary_index,
        "delta": delta,
    })
}

/// `response.reasoning_text.delta`.
pub fn ev_reasoning_text_delta(item_id: &str, delta: &str, content_index: i64) -> Value {
    json!({
        "type": "response.reasoning_text.delta",
        "item_id": item_id,
        "content_index": content_index,
        "delta": delta,
    })
}

/// A function call item; its id is `fc_<call_id>`.
pub fn function_call_item(call_id: &str, name: &str, arguments: &str) -> Value {
    json!({
        "type": "function_call",
        "id": format!("fc_{call_id}"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    })
}

/// `response.output_item.done` of a function call (see [`function_call_item`]).
pub fn ev_function_call(call_id: &str, name: &str, arguments: &str) -> Value {
    ev_output_item_done(function_call_item(call_id, name, arguments))
}

/// `response.output_item.done` of a custom (freeform) tool call; its id is `ctc_<call_id>`.
pub fn ev_custom_tool_call(call_id: &str, name: &str, input: &str) -> Value {
    ev_output_item_done(json!({
        "type": "custom_tool_call",
        "id": format!("ctc_{call_id}"),
        "call_id": call_id,
        "name": name,
        "input": input,
        "status": "completed",
    }))
}

/// `response.custom_tool_call_input.delta`.
pub fn ev_custom_tool_call_input_delta(item_id: &str, call_id: &str, delta: &str) -> Value {
    json!({
        "type": "response.custom_tool_call_input.delta",
        "item_id": item_id,
        "call_id": call_id,
        "delta": delta,
    })
}

/// `response.output_item.done` of a v2 `context_compaction` item.
pub fn ev_context_compaction(id: &str, encrypted_content: &str) -> Value {
    ev_output_item_done(json!({
        "type": "context_compaction",
        "id": id,
        "encrypted_content": encrypted_content,
    }))
}

/// `response.output_item.done` of a `compaction` item.
pub fn ev_compaction(id: &str, encrypted_content: &str) -> Value {
    ev_output_item_done(json!({
        "type": "compaction",
        "id": id,
        "encrypted_content": encrypted_content,
    }))
}

/// `response.compaction.compacting`: a server compacting by itself (server-managed compaction).
pub fn ev_compacting(item_id: &str) -> Value {
    json!({ "type": "response.compaction.compacting", "item_id": item_id })
}

/// A wrapped WebSocket error frame:
/// `{"type":"error","status":S,"error":{"type":...,"code":C,"message":M}}` (D45).
pub fn ev_error_frame(status: u16, code: &str, message: &str) -> Value {
    crate::faults::ErrorReply::new(status, code, message).ws_frame()
}

/// An SSE body: each event as `event: <type>\ndata: <json>\n\n` (D44). Events are written as
/// given; [`stamp_events`] first for a schema-complete stream.
pub fn sse(events: &[Value]) -> String {
    events.iter().map(sse_event).collect()
}

/// One SSE event. An event whose only field is `type` is written as just its `event:` line and
/// the blank line; an event without a `type` as just its `data:` line.
pub fn sse_event(event: &Value) -> String {
    let kind = event.get("type").and_then(Value::as_str);
    let only_type = event.as_object().is_some_and(|map| map.len() == 1) && kind.is_some();
    let mut out = String::new();
    if let Some(kind) = kind {
        out.push_str("event: ");
        out.push_str(kind);
        out.push('\n');
    }
    if !only_type {
        out.push_str("data: ");
        out.push_str(&event.to_string());
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Stamps one response's events as the server sends them: a `sequence_number` on each event that
/// lacks one (counting on from the previous event's), an `output_index` on item and delta events
/// that lack one, and, on a `response.completed` or `response.incomplete` whose `output` is an
/// empty array, the items of the batch's `response.output_item.done` events.
pub fn stamp_events(events: Vec<Value>) -> Vec<Value> {
    let mut stamper = Stamper::default();
    events.into_iter().map(|event| stamper.stamp(event)).collect()
}

#[derive(Default)]
struct Stamper {
    next_sequence: u64,
    next_index: u64,
    current_index: Option<u64>,
    index_by_item: HashMap<String, u64>,
    done_items: Vec<Value>,
}

impl Stamper {
    fn stamp(&mut self, mut event: Value) -> Value {
        let Some(map) = event.as_object_mut() else {
            return event;
        };
        let kind = map.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        match kind.as_str() {
            "response.output_item.added" | "response.output_item.done" => {
                let item_id =
                    map.get("item").and_then(|item| item.get("id")).and_then(Value::as_str);
                let index = match item_id.and_then(|id| self.index_by_item.get(id)) {
                    Some(index) => *index,
                    None => {
                        let index = self.next_index;
                        self.next_index += 1;
                        if let Some(id) = item_id {
                            self.index_by_item.insert(id.to_owned(), index);
                        }
                        index
                    }
                };
                self.current_index = Some(index);
                map.entry("output_index").or_insert(Value::from(index));
                if kind == "response.output_item.done"
                    && let Some(item) = map.get("item")
                {
                    self.done_items.push(item.clone());
                }
            }
            "response.completed" | "response.incomplete" => {
                // An empty output gets the items finished so far.
                if let Some(Value::Array(output)) =
                    map.get_mut("response").and_then(|response| response.get_mut("output"))
                    && output.is_empty()
                {
                    output.extend(self.done_items.iter().cloned());
                }
            }
            _ if is_item_scoped(&kind) => {
                let item_id = map.get("item_id").and_then(Value::as_str);
                let mut by_id = item_id.and_then(|id| self.index_by_item.get(id)).copied();
                // `compacting` comes before its item is added: it reserves the item's index.
                if by_id.is_none()
                    && kind == "response.compaction.compacting"
                    && let Some(id) = item_id
                {
                    let index = self.next_index;
                    self.next_index += 1;
                    self.index_by_item.insert(id.to_owned(), index);
                    by_id = Some(index);
                }
                if let Some(index) = by_id.or(self.current_index) {
                    map.entry("output_index").or_insert(Value::from(index));
                }
            }
            _ => {}
        }
        match map.get("sequence_number").and_then(Value::as_u64) {
            Some(sequence) => self.next_sequence = sequence.saturating_add(1),
            None => {
                map.insert("sequence_number".to_owned(), Value::from(self.next_sequence));
                self.next_sequence += 1;
            }
        }
        event
    }
}

/// Events that belong to one output item and carry its `output_index`.
fn is_item_scoped(kind: &str) -> bool {
    const PREFIXES: [&str; 7] = [
        "response.output_text.",
        "response.content_part.",
        "response.reasoning_summary_text.",
        "response.reasoning_summary_part.",
        "response.reasoning_text.",
        "response.custom_tool_call_input.",
        "response.function_call_arguments.",
    ];
    kind == "response.compaction.compacting"
        || PREFIXES.iter().any(|prefix| kind.starts_with(prefix))
}

fn output_text_part(text: &str) -> Value {
    json!({ "type": "output_text", "text": text, "annotations": [], "logprobs": [] })
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests;
