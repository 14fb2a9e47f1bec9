//! Conversation items of the Responses API: what a history is made of.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod direct;
mod read;
mod wire;

pub(crate) use wire::PartKind;

use crate::request::InputItems;

/// One item of a conversation history, as the Responses API and the rollout carry it.
///
/// The wire form is internally tagged by `type`. Item `id`s are kept and sent back as they came.
/// An item whose `type` Compactor does not know (or whose known `type` has a shape it cannot read)
/// becomes [`ResponseItem::Unknown`], which keeps its raw JSON and writes it back unchanged.
///
/// A message is read in every form the Responses API accepts: without `type` (`{"role":"user",
/// "content":"hi"}`), with `content` as a plain string, with fields and part fields Compactor
/// does not model (Codex's `status` and `internal_chat_message_metadata_passthrough`, an output
/// part's `annotations`), in any key order. It is a real [`ResponseItem::Message`] (sent,
/// estimated, counted as a user turn) and is written back in the form it came in; see
/// [`Unmodelled`].
///
/// An item is read by a hand-written visitor over `type` that reads the common forms straight into
/// their fields (see D131 in docs/decisions.md); [`direct::read_items`] reads a list of them from
/// its text faster still, without a JSON tokenizer for the form Compactor writes (D170).
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseItem {
    /// A message from the user, the assistant, the developer or the system.
    Message {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// `user`, `assistant`, `developer` or `system`.
        role: String,
        /// The message's parts.
        content: Vec<ContentItem>,
        /// Whether an assistant message is commentary or the final answer.
        phase: Option<MessagePhase>,
        /// What the message carried beyond these fields, and the form it came in; empty for a
        /// message built in code.
        extra: Unmodelled,
    },
    /// Model reasoning, usually only as an encrypted blob.
    Reasoning {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// Reasoning summary parts.
        summary: Vec<ReasoningSummary>,
        /// Raw reasoning content, when the server sends it.
        content: Option<Vec<ReasoningContent>>,
        /// The opaque reasoning state; always written, `null` when absent.
        encrypted_content: Option<String>,
    },
    /// A shell command the model asked the harness to run.
    LocalShellCall {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The call id that the output refers to; always written, `null` when absent.
        call_id: Option<String>,
        /// `completed`, `in_progress` or `incomplete`.
        status: String,
        /// What to run; boxed because it is by far the largest field of any item, and every
        /// item of a history is as large as the largest variant.
        action: Box<LocalShellAction>,
    },
    /// A function tool call; `arguments` is a JSON document encoded as a string.
    FunctionCall {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The tool's name.
        name: String,
        /// The tool's namespace, for namespaced tools.
        namespace: Option<String>,
        /// The arguments, a JSON string.
        arguments: String,
        /// The id its output answers.
        call_id: String,
    },
    /// A tool-search call.
    ToolSearchCall {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The call id; always written, `null` when absent.
        call_id: Option<String>,
        /// The call's status.
        status: Option<String>,
        /// Where the search runs.
        execution: String,
        /// The search arguments; boxed, like a shell call's action, to keep every item small.
        arguments: Box<Value>,
    },
    /// The harness's answer to a [`ResponseItem::FunctionCall`] or [`ResponseItem::LocalShellCall`].
    FunctionCallOutput {
        /// The call this answers.
        call_id: String,
        /// A plain string or content parts.
        output: ToolOutput,
    },
    /// A freeform (custom) tool call.
    CustomToolCall {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The call's status.
        status: Option<String>,
        /// The id its output answers.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The freeform input.
        input: String,
    },
    /// The harness's answer to a [`ResponseItem::CustomToolCall`].
    CustomToolCallOutput {
        /// The call this answers.
        call_id: String,
        /// The tool's name.
        name: Option<String>,
        /// A plain string or content parts.
        output: ToolOutput,
    },
    /// The answer to a [`ResponseItem::ToolSearchCall`].
    ToolSearchOutput {
        /// The call this answers; always written, `null` when absent.
        call_id: Option<String>,
        /// The output's status.
        status: String,
        /// Where the search ran.
        execution: String,
        /// The tools found, as JSON tool specs.
        tools: Vec<Value>,
    },
    /// A hosted web search.
    WebSearchCall {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The call's status.
        status: Option<String>,
        /// What the search did.
        action: Option<WebSearchAction>,
    },
    /// A hosted image generation.
    ImageGenerationCall {
        /// The item id.
        id: String,
        /// The call's status.
        status: String,
        /// The prompt the model actually used.
        revised_prompt: Option<String>,
        /// The generated image, base64.
        result: String,
    },
    /// An opaque compacted summary from `/responses/compact` (v1), the `compaction_trigger` form of
    /// v2, or server-managed compaction. Accepts the legacy `compaction_summary` type on input.
    Compaction {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The opaque compacted state.
        encrypted_content: String,
        /// Who produced it, when the server says.
        created_by: Option<String>,
    },
    /// Remote compaction v2: without content it is the request trigger
    /// (`{"type":"context_compaction"}`); with content it is the model's compacted state.
    ContextCompaction {
        /// Server-assigned id, kept as it came.
        id: Option<String>,
        /// The opaque compacted state; absent on the trigger.
        encrypted_content: Option<String>,
    },
    /// The later v2 trigger form, `{"type":"compaction_trigger"}`; it is never persisted.
    CompactionTrigger,
    /// An item of a type Compactor does not model, kept as its raw JSON object.
    Unknown(Value),
}

