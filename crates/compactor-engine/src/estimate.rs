//! Token estimates of histories and of the session's context usage (D35, D36), through the
//! session's [`TokenCounter`] (D120) and its calibration (D123).

use compactor_protocol::tokens::{TokenCalibration, TokenCounter};
use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem, is_user_turn_boundary};

use crate::counts::{HistoryCounts, ItemCounter};

/// How a session estimates a request: what the request carries besides its items (the
/// instructions and the tools), how items are counted, and the calibration learned from
/// reported usage.
///
/// # Examples
///
/// ```
/// use compactor_engine::EstimateContext;
/// use compactor_protocol::tokens::{TokenCalibration, TokenCounter};
/// use compactor_protocol::{PassThroughList, ResponseItem};
///
/// let pass_through = PassThroughList::default();
/// let plain = EstimateContext::new("be brief", &pass_through);
/// let items = [ResponseItem::user_text("hi")];
/// // 8 bytes of instructions = 2 tokens; the message is 78 bytes of JSON = 20 tokens.
/// assert_eq!(plain.estimate(&items), 22);
/// // Reported usage said the session undercounts by a tenth.
/// let calibrated = EstimateContext {
///     calibration: TokenCalibration::observe(None, 1_100, 1_000),
///     ..plain
/// };
/// assert_eq!(calibrated.estimate(&items), 24);
/// assert_eq!(EstimateContext { counter: TokenCounter::O200k, ..plain }.counter.name(), "o200k");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct EstimateContext<'a> {
    /// The session's base instructions (not the model default, D37).
    pub base_instructions: &'a str,
    /// The unknown item types the provider receives.
    pub pass_through: &'a PassThroughList,
    /// How text and items are counted.
    pub counter: TokenCounter,
    /// The tokens of the tool definitions every request carries, counted with `counter`.
    pub tool_tokens: u64,
    /// The correction learned from reported usage, when there is one.
    pub calibration: Option<TokenCalibration>,
}

impl<'a> EstimateContext<'a> {
    /// Estimates with `Bytes4`, no tools and no calibration: the reference's estimate (D35).
    pub fn new(base_instructions: &'a str, pass_through: &'a PassThroughList) -> Self {
        Self {
            base_instructions,
            pass_through,
            counter: TokenCounter::Bytes4,
            tool_tokens: 0,
            calibration: None,
        }
    }

    /// How this context counts one item.
    pub fn item_counter(&self) -> ItemCounter<'a> {
        ItemCounter { counter: self.counter, pass_through: self.pass_through }
    }

    /// What a request carries besides its items: the instructions and the tools, uncorrected.
    pub fn fixed_tokens(&self) -> u64 {
        self.counter.text_tokens(self.base_instructions).saturating_add(self.tool_tokens)
    }

    /// `tokens` corrected by the calibration, when there is one.
    pub fn calibrate(&self, tokens: u64) -> u64 {
        self.calibration.map_or(tokens, |calibration| calibration.apply(tokens))
    }

    /// The estimate of a request holding `items`: instructions, tools and every item, counted
    /// now and calibrated. Each item is serialized once.
    pub fn estimate(&self, items: &[ResponseItem]) -> u64 {
        let counter = self.item_counter();
        let raw = items
            .iter()
            .fold(self.fixed_tokens(), |total, item| total.saturating_add(counter.count(item)));
        self.calibrate(raw)
    }

    /// [`EstimateContext::estimate`] of the history whose cached counts are `counts`, without
    /// counting anything.
    pub fn estimate_counted(&self, counts: &HistoryCounts) -> u64 {
        self.calibrate(self.raw_estimate_counted(counts))
    }

    /// [`EstimateContext::estimate_counted`] before calibration: what reported usage is
    /// compared with to learn the calibration.
    pub fn raw_estimate_counted(&self, counts: &HistoryCounts) -> u64 {
        self.fixed_tokens().saturating_add(counts.total())
    }
}

/// `approx_token_count(instructions) + Σ item tokens` with `Bytes4`, saturating, each item
/// serialized once: [`EstimateContext::new`]'s estimate, for callers without a session.
///
/// # Examples
///
/// ```
/// use compactor_engine::estimate_history;
/// use compactor_protocol::{PassThroughList, ResponseItem};
///
/// let items = [ResponseItem::user_text("hi")];
/// assert_eq!(estimate_history("be brief", &items, &PassThroughList::default()), 22);
/// ```
pub fn estimate_history(
    instructions: &str,
    items: &[ResponseItem],
    pass_through: &PassThroughList,
) -> u64 {
    EstimateContext::new(instructions, pass_through).estimate(items)
}

/// Whether the server already counts the reasoning of earlier turns in its usage
/// (`x-reasoning-included`, `ResponseEvent::ServerReasoningIncluded`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReasoningAccounting {
    /// The server did not say so: encrypted reasoning before the last user turn is estimated.
    #[default]
    Estimated,
    /// The server includes it: nothing is added for it.
    IncludedByServer,
}

