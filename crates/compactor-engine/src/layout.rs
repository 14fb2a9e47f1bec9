//! The one layout of every compacted history (see D102 in docs/decisions.md): whatever the
//! implementation, [`compacted_history`] builds the history a compaction installs.

use std::borrow::{Borrow, Cow};

use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{ContentItem, ContextualMarkers, InitialContextInjection, ResponseItem};

use crate::context::{insert_initial_context, keep_in_compacted_history};
use crate::error::{Error, Result};
use crate::images::{DEFAULT_MAX_RETAINED_IMAGES, cap_borrowed_images, cap_images};
use crate::ledger::is_ledger_message;
use crate::local::{COMPACT_USER_MESSAGE_MAX_TOKENS, select_user_messages, summary_text};
use crate::retained::{MAX_DEFAULT_RETAINED_BUDGET_TOKENS, retain_within_budget};

/// What an implementation produced, the input of [`compacted_history`].
#[derive(Debug, Clone, PartialEq)]
pub enum Compacted<'a> {
    /// Remote compaction v2: the messages of the request input (see [`crate::v2_request_messages`])
    /// and the compaction item the server returned.
    RemoteV2 {
        /// The request's user, developer and system messages, in order, borrowed from the
        /// request where they can be.
        messages: Vec<Cow<'a, ResponseItem>>,
        /// The new `context_compaction` (or `compaction`) item.
        item: ResponseItem,
    },
    /// Remote compaction v1: what `/responses/compact` returned.
    RemoteV1 {
        /// The returned items: retained messages and the compaction item.
        output: Vec<ResponseItem>,
    },
    /// Local compaction: the real user messages of the history and the summary text.
    Local {
        /// Every real user message's content, in order (see [`crate::collect_user_messages`]).
        user_messages: &'a [&'a [ContentItem]],
        /// The summary message's text (see [`crate::summary_text`]); empty becomes the
        /// placeholder summary.
        summary: &'a str,
    },
    /// `prune`: the pruned history, which keeps its initial context where it was.
    Prune {
        /// The pruned history.
        history: Vec<ResponseItem>,
    },
    /// Server-managed compaction: the compaction item the server put in a normal response.
    ServerManaged {
        /// The `compaction` item.
        item: ResponseItem,
    },
}

/// Where everything goes and how much of it stays; see [`compacted_history`].
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Pinned items and pinned notes, first. They count against the retained budget.
    pub pinned: &'a [ResponseItem],
    /// The progress ledger, after the pins. It counts against the retained budget.
    pub ledger: &'a [ResponseItem],
    /// The harness's initial context. It does not count against any budget.
    pub initial_context: &'a [ResponseItem],
    /// Where the initial context goes: just before the last real user message (mid-turn), or
    /// nowhere, for the next turn to inject it in full.
    pub injection: InitialContextInjection,
    /// The markers of contextual user messages.
    pub markers: &'a ContextualMarkers,
    /// The retained budget of remote compaction (v2 and v1), in tokens.
    pub retained_budget_tokens: u64,
    /// The user-message budget of local compaction, in tokens.
    pub local_budget_tokens: u64,
    /// How many images the retained items keep; older ones become placeholders.
    pub max_retained_images: usize,
    /// How the budgets count tokens: the session's counter (D120).
    pub counter: TokenCounter,
}

impl<'a> Layout<'a> {
    /// No pins, no ledger, no initial context (`DoNotInject`), the largest default retained
    /// budget, local compaction's 20 000-token budget and the default image cap.
    pub fn new(markers: &'a ContextualMarkers) -> Self {
        Self {
            pinned: &[],
            ledger: &[],
            initial_context: &[],
            injection: InitialContextInjection::DoNotInject,
            markers,
            retained_budget_tokens: MAX_DEFAULT_RETAINED_BUDGET_TOKENS,
            local_budget_tokens: COMPACT_USER_MESSAGE_MAX_TOKENS,
            max_retained_images: DEFAULT_MAX_RETAINED_IMAGES,
            counter: TokenCounter::Bytes4,
        }
    }
}

