//! The retained budget of remote compaction: which items of a compacted history stay, newest
//! first, within a token budget (see D101 in docs/decisions.md).

use std::borrow::Cow;

use compactor_protocol::tokens::{TokenCounter, approx_tokens_from_byte_count};
use compactor_protocol::{ContentItem, ResponseItem};

use crate::images::replace_all_images;
use crate::pairs::match_pairs;
use crate::truncate::{Images, Unit, image_bytes, text_bytes, truncate_parts};

/// The largest default retained budget, in tokens.
pub(crate) const MAX_DEFAULT_RETAINED_BUDGET_TOKENS: u64 = 64_000;

/// The smallest retained budget a configuration may set, in tokens: enough for the newest message
/// cut down to its marker, so that the budget always holds it.
pub const MIN_RETAINED_BUDGET_TOKENS: u64 = 64;

/// How many times a message is cut again when escaping made the first cut too long.
const CUT_ROUNDS: usize = 16;

/// The default retained budget for a model: min(64 000, 25% of its context window), or 64 000
/// when the window is unknown.
///
/// # Examples
///
/// ```
/// use compactor_engine::default_retained_budget_tokens;
///
/// assert_eq!(default_retained_budget_tokens(Some(32_000)), 8_000);
/// assert_eq!(default_retained_budget_tokens(Some(400_000)), 64_000);
/// assert_eq!(default_retained_budget_tokens(None), 64_000);
/// ```
pub fn default_retained_budget_tokens(context_window: Option<i64>) -> u64 {
    match context_window.and_then(|window| u64::try_from(window).ok()) {
        Some(window) => MAX_DEFAULT_RETAINED_BUDGET_TOKENS.min(window / 4),
        None => MAX_DEFAULT_RETAINED_BUDGET_TOKENS,
    }
}

/// Keeps the newest items of `items` whose estimates fit `budget` tokens, in their order.
///
/// - The newest message is always kept: whole when it fits, otherwise cut to the budget.
/// - Then the other items, newest first, in units: a call and its output are one unit, kept or
///   dropped together. A unit that fits is kept. A message that does not fit is the boundary: it
///   is cut to what is left of the budget (dropped when not even its marker fits), and every
///   older item is dropped. Any other unit that does not fit is dropped, and the walk goes on.
/// - A cut message keeps the head and tail of its text around a `…N tokens truncated…` marker;
///   when its images alone do not fit, they become placeholders.
///
/// Items are measured by `counter` (D120), images included. The result never
/// exceeds `budget` when the budget is at least [`MIN_RETAINED_BUDGET_TOKENS`]; below that, the
/// newest message is kept cut to its marker even if it does not fit.
///
/// The items may be borrowed: only the cut messages are made anew. Items are counted as the walk
/// reaches them, so a long list of which only the newest fit costs what those cost.
pub(crate) fn retain_within_budget<'a>(
    items: Vec<Cow<'a, ResponseItem>>,
    budget: u64,
    counter: TokenCounter,
) -> Vec<Cow<'a, ResponseItem>> {
    let mut counted: Vec<Option<u64>> = vec![None; items.len()];
    let mut cost = |index: usize| -> u64 {
        *counted[index].get_or_insert_with(|| counter.item_tokens(&items[index]))
    };
    // Everything fits: the common case of a short history, decided newest first so that a
    // long one stops counting at the first item over the budget.
    let mut total = 0u64;
    if (0..items.len()).rev().all(|index| {
        total = total.saturating_add(cost(index));
        total <= budget
    }) {
        return items;
    }
    let partner = match_pairs(&items);
    let mut kept = vec![false; items.len()];
    let mut cut: Vec<(usize, ResponseItem)> = Vec::new();
    let mut remaining = budget;

    let newest_message = items.iter().rposition(|item| is_message(item));
    if let Some(newest) = newest_message {
        kept[newest] = true;
        if cost(newest) <= remaining {
            remaining -= cost(newest);
        } else {
            let (message, _fits) = cut_message(&items[newest], remaining, counter);
            remaining = remaining.saturating_sub(counter.item_tokens(&message));
            cut.push((newest, message));
        }
    }
    for index in (0..items.len()).rev() {
        if Some(index) == newest_message {
            continue;
        }
        // A pair is walked once, from its newer member.
        let other = partner[index].filter(|&other| other != index);
        if other.is_some_and(|other| other > index) {
            continue;
        }
        let unit = cost(index).saturating_add(other.map_or(0, &mut cost));
        if unit <= remaining {
            remaining -= unit;
            kept[index] = true;
            if let Some(other) = other {
                kept[other] = true;
            }
            continue;
        }
        if other.is_none() && is_message(&items[index]) {
            if let (message, true) = cut_message(&items[index], remaining, counter) {
                kept[index] = true;
                cut.push((index, message));
            }
            break;
        }
    }
    items
        .into_iter()
        .enumerate()
        .filter(|(index, _)| kept[*index])
        .map(|(index, item)| match cut.iter().position(|(at, _)| *at == index) {
            Some(at) => Cow::Owned(cut.swap_remove(at).1),
            None => item,
        })
        .collect()
}

fn is_message(item: &ResponseItem) -> bool {
    matches!(item, ResponseItem::Message { .. })
}

/// `message` cut so that its count by `counter` is at most `max_tokens`, and whether it fits:
/// when not even the marker alone fits, the marker-only message comes back with `false`.
///
/// The images stay when the cut text leaves room for them; otherwise they become placeholders.
pub(crate) fn cut_message(
    message: &ResponseItem,
    max_tokens: u64,
    counter: TokenCounter,
) -> (ResponseItem, bool) {
    let ResponseItem::Message { id, role, content, phase, .. } = message else {
        return (message.clone(), counter.item_tokens(message) <= max_tokens);
    };
    let with = |parts| ResponseItem::Message {
        id: id.clone(),
        role: role.clone(),
        content: parts,
        phase: *phase,
        // A cut message is a new message in Compactor's own form: the leftovers of the original
        // parts would no longer line up with the cut ones.
        extra: Default::default(),
    };
    let cut_to_fit = |content: &[ContentItem]| {
        let mut text_budget = max_tokens.saturating_mul(4).min(text_bytes(content));
        let mut candidate = with(truncate_parts(content, text_budget, Unit::Tokens, Images::Keep));
        for _ in 0..CUT_ROUNDS {
            let cost = counter.item_tokens(&candidate);
            if cost <= max_tokens || text_budget == 0 {
                break;
            }
            text_budget = text_budget.saturating_sub((cost - max_tokens).saturating_mul(4));
            candidate = with(truncate_parts(content, text_budget, Unit::Tokens, Images::Keep));
        }
        let fits = counter.item_tokens(&candidate) <= max_tokens;
        (candidate, fits)
    };
    if approx_tokens_from_byte_count(image_bytes(content)) < max_tokens {
        let (candidate, fits) = cut_to_fit(content);
        if fits {
            return (candidate, true);
        }
    }
    let mut without_images = content.clone();
    replace_all_images(&mut without_images);
    cut_to_fit(&without_images)
}

#[cfg(test)]
mod tests;
