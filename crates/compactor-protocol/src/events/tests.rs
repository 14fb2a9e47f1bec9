//! Tests of session events and turn items: the exact JSON of every variant.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::error::CompactorError;
use crate::stream::TokenUsage;

#[test]
fn context_compaction_turn_item_keeps_its_variant_name() {
    let item = TurnItem::ContextCompaction(ContextCompactionItem::new("c0ffee"));
    assert_eq!(
        serde_json::to_value(&item).unwrap(),
        json!({"type": "ContextCompaction", "id": "c0ffee"})
    );
    assert_eq!(
        serde_json::from_value::<TurnItem>(json!({"type": "ContextCompaction", "id": "c0ffee"}))
            .unwrap(),
        item
    );
}

fn every_event() -> Vec<EventMsg> {
    let item = TurnItem::ContextCompaction(ContextCompactionItem::new("cmp-1"));
    let mut info = TokenUsageInfo::default();
    info.append_last_usage(&TokenUsage::with_total(1200));
    info.model_context_window = Some(10_000);
    vec![
        EventMsg::TurnStarted {
            turn_id: "turn-1".into(),
            started_at: Some(1_795_000_000),
            model_context_window: Some(10_000),
        },
        EventMsg::ItemStarted {
            thread_id: "thread-1".into(),
            turn_id: "turn-1".into(),
            item: item.clone(),
            started_at_ms: 1_795_000_000_123,
        },
        EventMsg::ItemCompleted {
            thread_id: "thread-1".into(),
            turn_id: "turn-1".into(),
            item,
            completed_at_ms: 1_795_000_000_456,
        },
        EventMsg::ContextCompacted {},
        EventMsg::TokenCount { info: Some(info), rate_limits: None },
        EventMsg::Error(
            CompactorError::InternalServerError.to_error_event("Error running remote compact task"),
        ),
        EventMsg::Warning { message: "long threads reduce accuracy".into() },
        EventMsg::StreamError {
            message: "Reconnecting... 1/2".into(),
            compactor_error_info: Some(CompactorError::stream("eof").info()),
            additional_details: Some("stream error: eof".into()),
        },
        EventMsg::HookStarted {
            turn_id: "turn-1".into(),
            hook_event_name: HookEventName::PreCompact,
            trigger: CompactionTrigger::Manual,
        },
        EventMsg::HookCompleted {
            turn_id: "turn-1".into(),
            hook_event_name: HookEventName::PostCompact,
            stopped: false,
            reason: None,
        },
        EventMsg::TurnComplete {
            turn_id: "turn-1".into(),
            last_agent_message: Some("done".into()),
        },
        EventMsg::TurnAborted { turn_id: Some("turn-1".into()), reason: "interrupted".into() },
        EventMsg::RawResponseItem { item: ResponseItem::assistant_text("hi") },
        EventMsg::ThreadRolledBack { num_turns: 2 },
        EventMsg::UserMessage { message: "fix the bug".into() },
        EventMsg::AgentMessage { message: "fixed".into() },
        EventMsg::ToolOutputTruncated {
            call_id: "call_7".into(),
            original_tokens: 500_009,
            kept_tokens: 12_008,
        },
    ]
}

#[test]
fn every_event_variant_json() {
    let events = every_event();
    let lines: Vec<String> =
        events.iter().map(|event| serde_json::to_string(event).unwrap()).collect();
    insta::assert_snapshot!(lines.join("\n"));
    for (event, line) in events.iter().zip(&lines) {
        assert_eq!(&serde_json::from_str::<EventMsg>(line).unwrap(), event, "{line}");
    }
    let types: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["type"].clone()).collect();
    assert_eq!(
        types,
        [
            "turn_started",
            "item_started",
            "item_completed",
            "context_compacted",
            "token_count",
            "error",
            "warning",
            "stream_error",
            "hook_started",
            "hook_completed",
            "turn_complete",
            "turn_aborted",
            "raw_response_item",
            "thread_rolled_back",
            "user_message",
            "agent_message",
            "tool_output_truncated",
        ]
        .map(Value::from)
    );
}

#[test]
fn unknown_event_round_trips() {
    let raw = json!({"type": "plan_update", "steps": [{"step": "a", "status": "done"}]});
    let event: EventMsg = serde_json::from_value(raw.clone()).unwrap();
    assert!(matches!(event, EventMsg::Unknown(_)));
    assert_eq!(serde_json::to_value(&event).unwrap(), raw);
}

#[test]
fn compaction_receipt_event_round_trips() {
    use crate::compaction::{
        CompactionImplementation, CompactionPhase, CompactionReason, CompactionTrigger,
    };
    use crate::receipt::{CompactionReceipt, ReceiptStatus, ReceiptTotals};
    let receipt = CompactionReceipt {
        compaction_id: "cmp-1".into(),
        implementation: CompactionImplementation::Prune,
        chain_position: 1,
        chain_length: 1,
        trigger: CompactionTrigger::Auto,
        reason: CompactionReason::ContextLimit,
        phase: CompactionPhase::MidTurn,
        status: ReceiptStatus::Failed,
        error: Some("prune found nothing to remove".into()),
        request_id: None,
        response_id: None,
        tokens_before: 0,
        tokens_after: None,
        items: Vec::new(),
        totals: ReceiptTotals::default(),
        pins: Vec::new(),
    };
    let event = EventMsg::CompactionReceipt { receipt: Box::new(receipt) };
    let value = serde_json::to_value(&event).unwrap();
    assert_eq!(value["type"], "compaction_receipt");
    assert_eq!(value["receipt"]["status"], "failed");
    assert_eq!(serde_json::from_value::<EventMsg>(value).unwrap(), event);
}
