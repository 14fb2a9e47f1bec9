//! Whether a compaction can fit the window at all (D63): the fewest tokens
//! the history an implementation installs can have, known before any request is made.

use compactor_protocol::tokens::{approx_token_count, approx_tokens_from_byte_count};
use compactor_protocol::{CompactionImplementation, ContentItem, ContextualMarkers, ResponseItem};

/// A lower bound on the estimated tokens (with `base_instructions`) of the history that
/// `implementation` installs when it compacts `history`; `None` when nothing useful is known
/// before the model answers.
///
/// Remote compaction v2 keeps every user message that is not contextual, and `prune` never
/// touches user messages, so for them the bound is the instructions plus the text of those
/// messages (their JSON, images and the compaction item only add to it). Local compaction cuts
/// user messages down to a budget and `/responses/compact` returns what the server chooses: no
/// bound for them. A history whose bound is above the usable window cannot be compacted into it
/// by that implementation, and a request would be wasted.
///
/// # Examples
///
/// ```
/// use compactor_engine::compacted_floor;
/// use compactor_protocol::{CompactionImplementation, ContextualMarkers, ResponseItem};
///
/// let history = [ResponseItem::user_text(&"x".repeat(4_000))];
/// let markers = ContextualMarkers::default();
/// let v2 = CompactionImplementation::ResponsesCompactionV2;
/// assert_eq!(compacted_floor(v2, &history, "", &markers), Some(1_000));
/// let local = CompactionImplementation::Responses;
/// assert_eq!(compacted_floor(local, &history, "", &markers), None);
/// ```
pub fn compacted_floor(
    implementation: CompactionImplementation,
    history: &[ResponseItem],
    base_instructions: &str,
    markers: &ContextualMarkers,
) -> Option<u64> {
    match implementation {
        CompactionImplementation::ResponsesCompactionV2 | CompactionImplementation::Prune => {}
        CompactionImplementation::Responses
        | CompactionImplementation::ResponsesCompact
        | CompactionImplementation::ServerManaged => return None,
    }
    let kept = history.iter().filter_map(|item| match item {
        ResponseItem::Message { role, content, .. }
            if role == "user" && !markers.is_contextual(content) =>
        {
            let text: u64 = content.iter().map(text_len).sum();
            Some(approx_tokens_from_byte_count(text))
        }
        _ => None,
    });
    Some(kept.fold(approx_token_count(base_instructions), u64::saturating_add))
}

/// The bytes of text in one content part: every estimate counts at least these.
fn text_len(part: &ContentItem) -> u64 {
    match part {
        ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => text.len() as u64,
        ContentItem::InputImage { .. } | ContentItem::Unknown(_) => 0,
    }
}

#[cfg(test)]
mod tests;
