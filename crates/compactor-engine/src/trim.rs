//! Pre-request trimming of trailing tool traffic until the history fits the window (D37).

use std::collections::{HashMap, VecDeque};

use compactor_protocol::ResponseItem;

use crate::counts::HistoryCounts;
use crate::estimate::EstimateContext;
use crate::pairs::{PairKind, call_key, output_key};

/// Whether the harness, not the model or the user, produced `item`: a tool output
/// (`function_call_output`, `custom_tool_call_output`, `tool_search_output`) or a developer
/// message. Only these are trimmed.
pub(crate) fn is_codex_generated(item: &ResponseItem) -> bool {
    match item {
        ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. } => true,
        ResponseItem::Message { role, .. } => role == "developer",
        ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::Compaction { .. }
        | ResponseItem::ContextCompaction { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => false,
    }
}

/// Removes trailing harness-generated items from `history` while its estimate exceeds
/// `context_window`, and returns how many items it removed (D37).
///
/// While the estimate (`estimate`'s instructions, tools, counter and calibration, over the items'
/// cached `counts`) is over the window, the last item is removed if the harness produced it (a
/// tool output or a developer message), together with the call it answers; at the first other item (a user or assistant message, a
/// call still waiting for its output, reasoning, ...) trimming stops. The count includes the
/// removed calls. Older pairs and user messages are never touched. When the model's window is
/// unknown, do not call this.
///
/// Linear in `history`: no item is counted again (D124), the estimate is kept up to date as
/// items go, and removed items are compacted away in one pass at the end.
pub fn trim_function_call_history_to_fit_context_window(
    history: &mut Vec<ResponseItem>,
    counts: &HistoryCounts,
    context_window: u64,
    estimate: &EstimateContext<'_>,
) -> usize {
    let counts = counts.for_items(history, &estimate.item_counter());
    let mut total = estimate.raw_estimate_counted(&counts);
    if estimate.calibrate(total) <= context_window {
        return 0;
    }
    let mut removed = vec![false; history.len()];
    let mut calls = CallFinder::new(history);
    let mut removed_count = 0;
    let mut end = history.len();
    while estimate.calibrate(total) > context_window {
        while end > 0 && removed[end - 1] {
            end -= 1;
        }
        let Some(last) = end.checked_sub(1) else { break };
        let item = &history[last];
        if !is_codex_generated(item) {
            break;
        }
        removed[last] = true;
        removed_count += 1;
        total = total.saturating_sub(counts.item(last));
        if let Some(key) = output_key(item)
            && let Some(call) = calls.find(key, last, &removed)
        {
            removed[call] = true;
            removed_count += 1;
            total = total.saturating_sub(counts.item(call));
        }
    }
    let mut index = 0;
    history.retain(|_| {
        let keep = !removed[index];
        index += 1;
        keep
    });
    removed_count
}

/// Finds the call a trailing output answers by scanning backwards from the end once.
///
/// Trimming pops outputs from the end, so their calls sit in a shrinking suffix: the scan only
/// ever moves backwards, and every call it passes is indexed for later lookups. The total work is
/// linear in the part of the history the scan covers, which is usually just the trimmed tail.
struct CallFinder<'a> {
    history: &'a [ResponseItem],
    /// Everything at or after this index has been scanned.
    scanned_from: usize,
    /// Calls the scan passed and nobody claimed yet, per key, newest first.
    found: HashMap<(PairKind, &'a str), VecDeque<usize>>,
}

impl<'a> CallFinder<'a> {
    fn new(history: &'a [ResponseItem]) -> Self {
        Self { history, scanned_from: history.len(), found: HashMap::new() }
    }

    /// The closest live call before `output` with `key`, claimed so it is found only once.
    fn find(&mut self, key: (PairKind, &'a str), output: usize, removed: &[bool]) -> Option<usize> {
        if let Some(candidates) = self.found.get_mut(&key) {
            // Entries after `output` or already removed can never match a later (earlier-placed)
            // output either, so they are dropped for good.
            while let Some(call) = candidates.pop_front() {
                if call < output && !removed[call] {
                    return Some(call);
                }
            }
        }
        while self.scanned_from > 0 {
            self.scanned_from -= 1;
            let index = self.scanned_from;
            let Some(call_key) = call_key(&self.history[index]) else { continue };
            if index < output && !removed[index] && call_key == key {
                return Some(index);
            }
            // Someone else's call: keep it for a later output. The scan goes backwards, so
            // pushing at the back keeps each list newest first.
            self.found.entry(call_key).or_default().push_back(index);
        }
        None
    }
}

#[cfg(test)]
mod tests;
