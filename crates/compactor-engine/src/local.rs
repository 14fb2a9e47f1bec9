//! Local compaction (D38): the summarization prompt, the summary prefix, and the rebuild of
//! a history from the user's messages and the model's summary.

use compactor_protocol::tokens::{
    TokenCounter, approx_tokens_from_byte_count, image_estimate_bytes,
};
use std::collections::HashSet;

use compactor_protocol::{ContentItem, ContextualMarkers, ResponseItem};

use crate::context::is_real_user_message;
use crate::counts::ItemCounter;
use crate::layout::{Compacted, Layout, compacted_history};
use crate::truncate::{Images, Unit, truncate_parts};

/// The first line of every local compaction summary message.
///
/// It tells the model what the message is, and it is distinctive enough to recognise old
/// summaries: they are left out of [`collect_user_messages`] and anchor the initial context
/// (D38). A summary message's text is this line, `\n`, then the summary.
pub const SUMMARY_PREFIX: &str = "[compacted context] The conversation before this point was compacted. The summary below was written by the model that worked on it: rely on it and continue the task without redoing finished work.";

/// The default prompt that asks the model for a handoff summary (sent as a user message).
pub const SUMMARIZATION_PROMPT: &str = "\
This conversation is about to be moved to a fresh context window, and the messages above will \
be replaced by what you write now. Write a handoff summary that lets you, or another model, \
continue the work without them.

Include:
- the user's goal and every requirement, preference or constraint they stated;
- what has been done so far: decisions taken, files created or changed, commands run and what \
they showed;
- what remains to be done, in order, with the next concrete step first;
- open questions, unresolved errors, and anything you were about to check;
- the exact names, paths, identifiers and values the next steps depend on.

Be concise and factual. Write only the summary: no greeting, and no remarks about the summary \
itself.";

/// The token budget for the user messages a local compaction keeps (D38).
pub const COMPACT_USER_MESSAGE_MAX_TOKENS: u64 = 20_000;

/// What a summary says when the model returned no text.
pub(crate) const NO_SUMMARY_PLACEHOLDER: &str = "(no summary available)";

/// The summarization prompt `base` (the session's, or [`SUMMARIZATION_PROMPT`]) with a manual
/// compaction's focus text (`/compact <focus>`, D30) appended; blank focus text leaves `base`
/// as it is.
pub fn summarization_prompt_with_focus(base: &str, focus: &str) -> String {
    let focus = focus.trim();
    if focus.is_empty() {
        return base.to_owned();
    }
    format!("{base}\n\nGive particular attention to the following:\n{focus}")
}

/// The summary message text for the model's summary: [`SUMMARY_PREFIX`], `\n`, then the summary,
/// or `(no summary available)` when it is blank. This is also `CompactedItem::message`.
pub fn summary_text(model_summary: &str) -> String {
    let summary =
        if model_summary.trim().is_empty() { NO_SUMMARY_PLACEHOLDER } else { model_summary };
    format!("{SUMMARY_PREFIX}\n{summary}")
}

/// The text of the last assistant message of `items`: the summary a summarization request
/// produced (D38).
pub fn last_assistant_text(items: &[ResponseItem]) -> Option<String> {
    items
        .iter()
        .rev()
        .find(|item| item.role() == Some("assistant"))
        .and_then(ResponseItem::message_text)
}

/// Drops the oldest item of `history`, and its outputs when it is a call, so that a
/// summarization request that overflowed the window can be retried. The front goes first so the
/// prompt-cache prefix of the newer items stays stable. Does nothing to an empty history.
pub fn drop_oldest(history: &mut Vec<ResponseItem>) {
    if history.is_empty() {
        return;
    }
    let first = history.remove(0);
    if let Some(call_id) = first.call_id() {
        history.retain(|item| item.output_call_id() != Some(call_id));
    }
}

/// Drops the oldest items of `history`, with the outputs of the calls among them, until they
/// count at least `at_least` tokens with `counter`, always keeping the newest item; returns how
/// many items went. A remote compaction request the server refused as over its window is
/// retried with what is left (D160): the oldest items matter least to a summary, and the front
/// goes first so the prompt-cache prefix of the newer items stays stable. Linear in `history`.
pub fn drop_oldest_tokens(
    history: &mut Vec<ResponseItem>,
    at_least: u64,
    counter: &ItemCounter<'_>,
) -> usize {
    let mut prefix = 0;
    let mut dropped_tokens = 0u64;
    while prefix + 1 < history.len() && (prefix == 0 || dropped_tokens < at_least) {
        dropped_tokens = dropped_tokens.saturating_add(counter.count(&history[prefix]));
        prefix += 1;
    }
    let calls: HashSet<String> =
        history[..prefix].iter().filter_map(ResponseItem::call_id).map(str::to_owned).collect();
    let mut index = 0;
    let mut removed = 0;
    history.retain(|item| {
        let drop =
            index < prefix || item.output_call_id().is_some_and(|call_id| calls.contains(call_id));
        index += 1;
        removed += usize::from(drop);
        !drop
    });
    removed
}

