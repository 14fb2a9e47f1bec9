//! Request invariants checked on every request's (resolved) input, as Codex's mock server
//! does: tool calls and their outputs come in pairs, and a compaction trigger is last.

use compactor_protocol::ResponseItem;
use foldhash::HashMap;

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
    // One hash per call or output: each call id gets a slot, found once by its id; the second
    // pass reads the slots of the calls it checks by position. foldhash, not SipHash: hashing
    // the ids was most of the check's time on a large history.
    let mut slots: HashMap<&str, usize> = HashMap::default();
    let mut ids: Vec<CallId> = Vec::new();
    // The calls that need an output after them: their position, and their id's slot.
    let mut awaiting: Vec<(usize, usize)> = Vec::new();
    for (index, item) in input.iter().enumerate() {
        if let Some(call_id) = item.output_call_id() {
            let slot = slot(&mut slots, &mut ids, call_id);
            if call_id.is_empty() {
                problems.push(format!("input[{index}] {} has an empty call_id", item.item_type()));
            } else if !ids[slot].called {
                problems.push(format!(
                    "input[{index}] {} for call_id {call_id:?} has no matching call before it",
                    item.item_type()
                ));
            }
            ids[slot].last_output = Some(index);
        }
        if let Some(call_id) = item.call_id() {
            let slot = slot(&mut slots, &mut ids, call_id);
            if call_id.is_empty() {
                problems.push(format!("input[{index}] {} has an empty call_id", item.item_type()));
            } else if needs_client_output(item) {
                awaiting.push((index, slot));
            }
            ids[slot].called = true;
        }
        if item.is_compaction_trigger() && index + 1 != input.len() {
            problems.push(format!(
                "input[{index}] {} trigger is not the last input item ({} items follow it)",
                item.item_type(),
                input.len() - index - 1
            ));
        }
    }
    for (index, slot) in awaiting {
        if ids[slot].last_output.is_some_and(|at| at > index) {
            continue;
        }
        let item = &input[index];
        let call_id = item.call_id().unwrap_or_default();
        let name = match item {
            ResponseItem::FunctionCall { name, .. } | ResponseItem::CustomToolCall { name, .. } => {
                format!(" {name:?}")
            }
            _ => String::new(),
        };
        problems.push(format!(
            "input[{index}] {}{name} (call_id {call_id:?}) has no output after it",
            item.item_type()
        ));
    }
    problems
}

/// What the input shows of one call id so far.
#[derive(Debug, Clone, Copy, Default)]
struct CallId {
    /// A call with this id came.
    called: bool,
    /// The position of the last output with this id.
    last_output: Option<usize>,
}

/// The slot of `call_id`, made when it is new.
fn slot<'a>(slots: &mut HashMap<&'a str, usize>, ids: &mut Vec<CallId>, call_id: &'a str) -> usize {
    *slots.entry(call_id).or_insert_with(|| {
        ids.push(CallId::default());
        ids.len() - 1
    })
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
