//! The compaction algorithms of Compactor (layer L1): pure, synchronous functions over
//! `&[ResponseItem]` that decide what a model sees before and after a compaction.
//!
//! This crate depends on `compactor-protocol` for every type it handles (and its token
//! estimates), on `thiserror`, on `serde_json` only to read tool-call arguments and outputs for
//! the ledger, and on `futures` only for the [`futures::Stream`] trait that
//! [`collect_context_compaction_output`] consumes. It must not depend on tokio, on any networking
//! crate, or on another L1 crate: it does no I/O and spawns nothing, so every algorithm can be
//! unit- and property-tested without a runtime. Estimation and trimming are linear in the
//! history, and each item is counted once, when it is recorded (D124).
//!
//! - Estimation (D35, D120): [`EstimateContext`] (instructions, tools, the session's counter and
//!   calibration) and [`estimate_history`]; the usage gate (D36) [`context_usage`] with
//!   [`ContextUsageInput`] and [`ReasoningAccounting`].
//! - Cached counts (D124): [`HistoryCounts`], counted by an [`ItemCounter`].
//! - Prompt normalization: [`for_prompt`] (or [`prompt_input`], borrowing) with [`PromptOptions`] and [`InputModalities`].
//! - Pre-request trimming (D37): [`trim_function_call_history_to_fit_context_window`].
//! - Remote compaction v2 (D39): [`append_v2_trigger`] with [`V2PromptOptions`],
//!   [`collect_context_compaction_output`] returning a [`CollectedCompaction`], and
//!   [`v2_request_messages`].
//! - The installed history of every implementation (D102): [`compacted_history`] builds it
//!   from a [`Compacted`] result and a [`Layout`]: pins, ledger, the initial context placed by
//!   the injection mode, the retained budget of [`default_retained_budget_tokens`] (D101), the
//!   image cap (D103). What a user turn is comes from
//!   [`compactor_protocol::is_user_turn_boundary`] and its
//!   [`ContextualMarkers`](compactor_protocol::ContextualMarkers) (D70).
//! - The loop guard (D104): [`WindowLimits::compaction_need`] says when an auto compaction runs
//!   ([`CompactionNeed`]).
//! - Truncation on record (D100): [`truncate_tool_output`] with a [`TruncationPolicy`],
//!   reporting a [`ToolOutputTruncation`].
//! - Local compaction (D38): [`SUMMARY_PREFIX`], [`SUMMARIZATION_PROMPT`] and
//!   [`summarization_prompt_with_focus`], [`collect_user_messages`], [`drop_oldest`] when the
//!   summarization request overflows, [`rebuild_legacy_compacted`].
//! - Deterministic pruning (D20): [`prune`] with [`PruneConfig`] and
//!   [`prune_target_tokens`], returning a [`PruneOutcome`] and its [`PruneReport`].
//! - Server-managed compaction (D46): [`split_server_compaction`] sorts a response's output
//!   into a [`ResponseOutput`], a [`ServerCompaction`] when the server compacted by itself.
//! - Pins (D140, D141): [`pin_copy`] (what a pin holds), [`pin_slot_len`], [`without_pinned`],
//!   [`pinned_tokens`] and [`same_content`].
//! - Receipts (D143): [`account_items`] (or [`account_items_counted`], from cached counts) with [`ReceiptInput`], [`ReceiptTokens`] and [`Sent`],
//!   and [`unchanged_items`] for an attempt that changed nothing.
//! - The progress ledger (D150 to D152): [`Ledger`], updated with [`LedgerRules`] as items are
//!   recorded and rendered within a budget into a message [`is_ledger_message`] recognizes;
//!   [`ToolExtractor`] (a harness's description of its tools, given a [`ToolCallView`] of a
//!   call's [`ToolInput`], reading a [`CallOutcome`]) and [`DefaultTools`] for the common ones.
//! - Fit (D63): [`compacted_floor`], the fewest tokens an implementation's result can have, known
//!   before a request.
//! - The engine's [`Error`], which converts into [`compactor_protocol::CompactorError`].
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
mod counts;
mod error;
mod estimate;
mod fit;
mod guard;
mod images;
mod layout;
mod ledger;
mod local;
mod normalize;
mod pairs;
mod pins;
mod prune;
mod receipt;
mod remote_v2;
mod retained;
mod server_managed;
mod trim;
mod truncate;

pub use counts::{HistoryCounts, ItemCounter};
pub use error::{Error, Result};
pub use estimate::{
    ContextUsageInput, EstimateContext, ReasoningAccounting, context_usage, estimate_history,
};
pub use fit::compacted_floor;
pub use guard::{CompactionNeed, WindowLimits};
pub use images::DEFAULT_MAX_RETAINED_IMAGES;
pub use layout::{Compacted, Layout, compacted_history};
pub use ledger::{
    CallOutcome, DefaultTools, LEDGER_TAG, Ledger, LedgerRules, ToolCallView, ToolExtractor,
    ToolInput, is_ledger_message,
};
pub use local::{
    COMPACT_USER_MESSAGE_MAX_TOKENS, SUMMARIZATION_PROMPT, SUMMARY_PREFIX, collect_user_messages,
    drop_oldest, drop_oldest_tokens, last_assistant_text, rebuild_legacy_compacted,
    summarization_prompt_with_focus, summary_text,
};
pub use normalize::{InputModalities, PROMPT_INPUT_SPARE, PromptOptions, for_prompt, prompt_input};
pub use pins::{pin_copy, pin_slot_len, pinned_tokens, same_content, without_pinned};
pub use prune::{PruneConfig, PruneOutcome, PruneReport, prune, prune_target_tokens};
pub use receipt::{
    ReceiptInput, ReceiptTokens, Sent, account_items, account_items_counted, unchanged_items,
};
pub use remote_v2::{
    CollectedCompaction, V2PromptOptions, append_v2_trigger, collect_context_compaction_output,
    v2_request_messages,
};
pub use retained::{MIN_RETAINED_BUDGET_TOKENS, default_retained_budget_tokens};
pub use server_managed::{ResponseOutput, ServerCompaction, split_server_compaction};
pub use trim::trim_function_call_history_to_fit_context_window;
pub use truncate::{ToolOutputTruncation, TruncationPolicy, truncate_tool_output};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
