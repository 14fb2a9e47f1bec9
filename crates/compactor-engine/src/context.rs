//! Contextual user messages, user-turn boundaries, and where the initial context goes in a
//! compacted history (D16, D15).

use compactor_protocol::{ContextualMarkers, ResponseItem, is_user_turn_boundary};

use crate::local::is_summary_message;

/// Whether `item` is something the user actually said: a user message that is neither contextual
/// nor a compaction summary.
pub(crate) fn is_real_user_message(item: &ResponseItem, markers: &ContextualMarkers) -> bool {
    is_user_turn_boundary(item, markers) && !is_summary_message(item)
}

/// Splices `initial_context` into a compacted history for a mid-turn compaction (D16), so
/// that the summary or compaction item stays last.
///
/// It goes just before the last real user message; without one, before the last summary
/// message; without one, before the last compaction item; otherwise at the end.
pub(crate) fn insert_initial_context(
    history: &mut Vec<ResponseItem>,
    initial_context: &[ResponseItem],
    markers: &ContextualMarkers,
) {
    if initial_context.is_empty() {
        return;
    }
    let at = history
        .iter()
        .rposition(|item| is_real_user_message(item, markers))
        .or_else(|| history.iter().rposition(is_summary_message))
        .or_else(|| history.iter().rposition(ResponseItem::is_compaction))
        .unwrap_or(history.len());
    history.splice(at..at, initial_context.iter().cloned());
}

/// Whether a compacted history keeps `item` from a remote result (D16).
///
/// Kept: user messages that are not contextual (real messages and summaries), assistant
/// messages, and compaction items with content. Dropped: developer and system messages (remote
/// output may carry stale instructions), contextual user messages, every call, output, reasoning,
/// hosted-tool item, trigger and unknown item.
pub(crate) fn keep_in_compacted_history(item: &ResponseItem, markers: &ContextualMarkers) -> bool {
    match item {
        ResponseItem::Message { role, content, .. } => match role.as_str() {
            "user" => !markers.is_contextual(content),
            "assistant" => true,
            _ => false,
        },
        ResponseItem::Compaction { .. } | ResponseItem::ContextCompaction { .. } => {
            item.is_compaction()
        }
        ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => false,
    }
}

#[cfg(test)]
mod tests;
