//! The derived reading of [`ResponseItem`]: what serde derives from the wire form's attributes
//! (internally tagged by `type`, with an untagged fallback that keeps any other JSON).
//!
//! It is the reference the hand-written reader (`read.rs`) agrees with, and it reads the items
//! that leave the reader's fast path (D131). It buffers every item before it looks at the tag,
//! which is why it is not the reader.

use serde::Deserialize;
use serde_json::Value;

use super::{
    ContentItem, LocalShellAction, MessagePhase, ReasoningContent, ReasoningSummary, ResponseItem,
    ToolOutput, WebSearchAction,
};

/// The derived deserializer of [`ResponseItem`], as `Derived::deserialize`.
#[derive(Deserialize)]
#[serde(remote = "ResponseItem", tag = "type", rename_all = "snake_case")]
pub(crate) enum Derived {
    Message {
        #[serde(default)]
        id: Option<String>,
        role: String,
        content: Vec<ContentItem>,
        #[serde(default)]
        phase: Option<MessagePhase>,
    },
    Reasoning {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        summary: Vec<ReasoningSummary>,
        #[serde(default)]
        content: Option<Vec<ReasoningContent>>,
        #[serde(default)]
        encrypted_content: Option<String>,
    },
    LocalShellCall {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        call_id: Option<String>,
        status: String,
        action: Box<LocalShellAction>,
    },
    FunctionCall {
        #[serde(default)]
        id: Option<String>,
        name: String,
        #[serde(default)]
        namespace: Option<String>,
        arguments: String,
        call_id: String,
    },
    ToolSearchCall {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        call_id: Option<String>,
        #[serde(default)]
        status: Option<String>,
        execution: String,
        arguments: Box<Value>,
    },
    FunctionCallOutput {
        call_id: String,
        output: ToolOutput,
    },
    CustomToolCall {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        status: Option<String>,
        call_id: String,
        name: String,
        input: String,
    },
    CustomToolCallOutput {
        call_id: String,
        #[serde(default)]
        name: Option<String>,
        output: ToolOutput,
    },
    ToolSearchOutput {
        #[serde(default)]
        call_id: Option<String>,
        status: String,
        execution: String,
        tools: Vec<Value>,
    },
    WebSearchCall {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        action: Option<WebSearchAction>,
    },
    ImageGenerationCall {
        id: String,
        status: String,
        #[serde(default)]
        revised_prompt: Option<String>,
        result: String,
    },
    #[serde(alias = "compaction_summary")]
    Compaction {
        #[serde(default)]
        id: Option<String>,
        encrypted_content: String,
        #[serde(default)]
        created_by: Option<String>,
    },
    ContextCompaction {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        encrypted_content: Option<String>,
    },
    CompactionTrigger,
    #[serde(untagged)]
    Unknown(Value),
}
