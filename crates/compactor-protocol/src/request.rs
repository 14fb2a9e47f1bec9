//! What a client sends: the prompt, the Responses request body, WebSocket client messages and the
//! `/responses/compact` exchange (D45, D8).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::items::ResponseItem;
use crate::stream::ResponseUsage;

/// A tool specification, as the JSON the Responses API takes.
pub type ToolSpec = Value;

/// A request's input items, each borrowed from a history or owned (synthetic items, triggers).
///
/// Borrowing lets a prompt over a history of many megabytes be built and sent without copying
/// the history; serialized, a borrowed and an owned item are the same JSON.
pub type InputItems<'a> = Cow<'a, [Cow<'a, ResponseItem>]>;

impl From<ResponseItem> for Cow<'_, ResponseItem> {
    fn from(item: ResponseItem) -> Self {
        Cow::Owned(item)
    }
}

impl<'a> From<&'a ResponseItem> for Cow<'a, ResponseItem> {
    fn from(item: &'a ResponseItem) -> Self {
        Cow::Borrowed(item)
    }
}

/// `items` as owned input items, for a prompt or request that owns its input.
pub fn owned_items(
    items: impl IntoIterator<Item = ResponseItem>,
) -> Vec<Cow<'static, ResponseItem>> {
    items.into_iter().map(Cow::Owned).collect()
}

/// The items of `input`, moved out where owned and copied where borrowed.
pub fn into_owned_items(input: InputItems<'_>) -> Vec<ResponseItem> {
    match input {
        Cow::Owned(items) => items.into_iter().map(Cow::into_owned).collect(),
        Cow::Borrowed(items) => items.iter().map(|item| item.as_ref().clone()).collect(),
    }
}

/// `items` as input items borrowing from them.
pub fn borrowed_items(items: &[ResponseItem]) -> Vec<Cow<'_, ResponseItem>> {
    items.iter().map(Cow::Borrowed).collect()
}

/// What a turn asks the model: input, tools and instructions.
///
/// The input borrows from the history it was built from where it can (see [`InputItems`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt<'a> {
    /// The conversation so far, already normalized for the model.
    pub input: Vec<Cow<'a, ResponseItem>>,
    /// The length of each `input` item's compact JSON ([`tokens::json_len`](crate::tokens::json_len)),
    /// when the caller has them counted already: an HTTP request then declares its body's length
    /// without counting its items again. A list of another length is ignored; a wrong length is
    /// found as the item is written, and the request is then sent again with its length counted.
    pub input_json_lens: Option<Vec<u64>>,
    /// The tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Whether the model may call tools in parallel.
    pub parallel_tool_calls: bool,
    /// The base instructions, sent as `instructions` (omitted when empty).
    pub base_instructions: String,
    /// The personality, when the harness sets one.
    pub personality: Option<String>,
    /// A JSON schema for the final output.
    pub output_schema: Option<Value>,
    /// Whether the output schema is strict.
    pub output_schema_strict: bool,
}

impl Default for Prompt<'_> {
    fn default() -> Self {
        Self {
            input: Vec::new(),
            input_json_lens: None,
            tools: Vec::new(),
            parallel_tool_calls: false,
            base_instructions: String::new(),
            personality: None,
            output_schema: None,
            output_schema_strict: true,
        }
    }
}

/// Per-turn model settings that are not part of the prompt.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnSettings {
    /// The model slug.
    pub model: String,
    /// Reasoning settings, when the model reasons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// The service tier, when one is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Output verbosity (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    /// Server-managed compaction, sent as `context_management` on normal requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<Vec<ContextManagement>>,
}

/// The `reasoning` object of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasoning {
    /// `minimal`, `low`, `medium`, `high`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// `auto`, `concise` or `detailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// The `text` object of a request: verbosity and structured output format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TextControls {
    /// `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<String>,
    /// The structured output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<TextFormat>,
}

/// `{"type":"json_schema","strict":..,"schema":..,"name":..}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextFormat {
    /// Always `json_schema`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether the schema is strict.
    pub strict: bool,
    /// The JSON schema.
    pub schema: Value,
    /// The schema's name.
    pub name: String,
}