/// The history a compaction installs, for every implementation, in this order:
///
/// 1. the pinned items and notes ([`Layout::pinned`]);
/// 2. the progress ledger ([`Layout::ledger`]);
/// 3. the retained items, with the initial context placed by [`Layout::injection`];
/// 4. the compaction item or the summary, last.
///
/// The retained items, per implementation:
///
/// - v2 and v1: the messages of the request (v2) or of the server's output (v1) that a compacted
///   history keeps (real user messages and summaries; v1's assistant messages too), newest first
///   within the retained budget minus what the pins and the ledger take. The message on the
///   boundary is cut, not dropped. v1's compaction items move to the end.
/// - local: the real user messages within the local budget minus the pins and the ledger (their
///   text and images measured as local compaction always has), then the summary message.
/// - prune: the pruned history as it is, but for the ledger message of an earlier compaction
///   (the other implementations keep no developer message); it keeps its initial context where
///   it was, so the injection mode does not apply.
/// - server-managed: nothing but the server's compaction item.
///
/// Every implementation keeps at most [`Layout::max_retained_images`] images in its retained
/// items, the newest; older ones become placeholders. The initial context does not count
/// against any budget.
///
/// # Errors
///
/// [`Error::PinnedOverBudget`] when the pins and the ledger alone exceed the budget of a budgeted
/// implementation (v2, v1, local).
///
/// # Examples
///
/// ```
/// use std::borrow::Cow;
///
/// use compactor_engine::{Compacted, Layout, compacted_history};
/// use compactor_protocol::{ContextualMarkers, InitialContextInjection, ResponseItem};
///
/// let markers = ContextualMarkers::default();
/// let context = [ResponseItem::developer_text("<permissions>")];
/// let item = ResponseItem::ContextCompaction { id: None, encrypted_content: Some("SEALED".into()) };
/// let sent = [ResponseItem::user_text("first"), ResponseItem::user_text("second")];
/// let compacted = Compacted::RemoteV2 { messages: sent.iter().map(Cow::Borrowed).collect(), item: item.clone() };
/// let layout = Layout {
///     initial_context: &context,
///     injection: InitialContextInjection::BeforeLastUserMessage,
///     ..Layout::new(&markers)
/// };
/// let history = compacted_history(compacted, &layout)?;
/// assert_eq!(
///     history,
///     [
///         ResponseItem::user_text("first"),
///         context[0].clone(),
///         ResponseItem::user_text("second"),
///         item,
///     ]
/// );
/// # Ok::<(), compactor_engine::Error>(())
/// ```
pub fn compacted_history(
    compacted: Compacted<'_>,
    layout: &Layout<'_>,
) -> Result<Vec<ResponseItem>> {
    let fixed = layout
        .pinned
        .iter()
        .chain(layout.ledger)
        .fold(0u64, |total, item| total.saturating_add(layout.counter.item_tokens(item)));
    let within = |budget: u64| {
        budget
            .checked_sub(fixed)
            .ok_or(Error::PinnedOverBudget { pinned_tokens: fixed, budget_tokens: budget })
    };
    let mut injection = layout.injection;
    let (retained, tail) = match compacted {
        Compacted::RemoteV2 { messages, item } => {
            let budget = within(layout.retained_budget_tokens)?;
            let retained = keep_for_history(messages, layout.markers);
            (budgeted(retained, budget, layout), vec![item])
        }
        Compacted::RemoteV1 { output } => {
            let budget = within(layout.retained_budget_tokens)?;
            let (tail, retained): (Vec<_>, Vec<_>) = keep_for_history(output, layout.markers)
                .into_iter()
                .partition(ResponseItem::is_compaction);
            (budgeted(retained.into_iter().map(Cow::Owned).collect(), budget, layout), tail)
        }
        Compacted::Local { user_messages, summary } => {
            let budget = within(layout.local_budget_tokens)?;
            let mut retained = select_user_messages(user_messages, budget, layout.counter);
            cap_images(&mut retained, layout.max_retained_images);
            let summary = if summary.is_empty() { summary_text("") } else { summary.to_owned() };
            (retained, vec![ResponseItem::user_text(summary)])
        }
        Compacted::Prune { mut history } => {
            injection = InitialContextInjection::DoNotInject;
            // The pruned history still holds the ledger of the previous compaction: the
            // layout's ledger replaces it, so renders never accumulate (D152).
            history.retain(|item| !is_ledger_message(item));
            cap_images(&mut history, layout.max_retained_images);
            (history, Vec::new())
        }
        Compacted::ServerManaged { item } => (Vec::new(), vec![item]),
    };
    let mut body = retained;
    body.extend(tail);
    match injection {
        InitialContextInjection::BeforeLastUserMessage => {
            insert_initial_context(&mut body, layout.initial_context, layout.markers);
        }
        InitialContextInjection::DoNotInject => {}
    }
    let mut history = Vec::with_capacity(layout.pinned.len() + layout.ledger.len() + body.len());
    history.extend_from_slice(layout.pinned);
    history.extend_from_slice(layout.ledger);
    history.extend(body);
    Ok(history)
}

/// What of a remote result a compacted history keeps (see [`keep_in_compacted_history`]).
fn keep_for_history<T: Borrow<ResponseItem>>(
    mut items: Vec<T>,
    markers: &ContextualMarkers,
) -> Vec<T> {
    items.retain(|item| keep_in_compacted_history(item.borrow(), markers));
    items
}

/// The image cap, then the newest items within `budget`, counted with the layout's counter; only
/// the items kept are copied.
fn budgeted(
    mut items: Vec<Cow<'_, ResponseItem>>,
    budget: u64,
    layout: &Layout<'_>,
) -> Vec<ResponseItem> {
    cap_borrowed_images(&mut items, layout.max_retained_images);
    retain_within_budget(items, budget, layout.counter).into_iter().map(Cow::into_owned).collect()
}

#[cfg(test)]
mod tests;
