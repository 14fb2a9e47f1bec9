//! The `prune` strategy (D20): deterministic compaction without a model call.

use compactor_protocol::tokens::{TokenCounter, image_estimate_bytes};
use compactor_protocol::{ContentItem, ContextualMarkers, ResponseItem, ToolOutput};

use crate::context::is_real_user_message;
use crate::counts::HistoryCounts;
use crate::estimate::EstimateContext;
use crate::pairs::{call_key, match_pairs, output_key};

/// How [`prune`] prunes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneConfig {
    /// Tool outputs of this many latest user turns are never masked.
    pub protected_user_turns: usize,
    /// Oldest call/output pairs are dropped until the estimate is at most this many tokens.
    pub target_tokens: u64,
}

/// The estimate [`prune`] works towards (D20): `target_percent` of the auto-compact limit, or of
/// the usable window when the model has no limit (`i64::MAX` stands for "no limit", as a model
/// without a window or a configured limit reports it), or 0 when neither is known.
///
/// Negative sizes count as 0; the product never overflows.
///
/// # Examples
///
/// ```
/// use compactor_engine::prune_target_tokens;
///
/// assert_eq!(prune_target_tokens(200_000, Some(258_400), 50), 100_000);
/// assert_eq!(prune_target_tokens(i64::MAX, Some(258_400), 50), 129_200);
/// assert_eq!(prune_target_tokens(i64::MAX, None, 50), 0);
/// ```
pub fn prune_target_tokens(
    auto_compact_limit: i64,
    usable_window: Option<i64>,
    target_percent: u8,
) -> u64 {
    let base = match auto_compact_limit {
        i64::MAX => usable_window.unwrap_or(0),
        limit => limit,
    };
    let base = u128::try_from(base).unwrap_or(0);
    let target = base * u128::from(target_percent) / 100;
    u64::try_from(target).unwrap_or(u64::MAX)
}

/// What [`prune`] removed, for analytics and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Tool outputs whose content was replaced by a placeholder.
    pub masked_outputs: usize,
    /// Call/output pairs dropped whole.
    pub dropped_pairs: usize,
    /// Items dropped in all: the pairs' calls and outputs, and the reasoning right before them.
    pub dropped_items: usize,
    /// The estimate before pruning, instructions included.
    pub tokens_before: u64,
    /// The estimate after pruning, instructions included.
    pub tokens_after: u64,
}

/// The pruned history and what was removed.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneOutcome {
    /// The new history.
    pub history: Vec<ResponseItem>,
    /// What was removed.
    pub report: PruneReport,
}

/// The text that replaces a masked tool output (D20).
pub(crate) fn masked_output_text(tool: &str, tokens: u64) -> String {
    format!("[output of {tool} removed by compaction: {tokens} tokens]")
}