/// One entry of `context_management`: `{"type":"compaction","compact_threshold":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContextManagement {
    /// Let the server compact past `compact_threshold` tokens (at least 1000).
    Compaction {
        /// The token count past which the server compacts.
        compact_threshold: u64,
    },
}

/// The body of `POST /responses` and, without `stream`, of a WebSocket `response.create`.
/// The input is borrowed when serializing, so a large history is never cloned just to
/// be sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesApiRequest<'a> {
    /// The model slug.
    pub model: Cow<'a, str>,
    /// The base instructions; omitted when empty.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub instructions: Cow<'a, str>,
    /// The input items. Read as the API takes it: a list of items, a string (one user message,
    /// written back as a list holding that message), or absent.
    #[serde(default, deserialize_with = "input_items")]
    pub input: InputItems<'a>,
    /// The tools.
    #[serde(default)]
    pub tools: Cow<'a, [ToolSpec]>,
    /// Always `auto`.
    #[serde(default = "tool_choice_auto")]
    pub tool_choice: Cow<'a, str>,
    /// Whether tools may run in parallel.
    #[serde(default)]
    pub parallel_tool_calls: bool,
    /// Reasoning settings; written as `null` when absent.
    #[serde(default)]
    pub reasoning: Option<Reasoning>,
    /// Whether the server stores the response.
    #[serde(default)]
    pub store: bool,
    /// `true` over HTTP; absent on WebSocket messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Extra output to include, e.g. `reasoning.encrypted_content`.
    #[serde(default)]
    pub include: Vec<String>,
    /// The service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// The prompt cache key (the thread id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// Verbosity and output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextControls>,
    /// Server-managed compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_management: Option<Vec<ContextManagement>>,
    /// The response this request continues (WebSocket incremental requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// `false` for a WebSocket prewarm that must not generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate: Option<bool>,
    /// Free-form client metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_metadata: Option<serde_json::Map<String, Value>>,
}

/// Reads a request's `input`: a list of items, or a string, which is one user message in the
/// form it came (`{"role":"user","content":"..."}`).
fn input_items<'de, 'a, D: Deserializer<'de>>(deserializer: D) -> Result<InputItems<'a>, D::Error> {
    struct InputVisitor;

    impl<'de> Visitor<'de> for InputVisitor {
        type Value = Vec<Cow<'static, ResponseItem>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of input items or a string")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            Ok(vec![Cow::Owned(ResponseItem::easy_user_input(text.to_owned()))])
        }

        fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
            Ok(vec![Cow::Owned(ResponseItem::easy_user_input(text))])
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            // Bounded: a hint is only a hint, and a hostile one must not reserve gigabytes.
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(item) = seq.next_element::<ResponseItem>()? {
                items.push(Cow::Owned(item));
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(InputVisitor).map(Cow::Owned)
}

fn tool_choice_auto() -> Cow<'static, str> {
    Cow::Borrowed("auto")
}

impl<'a> ResponsesApiRequest<'a> {
    /// The HTTP streaming request for `prompt` under `settings`, borrowing the prompt's input.
    pub fn from_prompt(prompt: &'a Prompt<'_>, settings: &'a TurnSettings) -> Self {
        let include = match settings.reasoning {
            Some(_) => vec!["reasoning.encrypted_content".to_owned()],
            None => Vec::new(),
        };
        Self {
            model: Cow::Borrowed(&settings.model),
            instructions: Cow::Borrowed(&prompt.base_instructions),
            input: Cow::Borrowed(&prompt.input),
            tools: Cow::Borrowed(&prompt.tools),
            tool_choice: tool_choice_auto(),
            parallel_tool_calls: prompt.parallel_tool_calls,
            reasoning: settings.reasoning.clone(),
            store: false,
            stream: Some(true),
            include,
            service_tier: settings.service_tier.clone(),
            prompt_cache_key: None,
            text: text_controls(prompt, settings),
            context_management: settings.context_management.clone(),
            previous_response_id: None,
            generate: None,
            client_metadata: None,
        }
    }
}

