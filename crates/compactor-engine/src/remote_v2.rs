//! Remote compaction v2 (D39): the trigger, collecting the one compaction item from the
//! stream, and the history it installs.

use std::borrow::{Borrow, Cow};
use std::pin::pin;

use compactor_protocol::{CompactorError, ResponseEvent, ResponseItem, TokenUsage, V2TriggerForm};
use futures::{Stream, StreamExt as _};

use crate::error::Error;

/// What the v2 request input ends with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2PromptOptions<'a> {
    /// The trigger item form the provider speaks.
    pub trigger_form: V2TriggerForm,
    /// Focus text of a manual compaction (`/compact <focus>`), sent as a developer message just
    /// before the trigger (D30). Blank text sends nothing.
    pub focus: Option<&'a str>,
}

/// The trigger item of `form`: `{"type":"context_compaction"}` or `{"type":"compaction_trigger"}`.
pub(crate) fn v2_trigger_item(form: V2TriggerForm) -> ResponseItem {
    match form {
        V2TriggerForm::ContextCompaction => ResponseItem::context_compaction_trigger(),
        V2TriggerForm::CompactionTrigger => ResponseItem::CompactionTrigger,
    }
}

/// The developer message carrying a compaction's focus text.
pub(crate) fn focus_message(focus: &str) -> ResponseItem {
    ResponseItem::developer_text(format!(
        "When you compact this conversation, give priority to preserving the following:\n{}",
        focus.trim()
    ))
}

/// Appends the v2 tail to a prompt input built by [`crate::for_prompt`]: the focus message, if
/// any, then the trigger. Returns the length `input` had before, so that `&input[..len]` is the
/// prompt input that [`v2_request_messages`] takes.
///
/// # Examples
///
/// ```
/// use compactor_engine::{V2PromptOptions, append_v2_trigger};
/// use compactor_protocol::ResponseItem;
///
/// let mut input = vec![ResponseItem::user_text("hello")];
/// let prompt_len = append_v2_trigger(&mut input, &V2PromptOptions::default());
/// assert_eq!(prompt_len, 1);
/// assert_eq!(input[1], ResponseItem::context_compaction_trigger());
/// ```
pub fn append_v2_trigger<T: From<ResponseItem>>(
    input: &mut Vec<T>,
    options: &V2PromptOptions<'_>,
) -> usize {
    let prompt_len = input.len();
    if let Some(focus) = options.focus
        && !focus.trim().is_empty()
    {
        input.push(focus_message(focus).into());
    }
    input.push(v2_trigger_item(options.trigger_form).into());
    prompt_len
}

/// What a successful v2 compaction stream produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectedCompaction {
    /// The one compaction item (`context_compaction` or `compaction`, per the trigger form).
    pub item: ResponseItem,
    /// The `response.completed` id, for `response.processed`.
    pub response_id: String,
    /// The completed response's usage, when the server reported it (for analytics; the session's
    /// usage is recomputed from the installed history instead).
    pub token_usage: Option<TokenUsage>,
}

/// Consumes a v2 compaction stream until `response.completed` and returns its one compaction item
/// (D12, D8).
///
/// Every `output_item.done` is counted. For [`V2TriggerForm::ContextCompaction`] the item is a
/// `context_compaction`, for [`V2TriggerForm::CompactionTrigger`] a `compaction`; other output
/// items (assistant text, reasoning, ...) are ignored and never recorded.
///
/// # Errors
///
/// - A stream error is returned as it is, converted into [`CompactorError`].
/// - A compaction item without (or with empty) `encrypted_content` fails at once:
///   `Fatal("remote compaction v2 returned context_compaction without encrypted_content")`.
/// - A completed stream with a number of compaction items other than one:
///   `Fatal("remote compaction v2 expected exactly one context_compaction output item, got {n}
///   from {m} output items")`.
/// - An end before `response.completed`: the retryable
///   `Stream("remote compaction v2 stream closed before response.completed")` (D12).
///
/// # Cancel safety
///
/// Dropping the future drops the stream and loses what was collected; nothing else happens.
pub async fn collect_context_compaction_output<S, E>(
    stream: S,
    trigger_form: V2TriggerForm,
) -> Result<CollectedCompaction, CompactorError>
where
    S: Stream<Item = Result<ResponseEvent, E>>,
    E: Into<CompactorError>,
{
    let item_type = match trigger_form {
        V2TriggerForm::ContextCompaction => "context_compaction",
        V2TriggerForm::CompactionTrigger => "compaction",
    };
    let mut stream = pin!(stream);
    let mut output_items = 0usize;
    let mut count = 0usize;
    let mut first: Option<ResponseItem> = None;
    while let Some(event) = stream.next().await {
        match event.map_err(Into::into)? {
            ResponseEvent::OutputItemDone { item } => {
                output_items += 1;
                let payload = match (&item, trigger_form) {
                    (
                        ResponseItem::ContextCompaction { encrypted_content, .. },
                        V2TriggerForm::ContextCompaction,
                    ) => Some(encrypted_content.as_deref().unwrap_or_default()),
                    (
                        ResponseItem::Compaction { encrypted_content, .. },
                        V2TriggerForm::CompactionTrigger,
                    ) => Some(encrypted_content.as_str()),
                    _ => None,
                };
                match payload {
                    Some("") => return Err(Error::MissingPayload { item_type }.into()),
                    Some(_) => {
                        count += 1;
                        if first.is_none() {
                            first = Some(item);
                        }
                    }
                    None => {}
                }
            }
            ResponseEvent::Completed { response_id, token_usage, .. } => {
                return match first {
                    Some(item) if count == 1 => {
                        Ok(CollectedCompaction { item, response_id, token_usage })
                    }
                    _ => Err(Error::UnexpectedItemCount { item_type, count, output_items }.into()),
                };
            }
            ResponseEvent::Created { .. }
            | ResponseEvent::OutputItemAdded { .. }
            | ResponseEvent::ServerModel { .. }
            | ResponseEvent::ModelVerifications { .. }
            | ResponseEvent::ServerReasoningIncluded { .. }
            | ResponseEvent::OutputTextDelta { .. }
            | ResponseEvent::ToolCallInputDelta { .. }
            | ResponseEvent::ReasoningSummaryDelta { .. }
            | ResponseEvent::ReasoningContentDelta { .. }
            | ResponseEvent::ReasoningSummaryPartAdded { .. }
            | ResponseEvent::Compacting { .. }
            | ResponseEvent::RateLimits { .. }
            | ResponseEvent::ModelsEtag { .. } => {}
        }
    }
    Err(Error::StreamClosedEarly.into())
}

/// The messages of a v2 request that its compacted history starts from (D39):
/// every user, developer and system message of `prompt_input`, in order. Assistant messages,
/// tool traffic, reasoning, old compaction items and triggers are left out.
/// [`crate::compacted_history`] takes them as [`crate::Compacted::RemoteV2`]. They are borrowed
/// from `prompt_input`: the layout copies only the few it keeps.
///
/// `prompt_input` is the request input without the v2 tail (see [`append_v2_trigger`]).
pub fn v2_request_messages<T: Borrow<ResponseItem>>(
    prompt_input: &[T],
) -> Vec<Cow<'_, ResponseItem>> {
    prompt_input
        .iter()
        .map(Borrow::borrow)
        .filter(|item: &&ResponseItem| matches!(item.role(), Some("user" | "developer" | "system")))
        .map(Cow::Borrowed)
        .collect()
}

#[cfg(test)]
mod tests;
