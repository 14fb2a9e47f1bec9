//! `for_prompt`: turning a session's history into a valid request input.

use std::borrow::Cow;

use compactor_protocol::{ContentItem, PassThroughList, ResponseItem, ToolOutput};

use crate::pairs::{PairKind, call_key, match_pairs, output_key};

/// The text that replaces an image part for a model without image input.
pub(crate) const IMAGE_OMITTED_PLACEHOLDER: &str =
    "[image omitted: this model does not accept image input]";

/// The output text given to a call that was never answered.
const ABORTED_OUTPUT: &str = "aborted";

/// What kinds of input the model accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InputModalities {
    /// Text and images.
    #[default]
    TextAndImages,
    /// Text only: image parts are replaced by a text part saying an image was omitted.
    TextOnly,
}

/// How [`for_prompt`] normalizes a history for one model and provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptOptions {
    /// What the model accepts.
    pub input_modalities: InputModalities,
    /// The unknown item types the provider receives.
    pub pass_through: PassThroughList,
}

/// The request input for `items`: a new, valid history for the model.
///
/// - Every call is answered: a call without an output gets a synthetic output `"aborted"` of the
///   matching type (`function_call_output`, `custom_tool_call_output`, or an empty
///   `tool_search_output`) right after it.
/// - Orphan outputs (no earlier unanswered call of their family with their id) are dropped.
/// - For [`InputModalities::TextOnly`], every image part of a message or tool output becomes an
///   `input_text` part saying an image was omitted, so the model still sees that an image was
///   there.
/// - Unknown items are kept only when `options.pass_through` allows them.
/// - Compaction triggers of either form are dropped: they are transient request items, and the
///   v2 prompt builder appends exactly one.
///
/// Linear in `items`; `items` is not changed. [`prompt_input`] gives the same items without
/// copying them.
pub fn for_prompt(items: &[ResponseItem], options: &PromptOptions) -> Vec<ResponseItem> {
    prompt_input(items, options).into_iter().map(Cow::into_owned).collect()
}

/// The spare room of [`prompt_input`]'s vector.
pub const PROMPT_INPUT_SPARE: usize = 8;

/// [`for_prompt`] borrowing every item it keeps unchanged from `items`: only synthetic outputs
/// and image-stripped items are owned, so a prompt over a large history costs one entry per item
/// instead of a copy of the history.
///
/// The vector has room for [`PROMPT_INPUT_SPARE`] more items, so that appending what a compaction
/// request adds (a focus message, the trigger, a few pins) does not move it: an entry is as large
/// as an item, and a vector that doubles to take one more item costs twice its size at once.
pub fn prompt_input<'a>(
    items: &'a [ResponseItem],
    options: &PromptOptions,
) -> Vec<Cow<'a, ResponseItem>> {
    let partner = match_pairs(items);
    let mut out = Vec::with_capacity(items.len() + PROMPT_INPUT_SPARE);
    for (item, partner) in items.iter().zip(&partner) {
        if item.is_compaction_trigger() || !options.pass_through.allows(item) {
            continue;
        }
        if output_key(item).is_some() && partner.is_none() {
            continue;
        }
        match options.input_modalities {
            InputModalities::TextOnly if has_image(item) => {
                out.push(Cow::Owned(without_images(item)));
            }
            InputModalities::TextOnly | InputModalities::TextAndImages => {
                out.push(Cow::Borrowed(item));
            }
        }
        if let Some((kind, call_id)) = call_key(item)
            && partner.is_none()
        {
            out.push(Cow::Owned(aborted_output(kind, call_id, item)));
        }
    }
    out
}

/// The synthetic output of an unanswered call.
fn aborted_output(kind: PairKind, call_id: &str, call: &ResponseItem) -> ResponseItem {
    let call_id = call_id.to_owned();
    match kind {
        PairKind::Function => ResponseItem::FunctionCallOutput {
            call_id,
            output: ToolOutput::Text(ABORTED_OUTPUT.to_owned()),
        },
        PairKind::Custom => ResponseItem::CustomToolCallOutput {
            call_id,
            name: None,
            output: ToolOutput::Text(ABORTED_OUTPUT.to_owned()),
        },
        PairKind::ToolSearch => ResponseItem::ToolSearchOutput {
            call_id: Some(call_id),
            status: "completed".to_owned(),
            execution: match call {
                ResponseItem::ToolSearchCall { execution, .. } => execution.clone(),
                _ => "client".to_owned(),
            },
            tools: Vec::new(),
        },
    }
}

/// The content parts of a message or tool output (empty for other items).
pub(crate) fn content_parts(item: &ResponseItem) -> &[ContentItem] {
    match item {
        ResponseItem::Message { content, .. } => content,
        ResponseItem::FunctionCallOutput { output: ToolOutput::Content(parts), .. }
        | ResponseItem::CustomToolCallOutput { output: ToolOutput::Content(parts), .. } => parts,
        _ => &[],
    }
}

fn has_image(item: &ResponseItem) -> bool {
    content_parts(item).iter().any(|part| matches!(part, ContentItem::InputImage { .. }))
}

fn without_images(item: &ResponseItem) -> ResponseItem {
    let mut item = item.clone();
    let parts = match &mut item {
        ResponseItem::Message { content, .. } => content,
        ResponseItem::FunctionCallOutput { output: ToolOutput::Content(parts), .. }
        | ResponseItem::CustomToolCallOutput { output: ToolOutput::Content(parts), .. } => parts,
        _ => return item,
    };
    for part in parts.iter_mut() {
        if matches!(part, ContentItem::InputImage { .. }) {
            *part = ContentItem::InputText { text: IMAGE_OMITTED_PLACEHOLDER.to_owned() };
        }
    }
    item
}

#[cfg(test)]
mod tests;
