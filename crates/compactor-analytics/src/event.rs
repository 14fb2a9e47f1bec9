//! The analytics records: one event per compaction attempt, with its chain and cost fields (D41).

use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
    CompactionStrategy, CompactionTrigger, ReceiptTotals, TokenUsage,
};
use serde::{Deserialize, Serialize};

/// The `event_type` of a [`CompactionEvent`].
pub const COMPACTION_EVENT_TYPE: &str = "compactor_compaction_event";

/// One analytics record as sinks receive it and as it is serialized:
/// `{"event_type": "...", "event_params": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "event_params")]
pub enum AnalyticsEvent {
    /// `compactor_compaction_event`: one compaction attempt.
    #[serde(rename = "compactor_compaction_event")]
    Compaction(CompactionEvent),
}

impl AnalyticsEvent {
    /// The `event_type` value.
    pub fn event_type(&self) -> &'static str {
        match self {
            AnalyticsEvent::Compaction(_) => COMPACTION_EVENT_TYPE,
        }
    }
}

impl From<CompactionEvent> for AnalyticsEvent {
    fn from(event: CompactionEvent) -> Self {
        AnalyticsEvent::Compaction(event)
    }
}

/// One compaction attempt, with its chain and cost fields (D41).
///
/// Every attempt of a fallback chain (D18) is its own event; the attempts of one chain
/// share [`CompactionEvent::compaction_id`]. Times are unix seconds; `duration_ms` comes from a
/// monotonic clock, and `completed_at` is `started_at` plus that duration, so the two always
/// agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionEvent {
    /// The session's thread id.
    pub thread_id: String,
    /// The turn the compaction ran in (for a manual compaction, its own turn).
    pub turn_id: String,
    /// Where the event was produced.
    pub runtime: RuntimeInfo,
    /// Who asked: `manual` or `auto`.
    pub trigger: CompactionTrigger,
    /// Why: `user_requested`, `context_limit` or `model_downshift`.
    pub reason: CompactionReason,
    /// How: `responses`, `responses_compact`, `responses_compaction_v2`, `prune`, ...
    pub implementation: CompactionImplementation,
    /// When: `standalone_turn`, `pre_turn` or `mid_turn`.
    pub phase: CompactionPhase,
    /// The strategy family (`memento`).
    pub strategy: CompactionStrategy,
    /// `completed`, `failed`, `interrupted` or `skipped`.
    pub status: CompactionStatus,
    /// The error text of a failed or interrupted attempt; `null` otherwise.
    pub error: Option<String>,
    /// The session's active context tokens when the attempt began.
    pub active_context_tokens_before: i64,
    /// The same measure when the attempt was tracked.
    pub active_context_tokens_after: i64,
    /// When the attempt began (unix seconds).
    pub started_at: u64,
    /// When the attempt was tracked (unix seconds).
    pub completed_at: u64,
    /// How long the attempt took (monotonic clock).
    pub duration_ms: u64,
    /// **\[beyond\]** The `ContextCompaction` item id, shared by every attempt of one chain.
    pub compaction_id: String,
    /// **\[beyond\]** 1-based ordinal of this attempt among the attempts made for
    /// `compaction_id`.
    pub attempt_number: u32,
    /// **\[beyond\]** 1-based position of this attempt's implementation in the configured
    /// fallback chain.
    pub chain_position: u32,
    /// **\[beyond\]** The length of the configured fallback chain (1 without a chain).
    pub chain_length: u32,
    /// **\[beyond\]** Request bytes sent to the model for this attempt (0 when none were).
    pub bytes_sent: u64,
    /// **\[beyond\]** Transport retries inside this attempt.
    pub retries: u32,
    /// **\[beyond\]** The usage reported by the completed compaction response, when there was one.
    pub completed_usage: Option<TokenUsage>,
    /// **\[beyond\]** The summary of the attempt's receipt: input items and estimated tokens per
    /// outcome, instructions, tools and unattributed tokens, adding up to
    /// `active_context_tokens_before` (D143 in docs/decisions.md). Absent when the attempt made
    /// no receipt (a skipped or interrupted one) and in events of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ReceiptTotals>,
    /// **\[beyond\]** The model the compaction ran with (empty in events of older versions;
    /// D95 in docs/decisions.md).
    #[serde(default)]
    pub model: String,
    /// **\[beyond\]** The provider's display name (empty in events of older versions).
    #[serde(default)]
    pub provider: String,
    /// **\[beyond\]** When the attempt began, in unix milliseconds (0 in events of older
    /// versions).
    #[serde(default)]
    pub started_at_ms: u64,
}

/// The software and platform that produced an event (D41).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    /// Compactor's version (or the harness's, when it sets its own).
    pub compactor_version: String,
    /// The operating system (`linux`, `macos`, `windows`, ...).
    pub runtime_os: String,
    /// The CPU architecture (`x86_64`, `aarch64`, ...).
    pub runtime_arch: String,
}

impl Default for RuntimeInfo {
    /// This build: the crate version and the compile-time target's OS and architecture.
    fn default() -> Self {
        RuntimeInfo {
            compactor_version: env!("CARGO_PKG_VERSION").to_owned(),
            runtime_os: std::env::consts::OS.to_owned(),
            runtime_arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
