//! The accounting of a compaction receipt (see D143 in docs/decisions.md): what happened to each
//! item of the history a compaction started from, and where the "before" tokens went.
//!
//! Outcomes come from comparing the history with the new one, so every implementation is
//! accounted for the same way:
//!
//! 1. an item that says the same as a pin (a pin slot item, or the original of a pinned copy) is
//!    [`ItemOutcome::Pinned`];
//! 2. an item the new history holds as it is (a message with or without its id) is
//!    [`ItemOutcome::KeptVerbatim`];
//! 3. an item the new history holds changed is [`ItemOutcome::KeptTruncated`]: a tool output with
//!    the same call id (masked by `prune`), or a message of the same role whose first text starts
//!    the same way (cut to a budget, images replaced);
//! 4. an item the trimming step removed before the request is
//!    [`ItemOutcome::TrimmedBeforeSending`];
//! 5. an item a model was sent is [`ItemOutcome::Summarized`]; any other is
//!    [`ItemOutcome::Dropped`].
//!
//! Each new-history item stands for at most one input item, exact matches first, and of equal
//! input items the newest are matched first. The items the
//! compaction itself produced (the compaction item, the summary) and the new pin slot are left
//! out of the matching.

use compactor_protocol::tokens::{TokenCounter, estimate_item_tokens};
use compactor_protocol::{ContentItem, ItemOutcome, ItemReceipt, ReceiptTotals, ResponseItem};
use foldhash::{HashMap, HashMapExt as _};

use crate::counts::HistoryCounts;
use crate::ledger::is_ledger_message;
use crate::pins::same_content;

/// How many characters of a message's first text identify the message it was cut from.
const CUT_PREFIX_CHARS: usize = 32;

/// Which of its history items a compaction sent to a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sent<'a> {
    /// No model was asked (`prune`).
    Nothing,
    /// Every item that survived the trimming step.
    All,
    /// These items, in order: the history less what a summarization that overflowed dropped.
    Only(&'a [ResponseItem]),
}

/// What a receipt is computed from; see the module docs for the rules.
#[derive(Debug, Clone, Copy)]
pub struct ReceiptInput<'a> {
    /// The history the compaction started from.
    pub history: &'a [ResponseItem],
    /// The items of the new pin slot, in order.
    pub pinned: &'a [ResponseItem],
    /// The history after the trimming step, when trimming removed anything; items of `history`
    /// it lacks were trimmed.
    pub trimmed: Option<&'a [ResponseItem]>,
    /// What a model was sent.
    pub sent: Sent<'a>,
    /// The new history.
    pub new_history: &'a [ResponseItem],
    /// How many leading items of `new_history` are its pin slot.
    pub new_pin_slot: usize,
    /// How many trailing items of `new_history` the compaction produced (its compaction item or
    /// summary).
    pub produced: usize,
}

/// The figures the totals are made to add up to, and how the items are counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiptTokens {
    /// The session's counter (D120), which gives every item its tokens.
    pub counter: TokenCounter,
    /// The context estimate the compaction reported before it ran.
    pub before: i64,
    /// The estimated tokens of the base instructions.
    pub instructions: u64,
    /// The estimated tokens of the tool definitions.
    pub tools: u64,
}

