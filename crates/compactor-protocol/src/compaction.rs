//! The compaction vocabulary shared by core, analytics, traces and hooks (D5, D41).
//!
//! Every enum serializes as its snake_case name (`auto`, `context_limit`, `mid_turn`, ...).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Who asked for a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionTrigger {
    /// The user (`/compact`).
    Manual,
    /// The session, because of the context size.
    Auto,
}

/// Why a compaction ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionReason {
    /// The user asked.
    UserRequested,
    /// The context reached the auto-compact limit, or a request overflowed the window.
    ContextLimit,
    /// The next turn switches to a model with a smaller window.
    ModelDownshift,
}

/// How the compaction was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionImplementation {
    /// Local summarization through a normal `/responses` stream.
    Responses,
    /// Remote v1: `POST /responses/compact`.
    ResponsesCompact,
    /// Remote v2: a `/responses` stream ending with a trigger item.
    ResponsesCompactionV2,
    /// Deterministic pruning without a model call.
    Prune,
    /// The server compacted by itself (`context_management`).
    ServerManaged,
}

/// Where in a session's life the compaction ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionPhase {
    /// A turn of its own (manual compaction).
    StandaloneTurn,
    /// Before a turn samples.
    PreTurn,
    /// Between sampling requests of a turn.
    MidTurn,
}

/// The strategy family; Compactor's implementations are all `memento`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionStrategy {
    /// Replace history with a summary plus retained messages.
    Memento,
    /// Reserved.
    PrefixCompaction,
}

/// How a compaction attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactionStatus {
    /// Installed.
    Completed,
    /// Failed; history unchanged.
    Failed,
    /// Cancelled or stopped by a hook; history unchanged.
    Interrupted,
    /// Nothing to compact (empty history); no request made.
    Skipped,
}

/// Where the initial context goes in a compacted history (D16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialContextInjection {
    /// Mid-turn: splice the initial context above the last real user message, keeping the
    /// summary or compaction item last.
    BeforeLastUserMessage,
    /// Manual and pre-turn: leave it out; the next turn re-injects it in full.
    DoNotInject,
}

/// The trigger item form of remote compaction v2 (D8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum V2TriggerForm {
    /// `{"type":"context_compaction"}`, answered by a `context_compaction` item.
    #[default]
    ContextCompaction,
    /// `{"type":"compaction_trigger"}`, answered by a `compaction` item.
    CompactionTrigger,
}

macro_rules! display_as_serde_name {
    ($($ty:ty),* $(,)?) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // The serde name is the one users see in analytics and logs.
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(name)) => f.write_str(&name),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}

display_as_serde_name!(
    CompactionTrigger,
    CompactionReason,
    CompactionImplementation,
    CompactionPhase,
    CompactionStrategy,
    CompactionStatus,
    InitialContextInjection,
    V2TriggerForm,
);
