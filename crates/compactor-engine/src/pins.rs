//! Pins in a compacted history (see D140 and D141 in docs/decisions.md): what can be pinned,
//! the pin slot a previous compaction left at the head of the history, and keeping the
//! originals of pinned items out of the retained part so that nothing is there twice.

use std::borrow::Borrow;

use compactor_protocol::ResponseItem;
use compactor_protocol::tokens::TokenCounter;

/// The copy of `item` a pin holds: a message as it is, without the `id` the server gave the
/// original (the copy is a new item, and an id must not appear twice in one request); `None`
/// for any other item, which would stand without its partner in the pin slot (a call without
/// its output, an output without its call) or only means something where it is (reasoning,
/// compaction items).
///
/// # Examples
///
/// ```
/// use compactor_engine::pin_copy;
/// use compactor_protocol::{ResponseItem, ToolOutput};
///
/// let mut said = ResponseItem::user_text("keep the public API stable");
/// if let ResponseItem::Message { id, .. } = &mut said {
///     *id = Some("msg_1".into());
/// }
/// assert_eq!(pin_copy(&said), Some(ResponseItem::user_text("keep the public API stable")));
/// let output =
///     ResponseItem::FunctionCallOutput { call_id: "c1".into(), output: ToolOutput::Text("ok".into()) };
/// assert_eq!(pin_copy(&output), None);
/// ```
pub fn pin_copy(item: &ResponseItem) -> Option<ResponseItem> {
    match item {
        ResponseItem::Message { .. } => {
            let mut copy = item.clone();
            if let ResponseItem::Message { id, .. } = &mut copy {
                *id = None;
            }
            Some(copy)
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
        | ResponseItem::Compaction { .. }
        | ResponseItem::ContextCompaction { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => None,
    }
}

/// Whether `a` and `b` say the same thing: messages with the same role and content (their ids and
/// phases aside), other items equal.
pub fn same_content(a: &ResponseItem, b: &ResponseItem) -> bool {
    match (a, b) {
        (
            ResponseItem::Message { role, content, .. },
            ResponseItem::Message { role: other_role, content: other_content, .. },
        ) => role == other_role && content == other_content,
        _ => a == b,
    }
}

/// How many leading items of `history` are a pin slot holding `pinned` (the pin slot items of the
/// pins recorded with the compaction `history` starts from): `pinned.len()` when the history
/// starts with them, 0 otherwise.
pub fn pin_slot_len(history: &[ResponseItem], pinned: &[ResponseItem]) -> usize {
    let holds = history.len() >= pinned.len()
        && history.iter().zip(pinned).all(|(item, pin)| same_content(item, pin));
    if holds { pinned.len() } else { 0 }
}

/// `items` without those that say the same as one of `pinned`: the pin slot keeps them already.
pub fn without_pinned<T: Borrow<ResponseItem>>(
    mut items: Vec<T>,
    pinned: &[ResponseItem],
) -> Vec<T> {
    if !pinned.is_empty() {
        items.retain(|item| !pinned.iter().any(|pin| same_content(item.borrow(), pin)));
    }
    items
}

/// The tokens of the pin slot items `pinned`, counted with the session's `counter` as the layout
/// counts them against the retained budget.
pub fn pinned_tokens(pinned: &[ResponseItem], counter: TokenCounter) -> u64 {
    pinned.iter().fold(0u64, |total, item| total.saturating_add(counter.item_tokens(item)))
}

#[cfg(test)]
mod tests;
