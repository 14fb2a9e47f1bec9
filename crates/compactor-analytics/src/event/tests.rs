//! Tests of the event's JSON: shape, snake_case values, round trip.

use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
    CompactionTrigger,
};
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::sample_event;

fn failed_local_attempt() -> CompactionEvent {
    CompactionEvent {
        trigger: CompactionTrigger::Manual,
        reason: CompactionReason::UserRequested,
        implementation: CompactionImplementation::Responses,
        phase: CompactionPhase::StandaloneTurn,
        status: CompactionStatus::Failed,
        error: Some("stream error: connection reset".to_owned()),
        active_context_tokens_after: 250_000,
        bytes_sent: 0,
        retries: 0,
        completed_usage: None,
        receipt: None,
        ..sample_event(2)
    }
}

#[test]
fn completed_event_json() {
    insta::assert_json_snapshot!(AnalyticsEvent::from(sample_event(1)));
}

#[test]
fn failed_event_json() {
    insta::assert_json_snapshot!(AnalyticsEvent::from(failed_local_attempt()));
}

#[test]
fn event_params_hold_every_reference_field_and_the_extras() {
    let json = serde_json::to_value(AnalyticsEvent::from(sample_event(1))).unwrap();
    let top: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, ["event_type", "event_params"]);
    assert_eq!(json["event_type"], COMPACTION_EVENT_TYPE);
    let params: Vec<&str> =
        json["event_params"].as_object().unwrap().keys().map(String::as_str).collect();
    // The reference's fields in their order, then the chain and cost fields (D41).
    let expected = [
        "thread_id",
        "turn_id",
        "runtime",
        "trigger",
        "reason",
        "implementation",
        "phase",
        "strategy",
        "status",
        "error",
        "active_context_tokens_before",
        "active_context_tokens_after",
        "started_at",
        "completed_at",
        "duration_ms",
        "compaction_id",
        "attempt_number",
        "chain_position",
        "chain_length",
        "bytes_sent",
        "retries",
        "completed_usage",
        "model",
        "provider",
        "started_at_ms",
    ];
    assert_eq!(params, expected);
    let runtime: Vec<&str> =
        json["event_params"]["runtime"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(runtime, ["compactor_version", "runtime_os", "runtime_arch"]);
}

#[test]
fn vocabulary_values_are_snake_case() {
    fn check(event: CompactionEvent, expected: [&str; 6]) {
        let json = serde_json::to_value(AnalyticsEvent::from(event)).unwrap();
        let params = &json["event_params"];
        let actual = ["trigger", "reason", "implementation", "phase", "strategy", "status"]
            .map(|key| params[key].as_str().unwrap().to_owned());
        assert_eq!(actual, expected.map(str::to_owned));
    }
    check(
        sample_event(1),
        ["auto", "context_limit", "responses_compaction_v2", "mid_turn", "memento", "completed"],
    );
    check(
        failed_local_attempt(),
        ["manual", "user_requested", "responses", "standalone_turn", "memento", "failed"],
    );
    check(
        CompactionEvent {
            reason: CompactionReason::ModelDownshift,
            implementation: CompactionImplementation::ResponsesCompact,
            phase: CompactionPhase::PreTurn,
            status: CompactionStatus::Interrupted,
            ..sample_event(1)
        },
        ["auto", "model_downshift", "responses_compact", "pre_turn", "memento", "interrupted"],
    );
    check(
        CompactionEvent {
            implementation: CompactionImplementation::Prune,
            status: CompactionStatus::Skipped,
            ..sample_event(1)
        },
        ["auto", "context_limit", "prune", "mid_turn", "memento", "skipped"],
    );
}

#[test]
fn events_round_trip() {
    for event in [sample_event(1), failed_local_attempt()] {
        let event = AnalyticsEvent::from(event);
        let json = serde_json::to_string(&event).unwrap();
        let back: AnalyticsEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.event_type(), COMPACTION_EVENT_TYPE);
    }
}

#[test]
fn default_runtime_describes_this_build() {
    let runtime = RuntimeInfo::default();
    assert_eq!(runtime.compactor_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(runtime.runtime_os, std::env::consts::OS);
    assert_eq!(runtime.runtime_arch, std::env::consts::ARCH);
}
