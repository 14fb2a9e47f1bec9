//! Whether a compaction can fit the window at all (D63): the fewest tokens
//! the history an implementation installs can have, known before any request is made.

use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{CompactionImplementation, ContentItem, ContextualMarkers, ResponseItem};

use crate::HistoryCounts;

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
/// `counts`, when given, are the history's item counts as `counter` counts them (D124): with them
/// the bound counts no item again, and only the text of the messages it keeps when it needs it.
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
/// assert_eq!(compacted_floor(v2, &history, None, "", &markers, 64_000, bytes4), Some(1_000));
/// assert_eq!(compacted_floor(v2, &history, None, "", &markers, 500, bytes4), Some(0));
/// let local = CompactionImplementation::Responses;
/// assert_eq!(compacted_floor(local, &history, None, "", &markers, 64_000, bytes4), None);
/// ```
pub fn compacted_floor(
    implementation: CompactionImplementation,
    history: &[ResponseItem],
    counts: Option<&HistoryCounts>,
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
    // Counts that do not match the history item for item are not used.
    let counts = counts.filter(|counts| counts.len() == history.len());
    let kept = || {
        history.iter().enumerate().filter(|(_, item)| match item {
            ResponseItem::Message { role, content, .. } => {
                role == "user" && !markers.is_contextual(content)
            }
            _ => false,
        })
    };
    // Past the budget the text no longer matters, so neither does the rest of the estimate.
    if budgeted {
        let mut estimate = 0u64;
        for (index, item) in kept() {
            let tokens =
                counts.map_or_else(|| counter.item_tokens(item), |counts| counts.item(index));
            estimate = estimate.saturating_add(tokens);
            if estimate > retained_budget_tokens {
                return Some(counter.text_tokens(base_instructions));
            }
        }
    }
    let text = kept()
        .map(|(_, item)| match item {
            ResponseItem::Message { content, .. } => {
                content.iter().map(|part| text_tokens(part, counter)).sum::<u64>()
            }
            _ => 0,
        })
        .fold(0u64, u64::saturating_add);
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
