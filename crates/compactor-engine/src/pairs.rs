//! Which tool output answers which call: the pairing every history transformation respects.

use std::borrow::Borrow;

use compactor_protocol::ResponseItem;
use foldhash::{HashMap, HashMapExt as _};

/// The family of a call/output pair; an output only answers a call of its own family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PairKind {
    /// `function_call` or `local_shell_call`, answered by `function_call_output`.
    Function,
    /// `custom_tool_call`, answered by `custom_tool_call_output`.
    Custom,
    /// A client-executed `tool_search_call`, answered by `tool_search_output`.
    ToolSearch,
}

/// The pairing key of a call that expects an output from the harness.
///
/// Calls without an id and server-executed tool searches are answered by the server, if at all,
/// and are not paired.
pub(crate) fn call_key(item: &ResponseItem) -> Option<(PairKind, &str)> {
    match item {
        ResponseItem::FunctionCall { call_id, .. } => Some((PairKind::Function, call_id)),
        ResponseItem::LocalShellCall { call_id: Some(call_id), .. } => {
            Some((PairKind::Function, call_id))
        }
        ResponseItem::CustomToolCall { call_id, .. } => Some((PairKind::Custom, call_id)),
        ResponseItem::ToolSearchCall { call_id: Some(call_id), execution, .. }
            if execution != "server" =>
        {
            Some((PairKind::ToolSearch, call_id))
        }
        ResponseItem::LocalShellCall { call_id: None, .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::Message { .. }
        | ResponseItem::Reasoning { .. }
        | ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::Compaction { .. }
        | ResponseItem::ContextCompaction { .. }
        | ResponseItem::CompactionTrigger
        | ResponseItem::Unknown(_) => None,
    }
}

/// The pairing key of a tool output the harness produced.
pub(crate) fn output_key(item: &ResponseItem) -> Option<(PairKind, &str)> {
    match item {
        ResponseItem::FunctionCallOutput { call_id, .. } => Some((PairKind::Function, call_id)),
        ResponseItem::CustomToolCallOutput { call_id, .. } => Some((PairKind::Custom, call_id)),
        ResponseItem::ToolSearchOutput { call_id: Some(call_id), execution, .. }
            if execution != "server" =>
        {
            Some((PairKind::ToolSearch, call_id))
        }
        ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::Message { .. }
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

/// For each item, the index of its partner: a call's output or an output's call.
///
/// The walk goes forward: an output answers the most recent unanswered call of its family with
/// the same id, so an output never answers a later call, each call gets at most one output and
/// each output at most one call. A call whose id is reused before it is answered stays
/// unanswered. Linear in `items`.
pub(crate) fn match_pairs<T: Borrow<ResponseItem>>(items: &[T]) -> Vec<Option<usize>> {
    let mut partner = vec![None; items.len()];
    let mut open: HashMap<(PairKind, &str), usize> = HashMap::new();
    for (index, item) in items.iter().map(Borrow::borrow).enumerate() {
        if let Some(key) = call_key(item) {
            open.insert(key, index);
        } else if let Some(key) = output_key(item)
            && let Some(call) = open.remove(&key)
        {
            partner[call] = Some(index);
            partner[index] = Some(call);
        }
    }
    partner
}