/// One receipt line per item of `input.history`, in order, and the totals, which add up to
/// `tokens.before` exactly (`unattributed` takes the difference).
///
/// Linear in the sizes of both histories; each item is counted once, with `tokens.counter`.
///
/// # Examples
///
/// ```
/// use compactor_engine::{ReceiptInput, ReceiptTokens, Sent, account_items};
/// use compactor_protocol::tokens::TokenCounter;
/// use compactor_protocol::{ItemOutcome, ResponseItem};
///
/// let history = [
///     ResponseItem::user_text("fix the parser"),
///     ResponseItem::assistant_text("I read the whole file and found the bug."),
/// ];
/// let summary = ResponseItem::user_text("summary: the parser is fixed");
/// let new_history = [history[0].clone(), summary];
/// let input = ReceiptInput {
///     history: &history,
///     pinned: &[],
///     trimmed: None,
///     sent: Sent::All,
///     new_history: &new_history,
///     new_pin_slot: 0,
///     produced: 1,
/// };
/// let tokens =
///     ReceiptTokens { counter: TokenCounter::Bytes4, before: 100, instructions: 10, tools: 0 };
/// let (items, totals) = account_items(&input, &tokens);
/// assert_eq!(items[0].outcome, ItemOutcome::KeptVerbatim);
/// assert_eq!(items[1].tokens, TokenCounter::Bytes4.item_tokens(&history[1]));
/// assert_eq!(items[1].outcome, ItemOutcome::Summarized);
/// assert_eq!(totals.sum(), 100);
/// ```
pub fn account_items(
    input: &ReceiptInput<'_>,
    tokens: &ReceiptTokens,
) -> (Vec<ItemReceipt>, ReceiptTotals) {
    account_items_counted(input, tokens, None)
}

/// [`account_items`] reading each item's tokens from `counts`, the cached counts of
/// `input.history` made with `tokens.counter` (D124), instead of counting the history again;
/// counts of another length are not that history's, and it is counted as [`account_items`]
/// counts it.
pub fn account_items_counted(
    input: &ReceiptInput<'_>,
    tokens: &ReceiptTokens,
    counts: Option<&HistoryCounts>,
) -> (Vec<ItemReceipt>, ReceiptTotals) {
    let history = input.history;
    let counts = counts.filter(|counts| counts.len() == history.len());
    let end = input.new_history.len().saturating_sub(input.produced);
    let body = input.new_history.get(input.new_pin_slot.min(end)..end).unwrap_or_default();
    let mut outcomes: Vec<Option<ItemOutcome>> = vec![None; history.len()];

    // Pins, then what the new history holds as it was.
    let mut exact: HashMap<ExactKey<'_>, Vec<usize>> = HashMap::new();
    let mut exact_shapes = Shapes::default();
    for (index, item) in body.iter().enumerate().rev() {
        exact_shapes.note(item);
        exact.entry(ExactKey::of(item)).or_default().push(index);
    }
    let mut used = vec![false; body.len()];
    // Newest first: of equal items, the newest are the ones a compaction keeps.
    for (outcome, item) in outcomes.iter_mut().zip(history).rev() {
        if input.pinned.iter().any(|pin| same_content(item, pin)) {
            *outcome = Some(ItemOutcome::Pinned);
            continue;
        }
        if !exact_shapes.may_hold(item) {
            continue;
        }
        let Some(candidates) = exact.get_mut(&ExactKey::of(item)) else { continue };
        // Candidates are stacked oldest on top; the first that says the same is taken.
        if let Some(position) = candidates.iter().rposition(|&at| same_content(&body[at], item)) {
            let at = candidates.remove(position);
            used[at] = true;
            *outcome = Some(ItemOutcome::KeptVerbatim);
        }
    }

    // What the new history holds changed.
    let mut derived: HashMap<DerivedKey<'_>, Vec<usize>> = HashMap::new();
    let mut derived_shapes = Shapes::default();
    for (index, item) in body.iter().enumerate().rev() {
        if !used[index]
            && let Some(key) = DerivedKey::of(item)
        {
            derived_shapes.note(item);
            derived.entry(key).or_default().push(index);
        }
    }
    for (outcome, item) in outcomes.iter_mut().zip(history).rev() {
        if outcome.is_some() || !derived_shapes.may_hold(item) {
            continue;
        }
        if let Some(candidates) = DerivedKey::of(item).and_then(|key| derived.get_mut(&key))
            && candidates.pop().is_some()
        {
            *outcome = Some(ItemOutcome::KeptTruncated);
        }
    }

    // What is left was trimmed, summarized or dropped.
    // Trimming removes the newest tool traffic, and an overflowing summarization the oldest
    // items: of equal items, the oldest are matched to what trimming kept, the newest to what
    // was sent.
    let trimmed = input.trimmed.map(|trimmed| subsequence_mask(history, trimmed, Walk::Forward));
    let sent = match input.sent {
        Sent::Only(sent) => Some(subsequence_mask(history, sent, Walk::Backward)),
        Sent::Nothing | Sent::All => None,
    };
    let mut items = Vec::with_capacity(history.len());
    let mut totals = ReceiptTotals {
        instructions: tokens.instructions,
        tools: tokens.tools,
        ..ReceiptTotals::default()
    };
    for (index, (outcome, item)) in outcomes.into_iter().zip(history).enumerate() {
        let outcome = outcome.unwrap_or_else(|| {
            if trimmed.as_ref().is_some_and(|kept| !kept[index]) {
                ItemOutcome::TrimmedBeforeSending
            } else {
                let was_sent = match input.sent {
                    Sent::Nothing => false,
                    Sent::All => true,
                    Sent::Only(_) => sent.as_ref().is_some_and(|sent| sent[index]),
                };
                if was_sent { ItemOutcome::Summarized } else { ItemOutcome::Dropped }
            }
        });
        let item_tokens = match counts {
            Some(counts) => counts.item(index),
            None => tokens.counter.item_tokens(item),
        };
        if let Some(total) = totals.category_mut(outcome) {
            total.add(item_tokens);
        }
        items.push(ItemReceipt::of(item, outcome, item_tokens));
    }
    totals.unattributed = unattributed(tokens.before, &totals);
    (items, totals)
}