/// What a message carried beyond the fields Compactor models, and the form it came in, so that
/// it is written back as it was read (see D110 in docs/decisions.md).
///
/// It holds the fields of the message and of its text and image parts that Compactor does not
/// model (kept as JSON, in order), the original key order when it was not Compactor's own,
/// whether `type` was absent, and whether `content` was a plain string. A message built in code
/// has none of it ([`Unmodelled::default`]). Compactor reads none of it either: it only writes it
/// back, so an item that went through a session, a rollout or a fork keeps every field.
///
/// When the modelled fields change, what still applies is kept: a string content stays a string
/// while the content is one text part, and a part's extra fields stay with the part at the same
/// position while it keeps its type.
///
/// # Examples
///
/// ```
/// use compactor_protocol::ResponseItem;
///
/// let raw = r#"{"role":"user","content":"hi","metadata":{"source":"cli"}}"#;
/// let item: ResponseItem = serde_json::from_str(raw).unwrap();
/// let ResponseItem::Message { role, extra, .. } = &item else { panic!("a message") };
/// assert_eq!(role, "user");
/// assert!(extra.is_typeless());
/// assert_eq!(extra.get("metadata").unwrap()["source"], "cli");
/// assert_eq!(item.message_text().as_deref(), Some("hi"));
/// assert_eq!(serde_json::to_string(&item).unwrap(), raw);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unmodelled(Option<Box<wire::Leftovers>>);

impl Unmodelled {
    /// Whether there is nothing to keep: the message is in Compactor's own form.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// A message-level field Compactor does not model.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.as_ref()?.fields.get(key)
    }

    /// The message-level fields Compactor does not model, in the order they came.
    pub fn fields(&self) -> Option<&Map<String, Value>> {
        self.0.as_ref().map(|leftovers| &leftovers.fields).filter(|fields| !fields.is_empty())
    }

    /// Whether the message came without a `type` (and is written back without one).
    pub fn is_typeless(&self) -> bool {
        self.0.as_ref().is_some_and(|leftovers| leftovers.typeless)
    }

    /// Whether the message's `content` came as a plain string.
    pub fn has_string_content(&self) -> bool {
        self.0.as_ref().is_some_and(|leftovers| leftovers.string_content)
    }
}

/// A part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    /// Text from the user, developer or a tool.
    InputText {
        /// The text.
        text: String,
    },
    /// An image, by URL or `data:` URL.
    InputImage {
        /// The image URL; often `data:image/png;base64,...`.
        image_url: String,
        /// `auto`, `low`, `high` or `original`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Text the model produced.
    OutputText {
        /// The text.
        text: String,
    },
    /// A part of a type Compactor does not model, kept as its raw JSON object.
    #[serde(untagged)]
    Unknown(Value),
}

/// Whether an assistant message is intermediate commentary or the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagePhase {
    /// Intermediate commentary.
    Commentary,
    /// The final answer.
    FinalAnswer,
}

/// A reasoning summary part: `{"type":"summary_text","text":...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReasoningSummary {
    /// Summary text.
    SummaryText {
        /// The text.
        text: String,
    },
}

/// A raw reasoning content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReasoningContent {
    /// `{"type":"reasoning_text","text":...}`.
    ReasoningText {
        /// The text.
        text: String,
    },
    /// `{"type":"text","text":...}`.
    Text {
        /// The text.
        text: String,
    },
}

/// The action of a [`ResponseItem::LocalShellCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LocalShellAction {
    /// Run a command.
    Exec {
        /// The argv.
        command: Vec<String>,
        /// A time limit in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// The working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        working_directory: Option<String>,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env: Option<Map<String, Value>>,
        /// The user to run as.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
    },
}

