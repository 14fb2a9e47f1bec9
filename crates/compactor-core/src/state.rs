//! The session's mutable state: history, settings baseline and token accounting.

use std::sync::Arc;

use compactor_engine::{EstimateContext, ReasoningAccounting, TotalUsageInput, total_token_usage};
use compactor_protocol::{
    ContextualMarkers, PassThroughList, Pin, RateLimitSnapshot, ResponseItem, TokenUsage,
    TokenUsageInfo, TurnContextItem,
};

use crate::config::ModelInfo;

/// What a session knows between turns. Guarded by a `std` mutex that is never held across an
/// await point.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The conversation as the next request will see it (before `prompt_input`).
    ///
    /// Shared, so a request in flight borrows a snapshot instead of copying a history of many
    /// megabytes; a change while a snapshot is alive copies it (`Arc::make_mut`), which the turn
    /// lock makes rare.
    pub(crate) history: Arc<Vec<ResponseItem>>,
    /// The settings baseline; `None` makes the next turn inject the full initial context.
    pub(crate) reference_context_item: Option<TurnContextItem>,
    /// Token accounting.
    pub(crate) token_info: TokenUsageInfo,
    /// The latest rate limits.
    pub(crate) rate_limits: Option<RateLimitSnapshot>,
    /// Whether the server counts earlier reasoning.
    pub(crate) reasoning: ReasoningAccounting,
    /// The model of the last completed turn (for the downshift check).
    pub(crate) previous_model: Option<ModelInfo>,
    /// The session's pins (D140).
    pub(crate) pins: Vec<Pin>,
    /// How many leading items of `history` are the pin slot the last compaction laid out.
    pub(crate) pin_slot: usize,
    /// The number of the next pin id (0 counts as 1).
    pub(crate) next_pin_number: u64,
    /// The provider refused the v2 trigger: v2 is left out of chains for the rest of the
    /// session (D114).
    pub(crate) lacks_remote_v2: bool,
    /// The context estimate right after the last compaction installed in this session, for the
    /// loop guard's growth rule (D104).
    pub(crate) after_last_compaction: Option<i64>,
}

impl SessionState {
    /// The context size estimate that gates auto compaction (D36).
    pub(crate) fn total_usage(
        &self,
        markers: &ContextualMarkers,
        pass_through: &PassThroughList,
    ) -> i64 {
        total_token_usage(&TotalUsageInput {
            items: &self.history,
            last_total_tokens: self.token_info.last_token_usage.total_tokens,
            history_len_at_last_usage: None,
            reasoning: self.reasoning,
            markers,
            pass_through,
        })
    }

    /// What [`SessionState::total_usage`] will be once `history` is installed, for the receipt
    /// written before it is.
    pub(crate) fn total_usage_after_install(
        &self,
        history: &[ResponseItem],
        estimate: &EstimateContext<'_>,
        markers: &ContextualMarkers,
    ) -> i64 {
        total_token_usage(&TotalUsageInput {
            items: history,
            last_total_tokens: i64::try_from(estimate.estimate(history)).unwrap_or(i64::MAX),
            history_len_at_last_usage: None,
            reasoning: self.reasoning,
            markers,
            pass_through: estimate.pass_through,
        })
    }

    /// After an install: the last usage becomes the estimate of the new history (D36);
    /// the running total is kept.
    pub(crate) fn recompute_token_usage(
        &mut self,
        estimate: &EstimateContext<'_>,
        context_window: Option<i64>,
    ) {
        let tokens = i64::try_from(estimate.estimate(&self.history)).unwrap_or(i64::MAX);
        self.token_info.last_token_usage = TokenUsage::with_total(tokens);
        self.token_info.model_context_window = context_window;
    }
}