/// Whether `item` is a local compaction summary: a user message whose first text part starts
/// with [`SUMMARY_PREFIX`] and a newline.
pub(crate) fn is_summary_message(item: &ResponseItem) -> bool {
    let ResponseItem::Message { role, content, .. } = item else { return false };
    role == "user"
        && content
            .iter()
            .find_map(|part| match part {
                ContentItem::InputText { text } | ContentItem::OutputText { text } => Some(text),
                ContentItem::InputImage { .. } | ContentItem::Unknown(_) => None,
            })
            .and_then(|text| text.strip_prefix(SUMMARY_PREFIX))
            .is_some_and(|rest| rest.starts_with('\n'))
}

/// The content of every real user message of `items`, in order: contextual messages and earlier
/// summaries are skipped (D15, D38). Content stays structured, so images survive.
pub fn collect_user_messages<'a>(
    items: &'a [ResponseItem],
    markers: &ContextualMarkers,
) -> Vec<&'a [ContentItem]> {
    items
        .iter()
        .filter(|item| is_real_user_message(item, markers))
        .filter_map(|item| match item {
            ResponseItem::Message { content, .. } => Some(content.as_slice()),
            _ => None,
        })
        .collect()
}

/// The real user messages a local compaction keeps (D38): the newest that fit
/// `max_tokens`, as `user` messages in chronological order with their parts (images included).
///
/// The messages are walked newest first. A message that fits is kept whole and its cost (its
/// text by `counter`, its images by their estimate) is subtracted; the first one that does not fit is cut
/// to what is left by middle truncation (a `…N tokens truncated…` marker replaces the cut) and
/// the walk stops.
pub(crate) fn select_user_messages(
    user_messages: &[&[ContentItem]],
    max_tokens: u64,
    counter: TokenCounter,
) -> Vec<ResponseItem> {
    let mut kept: Vec<Vec<ContentItem>> = Vec::new();
    let mut remaining = max_tokens;
    for content in user_messages.iter().rev() {
        let cost = content_tokens(content, counter);
        if cost <= remaining {
            remaining -= cost;
            kept.push(content.to_vec());
            continue;
        }
        if remaining > 0 {
            let truncated = truncate_content(content, remaining);
            if !truncated.is_empty() {
                kept.push(truncated);
            }
        }
        break;
    }
    kept.into_iter()
        .rev()
        .map(|content| ResponseItem::Message {
            id: None,
            role: "user".to_owned(),
            content,
            phase: None,
            extra: Default::default(),
        })
        .collect()
}

/// Rebuilds the history of a legacy `compacted` rollout line that has no replacement history:
/// the real user messages of `history` (by the replay's `markers`) within the default budget,
/// then `message` as the summary, laid out by [`crate::compacted_history`] (D102). This is the
/// function the rollout reader is given; it passes the markers of the session it replays (D72).
pub fn rebuild_legacy_compacted(
    history: &[ResponseItem],
    message: &str,
    markers: &ContextualMarkers,
) -> Vec<ResponseItem> {
    let user_messages = collect_user_messages(history, markers);
    let compacted = Compacted::Local { user_messages: &user_messages, summary: message };
    match compacted_history(compacted, &Layout::new(markers)) {
        Ok(rebuilt) => rebuilt,
        // Only pins over the budget fail, and this layout has none.
        Err(_) => vec![ResponseItem::user_text(message)],
    }
}

/// The tokens of a message's parts: its text by `counter`, its images by their estimate.
fn content_tokens(content: &[ContentItem], counter: TokenCounter) -> u64 {
    let (text, image_bytes) =
        content.iter().fold((0u64, 0u64), |(text, images), part| match part {
            ContentItem::InputText { text: t } | ContentItem::OutputText { text: t } => {
                (text.saturating_add(counter.text_tokens(t)), images)
            }
            ContentItem::InputImage { image_url, detail } => {
                (text, images.saturating_add(image_estimate_bytes(image_url, detail.as_deref())))
            }
            ContentItem::Unknown(_) => (text, images),
        });
    text.saturating_add(approx_tokens_from_byte_count(image_bytes))
}

/// Middle-truncates a message's parts to `budget_tokens`, images counted at their estimate
/// (see [`truncate_parts`]).
fn truncate_content(content: &[ContentItem], budget_tokens: u64) -> Vec<ContentItem> {
    truncate_parts(content, budget_tokens.saturating_mul(4), Unit::Tokens, Images::WithinBudget)
}

#[cfg(test)]
mod tests;
