//! The compaction algorithms of Compactor (layer L1): pure, synchronous functions over
//! `&[ResponseItem]` that decide what a model sees before and after a compaction.
//!
//! This crate depends on `compactor-protocol` for every type it handles (and its token
//! estimates), on `thiserror`, and on `futures` only for the [`futures::Stream`] trait that
//! [`collect_context_compaction_output`] consumes. It must not depend on tokio, on any networking
//! crate, or on another L1 crate: it does no I/O and spawns nothing, so every algorithm can be
//! unit- and property-tested without a runtime. Estimation and trimming are linear in the
//! history, and each item is serialized at most once per call.
//!
//! - Estimation (D35): [`estimate_history`], [`item_tokens`], [`total_token_usage`] with
//!   [`TotalUsageInput`] and [`ReasoningAccounting`], and [`EstimateContext`].
//! - Prompt normalization: [`for_prompt`] (or [`prompt_input`], borrowing) with [`PromptOptions`] and [`InputModalities`].
//! - Pre-request trimming (D37): [`trim_function_call_history_to_fit_context_window`].
//! - Remote compaction v2 (D39): [`append_v2_trigger`] with [`V2PromptOptions`],
//!   [`collect_context_compaction_output`] returning a [`CollectedCompaction`], and
//!   [`build_v2_compacted_history`].
//! - Installed history (D16): [`process_compacted_history`],
//!   [`insert_initial_context`], [`ContextualMarkers`], [`is_real_user_message`].
//! - Local compaction (D38): [`SUMMARY_PREFIX`], [`SUMMARIZATION_PROMPT`],
//!   [`collect_user_messages`], [`build_compacted_history`], [`rebuild_legacy_compacted`].
//! - Deterministic pruning (D20): [`prune`] with [`PruneConfig`], returning a
//!   [`PruneOutcome`] and its [`PruneReport`].
//! - [`compaction_status_from_result`] (D41), and the engine's [`Error`], which
//!   converts into [`compactor_protocol::CompactorError`].
//!
//! # Examples
//!
//! ```
//! use compactor_engine::{PromptOptions, for_prompt};
//! use compactor_protocol::{ResponseItem, ToolOutput};
//!
//! let history = vec![
//!     ResponseItem::user_text("list the files"),
//!     ResponseItem::FunctionCall {
//!         id: None,
//!         name: "shell".into(),
//!         namespace: None,
//!         arguments: "{}".into(),
//!         call_id: "call_1".into(),
//!     },
//! ];
//! let input = for_prompt(&history, &PromptOptions::default());
//! // The unanswered call gets a synthetic output right after it.
//! assert_eq!(
//!     input[2],
//!     ResponseItem::FunctionCallOutput {
//!         call_id: "call_1".into(),
//!         output: ToolOutput::Text("aborted".into()),
//!     }
//! );
//! ```

mod context;
mod error;
mod estimate;
mod local;
mod normalize;
mod pairs;
mod prune;
mod remote_v2;
mod status;
mod trim;

pub use context::{
    ContextualMarkers, DEFAULT_CONTEXTUAL_MARKERS, insert_initial_context, is_real_user_message,
    is_user_turn_boundary, process_compacted_history,
};
pub use error::{Error, Result};
pub use estimate::{
    EstimateContext, ReasoningAccounting, TotalUsageInput, estimate_history, item_tokens,
    total_token_usage,
};
pub use local::{
    COMPACT_USER_MESSAGE_MAX_TOKENS, NO_SUMMARY_PLACEHOLDER, SUMMARIZATION_PROMPT, SUMMARY_PREFIX,
    build_compacted_history, build_compacted_history_with_budget, collect_user_messages,
    is_summary_message, last_assistant_text, rebuild_legacy_compacted,
    summarization_prompt_with_focus, summary_text, truncate_middle,
};
pub use normalize::{
    IMAGE_OMITTED_PLACEHOLDER, InputModalities, PromptOptions, for_prompt, prompt_input,
};
pub use prune::{
    DEFAULT_PROTECTED_USER_TURNS, PruneConfig, PruneOutcome, PruneReport, masked_output_text, prune,
};
pub use remote_v2::{
    CollectedCompaction, V2PromptOptions, append_v2_trigger, build_v2_compacted_history,
    collect_context_compaction_output, focus_message, v2_trigger_item,
};
pub use status::compaction_status_from_result;
pub use trim::{is_codex_generated, trim_function_call_history_to_fit_context_window};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
