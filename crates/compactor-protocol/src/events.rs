//! Session events a harness observes, and the turn items they carry.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compaction::CompactionTrigger;
use crate::error::CompactorErrorInfo;
use crate::items::ResponseItem;
use crate::receipt::CompactionReceipt;
use crate::stream::{RateLimitSnapshot, TokenUsageInfo};

/// A user-visible item of a turn. Variant names are the wire `type`, not renamed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum TurnItem {
    /// A compaction in progress or done: `{"type":"ContextCompaction","id":...}`.
    ContextCompaction(ContextCompactionItem),
}

/// The turn item of one compaction (or one fallback chain); its id joins events, traces and
/// analytics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextCompactionItem {
    /// A unique id (a UUID in practice).
    pub id: String,
}

impl ContextCompactionItem {
    /// An item with the given id.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// An event of a session (`tag = "type"`, snake_case). Events of a type this version does not
/// know are kept in [`EventMsg::Unknown`] so that newer rollouts stay readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventMsg {
    /// A turn began (manual compaction emits its own).
    TurnStarted {
        /// The turn's id.
        turn_id: String,
        /// Unix seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<i64>,
        /// The usable context window, when known.
        #[serde(default)]
        model_context_window: Option<i64>,
    },
    /// A turn item started.
    ItemStarted {
        /// The session's thread id.
        thread_id: String,
        /// The turn's id.
        turn_id: String,
        /// The item.
        item: TurnItem,
        /// Unix milliseconds.
        started_at_ms: i64,
    },
    /// A turn item completed.
    ItemCompleted {
        /// The session's thread id.
        thread_id: String,
        /// The turn's id.
        turn_id: String,
        /// The item.
        item: TurnItem,
        /// Unix milliseconds.
        completed_at_ms: i64,
    },
    /// The legacy projection of a completed compaction; persisted to the rollout.
    ContextCompacted {},
    /// Token accounting changed.
    TokenCount {
        /// The session's accounting.
        info: Option<TokenUsageInfo>,
        /// The latest rate limits.
        #[serde(default)]
        rate_limits: Option<RateLimitSnapshot>,
    },
    /// Something failed; remote compaction failures carry the prefix
    /// `Error running remote compact task`.
    Error(ErrorEvent),
    /// A notice the user should read (e.g. accuracy after local compaction).
    Warning {
        /// The text.
        message: String,
    },
    /// A transient failure being retried: `Reconnecting... n/max`.
    StreamError {
        /// The text.
        message: String,
        /// Structured error info.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        compactor_error_info: Option<CompactorErrorInfo>,
        /// The underlying error's text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        additional_details: Option<String>,
    },
    /// A compaction hook started.
    HookStarted {
        /// The turn's id.
        turn_id: String,
        /// `PreCompact` or `PostCompact`.
        hook_event_name: HookEventName,
        /// Manual or auto.
        trigger: CompactionTrigger,
    },
    /// A compaction hook finished.
    HookCompleted {
        /// The turn's id.
        turn_id: String,
        /// `PreCompact` or `PostCompact`.
        hook_event_name: HookEventName,
        /// Whether the hook asked to stop.
        stopped: bool,
        /// The hook's reason, when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A turn finished.
    TurnComplete {
        /// The turn's id.
        turn_id: String,
        /// The last assistant message, when there was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_agent_message: Option<String>,
    },
    /// A turn was aborted (interrupt or hook stop).
    TurnAborted {
        /// The turn's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turn_id: Option<String>,
        /// Why.
        reason: String,
    },
    /// A raw item the model produced, for harnesses that mirror the stream.
    RawResponseItem {
        /// The item.
        item: ResponseItem,
    },
    /// The last `num_turns` user turns were rolled back.
    ThreadRolledBack {
        /// How many user turns.
        num_turns: u32,
    },
    /// A user message was recorded (marks a user turn in rollouts).
    UserMessage {
        /// The text.
        message: String,
    },
    /// An assistant message was recorded.
    AgentMessage {
        /// The text.
        message: String,
    },
    /// A tool output was cut to the model's limit before it was recorded (see D100 in
    /// docs/decisions.md); the history and the rollout hold the cut output.
    ToolOutputTruncated {
        /// The call the output answers (empty for a tool search output without one).
        call_id: String,
        /// The estimated tokens of the output's text before the cut.
        original_tokens: u64,
        /// The estimated tokens of what was recorded, the marker included.
        kept_tokens: u64,
    },
    /// What a compaction attempt did (D143 in docs/decisions.md): emitted after every installed
    /// compaction, whose receipt is also in its `compacted` line, and after every failed attempt,
    /// whose receipt is only this event.
    CompactionReceipt {
        /// The receipt.
        receipt: Box<CompactionReceipt>,
    },
    /// An event of a type this version does not model, kept as its raw JSON object.
    #[serde(untagged)]
    Unknown(Value),
}

/// The payload of [`EventMsg::Error`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// `"<prefix>: <message>"` or the bare message.
    pub message: String,
    /// Structured error info.
    #[serde(default)]
    pub compactor_error_info: Option<CompactorErrorInfo>,
}

/// The compaction hook events (D40).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HookEventName {
    /// Before a compaction; may stop it.
    PreCompact,
    /// After a compaction is installed.
    PostCompact,
}

#[cfg(test)]
mod tests;