/// The inputs of [`context_usage`]: the session's history with its cached counts, its last
/// reported usage and its calibration.
#[derive(Debug, Clone, Copy)]
pub struct ContextUsageInput<'a> {
    /// The session's history.
    pub items: &'a [ResponseItem],
    /// The history's cached counts (D124), one per item.
    pub counts: &'a HistoryCounts,
    /// `last_token_usage.total_tokens`: the last response's total, or the estimate recorded after
    /// a compaction.
    pub last_total_tokens: i64,
    /// How many items of the history `last_total_tokens` covers, when the session tracks it:
    /// items from there on are estimated. When `None`, the items after the last model-generated
    /// item are estimated instead (D36).
    pub history_len_at_last_usage: Option<usize>,
    /// Whether the server counts earlier reasoning.
    pub reasoning: ReasoningAccounting,
    /// The markers of contextual user messages, which are not user-turn boundaries.
    pub markers: &'a ContextualMarkers,
    /// The correction learned from reported usage, applied to everything estimated (D123).
    pub calibration: Option<TokenCalibration>,
}

impl ContextUsageInput<'_> {
    /// Where the items the last usage does not cover begin.
    pub fn unreported_from(&self) -> usize {
        let len = self.items.len().min(self.counts.len());
        match self.history_len_at_last_usage {
            Some(covered) => covered.min(len),
            None => self.items[..len]
                .iter()
                .rposition(is_model_generated)
                .map_or(len, |index| index.saturating_add(1)),
        }
    }
}

/// The session's estimated context size: the auto-compaction gate (D36), from cached counts.
///
/// It is the last reported total, plus the counts of the items added locally since that report
/// (those past `history_len_at_last_usage`, or, when the session does not track it, the tool
/// outputs and user messages after the last model-generated item), plus, unless the server
/// includes them, the counts of the encrypted reasoning items before the last user-turn
/// boundary; what is estimated rather than reported is corrected by the calibration. Saturating.
/// It looks only at the items after the last model-generated item and the last user-turn
/// boundary: the sums come from the running totals of [`HistoryCounts`], so a turn's estimate
/// does not grow with the history (D124).
///
/// # Examples
///
/// ```
/// use compactor_engine::{
///     ContextUsageInput, HistoryCounts, ItemCounter, ReasoningAccounting, context_usage,
/// };
/// use compactor_protocol::tokens::{TokenCalibration, TokenCounter};
/// use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem};
///
/// let items = [ResponseItem::assistant_text("done"), ResponseItem::user_text("next, please")];
/// let pass_through = PassThroughList::default();
/// let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
/// let counts = HistoryCounts::new(&items, &counter);
/// let input = ContextUsageInput {
///     items: &items,
///     counts: &counts,
///     last_total_tokens: 1_000,
///     history_len_at_last_usage: None,
///     reasoning: ReasoningAccounting::Estimated,
///     markers: &ContextualMarkers::default(),
///     calibration: None,
/// };
/// // The reply is in the reported total; the new user message is estimated.
/// assert_eq!(context_usage(&input), 1_000 + counts.item(1) as i64);
/// let calibration = TokenCalibration::observe(None, 1_500, 1_000);
/// assert_eq!(
///     context_usage(&ContextUsageInput { calibration, ..input }),
///     1_000 + (counts.item(1) as f64 * 1.5).round() as i64
/// );
/// ```
pub fn context_usage(input: &ContextUsageInput<'_>) -> i64 {
    let items = input.items;
    let len = items.len().min(input.counts.len());
    let unreported = input.counts.range(input.unreported_from()..len);
    let reasoning = match input.reasoning {
        ReasoningAccounting::IncludedByServer => 0,
        ReasoningAccounting::Estimated => {
            let last_boundary =
                items[..len].iter().rposition(|item| is_user_turn_boundary(item, input.markers));
            input.counts.encrypted_reasoning_before(last_boundary.unwrap_or(0))
        }
    };
    let estimated = unreported.saturating_add(reasoning);
    let estimated = input.calibration.map_or(estimated, |calibration| calibration.apply(estimated));
    input.last_total_tokens.saturating_add(i64::try_from(estimated).unwrap_or(i64::MAX))
}

/// Whether the model produced this item: assistant messages, reasoning, every call, and
/// compaction items. Their tokens are already in the response's usage.
pub(crate) fn is_model_generated(item: &ResponseItem) -> bool {
    match item {
        ResponseItem::Message { role, .. } => role == "assistant",
        ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::Compaction { .. } => true,
        ResponseItem::ContextCompaction { encrypted_content, .. } => encrypted_content.is_some(),
        ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => false,
    }
}

#[cfg(test)]
mod tests;
