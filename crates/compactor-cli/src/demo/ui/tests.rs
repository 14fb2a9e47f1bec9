//! Tests of the compaction line.

use compactor_analytics::RuntimeInfo;
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStrategy,
};
use pretty_assertions::assert_eq;

use super::*;

fn event(status: CompactionStatus, error: Option<&str>) -> CompactionEvent {
    CompactionEvent {
        thread_id: "t".into(),
        turn_id: "u".into(),
        runtime: RuntimeInfo::default(),
        model: "gpt-test".into(),
        provider: "testkit".into(),
        trigger: CompactionTrigger::Auto,
        reason: CompactionReason::ContextLimit,
        implementation: CompactionImplementation::ResponsesCompactionV2,
        phase: CompactionPhase::MidTurn,
        strategy: CompactionStrategy::Memento,
        status,
        error: error.map(str::to_owned),
        active_context_tokens_before: 15_644,
        active_context_tokens_after: 322,
        started_at: 0,
        started_at_ms: 0,
        completed_at: 0,
        duration_ms: 35,
        compaction_id: "c".into(),
        attempt_number: 1,
        chain_position: 1,
        chain_length: 1,
        bytes_sent: 0,
        retries: 0,
        completed_usage: None,
        receipt: None,
    }
}

#[test]
fn lines() {
    let cases = [
        (
            1,
            Moment::InTurn(5),
            event(CompactionStatus::Completed, None),
            "  compaction 1 in turn 5: auto mid_turn, responses_compaction_v2, 15,644 -> 322 tokens, 35 ms",
        ),
        (
            2,
            Moment::AfterTurn(11),
            CompactionEvent {
                trigger: CompactionTrigger::Manual,
                phase: CompactionPhase::StandaloneTurn,
                implementation: CompactionImplementation::Prune,
                duration_ms: 2_500,
                ..event(CompactionStatus::Completed, None)
            },
            "  compaction 2 after turn 11: manual standalone_turn, prune, 15,644 -> 322 tokens, 2.5 s",
        ),
        (
            3,
            Moment::InTurn(7),
            CompactionEvent {
                chain_position: 1,
                chain_length: 3,
                ..event(CompactionStatus::Failed, Some("stream error: closed"))
            },
            "  compaction 3 in turn 7: auto mid_turn, responses_compaction_v2 (attempt 1 of a chain of 3), 15,644 -> 322 tokens, 35 ms  [failed: stream error: closed]",
        ),
    ];
    for (number, moment, event, expected) in cases {
        assert_eq!(compaction_line(number, moment, &event), expected);
    }
}
