//! Which `user` messages are the user speaking: the contextual markers, and the user-turn
//! boundary every crate counts turns by (see D70 and D71 in docs/decisions.md).
//!
//! A harness injects context as `user` messages too (environment, instruction files, shell
//! command records, ...). Those start with a marker and are not user turns. Estimation, pruning,
//! compaction, resume, rollback and fork all decide what a user turn is with
//! [`is_user_turn_boundary`], so a live session and its rollout always count the same turns.

use crate::items::{ContentItem, ResponseItem};

/// The markers of the contextual messages Codex injects, the defaults of [`ContextualMarkers`].
const DEFAULT_MARKERS: &[&str] = &[
    "<user_instructions>",
    "# AGENTS.md instructions",
    "<environment_context>",
    "<skill>",
    "<user_shell_command>",
    "<turn_aborted>",
    "<subagent_notification>",
];

/// The text prefixes that identify contextual user messages: the harness's injected context
/// rather than what the user typed.
///
/// The harness supplies them; [`Default`] holds the markers of the contextual messages Codex
/// injects: `<user_instructions>`, `# AGENTS.md instructions`, `<environment_context>`,
/// `<skill>`, `<user_shell_command>`, `<turn_aborted>` and `<subagent_notification>`.
///
/// A message is contextual when **any** of its text parts, after leading whitespace, starts with
/// a marker, compared ASCII case-insensitively. Empty markers match nothing.
///
/// # Examples
///
/// ```
/// use compactor_protocol::{ContentItem, ContextualMarkers};
///
/// let markers = ContextualMarkers::default();
/// assert!(markers.is_contextual_text("  <ENVIRONMENT_CONTEXT>cwd=/w</ENVIRONMENT_CONTEXT>"));
/// assert!(!markers.is_contextual_text("look at <environment_context>"));
///
/// let content = [
///     ContentItem::InputText { text: "fix the bug".into() },
///     ContentItem::InputText { text: "<environment_context>cwd=/w</environment_context>".into() },
/// ];
/// assert!(markers.is_contextual(&content));
/// assert!(!ContextualMarkers::new(["<repo_map>"]).is_contextual(&content));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextualMarkers {
    /// The prefixes.
    pub prefixes: Vec<String>,
}

impl Default for ContextualMarkers {
    fn default() -> Self {
        Self::new(DEFAULT_MARKERS.iter().copied())
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

    /// Whether `text` starts, after leading whitespace, with one of the markers, compared ASCII
    /// case-insensitively.
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

/// Whether `item` starts a user turn: a `user` message that is not contextual.
///
/// A message of images only is the user speaking. A compaction summary (a `user` message with no
/// marker) counts too, since it stands for the user turns it replaced. Nothing but items decides:
/// a `user_message` event alone does not make a user turn (D71).
///
/// # Examples
///
/// ```
/// use compactor_protocol::{ContextualMarkers, ResponseItem, is_user_turn_boundary};
///
/// let markers = ContextualMarkers::default();
/// assert!(is_user_turn_boundary(&ResponseItem::user_text("fix the bug"), &markers));
/// let context = ResponseItem::user_text("<Environment_Context>cwd=/w</Environment_Context>");
/// assert!(!is_user_turn_boundary(&context, &markers));
/// assert!(!is_user_turn_boundary(&ResponseItem::assistant_text("done"), &markers));
/// ```
pub fn is_user_turn_boundary(item: &ResponseItem, markers: &ContextualMarkers) -> bool {
    let ResponseItem::Message { role, content, .. } = item else { return false };
    role == "user" && !markers.is_contextual(content)
}

#[cfg(test)]
mod tests;