/// What a hosted web search did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WebSearchAction {
    /// A search.
    Search {
        /// The query.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<String>,
        /// Several queries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        queries: Option<Vec<String>>,
    },
    /// Opening a page.
    OpenPage {
        /// The page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
    },
    /// Finding text in a page.
    FindInPage {
        /// The page.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        /// The text looked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
    },
    /// An action of a type Compactor does not model.
    #[serde(untagged)]
    Unknown(Value),
}

/// A tool output: a plain string, or content parts (`input_text` / `input_image`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolOutput {
    /// A plain string.
    Text(String),
    /// Content parts.
    Content(Vec<ContentItem>),
}

impl ToolOutput {
    /// The output's text parts joined by newlines (images are left out).
    pub fn text(&self) -> String {
        match self {
            ToolOutput::Text(text) => text.clone(),
            ToolOutput::Content(parts) => content_text(parts).unwrap_or_default(),
        }
    }
}

/// The non-empty text parts of `content` joined by `\n`; `None` when there is none (for example
/// image-only content).
pub fn content_text(content: &[ContentItem]) -> Option<String> {
    let mut out: Option<String> = None;
    for part in content {
        let text = match part {
            ContentItem::InputText { text } | ContentItem::OutputText { text } => text,
            ContentItem::InputImage { .. } | ContentItem::Unknown(_) => continue,
        };
        if text.is_empty() {
            continue;
        }
        match &mut out {
            Some(acc) => {
                acc.push('\n');
                acc.push_str(text);
            }
            None => out = Some(text.clone()),
        }
    }
    out
}

