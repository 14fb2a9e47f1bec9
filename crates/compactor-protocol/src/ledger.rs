//! The progress ledger as it is persisted (see D150 and D153 in docs/decisions.md): what a
//! session has read, run and changed, extracted from its tool traffic.
//!
//! The engine keeps and updates the ledger (`compactor_engine::Ledger`); this module holds its
//! records, so a `compacted` rollout line can carry a snapshot ([`LedgerSnapshot`]) and a
//! harness's open items can have a rollout line of their own ([`OpenItemsItem`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a session did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAction {
    /// Read it.
    Read,
    /// Wrote or edited it.
    Written,
    /// Created it.
    Created,
    /// Deleted it.
    Deleted,
}

impl FileAction {
    /// The action's name as the ledger writes it: `read`, `written`, `created`, `deleted`.
    pub fn name(self) -> &'static str {
        match self {
            FileAction::Read => "read",
            FileAction::Written => "written",
            FileAction::Created => "created",
            FileAction::Deleted => "deleted",
        }
    }
}

/// One file a patch touched, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchedFile {
    /// The file's path as the patch names it.
    pub path: String,
    /// What the patch did to it: created (`Add File`), written (`Update File`, or the target of a
    /// move) or deleted (`Delete File`, or the source of a move).
    pub action: FileAction,
}

/// What one tool call means for the ledger, as the engine's tool extractor describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToolEffect {
    /// A command was run.
    Command {
        /// The command line, as one string.
        command: String,
    },
    /// A file was read, written, created or deleted.
    File {
        /// The file's path.
        path: String,
        /// What was done to it.
        action: FileAction,
    },
    /// A patch was applied.
    Patch {
        /// The files it touched, in the order the patch names them.
        files: Vec<PatchedFile>,
        /// Lines the patch added.
        added_lines: u64,
        /// Lines the patch removed.
        removed_lines: u64,
    },
}

/// A file in the ledger: every action done to it, and when it was last touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerFile {
    /// The file's path.
    pub path: String,
    /// What was done to it, each action once, in [`FileAction`] order.
    pub actions: Vec<FileAction>,
    /// The user turn in which it was last touched.
    pub last_turn: u64,
    /// The ledger's sequence number of the last touch: larger is newer.
    pub seq: u64,
}

/// A command in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerCommand {
    /// The command line.
    pub command: String,
    /// Its exit code, when its output said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Whether it failed: a non-zero exit code, or an output that says so.
    pub failed: bool,
    /// The user turn it ran in.
    pub turn: u64,
    /// The ledger's sequence number: larger is newer.
    pub seq: u64,
}

/// A patch the session applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPatch {
    /// The files it touched.
    pub files: Vec<PatchedFile>,
    /// Lines it added.
    pub added_lines: u64,
    /// Lines it removed.
    pub removed_lines: u64,
    /// The user turn it was applied in.
    pub turn: u64,
    /// The ledger's sequence number: larger is newer.
    pub seq: u64,
}

/// Something the user asked: the first line of a real user message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerRequest {
    /// The message's first non-empty line, cut to a bounded length.
    pub text: String,
    /// The user turn the message opened.
    pub turn: u64,
    /// The ledger's sequence number: larger is newer.
    pub seq: u64,
}

/// A tool call whose output has not been recorded yet: its effects wait for the output, which
/// says whether the call succeeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerPendingCall {
    /// The id the output will carry.
    pub call_id: String,
    /// The tool's name.
    pub tool: String,
    /// What the call does, once it succeeds.
    pub effects: Vec<ToolEffect>,
}

/// How many entries of each kind the ledger's bounds have evicted (the newest are kept).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEvicted {
    /// Files.
    #[serde(default)]
    pub files: u64,
    /// Commands.
    #[serde(default)]
    pub commands: u64,
    /// Patches.
    #[serde(default)]
    pub patches: u64,
    /// User requests.
    #[serde(default)]
    pub requests: u64,
}

/// The whole state of a progress ledger, as a `compacted` rollout line carries it.
///
/// Entries of each kind are oldest first. The engine keeps every list within its bounds; a
/// snapshot read from a rollout is taken as it is.
///
/// # Examples
///
/// ```
/// use compactor_protocol::{FileAction, LedgerFile, LedgerSnapshot};
///
/// let snapshot = LedgerSnapshot {
///     turn: 2,
///     next_seq: 1,
///     files: vec![LedgerFile {
///         path: "src/lib.rs".into(),
///         actions: vec![FileAction::Read],
///         last_turn: 2,
///         seq: 0,
///     }],
///     ..LedgerSnapshot::default()
/// };
/// let json = serde_json::to_string(&snapshot).unwrap();
/// assert_eq!(
///     json,
///     r#"{"turn":2,"next_seq":1,"files":[{"path":"src/lib.rs","actions":["read"],"last_turn":2,"seq":0}]}"#
/// );
/// assert_eq!(serde_json::from_str::<LedgerSnapshot>(&json).unwrap(), snapshot);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    /// User turns counted so far: the turn of the next entry (0 before the first user message).
    #[serde(default)]
    pub turn: u64,
    /// The next sequence number.
    #[serde(default)]
    pub next_seq: u64,
    /// Files, least recently touched first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<LedgerFile>,
    /// Commands, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<LedgerCommand>,
    /// Patches, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<LedgerPatch>,
    /// User requests, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<LedgerRequest>,
    /// The open items the harness declared, in its order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_items: Vec<String>,
    /// Calls still waiting for their output, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<LedgerPendingCall>,
    /// Entries the bounds evicted.
    #[serde(default, skip_serializing_if = "is_default")]
    pub evicted: LedgerEvicted,
    /// Fields written by a newer version, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_default(evicted: &LedgerEvicted) -> bool {
    *evicted == LedgerEvicted::default()
}

/// The payload of an `open_items` rollout line: the harness's open items after it changed them
/// between compactions. On resume, the newest surviving record of the open items (this line or
/// a `compacted` line's ledger snapshot) is the ledger's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenItemsItem {
    /// Every open item, in the harness's order.
    #[serde(default)]
    pub open_items: Vec<String>,
    /// Fields written by a newer version, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl OpenItemsItem {
    /// A record of `open_items`.
    pub fn new(open_items: Vec<String>) -> Self {
        Self { open_items, extra: Map::new() }
    }
}

#[cfg(test)]
mod tests;
