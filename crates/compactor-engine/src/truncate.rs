//! Truncation on record: tool outputs are cut to a per-model limit before the session records them
//! (see D100 in docs/decisions.md), and the head-and-tail cut that every truncation shares.
//!
//! A text keeps its head and its tail, and its middle is replaced by a marker that says how much
//! was elided (`…N tokens truncated…`, or `…N bytes truncated…` for a byte limit). Cuts fall on
//! character boundaries, so the result is always valid UTF-8, and the item keeps its type, call id
//! and shape.

use compactor_protocol::tokens::{
    TokenCounter, approx_tokens_from_byte_count, image_estimate_bytes, json_len,
};
use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};

/// The default limit of a recorded tool output, in tokens.
pub(crate) const DEFAULT_TOOL_OUTPUT_TOKENS: u64 = 10_000;

/// How much of a tool output's text the session records, per model.
///
/// The limit gets 20% of slack for what serialization adds around the text (quotes, escapes, the
/// item's fields), as the reference does: a 10 000-token policy keeps up to 12 000 tokens of
/// text. See [`TruncationPolicy::budget_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncationPolicy {
    /// At most this many tokens (four bytes each) of text.
    Tokens(u64),
    /// At most this many bytes of text.
    Bytes(u64),
}

impl Default for TruncationPolicy {
    fn default() -> Self {
        TruncationPolicy::Tokens(DEFAULT_TOOL_OUTPUT_TOKENS)
    }
}

impl TruncationPolicy {
    /// The bytes of text an output keeps: the limit times 1.2, rounded up (in tokens first, for a
    /// token limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use compactor_engine::TruncationPolicy;
    ///
    /// assert_eq!(TruncationPolicy::Tokens(10_000).budget_bytes(), 48_000);
    /// assert_eq!(TruncationPolicy::Bytes(1_001).budget_bytes(), 1_202);
    /// ```
    pub fn budget_bytes(self) -> u64 {
        match self {
            TruncationPolicy::Tokens(tokens) => with_slack(tokens).saturating_mul(4),
            TruncationPolicy::Bytes(bytes) => with_slack(bytes),
        }
    }

    fn unit(self) -> Unit {
        match self {
            TruncationPolicy::Tokens(_) => Unit::Tokens,
            TruncationPolicy::Bytes(_) => Unit::Bytes,
        }
    }
}

/// `n * 1.2`, rounded up (saturating).
fn with_slack(n: u64) -> u64 {
    n.saturating_add(n.div_ceil(5))
}

/// What [`truncate_tool_output`] cut, for the `tool_output_truncated` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolOutputTruncation {
    /// The estimated tokens of the output's text before the cut (of its tools' JSON, for a tool
    /// search output).
    pub original_tokens: u64,
    /// The estimated tokens of what was recorded, marker included.
    pub kept_tokens: u64,
}