/// The receipt lines and totals of an attempt that changed nothing (a failed one): every item
/// kept verbatim. `counts`, the cached counts of `history`, spare counting it again, as in
/// [`account_items_counted`].
pub fn unchanged_items(
    history: &[ResponseItem],
    tokens: &ReceiptTokens,
    counts: Option<&HistoryCounts>,
) -> (Vec<ItemReceipt>, ReceiptTotals) {
    let input = ReceiptInput {
        history,
        pinned: &[],
        trimmed: None,
        sent: Sent::Nothing,
        new_history: history,
        new_pin_slot: 0,
        produced: 0,
    };
    account_items_counted(&input, tokens, counts)
}

/// `before` less everything the totals attribute, saturated to `i64`.
fn unattributed(before: i64, totals: &ReceiptTotals) -> i64 {
    let rest = i128::from(before) - totals.attributed();
    i64::try_from(rest).unwrap_or(if rest < 0 { i64::MIN } else { i64::MAX })
}

/// Which way [`subsequence_mask`] walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// From the oldest items: of equal items, the oldest are matched.
    Forward,
    /// From the newest items: of equal items, the newest are matched.
    Backward,
}

/// Which items of `full` the in-order subsequence `part` keeps: each item of `part` is matched to
/// the next equal item of `full` in the direction of `walk`.
fn subsequence_mask(full: &[ResponseItem], part: &[ResponseItem], walk: Walk) -> Vec<bool> {
    let mut mask = vec![false; full.len()];
    match walk {
        Walk::Forward => mark_in_order(mask.iter_mut().zip(full), part.iter()),
        Walk::Backward => mark_in_order(mask.iter_mut().zip(full).rev(), part.iter().rev()),
    }
    mask
}

fn mark_in_order<'a>(
    slots: impl Iterator<Item = (&'a mut bool, &'a ResponseItem)>,
    part: impl Iterator<Item = &'a ResponseItem>,
) {
    let mut next = part.peekable();
    for (kept, item) in slots {
        if next.peek().is_some_and(|wanted| *wanted == item) {
            *kept = true;
            next.next();
        }
    }
}

