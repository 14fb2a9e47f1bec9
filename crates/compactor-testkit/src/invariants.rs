//! Request invariants checked on every request's (resolved) input, as Codex's mock server
//! does: tool calls and their outputs come in pairs, and a compaction trigger is last.

use std::collections::{HashMap, HashSet};

use compactor_protocol::ResponseItem;

/// The problems of `input`, one message each; empty when the input is sound.
///
/// - Every tool output answers a call with the same `call_id` earlier in the input.
/// - Every call the client must answer (`function_call`, `custom_tool_call`, `local_shell_call`,
///   client-executed `tool_search_call`) has an output later in the input.
/// - Call ids are not empty.
/// - A compaction trigger (`{"type":"context_compaction"}` or `{"type":"compaction_trigger"}`)
///   is the last item.
pub fn check_input(input: &[ResponseItem]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut calls_seen: HashSet<&str> = HashSet::new();
    // The position of the last output of each call id, to check in linear time that every call
    // is answered after it.
    let mut last_output: HashMap<&str, usize> = HashMap::new();
    for (index, item) in input.iter().enumerate() {
        if let Some(call_id) = item.output_call_id() {
            if call_id.is_empty() {
                problems.push(format!("input[{index}] {} has an empty call_id", item.item_type()));
            } else if !calls_seen.contains(call_id) {
                problems.push(format!(
                    "input[{index}] {} for call_id {call_id:?} has no matching call before it",
                    item.item_type()
                ));
            }
            last_output.insert(call_id, index);
        }
        if let Some(call_id) = item.call_id() {
            if call_id.is_empty() {
                problems.push(format!("input[{index}] {} has an empty call_id", item.item_type()));
            }
            calls_seen.insert(call_id);
        }
        if item.is_compaction_trigger() && index + 1 != input.len() {
            problems.push(format!(
                "input[{index}] {} trigger is not the last input item ({} items follow it)",
                item.item_type(),
                input.len() - index - 1
            ));
        }
    }
    for (index, item) in input.iter().enumerate() {
        if let Some(call_id) = item.call_id()
            && needs_client_output(item)
            && !call_id.is_empty()
            && last_output.get(call_id).is_none_or(|&at| at < index)
        {
            let name = match item {
                ResponseItem::FunctionCall { name, .. }
                | ResponseItem::CustomToolCall { name, .. } => format!(" {name:?}"),
                _ => String::new(),
            };
            problems.push(format!(
                "input[{index}] {}{name} (call_id {call_id:?}) has no output after it",
                item.item_type()
            ));
        }
    }
    problems
}

fn needs_client_output(item: &ResponseItem) -> bool {
    match item {
        ResponseItem::FunctionCall { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::LocalShellCall { .. } => true,
        ResponseItem::ToolSearchCall { execution, .. } => execution == "client",
        _ => false,
    }
}

#[cfg(test)]
mod tests;