/// Prunes `history` without a model call (D20).
///
/// 1. Masking: the output of every `function_call_output` and `custom_tool_call_output` before
///    the latest `config.protected_user_turns` real user messages is replaced by
///    `[output of <tool> removed by compaction: <N> tokens]`, naming the tool and the estimated
///    tokens removed, when that makes it smaller. Outputs already masked are left alone, so pruning twice changes nothing more.
/// 2. Dropping: while the estimate exceeds `config.target_tokens`, the oldest answered call is
///    dropped with its output and with the reasoning items right before it (a reasoning item
///    belongs to the call that follows it). Pairs are never split; messages, unanswered calls
///    and unpaired items are never dropped.
///
/// The estimates are `estimate`'s (its counter and calibration), over the cached `counts` of
/// `history` (D124); `target_tokens` and the report are in calibrated tokens, the placeholders
/// name the counter's tokens.
///
/// Linear in `history`: no item is counted again, only the masked outputs are counted anew.
pub fn prune(
    history: &[ResponseItem],
    counts: &HistoryCounts,
    config: &PruneConfig,
    estimate: &EstimateContext<'_>,
    markers: &ContextualMarkers,
) -> PruneOutcome {
    let counter = estimate.item_counter();
    let mut items = history.to_vec();
    let mut estimates: Vec<u64> = counts.for_items(history, &counter).iter().collect();
    let mut total = estimates
        .iter()
        .fold(estimate.fixed_tokens(), |total, tokens| total.saturating_add(*tokens));
    let mut report =
        PruneReport { tokens_before: estimate.calibrate(total), ..PruneReport::default() };
    let partners = match_pairs(&items);

    let protected_from = match config.protected_user_turns {
        0 => items.len(),
        turns => items
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, item)| is_real_user_message(item, markers))
            .nth(turns - 1)
            .map_or(0, |(index, _)| index),
    };
    for index in 0..protected_from {
        let tool = match partners[index].map(|call| &items[call]) {
            Some(call) if output_key(&items[index]).is_some() => tool_name(call),
            _ => continue,
        };
        let Some(masked) = masked_output(&items[index], tool, estimate.counter) else { continue };
        let masked_tokens = counter.count(&masked);
        if masked_tokens < estimates[index] {
            total = total.saturating_sub(estimates[index] - masked_tokens);
            estimates[index] = masked_tokens;
            items[index] = masked;
            report.masked_outputs += 1;
        }
    }

    let mut dropped = vec![false; items.len()];
    for call in 0..items.len() {
        if estimate.calibrate(total) <= config.target_tokens {
            break;
        }
        let Some(output) = partners[call] else { continue };
        if call_key(&items[call]).is_none() {
            continue;
        }
        let mut first = call;
        while first > 0
            && !dropped[first - 1]
            && matches!(items[first - 1], ResponseItem::Reasoning { .. })
        {
            first -= 1;
        }
        for index in (first..=call).chain([output]) {
            dropped[index] = true;
            total = total.saturating_sub(estimates[index]);
            report.dropped_items += 1;
        }
        report.dropped_pairs += 1;
    }
    let mut index = 0;
    items.retain(|_| {
        let keep = !dropped[index];
        index += 1;
        keep
    });
    report.tokens_after = estimate.calibrate(total);
    PruneOutcome { history: items, report }
}

/// The name a placeholder gives the tool of `call`.
fn tool_name(call: &ResponseItem) -> &str {
    match call {
        ResponseItem::FunctionCall { name, .. } | ResponseItem::CustomToolCall { name, .. } => name,
        ResponseItem::LocalShellCall { .. } => "local_shell",
        _ => "tool",
    }
}

/// `output` with its content replaced by the placeholder, or `None` when it cannot be masked (a
/// `tool_search_output`) or is masked already.
fn masked_output(output: &ResponseItem, tool: &str, counter: TokenCounter) -> Option<ResponseItem> {
    let (ResponseItem::FunctionCallOutput { call_id, output: content }
    | ResponseItem::CustomToolCallOutput { call_id, output: content, .. }) = output
    else {
        return None;
    };
    let text_tokens = match content {
        ToolOutput::Text(text) if is_masked(text) => return None,
        ToolOutput::Text(text) => counter.text_tokens(text),
        ToolOutput::Content(parts) => parts.iter().fold(0u64, |tokens, part| match part {
            ContentItem::InputText { text } | ContentItem::OutputText { text } => {
                tokens.saturating_add(counter.text_tokens(text))
            }
            ContentItem::InputImage { image_url, detail } => tokens
                .saturating_add(image_estimate_bytes(image_url, detail.as_deref()).div_ceil(4)),
            ContentItem::Unknown(value) => tokens.saturating_add(counter.json_tokens(value)),
        }),
    };
    let placeholder = ToolOutput::Text(masked_output_text(tool, text_tokens));
    Some(match output {
        ResponseItem::CustomToolCallOutput { name, .. } => ResponseItem::CustomToolCallOutput {
            call_id: call_id.clone(),
            name: name.clone(),
            output: placeholder,
        },
        _ => ResponseItem::FunctionCallOutput { call_id: call_id.clone(), output: placeholder },
    })
}

/// Whether `text` is a placeholder [`masked_output_text`] wrote.
fn is_masked(text: &str) -> bool {
    text.starts_with("[output of ")
        && text.ends_with(" tokens]")
        && text.contains(" removed by compaction: ")
}

#[cfg(test)]
mod tests;
