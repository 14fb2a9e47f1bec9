//! `PreCompact` and `PostCompact` hooks (D40): the harness can observe every compaction and
//! stop one before it sends anything.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use compactor_protocol::{CompactionTrigger, HookEventName};

/// What a compaction hook is told (D40): no reason, phase or implementation, as in the
/// reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactHookInput {
    /// The session's thread id.
    pub session_id: String,
    /// The turn's id.
    pub turn_id: String,
    /// The working directory.
    pub cwd: Option<String>,
    /// The rollout file, when the session has one.
    pub transcript_path: Option<PathBuf>,
    /// The model.
    pub model: String,
    /// Manual or auto.
    pub trigger: CompactionTrigger,
    /// `PreCompact` or `PostCompact`.
    pub hook_event_name: HookEventName,
}

/// What a hook decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// Go on.
    Continue,
    /// Stop: before a compaction, nothing is sent and the compaction ends `interrupted`; after
    /// one, the compaction stays installed and the turn ends.
    Stop {
        /// Why, for the user.
        reason: String,
    },
}

/// A boxed hook future.
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = HookOutcome> + Send + 'a>>;

/// The harness's compaction hooks; they run for every implementation.
pub trait CompactHooks: Send + Sync + 'static {
    /// Runs before a compaction sends anything.
    fn pre_compact<'a>(&'a self, input: &'a CompactHookInput) -> HookFuture<'a>;
    /// Runs after a compaction is installed.
    fn post_compact<'a>(&'a self, input: &'a CompactHookInput) -> HookFuture<'a>;
}