/// The `text` object of a request for `prompt` under `settings`: the verbosity and the output
/// schema, or nothing when neither is set.
fn text_controls(prompt: &Prompt<'_>, settings: &TurnSettings) -> Option<TextControls> {
    let format = prompt.output_schema.as_ref().map(|schema| TextFormat {
        kind: "json_schema".to_owned(),
        strict: prompt.output_schema_strict,
        schema: schema.clone(),
        name: "compactor_output_schema".to_owned(),
    });
    (settings.verbosity.is_some() || format.is_some())
        .then(|| TextControls { verbosity: settings.verbosity.clone(), format })
}

impl ResponsesApiRequest<'_> {
    /// The same request borrowing everything large from this one (input, tools, strings), for
    /// variants such as an incremental WebSocket request that sends only part of the input.
    pub fn reborrow(&self) -> ResponsesApiRequest<'_> {
        ResponsesApiRequest {
            model: Cow::Borrowed(&self.model),
            instructions: Cow::Borrowed(&self.instructions),
            input: Cow::Borrowed(&self.input),
            tools: Cow::Borrowed(&self.tools),
            tool_choice: Cow::Borrowed(&self.tool_choice),
            parallel_tool_calls: self.parallel_tool_calls,
            reasoning: self.reasoning.clone(),
            store: self.store,
            stream: self.stream,
            include: self.include.clone(),
            service_tier: self.service_tier.clone(),
            prompt_cache_key: self.prompt_cache_key.clone(),
            text: self.text.clone(),
            context_management: self.context_management.clone(),
            previous_response_id: self.previous_response_id.clone(),
            generate: self.generate,
            client_metadata: self.client_metadata.clone(),
        }
    }
}

/// A message a client sends on a Responses WebSocket (D45).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WsClientMessage<'a> {
    /// `{"type":"response.create", ...request fields...}`.
    #[serde(rename = "response.create")]
    ResponseCreate(Box<ResponsesApiRequest<'a>>),
    /// `{"type":"response.processed","response_id":...}`: the client has installed a response.
    #[serde(rename = "response.processed")]
    ResponseProcessed {
        /// The completed response's id.
        response_id: String,
    },
}

/// The body of `POST /responses/compact` (D8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactRequest<'a> {
    /// The model slug.
    pub model: Cow<'a, str>,
    /// The history to compact; read like [`ResponsesApiRequest::input`].
    #[serde(default, deserialize_with = "input_items")]
    pub input: InputItems<'a>,
    /// The base instructions (plus focus text, D30); omitted when empty.
    #[serde(default, skip_serializing_if = "str::is_empty")]
    pub instructions: Cow<'a, str>,
    /// The same tools a normal request carries.
    #[serde(default)]
    pub tools: Cow<'a, [ToolSpec]>,
    /// Whether tools may run in parallel.
    #[serde(default)]
    pub parallel_tool_calls: bool,
    /// Reasoning settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// The service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// The prompt cache key (the thread id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_key: Option<String>,
    /// Verbosity and output format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextControls>,
}

impl<'a> CompactRequest<'a> {
    /// The `/responses/compact` body for `prompt` under `settings`, borrowing the prompt's input:
    /// the model, instructions, tools, reasoning, service tier and `text` a normal request for
    /// the same prompt carries. The prompt cache key is the client's to set.
    pub fn from_prompt(prompt: &'a Prompt<'_>, settings: &'a TurnSettings) -> Self {
        Self {
            model: Cow::Borrowed(&settings.model),
            input: Cow::Borrowed(&prompt.input),
            instructions: Cow::Borrowed(&prompt.base_instructions),
            tools: Cow::Borrowed(&prompt.tools),
            parallel_tool_calls: prompt.parallel_tool_calls,
            reasoning: settings.reasoning.clone(),
            service_tier: settings.service_tier.clone(),
            prompt_cache_key: None,
            text: text_controls(prompt, settings),
        }
    }
}

/// The answer of `POST /responses/compact`: the new history (D8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactResponse {
    /// The response id, when the server gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `response.compaction`, when the server says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The compacted history: retained messages and one compaction item.
    pub output: Vec<ResponseItem>,
    /// Token usage, when the server reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponseUsage>,
}

#[cfg(test)]
mod tests;