impl ResponseItem {
    /// A user message holding one `input_text` part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self::message("user", ContentItem::InputText { text: text.into() })
    }

    /// A developer message holding one `input_text` part.
    pub fn developer_text(text: impl Into<String>) -> Self {
        Self::message("developer", ContentItem::InputText { text: text.into() })
    }

    /// An assistant message holding one `output_text` part.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Self::message("assistant", ContentItem::OutputText { text: text.into() })
    }

    fn message(role: &str, part: ContentItem) -> Self {
        ResponseItem::Message {
            id: None,
            role: role.to_owned(),
            content: vec![part],
            phase: None,
            extra: Unmodelled::default(),
        }
    }

    /// A user message as a request's string `input` means it: no `type`, string content, and
    /// written back that way.
    pub(crate) fn easy_user_input(text: String) -> Self {
        ResponseItem::Message {
            id: None,
            role: "user".to_owned(),
            content: vec![ContentItem::InputText { text }],
            phase: None,
            extra: Unmodelled::easy_input(),
        }
    }

    /// The v2 request trigger in the original form, `{"type":"context_compaction"}`.
    pub fn context_compaction_trigger() -> Self {
        ResponseItem::ContextCompaction { id: None, encrypted_content: None }
    }

    /// The wire `type` of this item (for [`ResponseItem::Unknown`], the raw `type`, or `""`).
    pub fn item_type(&self) -> &str {
        match self {
            ResponseItem::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or(""),
            modelled => modelled.modelled_type().unwrap_or_default(),
        }
    }

    /// The wire `type` of a modelled item, as a string that lives as long as the program (so
    /// that what records it by the thousand need not copy it); `None` for
    /// [`ResponseItem::Unknown`].
    pub fn modelled_type(&self) -> Option<&'static str> {
        Some(match self {
            ResponseItem::Message { .. } => "message",
            ResponseItem::Reasoning { .. } => "reasoning",
            ResponseItem::LocalShellCall { .. } => "local_shell_call",
            ResponseItem::FunctionCall { .. } => "function_call",
            ResponseItem::ToolSearchCall { .. } => "tool_search_call",
            ResponseItem::FunctionCallOutput { .. } => "function_call_output",
            ResponseItem::CustomToolCall { .. } => "custom_tool_call",
            ResponseItem::CustomToolCallOutput { .. } => "custom_tool_call_output",
            ResponseItem::ToolSearchOutput { .. } => "tool_search_output",
            ResponseItem::WebSearchCall { .. } => "web_search_call",
            ResponseItem::ImageGenerationCall { .. } => "image_generation_call",
            ResponseItem::Compaction { .. } => "compaction",
            ResponseItem::ContextCompaction { .. } => "context_compaction",
            ResponseItem::CompactionTrigger => "compaction_trigger",
            ResponseItem::Unknown(_) => return None,
        })
    }

    /// The message's role, when this is a message.
    pub fn role(&self) -> Option<&str> {
        match self {
            ResponseItem::Message { role, .. } => Some(role),
            _ => None,
        }
    }

    /// The id a call item is answered by, when this is a call.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            ResponseItem::FunctionCall { call_id, .. }
            | ResponseItem::CustomToolCall { call_id, .. } => Some(call_id),
            ResponseItem::LocalShellCall { call_id, .. }
            | ResponseItem::ToolSearchCall { call_id, .. } => call_id.as_deref(),
            _ => None,
        }
    }

    /// The id of the call this item answers, when this is a tool output.
    pub fn output_call_id(&self) -> Option<&str> {
        match self {
            ResponseItem::FunctionCallOutput { call_id, .. }
            | ResponseItem::CustomToolCallOutput { call_id, .. } => Some(call_id),
            ResponseItem::ToolSearchOutput { call_id, .. } => call_id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a compacted state (`compaction`, or `context_compaction` with content).
    pub fn is_compaction(&self) -> bool {
        match self {
            ResponseItem::Compaction { .. } => true,
            ResponseItem::ContextCompaction { encrypted_content, .. } => {
                encrypted_content.is_some()
            }
            _ => false,
        }
    }

    /// Whether this is a compaction trigger of either form (a transient request item).
    pub fn is_compaction_trigger(&self) -> bool {
        matches!(
            self,
            ResponseItem::CompactionTrigger
                | ResponseItem::ContextCompaction { encrypted_content: None, .. }
        )
    }

    /// The message text (text parts joined by `\n`), when this is a message with text.
    pub fn message_text(&self) -> Option<String> {
        match self {
            ResponseItem::Message { content, .. } => content_text(content),
            _ => None,
        }
    }
}

/// The item types of [`ResponseItem::Unknown`] that may be sent to a model (D34).
///
/// Known items always pass. An unknown item stays in history and rollout but reaches a request
/// only when its `type` is on this list. The default holds `configuration_update`, which servers
/// emit right after a compaction item and expect back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PassThroughList(Vec<String>);

impl Default for PassThroughList {
    fn default() -> Self {
        Self(vec!["configuration_update".to_owned()])
    }
}

impl PassThroughList {
    /// A list holding exactly these types.
    pub fn new<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self(types.into_iter().map(Into::into).collect())
    }

    /// The unknown item types on the list.
    pub fn types(&self) -> &[String] {
        &self.0
    }

    /// Whether `item` may be sent to a model.
    pub fn allows(&self, item: &ResponseItem) -> bool {
        match item {
            ResponseItem::Unknown(_) => {
                let ty = item.item_type();
                self.0.iter().any(|allowed| allowed == ty)
            }
            _ => true,
        }
    }

    /// `input` without the items this list keeps from a model; borrowed when nothing is removed,
    /// so a request over a large history is not copied.
    pub fn filter_input<'a>(&self, input: &'a [Cow<'a, ResponseItem>]) -> InputItems<'a> {
        if input.iter().all(|item| self.allows(item)) {
            Cow::Borrowed(input)
        } else {
            Cow::Owned(
                input
                    .iter()
                    .filter(|item| self.allows(item))
                    .map(|item| Cow::Borrowed(item.as_ref()))
                    .collect(),
            )
        }
    }
}

/// The general reading of items (a message by hand from its JSON object, every other item by the
/// deserializer serde derives for the tagged form), for the tests, benches and fuzz targets that
/// compare the hand-written reader with it (D131); not part of the API.
#[doc(hidden)]
pub mod oracle {
    use std::fmt;

    use serde::de::{IgnoredAny, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer};

    use super::ResponseItem;
    use super::wire::read_general;

    /// An item read the general way, as it was read before the hand-written reader.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ReferenceItem(pub ResponseItem);

    impl<'de> Deserialize<'de> for ReferenceItem {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            read_general(deserializer).map(ReferenceItem)
        }
    }

    /// The `input` of a request body, its items read the general way; the other
    /// fields are skipped, not read.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ReferenceInput(pub Vec<ResponseItem>);

    impl<'de> Deserialize<'de> for ReferenceInput {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct InputVisitor;
            impl<'de> Visitor<'de> for InputVisitor {
                type Value = ReferenceInput;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a request body")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<ReferenceInput, A::Error> {
                    let mut input = Vec::new();
                    while let Some(key) = map.next_key::<String>()? {
                        if key == "input" {
                            let items: Vec<ReferenceItem> = map.next_value()?;
                            input = items.into_iter().map(|item| item.0).collect();
                        } else {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(ReferenceInput(input))
                }
            }
            deserializer.deserialize_map(InputVisitor)
        }
    }
}

#[cfg(test)]
mod tests;
