//! Whether a compaction can fit the window at all (D63): the fewest tokens
//! the history an implementation installs can have, known before any request is made.

use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{CompactionImplementation, ContentItem, ContextualMarkers, ResponseItem};

/// A lower bound on the tokens, as `counter` counts them (D120), with `base_instructions`, of the history that
/// `implementation` installs when it compacts `history`; `None` when nothing useful is known
/// before the model answers.
///
/// `prune` never touches user messages, so its bound is the instructions plus the text of the
/// user messages that are not contextual (their JSON and images only add to it). Remote
/// compaction v2 keeps those messages too, newest first within `retained_budget_tokens` (D101):
/// when they fit the budget it keeps them all and the same bound holds; when they do not, it
/// keeps what the budget holds, which is never over the window, and the bound is the
/// instructions alone. Local compaction cuts user messages down to a budget and
/// `/responses/compact` returns what the server chooses: no bound for them. A history whose bound
/// is above the usable window cannot be compacted into it by that implementation, and a request
/// would be wasted.
///
/// # Examples
///
/// ```
/// use compactor_engine::compacted_floor;
/// use compactor_protocol::tokens::TokenCounter;
/// use compactor_protocol::{CompactionImplementation, ContextualMarkers, ResponseItem};
///
/// let history = [ResponseItem::user_text(&"x".repeat(4_000))];
/// let markers = ContextualMarkers::default();
/// let v2 = CompactionImplementation::ResponsesCompactionV2;
/// let bytes4 = TokenCounter::Bytes4;
/// assert_eq!(compacted_floor(v2, &history, "", &markers, 64_000, bytes4), Some(1_000));
/// assert_eq!(compacted_floor(v2, &history, "", &markers, 500, bytes4), Some(0));
/// let local = CompactionImplementation::Responses;
/// assert_eq!(compacted_floor(local, &history, "", &markers, 64_000, bytes4), None);
/// ```
pub fn compacted_floor(
    implementation: CompactionImplementation,
    history: &[ResponseItem],
    base_instructions: &str,
    markers: &ContextualMarkers,
    retained_budget_tokens: u64,
    counter: TokenCounter,
) -> Option<u64> {
    let budgeted = match implementation {
        CompactionImplementation::ResponsesCompactionV2 => true,
        CompactionImplementation::Prune => false,
        CompactionImplementation::Responses
        | CompactionImplementation::ResponsesCompact
        | CompactionImplementation::ServerManaged => return None,
    };
    let kept = history.iter().filter(|item| match item {
        ResponseItem::Message { role, content, .. } => {
            role == "user" && !markers.is_contextual(content)
        }
        _ => false,
    });
    let (text, estimate) = kept.fold((0u64, 0u64), |(text, estimate), item| {
        let ResponseItem::Message { content, .. } = item else { return (text, estimate) };
        let item_text = content.iter().map(|part| text_tokens(part, counter)).sum::<u64>();
        (text.saturating_add(item_text), estimate.saturating_add(counter.item_tokens(item)))
    });
    let text = if budgeted && estimate > retained_budget_tokens { 0 } else { text };
    Some(counter.text_tokens(base_instructions).saturating_add(text))
}

/// The tokens of text in one content part: every count of its message counts at least these.
fn text_tokens(part: &ContentItem, counter: TokenCounter) -> u64 {
    match part {
        ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => {
            counter.text_tokens(text)
        }
        ContentItem::InputImage { .. } | ContentItem::Unknown(_) => 0,
    }
}

#[cfg(test)]
mod tests;
