//! What the server saw: HTTP requests, WebSocket handshakes and client messages, and protocol
//! violations, kept within [`RecordLimits`].

use std::collections::VecDeque;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use serde_json::Value;

/// The endpoint a recorded HTTP request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/responses` (SSE).
    Responses,
    /// `POST /v1/responses/compact`.
    Compact,
    /// Any other route (answered 404 and recorded as a violation).
    Other,
}

/// How much a server keeps in memory (D65 in docs/decisions.md): the newest entries of each
/// record, within a count and, for bodies and messages, a byte budget. Older entries are
/// forgotten; the positions ([`RecordedRequest::index`], ...) still count every entry seen, and
/// waits count every entry seen too. The newest entry is always kept while its count limit is
/// at least one, whatever its size.
///
/// [`Default`] suits tests; a test that needs more asks for it. [`RecordLimits::none`] records
/// nothing, as `compactor serve` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// HTTP requests kept.
    pub requests: usize,
    /// Bytes of HTTP request bodies kept in all.
    pub request_bytes: usize,
    /// WebSocket handshakes and connections kept.
    pub connections: usize,
    /// Client messages kept per WebSocket connection.
    pub messages_per_connection: usize,
    /// Bytes of client messages kept per WebSocket connection.
    pub message_bytes_per_connection: usize,
    /// Protocol violations kept.
    pub violations: usize,
    /// Completed responses a WebSocket connection remembers for `previous_response_id`.
    pub responses_per_connection: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            requests: 1024,
            request_bytes: 64 << 20,
            connections: 256,
            messages_per_connection: 1024,
            message_bytes_per_connection: 64 << 20,
            violations: 1024,
            responses_per_connection: 8,
        }
    }
}

impl RecordLimits {
    /// Nothing recorded; connections still chain `previous_response_id` as by default.
    pub fn none() -> Self {
        Self {
            requests: 0,
            request_bytes: 0,
            connections: 0,
            messages_per_connection: 0,
            message_bytes_per_connection: 0,
            violations: 0,
            ..Self::default()
        }
    }
}

/// The newest entries of one record, within a count and a byte budget.
#[derive(Debug, Clone)]
pub(crate) struct Kept<T> {
    items: VecDeque<(T, usize)>,
    seen: usize,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Kept<T> {
    pub(crate) fn new(max_items: usize, max_bytes: usize) -> Self {
        Self { items: VecDeque::new(), seen: 0, bytes: 0, max_items, max_bytes }
    }

    /// Every entry ever pushed, forgotten ones included: the position of the next one.
    pub(crate) fn seen(&self) -> usize {
        self.seen
    }

    /// Whether the next entry will be kept at all (so whether it is worth building).
    pub(crate) fn keeps(&self) -> bool {
        self.max_items > 0
    }

    /// Adds the next entry, `bytes` long, and forgets the oldest ones past the limits.
    pub(crate) fn push(&mut self, item: T, bytes: usize) {
        self.seen += 1;
        if self.max_items == 0 {
            return;
        }
        self.items.push_back((item, bytes));
        self.bytes += bytes;
        while self.items.len() > self.max_items
            || (self.bytes > self.max_bytes && self.items.len() > 1)
        {
            if let Some((_, gone)) = self.items.pop_front() {
                self.bytes -= gone;
            }
        }
    }

    /// Counts an entry that is not kept.
    pub(crate) fn push_forgotten(&mut self) {
        self.seen += 1;
    }

    /// The entry at position `index`, if it is still kept.
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        let first = self.seen - self.items.len();
        self.items.get(index.checked_sub(first)?).map(|(item, _)| item)
    }

    /// The entry at position `index`, if it is still kept.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let first = self.seen - self.items.len();
        self.items.get_mut(index.checked_sub(first)?).map(|(item, _)| item)
    }

    /// The kept entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(item, _)| item)
    }
}

/// One HTTP request as it arrived.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Position among all recorded HTTP requests, from 0.
    pub index: usize,
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The method.
    pub method: Method,
    /// The request URI (path and query).
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    json: OnceLock<Value>,
}

impl RecordedRequest {
    pub(crate) fn new(
        index: usize,
        endpoint: Endpoint,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Self {
        let headers = hide_secrets(headers);
        Self { index, endpoint, method, uri, headers, body, json: OnceLock::new() }
    }

    /// The URI's path.
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// A header's value, when present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body parsed as JSON (parsed once, on first use); `null` when it is not JSON.
    pub fn body_json(&self) -> &Value {
        self.json.get_or_init(|| serde_json::from_slice(&self.body).unwrap_or(Value::Null))
    }

    /// The `input` items as sent (empty when absent).
    pub fn input(&self) -> &[Value] {
        json_input(self.body_json())
    }

    /// The `input` items of type `ty`.
    pub fn inputs_of_type(&self, ty: &str) -> Vec<&Value> {
        inputs_of_type(self.input(), ty)
    }

    /// The texts of the `input` messages with this role (text parts joined by `\n`).
    pub fn message_input_texts(&self, role: &str) -> Vec<String> {
        message_texts(self.input(), role)
    }

    /// The `instructions`, when present.
    pub fn instructions_text(&self) -> Option<&str> {
        self.body_json().get("instructions").and_then(Value::as_str)
    }

    /// The `function_call_output` or `custom_tool_call_output` input item answering `call_id`.
    pub fn function_call_output(&self, call_id: &str) -> Option<&Value> {
        call_output(self.input(), call_id)
    }

    /// Whether the raw body contains `text`.
    pub fn body_contains_text(&self, text: &str) -> bool {
        let needle = text.as_bytes();
        needle.is_empty() || self.body.windows(needle.len()).any(|window| window == needle)
    }
}

/// One WebSocket handshake (accepted or refused).
#[derive(Debug, Clone)]
pub struct RecordedHandshake {
    /// Position among all recorded handshakes, from 0.
    pub index: usize,
    /// The request URI (path and query).
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The status the server answered: 101 when accepted.
    pub status: u16,
}

impl RecordedHandshake {
    pub(crate) fn new(index: usize, uri: Uri, headers: HeaderMap, status: u16) -> Self {
        Self { index, uri, headers: hide_secrets(headers), status }
    }