/// Cuts a tool output to `policy` in place; returns what was cut, or `None` when the output fits
/// (or `item` is not a tool output).
///
/// - Function, local shell and custom tool outputs: the text parts, taken as one text, keep their
///   head and tail around a marker; images are left as they are.
/// - Tool search outputs: whole tool specs are kept from the first while their JSON fits, and the
///   rest are dropped (a half spec would not be valid).
///
/// A token limit counts with `counter` (D120): with `O200k`, the text keeps as many bytes as the
/// limit's tokens take in that text, and the figures reported are its tokens.
///
/// # Examples
///
/// ```
/// use compactor_engine::{TruncationPolicy, truncate_tool_output};
/// use compactor_protocol::tokens::TokenCounter;
/// use compactor_protocol::{ResponseItem, ToolOutput};
///
/// let mut item = ResponseItem::FunctionCallOutput {
///     call_id: "call_1".into(),
///     output: ToolOutput::Text("0123456789".repeat(10)),
/// };
/// let cut = truncate_tool_output(&mut item, TruncationPolicy::Bytes(10), TokenCounter::Bytes4)
///     .unwrap();
/// let ResponseItem::FunctionCallOutput { output: ToolOutput::Text(text), .. } = &item else {
///     unreachable!()
/// };
/// assert_eq!(text, "012345…88 bytes truncated…456789");
/// assert_eq!((cut.original_tokens, cut.kept_tokens), (25, 9));
/// ```
pub fn truncate_tool_output(
    item: &mut ResponseItem,
    policy: TruncationPolicy,
    counter: TokenCounter,
) -> Option<ToolOutputTruncation> {
    let budget = policy.budget_bytes();
    match item {
        ResponseItem::FunctionCallOutput { output, .. }
        | ResponseItem::CustomToolCallOutput { output, .. } => {
            match (policy, counter.effective()) {
                (TruncationPolicy::Tokens(tokens), TokenCounter::O200k) => {
                    truncate_output_counted(output, with_slack(tokens), counter)
                }
                (TruncationPolicy::Tokens(_) | TruncationPolicy::Bytes(_), _) => {
                    truncate_output(output, budget, policy.unit())
                }
            }
        }
        ResponseItem::ToolSearchOutput { tools, .. } => {
            let sizes: Vec<u64> = tools.iter().map(json_len).collect();
            let (kept, truncation) = keep_whole_tools(&sizes, budget)?;
            tools.truncate(kept);
            Some(truncation)
        }
        ResponseItem::Message { .. }
        | ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::Compaction { .. }
        | ResponseItem::ContextCompaction { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => None,
    }
}

fn truncate_output(
    output: &mut ToolOutput,
    budget: u64,
    unit: Unit,
) -> Option<ToolOutputTruncation> {
    match output {
        ToolOutput::Text(text) => {
            let original = text.len() as u64;
            if original <= budget {
                return None;
            }
            let cut = cut_middle(text, budget, unit);
            let kept = cut.len() as u64;
            *text = cut;
            Some(ToolOutputTruncation {
                original_tokens: approx_tokens_from_byte_count(original),
                kept_tokens: approx_tokens_from_byte_count(kept),
            })
        }
        ToolOutput::Content(parts) => {
            let original = text_bytes(parts);
            if original <= budget {
                return None;
            }
            *parts = truncate_parts(parts, budget, unit, Images::Keep);
            Some(ToolOutputTruncation {
                original_tokens: approx_tokens_from_byte_count(original),
                kept_tokens: approx_tokens_from_byte_count(text_bytes(parts)),
            })
        }
    }
}

/// [`truncate_output`] for a limit of `max_tokens` counted by `counter`: the text keeps the bytes
/// that many of its own tokens take, so a dense text keeps fewer bytes than a sparse one.
fn truncate_output_counted(
    output: &mut ToolOutput,
    max_tokens: u64,
    counter: TokenCounter,
) -> Option<ToolOutputTruncation> {
    let texts = match output {
        ToolOutput::Text(text) => vec![text.as_str()],
        ToolOutput::Content(parts) => parts.iter().filter_map(part_text).collect(),
    };
    let original_tokens = texts.iter().map(|text| counter.text_tokens(text)).sum::<u64>();
    if original_tokens <= max_tokens {
        return None;
    }
    let original_bytes = texts.iter().map(|text| text.len() as u64).sum::<u64>();
    // The bytes `max_tokens` of this text take, at its own bytes per token.
    let budget = u64::try_from(
        u128::from(original_bytes) * u128::from(max_tokens) / u128::from(original_tokens),
    )
    .unwrap_or(u64::MAX);
    match output {
        ToolOutput::Text(text) => *text = cut_middle(text, budget, Unit::Tokens),
        ToolOutput::Content(parts) => {
            *parts = truncate_parts(parts, budget, Unit::Tokens, Images::Keep);
        }
    }
    let kept_tokens = match output {
        ToolOutput::Text(text) => counter.text_tokens(text),
        ToolOutput::Content(parts) => {
            parts.iter().filter_map(part_text).map(|text| counter.text_tokens(text)).sum()
        }
    };
    Some(ToolOutputTruncation { original_tokens, kept_tokens })
}

/// The text of a content part, for the parts that have one.
fn part_text(part: &ContentItem) -> Option<&str> {
    match part {
        ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => Some(text),
        ContentItem::InputImage { .. } | ContentItem::Unknown(_) => None,
    }
}

/// How many tool specs of these JSON sizes fit `budget` bytes, from the first; `None` when all
/// of them do.
fn keep_whole_tools(sizes: &[u64], budget: u64) -> Option<(usize, ToolOutputTruncation)> {
    let original = sizes.iter().fold(0u64, |total, size| total.saturating_add(*size));
    if original <= budget {
        return None;
    }
    let mut kept_bytes = 0u64;
    let mut kept = 0usize;
    for size in sizes {
        if kept_bytes.saturating_add(*size) > budget {
            break;
        }
        kept_bytes += size;
        kept += 1;
    }
    let truncation = ToolOutputTruncation {
        original_tokens: approx_tokens_from_byte_count(original),
        kept_tokens: approx_tokens_from_byte_count(kept_bytes),
    };
    Some((kept, truncation))
}

/// What a truncation marker counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// `…N tokens truncated…`, N = the elided bytes over four, rounded up.
    Tokens,
    /// `…N bytes truncated…`.
    Bytes,
}

impl Unit {
    fn marker(self, removed_bytes: u64) -> String {
        match self {
            Unit::Tokens => {
                format!("…{} tokens truncated…", approx_tokens_from_byte_count(removed_bytes))
            }
            Unit::Bytes => format!("…{removed_bytes} bytes truncated…"),
        }
    }
}

