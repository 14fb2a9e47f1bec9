//! Which rollout items are written to a rollout file (D25).

use compactor_protocol::{EventMsg, ResponseItem, RolloutItem};

/// Whether `item` belongs in a rollout.
///
/// - `session_meta`, `compacted`, `turn_context`, `pins` and `open_items` lines are always written.
/// - Every response item is written, `compaction` and `context_compaction` outputs included, and
///   items of unknown type too (they stay in history and rollout, D34). The transient
///   compaction triggers (`{"type":"context_compaction"}` without content, and
///   `{"type":"compaction_trigger"}`) are never written: they exist only inside one request.
/// - Events: `user_message`, `agent_message`, `token_count`, `context_compacted`, `turn_started`,
///   `turn_complete`, `turn_aborted`, `thread_rolled_back`, `error`, `warning` and
///   `tool_output_truncated` (a reader sees which recorded outputs were cut). Item lifecycle
///   events, `stream_error`, hook events, raw response items and events of unknown type are not:
///   they carry nothing a resume needs.
/// - Lines of an unknown type are written as they are, so that copying a newer writer's rollout
///   loses nothing.
pub fn is_persisted(item: &RolloutItem) -> bool {
    match item {
        RolloutItem::SessionMeta(_)
        | RolloutItem::Compacted(_)
        | RolloutItem::TurnContext(_)
        | RolloutItem::OpenItems(_)
        | RolloutItem::Pins(_) => true,
        RolloutItem::ResponseItem(item) => is_persisted_response_item(item),
        RolloutItem::EventMsg(event) => is_persisted_event(event),
        RolloutItem::Unknown { .. } => true,
    }
}

fn is_persisted_response_item(item: &ResponseItem) -> bool {
    match item {
        ResponseItem::ContextCompaction { encrypted_content, .. } => encrypted_content.is_some(),
        ResponseItem::CompactionTrigger => false,
        ResponseItem::Message { .. }
        | ResponseItem::Reasoning { .. }
        | ResponseItem::LocalShellCall { .. }
        | ResponseItem::FunctionCall { .. }
        | ResponseItem::ToolSearchCall { .. }
        | ResponseItem::FunctionCallOutput { .. }
        | ResponseItem::CustomToolCall { .. }
        | ResponseItem::CustomToolCallOutput { .. }
        | ResponseItem::ToolSearchOutput { .. }
        | ResponseItem::WebSearchCall { .. }
        | ResponseItem::ImageGenerationCall { .. }
        | ResponseItem::Compaction { .. }
        | ResponseItem::Unknown(_) => true,
    }
}

/// Whether the event line of `event` belongs in a rollout, as [`is_persisted`] decides it: a
/// caller that only has the event can skip making the line.
pub fn is_persisted_event(event: &EventMsg) -> bool {
    match event {
        EventMsg::UserMessage { .. }
        | EventMsg::AgentMessage { .. }
        | EventMsg::TokenCount { .. }
        | EventMsg::ContextCompacted {}
        | EventMsg::TurnStarted { .. }
        | EventMsg::TurnComplete { .. }
        | EventMsg::TurnAborted { .. }
        | EventMsg::ThreadRolledBack { .. }
        | EventMsg::Error(_)
        | EventMsg::Warning { .. }
        | EventMsg::ToolOutputTruncated { .. } => true,
        EventMsg::ItemStarted { .. }
        | EventMsg::ItemCompleted { .. }
        | EventMsg::StreamError { .. }
        | EventMsg::HookStarted { .. }
        | EventMsg::HookCompleted { .. }
        | EventMsg::RawResponseItem { .. }
        | EventMsg::CompactionReceipt { .. }
        | EventMsg::Unknown(_) => false,
    }
}

#[cfg(test)]
mod tests;
