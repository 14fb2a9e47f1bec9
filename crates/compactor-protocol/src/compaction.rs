//! The compaction vocabulary shared by core, analytics, traces and hooks (D5, D41).
//!
//! Every enum serializes as its snake_case name (`auto`, `context_limit`, `mid_turn`, ...).

use std::fmt;
use std::str::FromStr;

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
///
/// Each implementation has a long name, which is its JSON form, its [`fmt::Display`] form and
/// its analytics label, and a short name; [`FromStr`] accepts either (D73).
///
/// # Examples
///
/// ```
/// use compactor_protocol::CompactionImplementation;
///
/// let v2: CompactionImplementation = "v2".parse().unwrap();
/// assert_eq!(v2, CompactionImplementation::ResponsesCompactionV2);
/// assert_eq!(v2.to_string(), "responses_compaction_v2");
/// assert_eq!("responses".parse(), Ok(CompactionImplementation::Responses));
/// assert_eq!(CompactionImplementation::Responses.short_name(), "local");
/// assert!("fastest".parse::<CompactionImplementation>().is_err());
/// ```
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

impl CompactionImplementation {
    /// Every implementation, in the order names are listed to users.
    pub const ALL: [Self; 5] = [
        Self::ResponsesCompactionV2,
        Self::ResponsesCompact,
        Self::Responses,
        Self::Prune,
        Self::ServerManaged,
    ];

    /// The long name: `responses_compaction_v2`, `responses_compact`, `responses`, `prune` or
    /// `server_managed`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ResponsesCompactionV2 => "responses_compaction_v2",
            Self::ResponsesCompact => "responses_compact",
            Self::Responses => "responses",
            Self::Prune => "prune",
            Self::ServerManaged => "server_managed",
        }
    }

    /// The short name: `v2`, `v1` or `local`; `prune` and `server_managed` have only one name.
    pub const fn short_name(self) -> &'static str {
        match self {
            Self::ResponsesCompactionV2 => "v2",
            Self::ResponsesCompact => "v1",
            Self::Responses => "local",
            Self::Prune | Self::ServerManaged => self.name(),
        }
    }

    /// Whether a session can be asked to run it, alone or in a fallback chain: every
    /// implementation but `server_managed`, which the server runs by itself.
    pub const fn can_be_requested(self) -> bool {
        match self {
            Self::ResponsesCompactionV2
            | Self::ResponsesCompact
            | Self::Responses
            | Self::Prune => true,
            Self::ServerManaged => false,
        }
    }
}

impl fmt::Display for CompactionImplementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is neither the long nor the short name of a [`CompactionImplementation`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compaction implementation {name:?} (expected one of {})", expected_names())]
pub struct UnknownImplementation {
    /// The name as given.
    pub name: String,
}

fn expected_names() -> String {
    let names: Vec<&str> = CompactionImplementation::ALL.iter().map(|i| i.name()).collect();
    names.join(", ")
}

impl FromStr for CompactionImplementation {
    type Err = UnknownImplementation;

    /// Parses a long or a short name, exactly as spelled (names are case-sensitive).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|implementation| {
                implementation.name() == name || implementation.short_name() == name
            })
            .ok_or_else(|| UnknownImplementation { name: name.to_owned() })
    }
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
    CompactionPhase,
    CompactionStrategy,
    CompactionStatus,
    InitialContextInjection,
    V2TriggerForm,
);

#[cfg(test)]
mod tests;