/// What happens to the images of a message whose text is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Images {
    /// Kept, and not counted against the budget (tool outputs: only text is limited).
    Keep,
    /// Counted at their estimate: kept when they fit the budget and do not sit inside the cut,
    /// dropped otherwise (local compaction's rebuild).
    WithinBudget,
}

/// `text` cut to `budget` bytes: half of it from the head, the rest from the tail, the marker in
/// between. Text within the budget comes back as it is.
pub(crate) fn cut_middle(text: &str, budget: u64, unit: Unit) -> String {
    if text.len() as u64 <= budget {
        return text.to_owned();
    }
    let head_end = text.floor_char_boundary(usize::try_from(budget / 2).unwrap_or(usize::MAX));
    let tail_len = usize::try_from(budget - budget / 2).unwrap_or(usize::MAX);
    let tail_start = text.ceil_char_boundary(text.len().saturating_sub(tail_len));
    let marker = unit.marker((tail_start - head_end) as u64);
    let mut out = String::with_capacity(head_end + marker.len() + (text.len() - tail_start));
    out.push_str(&text[..head_end]);
    out.push_str(&marker);
    out.push_str(&text[tail_start..]);
    out
}

/// The bytes of the text parts of `content`.
pub(crate) fn text_bytes(content: &[ContentItem]) -> u64 {
    content
        .iter()
        .map(|part| match part {
            ContentItem::InputText { text } | ContentItem::OutputText { text } => text.len() as u64,
            ContentItem::InputImage { .. } | ContentItem::Unknown(_) => 0,
        })
        .sum()
}

/// The image estimate bytes of `content`.
pub(crate) fn image_bytes(content: &[ContentItem]) -> u64 {
    content
        .iter()
        .map(|part| match part {
            ContentItem::InputImage { image_url, detail } => {
                image_estimate_bytes(image_url, detail.as_deref())
            }
            ContentItem::InputText { .. }
            | ContentItem::OutputText { .. }
            | ContentItem::Unknown(_) => 0,
        })
        .sum()
}

/// Cuts the middle out of a message's or an output's parts so that `budget` bytes remain.
///
/// The text parts are treated as one text: its head and tail are kept, the middle is replaced by
/// the marker (in the part where the cut starts), and text parts wholly inside the cut are
/// dropped. Images follow `images`; parts of unknown types stay unless they sit inside the cut.
pub(crate) fn truncate_parts(
    content: &[ContentItem],
    budget: u64,
    unit: Unit,
    images: Images,
) -> Vec<ContentItem> {
    let text_total = text_bytes(content);
    let (keep_images, text_budget) = match images {
        Images::Keep => (true, budget),
        Images::WithinBudget => {
            let image_total = image_bytes(content);
            if image_total <= budget { (true, budget - image_total) } else { (false, budget) }
        }
    };
    let text_budget = text_budget.min(text_total);
    let head_end = text_budget / 2;
    let tail_start = text_total - (text_budget - head_end);
    let removed = tail_start - head_end;
    let marker = unit.marker(removed);

    let mut out = Vec::with_capacity(content.len());
    let mut offset = 0u64;
    let mut marker_placed = removed == 0;
    for part in content {
        let (text, is_output) = match part {
            ContentItem::InputText { text } => (text, false),
            ContentItem::OutputText { text } => (text, true),
            ContentItem::InputImage { .. } | ContentItem::Unknown(_) => {
                let is_image = matches!(part, ContentItem::InputImage { .. });
                let inside_cut = head_end < offset && offset < tail_start;
                let keep = match (is_image, images) {
                    (true, Images::Keep) => true,
                    (true, Images::WithinBudget) => keep_images && !inside_cut,
                    (false, _) => !inside_cut,
                };
                if keep {
                    out.push(part.clone());
                }
                continue;
            }
        };
        let start = offset;
        let end = offset + text.len() as u64;
        offset = end;
        if end <= head_end || start >= tail_start {
            // Wholly in the head or in the tail.
            out.push(part.clone());
            continue;
        }
        if marker_placed && start >= head_end && end <= tail_start {
            // Wholly inside the cut, after the part that carries the marker.
            continue;
        }
        let mut piece = String::new();
        if start < head_end {
            let keep = usize::try_from(head_end - start).unwrap_or(usize::MAX);
            piece.push_str(&text[..text.floor_char_boundary(keep)]);
        }
        if !marker_placed {
            piece.push_str(&marker);
            marker_placed = true;
        }
        if end > tail_start {
            let from = usize::try_from(tail_start.saturating_sub(start)).unwrap_or(usize::MAX);
            piece.push_str(&text[text.ceil_char_boundary(from)..]);
        }
        out.push(if is_output {
            ContentItem::OutputText { text: piece }
        } else {
            ContentItem::InputText { text: piece }
        });
    }
    out
}

#[cfg(test)]
mod tests;