/// A cheap key under which items that say the same always fall together.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ExactKey<'a> {
    /// A message: role, number of parts and bytes of text.
    Message { role: &'a str, parts: usize, text_bytes: usize },
    /// A call or a tool output: its type and call id.
    Call { kind: &'a str, call_id: &'a str },
    /// A reasoning item: its id and the sizes of what it holds.
    Reasoning { id: Option<&'a str>, summary: usize, content: Option<usize>, encrypted: usize },
    /// Anything else: its type and estimated size.
    Other { kind: &'a str, tokens: u64 },
}

impl<'a> ExactKey<'a> {
    fn of(item: &'a ResponseItem) -> Self {
        match item {
            ResponseItem::Message { role, content, .. } => {
                let text_bytes =
                    content.iter().map(|part| first_text(part).map_or(0, str::len)).sum();
                return ExactKey::Message { role, parts: content.len(), text_bytes };
            }
            // Taken apart without counting them: a history holds thousands of these, and an
            // estimate walks the whole item.
            ResponseItem::Reasoning { id, summary, content, encrypted_content } => {
                return ExactKey::Reasoning {
                    id: id.as_deref(),
                    summary: summary.len(),
                    content: content.as_ref().map(Vec::len),
                    encrypted: encrypted_content.as_ref().map_or(0, String::len),
                };
            }
            _ => {}
        }
        match item.output_call_id().or_else(|| item.call_id()) {
            Some(call_id) => ExactKey::Call { kind: item.item_type(), call_id },
            None => ExactKey::Other { kind: item.item_type(), tokens: estimate_item_tokens(item) },
        }
    }
}

/// The kinds of item a key map holds: a message role, reasoning, or anything else. An item of
/// another kind cannot match any key in the map, so it needs no key: a history holds thousands of
/// items where the new history holds a few kinds, and making a key reads the item's text (an
/// estimate, for an item of a rare type).
#[derive(Debug, Default)]
struct Shapes<'a> {
    roles: Vec<&'a str>,
    reasoning: bool,
    other: bool,
}

impl<'a> Shapes<'a> {
    fn note(&mut self, item: &'a ResponseItem) {
        match item {
            ResponseItem::Message { role, .. } => {
                if !self.roles.contains(&role.as_str()) {
                    self.roles.push(role);
                }
            }
            ResponseItem::Reasoning { .. } => self.reasoning = true,
            _ => self.other = true,
        }
    }

    /// Whether an item of `item`'s kind was noted; equal keys are only ever made from items of
    /// one kind (a message key holds its role).
    fn may_hold(&self, item: &ResponseItem) -> bool {
        match item {
            ResponseItem::Message { role, .. } => self.roles.contains(&role.as_str()),
            ResponseItem::Reasoning { .. } => self.reasoning,
            _ => self.other,
        }
    }
}

/// The key under which an item and what it was cut to fall together.
#[derive(Debug, PartialEq, Eq, Hash)]
enum DerivedKey<'a> {
    /// A message: its role and the start of its first text.
    Message { role: &'a str, start: &'a str },
    /// A tool output: its type and call id.
    Output { kind: &'a str, call_id: &'a str },
}

impl<'a> DerivedKey<'a> {
    fn of(item: &'a ResponseItem) -> Option<Self> {
        // A compaction renders the progress ledger anew: the old ledger message is not a cut of
        // the new one, however alike they start.
        if is_ledger_message(item) {
            return None;
        }
        if let ResponseItem::Message { role, content, .. } = item {
            let text = content.iter().find_map(first_text)?;
            let end = text.char_indices().nth(CUT_PREFIX_CHARS).map_or(text.len(), |(at, _)| at);
            return Some(DerivedKey::Message { role, start: &text[..end] });
        }
        item.output_call_id().map(|call_id| DerivedKey::Output { kind: item.item_type(), call_id })
    }
}

fn first_text(part: &ContentItem) -> Option<&str> {
    match part {
        ContentItem::InputText { text } | ContentItem::OutputText { text } => Some(text),
        ContentItem::InputImage { .. } | ContentItem::Unknown(_) => None,
    }
}

#[cfg(test)]
mod tests;
