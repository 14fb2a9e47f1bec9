//! Tests of the persistence policy: one case per item kind.

use compactor_protocol::{
    CompactedItem, CompactionTrigger, CompactorError, ContextCompactionItem, EventMsg,
    HookEventName, ResponseItem, RolloutItem, SessionMeta, TurnContextItem, TurnItem,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::is_persisted;

fn item(json: serde_json::Value) -> RolloutItem {
    RolloutItem::ResponseItem(serde_json::from_value(json).unwrap())
}

fn event(event: EventMsg) -> RolloutItem {
    RolloutItem::EventMsg(event)
}

#[test]
fn policy_per_kind() {
    let compaction_item = TurnItem::ContextCompaction(ContextCompactionItem::new("cmp"));
    let cases: Vec<(&str, RolloutItem, bool)> = vec![
        ("session_meta", RolloutItem::SessionMeta(SessionMeta::default()), true),
        ("compacted", RolloutItem::Compacted(CompactedItem::new("", vec![])), true),
        ("turn_context", RolloutItem::TurnContext(TurnContextItem::default()), true),
        ("unknown line", RolloutItem::Unknown { kind: "future".into(), payload: None }, true),
        ("user message", RolloutItem::ResponseItem(ResponseItem::user_text("hi")), true),
        ("assistant message", RolloutItem::ResponseItem(ResponseItem::assistant_text("yo")), true),
        ("reasoning", item(json!({"type":"reasoning","summary":[],"encrypted_content":"e"})), true),
        (
            "function_call",
            item(json!({"type":"function_call","name":"f","arguments":"{}","call_id":"c"})),
            true,
        ),
        (
            "function_call_output",
            item(json!({"type":"function_call_output","call_id":"c","output":"ok"})),
            true,
        ),
        ("compaction", item(json!({"type":"compaction","encrypted_content":"E"})), true),
        (
            "context_compaction output",
            item(json!({"type":"context_compaction","encrypted_content":"E"})),
            true,
        ),
        ("context_compaction trigger", item(json!({"type":"context_compaction"})), false),
        ("compaction_trigger", RolloutItem::ResponseItem(ResponseItem::CompactionTrigger), false),
        ("unknown item", item(json!({"type":"configuration_update","x":1})), true),
        ("ghost_snapshot", item(json!({"type":"ghost_snapshot","ghost_commit":{}})), true),
        ("user_message", event(EventMsg::UserMessage { message: "hi".into() }), true),
        ("agent_message", event(EventMsg::AgentMessage { message: "yo".into() }), true),
        (
            "tool_output_truncated",
            event(EventMsg::ToolOutputTruncated {
                call_id: "c".into(),
                original_tokens: 20_000,
                kept_tokens: 12_008,
            }),
            true,
        ),
        ("token_count", event(EventMsg::TokenCount { info: None, rate_limits: None }), true),
        ("context_compacted", event(EventMsg::ContextCompacted {}), true),
        (
            "turn_started",
            event(EventMsg::TurnStarted {
                turn_id: "t".into(),
                started_at: None,
                model_context_window: None,
            }),
            true,
        ),
        (
            "turn_complete",
            event(EventMsg::TurnComplete { turn_id: "t".into(), last_agent_message: None }),
            true,
        ),
        (
            "turn_aborted",
            event(EventMsg::TurnAborted { turn_id: None, reason: "interrupted".into() }),
            true,
        ),
        ("thread_rolled_back", event(EventMsg::ThreadRolledBack { num_turns: 1 }), true),
        (
            "error",
            event(EventMsg::Error(CompactorError::InternalServerError.to_unprefixed_error_event())),
            true,
        ),
        ("warning", event(EventMsg::Warning { message: "w".into() }), true),
        (
            "item_started",
            event(EventMsg::ItemStarted {
                thread_id: "th".into(),
                turn_id: "t".into(),
                item: compaction_item.clone(),
                started_at_ms: 1,
            }),
            false,
        ),
        (
            "item_completed",
            event(EventMsg::ItemCompleted {
                thread_id: "th".into(),
                turn_id: "t".into(),
                item: compaction_item,
                completed_at_ms: 2,
            }),
            false,
        ),
        (
            "stream_error",
            event(EventMsg::StreamError {
                message: "Reconnecting... 1/2".into(),
                compactor_error_info: None,
                additional_details: None,
            }),
            false,
        ),
        (
            "hook_started",
            event(EventMsg::HookStarted {
                turn_id: "t".into(),
                hook_event_name: HookEventName::PreCompact,
                trigger: CompactionTrigger::Manual,
            }),
            false,
        ),
        (
            "hook_completed",
            event(EventMsg::HookCompleted {
                turn_id: "t".into(),
                hook_event_name: HookEventName::PostCompact,
                stopped: false,
                reason: None,
            }),
            false,
        ),
        (
            "raw_response_item",
            event(EventMsg::RawResponseItem { item: ResponseItem::user_text("x") }),
            false,
        ),
        (
            "unknown event",
            event(serde_json::from_value(json!({"type":"future_event"})).unwrap()),
            false,
        ),
    ];
    let actual: Vec<(&str, bool)> =
        cases.iter().map(|(name, item, _)| (*name, is_persisted(item))).collect();
    let expected: Vec<(&str, bool)> =
        cases.iter().map(|(name, _, persisted)| (*name, *persisted)).collect();
    assert_eq!(actual, expected);
}
