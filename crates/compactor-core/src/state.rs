//! The session's mutable state: history, settings baseline and token accounting.

use std::sync::Arc;

use compactor_engine::{
    ContextUsageInput, EstimateContext, HistoryCounts, ReasoningAccounting, context_usage,
};
use compactor_protocol::tokens::{TokenCalibration, TokenCountAccuracy};
use compactor_protocol::{
    ContextualMarkers, RateLimitSnapshot, ResponseItem, TokenUsage, TokenUsageInfo, TurnContextItem,
};

use crate::config::{Calibration, ModelInfo};

/// What a session knows between turns. Guarded by a `std` mutex that is never held across an
/// await point.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The conversation as the next request will see it (before `prompt_input`).
    ///
    /// Shared, so a request in flight borrows a snapshot instead of copying a history of many
    /// megabytes; a change while a snapshot is alive copies it (`Arc::make_mut`), which the turn
    /// lock makes rare. Change it only through [`SessionState::append`] and
    /// [`SessionState::replace_history`], which keep `counts` in step.
    pub(crate) history: Arc<Vec<ResponseItem>>,
    /// The token count of every history item, counted once when it was recorded (D124).
    pub(crate) counts: HistoryCounts,
    /// The settings baseline; `None` makes the next turn inject the full initial context.
    pub(crate) reference_context_item: Option<TurnContextItem>,
    /// Token accounting, with the calibration learned from reported usage (D123).
    pub(crate) token_info: TokenUsageInfo,
    /// The latest rate limits.
    pub(crate) rate_limits: Option<RateLimitSnapshot>,
    /// Whether the server counts earlier reasoning.
    pub(crate) reasoning: ReasoningAccounting,
    /// The model of the last completed turn (for the downshift check).
    pub(crate) previous_model: Option<ModelInfo>,
    /// The context estimate right after the last compaction installed in this session, for the
    /// loop guard's growth rule (D104).
    pub(crate) after_last_compaction: Option<i64>,
}

impl SessionState {
    /// Appends items already counted: `counts` are theirs, in order.
    pub(crate) fn append(&mut self, items: Vec<ResponseItem>, counts: &HistoryCounts) {
        debug_assert_eq!(items.len(), counts.len(), "the counts of the appended items");
        let history = Arc::make_mut(&mut self.history);
        self.counts.extend_counted(counts);
        history.extend(items);
    }

    /// Replaces the history with `history`, whose counts are `counts`, and returns the old one.
    pub(crate) fn replace_history(
        &mut self,
        history: Arc<Vec<ResponseItem>>,
        counts: HistoryCounts,
    ) -> Arc<Vec<ResponseItem>> {
        debug_assert_eq!(history.len(), counts.len(), "the counts of the new history");
        self.counts = counts;
        std::mem::replace(&mut self.history, history)
    }

    /// The calibration the estimates use: the learned one, unless calibration is off.
    pub(crate) fn calibration(&self, calibration: Calibration) -> Option<TokenCalibration> {
        match calibration {
            Calibration::On => self.token_info.calibration,
            Calibration::Off => None,
        }
    }

    /// The context size estimate that gates auto compaction (D36), from the cached counts.
    pub(crate) fn total_usage(
        &self,
        markers: &ContextualMarkers,
        calibration: Option<TokenCalibration>,
    ) -> i64 {
        context_usage(&ContextUsageInput {
            items: &self.history,
            counts: &self.counts,
            last_total_tokens: self.token_info.last_token_usage.total_tokens,
            reasoning: self.reasoning,
            markers,
            calibration,
        })
    }

    /// After an install: the last usage becomes the estimate of the new history (D36), the
    /// running total is kept.
    pub(crate) fn recompute_token_usage(
        &mut self,
        estimate: &EstimateContext<'_>,
        context_window: Option<i64>,
    ) {
        let tokens = i64::try_from(estimate.estimate_counted(&self.counts)).unwrap_or(i64::MAX);
        self.token_info.last_token_usage = TokenUsage::with_total(tokens);
        self.token_info.model_context_window = context_window;
    }

    /// Records the usage a completed response reported for a request the session estimated at
    /// `estimated_input` tokens before sending it, and learns from it when calibrating (D123).
    pub(crate) fn record_usage(
        &mut self,
        usage: &TokenUsage,
        estimated_input: Option<u64>,
        calibration: Calibration,
    ) {
        self.token_info.append_last_usage(usage);
        let estimated_input =
            estimated_input.map(|tokens| i64::try_from(tokens).unwrap_or(i64::MAX));
        self.token_info.estimated_input_tokens = estimated_input;
        if calibration == Calibration::On
            && let Some(estimated) = estimated_input
        {
            self.token_info.calibration = TokenCalibration::observe(
                self.token_info.calibration,
                usage.input_tokens,
                estimated,
            );
        }
    }

    /// Fills the session's view of the budget into the accounting a `token_count` event carries
    /// (D126): the counter, how far the figures can be trusted, and the distance to the
    /// auto-compact limit of `model`.
    pub(crate) fn budget_info(
        &self,
        estimate: &EstimateContext<'_>,
        markers: &ContextualMarkers,
        model: &ModelInfo,
    ) -> TokenUsageInfo {
        let mut info = self.token_info;
        info.token_counter = Some(estimate.counter.effective());
        info.accuracy = Some(match (estimate.calibration, estimate.counter.is_exact()) {
            (Some(calibration), _) if calibration.ratio() != 1.0 => TokenCountAccuracy::Calibrated,
            (_, true) => TokenCountAccuracy::Exact,
            (_, false) => TokenCountAccuracy::Estimated,
        });
        let limit = model.auto_compact_limit();
        info.tokens_until_compaction = (limit != i64::MAX)
            .then(|| limit.saturating_sub(self.total_usage(markers, estimate.calibration)).max(0));
        info
    }
}
