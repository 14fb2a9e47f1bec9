//! Contextual user messages, user-turn boundaries, and where the initial context goes in a
//! compacted history (D16, D15).

use compactor_protocol::{ContentItem, InitialContextInjection, ResponseItem};

use crate::local::is_summary_message;

/// The markers Codex uses for the contextual user messages it injects (D15): a user
/// message with a text part starting with one of these is context, not user intent.
pub const DEFAULT_CONTEXTUAL_MARKERS: &[&str] = &[
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<environment_context>",
    "<skill>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
];

/// The text prefixes that identify contextual user messages: the harness's injected context
/// (environment, instructions files, shell command records, ...) rather than what the user typed.
///
/// The harness supplies them (D15); [`Default`] holds [`DEFAULT_CONTEXTUAL_MARKERS`].
/// A message is contextual when any of its text parts, after leading whitespace, starts with a
/// marker, compared ASCII case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextualMarkers {
    /// The prefixes.
    pub prefixes: Vec<String>,
}

impl Default for ContextualMarkers {
    fn default() -> Self {
        Self::new(DEFAULT_CONTEXTUAL_MARKERS.iter().copied())
    }
}

impl ContextualMarkers {
    /// Markers holding exactly these prefixes.
    pub fn new<I, S>(prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self { prefixes: prefixes.into_iter().map(Into::into).collect() }
    }

    /// Whether `text` starts, after leading whitespace, with one of the markers.
    pub fn is_contextual_text(&self, text: &str) -> bool {
        let text = text.trim_start().as_bytes();
        self.prefixes.iter().any(|prefix| {
            let prefix = prefix.as_bytes();
            !prefix.is_empty()
                && text.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
        })
    }

    /// Whether any text part of `content` is contextual.
    pub fn is_contextual(&self, content: &[ContentItem]) -> bool {
        content.iter().any(|part| match part {
            ContentItem::InputText { text } | ContentItem::OutputText { text } => {
                self.is_contextual_text(text)
            }
            ContentItem::InputImage { .. } | ContentItem::Unknown(_) => false,
        })
    }
}

/// Whether `item` starts a user turn: a user message that is not contextual. Compaction
/// summaries count, since they stand for the user turns they replaced.
pub fn is_user_turn_boundary(item: &ResponseItem, markers: &ContextualMarkers) -> bool {
    match item {
        ResponseItem::Message { role, content, .. } => {
            role == "user" && !markers.is_contextual(content)
        }
        _ => false,
    }
}

/// Whether `item` is something the user actually said: a user message that is neither contextual
/// nor a compaction summary.
pub fn is_real_user_message(item: &ResponseItem, markers: &ContextualMarkers) -> bool {
    is_user_turn_boundary(item, markers) && !is_summary_message(item)
}

/// Splices `initial_context` into a compacted history for a mid-turn compaction (D16), so
/// that the summary or compaction item stays last.
///
/// It goes just before the last real user message; without one, before the last summary
/// message; without one, before the last compaction item; otherwise at the end.
pub fn insert_initial_context(
    history: &mut Vec<ResponseItem>,
    initial_context: &[ResponseItem],
    markers: &ContextualMarkers,
) {
    if initial_context.is_empty() {
        return;
    }
    let at = history
        .iter()
        .rposition(|item| is_real_user_message(item, markers))
        .or_else(|| history.iter().rposition(is_summary_message))
        .or_else(|| history.iter().rposition(ResponseItem::is_compaction))
        .unwrap_or(history.len());
    history.splice(at..at, initial_context.iter().cloned());
}

/// Cleans a compacted history before it is installed, and places the initial context (D16).
///
/// Kept: user messages that are not contextual (real messages and summaries), assistant
/// messages, and compaction items with content. Dropped: developer and system messages (remote
/// output may carry stale instructions), contextual user messages, every call, output, reasoning,
/// hosted-tool item, trigger and unknown item. Then, for
/// [`InitialContextInjection::BeforeLastUserMessage`], `initial_context` is spliced in by
/// [`insert_initial_context`]; [`InitialContextInjection::DoNotInject`] leaves it out, for the
/// next turn to inject in full.
pub fn process_compacted_history(
    mut items: Vec<ResponseItem>,
    injection: InitialContextInjection,
    initial_context: &[ResponseItem],
    markers: &ContextualMarkers,
) -> Vec<ResponseItem> {
    items.retain(|item| match item {
        ResponseItem::Message { role, content, .. } => match role.as_str() {
            "user" => !markers.is_contextual(content),
            "assistant" => true,
            _ => false,
        },
        ResponseItem::Compaction { .. } | ResponseItem::ContextCompaction { .. } => {
            item.is_compaction()
        }
        ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => false,
    });
    match injection {
        InitialContextInjection::BeforeLastUserMessage => {
            insert_initial_context(&mut items, initial_context, markers);
        }
        InitialContextInjection::DoNotInject => {}
    }
    items
}

#[cfg(test)]
mod tests;
