//! Token estimates of histories and of the session's context usage (D35).

use compactor_protocol::tokens::TokenCalibration;
use compactor_protocol::tokens::{approx_token_count, estimate_item_tokens};
use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem, is_user_turn_boundary};

use crate::counts::HistoryCounts;

/// What the estimate of a request needs besides its items: the instructions sent with it and the
/// pass-through list that decides which unknown items reach the model.
#[derive(Debug, Clone, Copy)]
pub struct EstimateContext<'a> {
    /// The session's base instructions (not the model default, D37).
    pub base_instructions: &'a str,
    /// The unknown item types the provider receives.
    pub pass_through: &'a PassThroughList,
}

impl EstimateContext<'_> {
    /// The estimate of a request with these instructions and `items`; see [`estimate_history`].
    pub fn estimate(&self, items: &[ResponseItem]) -> u64 {
        estimate_history(self.base_instructions, items, self.pass_through)
    }
}

/// The estimated tokens one item adds to a request: `compactor_protocol::tokens`' estimate.
///
/// An item of unknown type counts its raw JSON whether or not the pass-through list lets it reach
/// the model (D67), so the list no longer changes an estimate; the parameter stays so that the
/// callers of every estimate keep one signature.
pub(crate) fn item_tokens(item: &ResponseItem, _pass_through: &PassThroughList) -> u64 {
    estimate_item_tokens(item)
}

/// `approx_token_count(instructions) + Σ item tokens`, saturating, each item serialized once.
///
/// # Examples
///
/// ```
/// use compactor_engine::estimate_history;
/// use compactor_protocol::{PassThroughList, ResponseItem};
///
/// let items = [ResponseItem::user_text("hi")];
/// // 8 bytes of instructions = 2 tokens; the message is 78 bytes of JSON = 20 tokens.
/// assert_eq!(estimate_history("be brief", &items, &PassThroughList::default()), 22);
/// ```
pub fn estimate_history(
    instructions: &str,
    items: &[ResponseItem],
    pass_through: &PassThroughList,
) -> u64 {
    items.iter().fold(approx_token_count(instructions), |total, item| {
        total.saturating_add(item_tokens(item, pass_through))
    })
}

/// Every item's token estimate, in order.
pub(crate) fn item_token_estimates(
    items: &[ResponseItem],
    pass_through: &PassThroughList,
) -> Vec<u64> {
    items.iter().map(|item| item_tokens(item, pass_through)).collect()
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

/// The inputs of [`total_token_usage`]: the session's history and its last reported usage.
#[derive(Debug, Clone, Copy)]
pub struct TotalUsageInput<'a> {
    /// The session's history.
    pub items: &'a [ResponseItem],
    /// `last_token_usage.total_tokens`: the last response's total, or the estimate recorded after
    /// a compaction.
    pub last_total_tokens: i64,
    /// How long the history was when `last_total_tokens` was recorded, when the session tracks
    /// it. Items from that index on are estimated. When `None`, the items after the last
    /// model-generated item are estimated instead (D36).
    pub history_len_at_last_usage: Option<usize>,
    /// Whether the server counts earlier reasoning.
    pub reasoning: ReasoningAccounting,
    /// The markers of contextual user messages, which are not user-turn boundaries.
    pub markers: &'a ContextualMarkers,
    /// The unknown item types the provider receives.
    pub pass_through: &'a PassThroughList,
}

/// The session's estimated context size: the auto-compaction gate (D36).
///
/// It is the last reported total, plus the estimate of the items added locally since that report
/// (tool outputs and user messages after the last model-generated item), plus, unless the server
/// includes them, the estimate of the encrypted reasoning items before the last user-turn
/// boundary. Saturating; linear in the history.
pub fn total_token_usage(input: &TotalUsageInput<'_>) -> i64 {
    let items = input.items;
    let unreported_from = match input.history_len_at_last_usage {
        Some(len) => len.min(items.len()),
        None => items
            .iter()
            .rposition(is_model_generated)
            .map_or(items.len(), |index| index.saturating_add(1)),
    };
    let unreported = items[unreported_from..]
        .iter()
        .fold(0u64, |total, item| total.saturating_add(item_tokens(item, input.pass_through)));
    let reasoning = match input.reasoning {
        ReasoningAccounting::IncludedByServer => 0,
        ReasoningAccounting::Estimated => {
            let last_boundary =
                items.iter().rposition(|item| is_user_turn_boundary(item, input.markers));
            items[..last_boundary.unwrap_or(0)]
                .iter()
                .filter(|item| {
                    matches!(item, ResponseItem::Reasoning { encrypted_content: Some(_), .. })
                })
                .fold(0u64, |total, item| total.saturating_add(estimate_item_tokens(item)))
        }
    };
    let estimated = i64::try_from(unreported.saturating_add(reasoning)).unwrap_or(i64::MAX);
    input.last_total_tokens.saturating_add(estimated)
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
    /// Whether the server counts earlier reasoning.
    pub reasoning: ReasoningAccounting,
    /// The markers of contextual user messages, which are not user-turn boundaries.
    pub markers: &'a ContextualMarkers,
    /// The correction learned from reported usage, applied to everything estimated (D123).
    pub calibration: Option<TokenCalibration>,
}

/// The session's estimated context size: the auto-compaction gate (D36), from cached counts.
///
/// It is the last reported total, plus the counts of the items added locally since that report
/// (tool outputs and user messages after the last model-generated item; none while the model has
/// produced nothing, as in [`total_token_usage`]), plus, unless the server
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
    let unreported_from = items[..len]
        .iter()
        .rposition(is_model_generated)
        .map_or(len, |index| index.saturating_add(1));
    let unreported = input.counts.range(unreported_from..len);
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
