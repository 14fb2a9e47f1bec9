//! The session's mutable state: history, settings baseline and token accounting.

use std::sync::Arc;

use compactor_engine::{
    ContextUsageInput, EstimateContext, HistoryCounts, ReasoningAccounting, context_usage,
};
use compactor_protocol::tokens::{TokenCalibration, TokenCountAccuracy};
use compactor_protocol::{
    ContextualMarkers, Pin, RateLimitSnapshot, ResponseItem, TokenUsage, TokenUsageInfo,
    TurnContextItem,
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
    /// What `token_info.last_token_usage` stands for (D123).
    pub(crate) usage_basis: UsageBasis,
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

/// What the last usage figure of a session stands for: how many history items it covers, and
/// whether a server reported it or the session estimated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UsageBasis {
    /// A server reported it, for this many items (and those before them).
    Reported { items: usize },
    /// The session estimated it (after an install, or a window overflow), for this many items.
    Estimated { items: usize },
    /// Nothing known: a resumed session, until its next response.
    Unknown,
}

impl Default for UsageBasis {
    /// A new session: nothing reported yet, and nothing covered.
    fn default() -> Self {
        UsageBasis::Estimated { items: 0 }
    }
}

/// The session's estimate of a request, made just before sending it (D123, D126).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SentEstimate {
    /// The whole request as the session believed it would count: what it decides on.
    pub(crate) predicted: u64,
    /// When the last usage was reported: that total, and the uncorrected count of what the
    /// request adds to it. The server's next report tells how much that really was.
    pub(crate) added_since_report: Option<(i64, u64)>,
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
    ///
    /// Before anything is reported or estimated, the request's instructions and tools count
    /// too: there is no reported total that holds them yet.
    pub(crate) fn total_usage(
        &self,
        estimate: &EstimateContext<'_>,
        markers: &ContextualMarkers,
    ) -> i64 {
        let input = self.usage_input(markers, estimate.calibration);
        let usage = context_usage(&input);
        if self.is_fresh() {
            let fixed = estimate.calibrate(estimate.fixed_tokens());
            return usage.saturating_add(i64::try_from(fixed).unwrap_or(i64::MAX));
        }
        usage
    }

    /// Nothing reported or estimated yet: the first request of a new session.
    fn is_fresh(&self) -> bool {
        self.usage_basis == UsageBasis::Estimated { items: 0 }
            && self.token_info.last_token_usage.total_tokens == 0
    }

    fn usage_input<'a>(
        &'a self,
        markers: &'a ContextualMarkers,
        calibration: Option<TokenCalibration>,
    ) -> ContextUsageInput<'a> {
        let history_len_at_last_usage = match self.usage_basis {
            UsageBasis::Reported { items } | UsageBasis::Estimated { items } => Some(items),
            UsageBasis::Unknown => None,
        };
        ContextUsageInput {
            items: &self.history,
            counts: &self.counts,
            last_total_tokens: self.token_info.last_token_usage.total_tokens,
            history_len_at_last_usage,
            reasoning: self.reasoning,
            markers,
            calibration,
        }
    }

    /// The estimate of the request about to be sent with the whole history.
    pub(crate) fn sent_estimate(
        &self,
        estimate: &EstimateContext<'_>,
        markers: &ContextualMarkers,
    ) -> SentEstimate {
        let predicted = u64::try_from(self.total_usage(estimate, markers)).unwrap_or(0);
        let added_since_report = match self.usage_basis {
            UsageBasis::Reported { items } => Some((
                self.token_info.last_token_usage.total_tokens,
                self.counts.range(items..self.counts.len()),
            )),
            // Nothing reported yet: the report will tell about the whole request.
            UsageBasis::Estimated { .. } if self.is_fresh() => {
                Some((0, estimate.raw_estimate_counted(&self.counts)))
            }
            UsageBasis::Estimated { .. } | UsageBasis::Unknown => None,
        };
        SentEstimate { predicted, added_since_report }
    }

    /// What [`SessionState::total_usage`] will be once `history`, whose counts are `counts`, is
    /// installed and [`SessionState::recompute_token_usage`] has run: for the receipt written
    /// before it is.
    pub(crate) fn total_usage_after_install(
        &self,
        history: &[ResponseItem],
        counts: &HistoryCounts,
        estimate: &EstimateContext<'_>,
        markers: &ContextualMarkers,
    ) -> i64 {
        debug_assert_eq!(history.len(), counts.len(), "the counts of the new history");
        context_usage(&ContextUsageInput {
            items: history,
            counts,
            last_total_tokens: i64::try_from(estimate.raw_estimate_counted(counts))
                .unwrap_or(i64::MAX),
            history_len_at_last_usage: Some(history.len()),
            reasoning: self.reasoning,
            markers,
            calibration: estimate.calibration,
        })
    }

    /// After an install: the last usage becomes the estimate of the new history (D36), the
    /// running total is kept.
    ///
    /// The calibration is not applied here: it was learned from what turns add (tool outputs,
    /// messages), and a compacted history is made of something else, its retained messages and
    /// an encrypted item (D123).
    pub(crate) fn recompute_token_usage(
        &mut self,
        estimate: &EstimateContext<'_>,
        context_window: Option<i64>,
    ) {
        let tokens = i64::try_from(estimate.raw_estimate_counted(&self.counts)).unwrap_or(i64::MAX);
        self.token_info.last_token_usage = TokenUsage::with_total(tokens);
        self.token_info.model_context_window = context_window;
        self.usage_basis = UsageBasis::Estimated { items: self.history.len() };
    }

    /// Records the usage a completed response reported for a request the session estimated as
    /// `sent` before sending it, and learns from it when calibrating (D123): the reported input
    /// minus the reported total the estimate started from is what the estimated part really
    /// counted.
    pub(crate) fn record_usage(
        &mut self,
        usage: &TokenUsage,
        sent: Option<SentEstimate>,
        calibration: Calibration,
    ) {
        self.token_info.append_last_usage(usage);
        self.token_info.estimated_input_tokens =
            sent.map(|sent| i64::try_from(sent.predicted).unwrap_or(i64::MAX));
        if calibration == Calibration::On
            && let Some((base, added)) = sent.and_then(|sent| sent.added_since_report)
        {
            self.token_info.calibration = TokenCalibration::observe(
                self.token_info.calibration,
                usage.input_tokens.saturating_sub(base),
                i64::try_from(added).unwrap_or(i64::MAX),
            );
        }
    }

    /// The response's own items are recorded: the reported usage covers the whole history now.
    pub(crate) fn usage_covers_history(&mut self) {
        self.usage_basis = UsageBasis::Reported { items: self.history.len() };
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
            .then(|| limit.saturating_sub(self.total_usage(estimate, markers)).max(0));
        info
    }
}
