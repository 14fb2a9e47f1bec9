//! Server-managed compaction: a normal response whose output holds a `compaction` item the server
//! made by itself (`context_management`), and the history that replaces the session's.

use compactor_protocol::ResponseItem;

/// The output of a normal response, sorted by whether the server compacted inside it.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseOutput {
    /// No `compaction` item: the items join the history as they are.
    Plain(Vec<ResponseItem>),
    /// The server compacted: install [`ServerCompaction::new_history`] as a compaction.
    Compacted(ServerCompaction),
}

/// A compaction the server made inside a normal response.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerCompaction {
    /// What the server compacted: the session's history, then the output items before the
    /// compaction item.
    pub input_history: Vec<ResponseItem>,
    /// What replaces it: the newest `compaction` item and the output items after it.
    pub new_history: Vec<ResponseItem>,
}

/// Sorts the `output` of a normal response sent with `history`.
///
/// When the output holds a `compaction` item, the newest one carries the whole context: it and
/// the items after it become the history, and the items before it (with `history`) are what was
/// compacted. Otherwise the output is returned untouched. `history` is copied only when the
/// server compacted.
///
/// # Examples
///
/// ```
/// use compactor_engine::{ResponseOutput, ServerCompaction, split_server_compaction};
/// use compactor_protocol::ResponseItem;
///
/// let history = [ResponseItem::user_text("fix it")];
/// let compaction = ResponseItem::Compaction {
///     id: None,
///     encrypted_content: "ENC".into(),
///     created_by: None,
/// };
/// let output = vec![
///     ResponseItem::assistant_text("working"),
///     compaction.clone(),
///     ResponseItem::assistant_text("done"),
/// ];
/// assert_eq!(
///     split_server_compaction(&history, output),
///     ResponseOutput::Compacted(ServerCompaction {
///         input_history: vec![
///             ResponseItem::user_text("fix it"),
///             ResponseItem::assistant_text("working"),
///         ],
///         new_history: vec![compaction, ResponseItem::assistant_text("done")],
///     })
/// );
/// let plain = vec![ResponseItem::assistant_text("done")];
/// assert_eq!(split_server_compaction(&history, plain.clone()), ResponseOutput::Plain(plain));
/// ```
pub fn split_server_compaction(
    history: &[ResponseItem],
    mut output: Vec<ResponseItem>,
) -> ResponseOutput {
    let Some(at) = output.iter().rposition(|item| matches!(item, ResponseItem::Compaction { .. }))
    else {
        return ResponseOutput::Plain(output);
    };
    let new_history = output.split_off(at);
    let mut input_history = Vec::with_capacity(history.len() + output.len());
    input_history.extend_from_slice(history);
    input_history.extend(output);
    ResponseOutput::Compacted(ServerCompaction { input_history, new_history })
}

#[cfg(test)]
mod tests;