    /// A header's value, when present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// One client message of a WebSocket connection.
#[derive(Debug, Clone)]
pub struct RecordedWsMessage {
    /// Position on its connection, from 0.
    pub index: usize,
    /// The raw text (binary frames are recorded lossily as UTF-8).
    pub text: String,
    json: OnceLock<Value>,
}

impl RecordedWsMessage {
    pub(crate) fn new(index: usize, text: String) -> Self {
        Self { index, text, json: OnceLock::new() }
    }

    /// The message parsed as JSON (parsed once, on first use); `null` when it is not JSON.
    pub fn body_json(&self) -> &Value {
        self.json.get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    /// The message's `type`, e.g. `response.create` or `response.processed`.
    pub fn message_type(&self) -> Option<&str> {
        self.body_json().get("type").and_then(Value::as_str)
    }

    /// The `input` items as sent (empty when absent).
    pub fn input(&self) -> &[Value] {
        json_input(self.body_json())
    }

    /// The `input` items of type `ty`.
    pub fn inputs_of_type(&self, ty: &str) -> Vec<&Value> {
        inputs_of_type(self.input(), ty)
    }

    /// The texts of the `input` messages with this role.
    pub fn message_input_texts(&self, role: &str) -> Vec<String> {
        message_texts(self.input(), role)
    }

    /// The `previous_response_id`, when present.
    pub fn previous_response_id(&self) -> Option<&str> {
        self.body_json().get("previous_response_id").and_then(Value::as_str)
    }
}

/// One accepted WebSocket connection: its handshake and the client messages so far.
#[derive(Debug, Clone)]
pub struct RecordedConnection {
    /// Position among accepted connections, from 0.
    pub index: usize,
    /// The handshake that opened it.
    pub handshake: RecordedHandshake,
    /// The client messages still kept ([`RecordLimits`]), in order; each knows its position.
    pub messages: Vec<RecordedWsMessage>,
}

/// A connection as the server keeps it: its messages within their limits.
#[derive(Debug, Clone)]
pub(crate) struct KeptConnection {
    pub(crate) index: usize,
    pub(crate) handshake: RecordedHandshake,
    pub(crate) messages: Kept<RecordedWsMessage>,
}

impl KeptConnection {
    pub(crate) fn to_recorded(&self) -> RecordedConnection {
        RecordedConnection {
            index: self.index,
            handshake: self.handshake.clone(),
            messages: self.messages.iter().cloned().collect(),
        }
    }
}

/// A request that broke a protocol invariant (or that the script did not expect). The request
/// was answered with 400 (HTTP) or a wrapped 400 `error` frame (WebSocket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which request, e.g. `POST /v1/responses request #2` or `websocket connection 0 message 1`.
    pub context: String,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.message)
    }
}

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 6] =
    ["authorization", "proxy-authorization", "cookie", "api-key", "x-api-key", "openai-api-key"];

/// Marks credential headers sensitive, so `Debug` output shows `Sensitive` instead of the value
/// (the value stays readable through `header()`).
fn hide_secrets(mut headers: HeaderMap) -> HeaderMap {
    for name in SECRET_HEADERS {
        if let http::header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
    headers
}

fn json_input(body: &Value) -> &[Value] {
    body.get("input").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn inputs_of_type<'a>(input: &'a [Value], ty: &str) -> Vec<&'a Value> {
    input.iter().filter(|item| item.get("type").and_then(Value::as_str) == Some(ty)).collect()
}

fn message_texts(input: &[Value], role: &str) -> Vec<String> {
    input
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"))
        .filter(|item| item.get("role").and_then(Value::as_str) == Some(role))
        .map(|item| {
            let parts =
                item.get("content").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
            let texts: Vec<&str> =
                parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect();
            texts.join("\n")
        })
        .collect()
}

fn call_output<'a>(input: &'a [Value], call_id: &str) -> Option<&'a Value> {
    input.iter().find(|item| {
        matches!(
            item.get("type").and_then(Value::as_str),
            Some("function_call_output" | "custom_tool_call_output")
        ) && item.get("call_id").and_then(Value::as_str) == Some(call_id)
    })
}
