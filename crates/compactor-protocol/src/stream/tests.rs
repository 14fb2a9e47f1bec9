//! Tests of usage parsing, token accounting and raw event payloads.

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

#[test]
fn usage_from_wire_json() {
    let cases = [
        (
            json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 1},
                   "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 3}, "total_tokens": 15}),
            TokenUsage {
                input_tokens: 10,
                cached_input_tokens: 4,
                output_tokens: 5,
                reasoning_output_tokens: 3,
                total_tokens: 15,
            },
        ),
        (
            json!({"input_tokens": 10, "input_tokens_details": null, "output_tokens": 5,
                   "output_tokens_details": null, "total_tokens": 15}),
            TokenUsage {
                input_tokens: 10,
                output_tokens: 5,
                total_tokens: 15,
                ..TokenUsage::default()
            },
        ),
        (
            // llmock: no cache_write_tokens; LiteLLM and aimock: no details at all.
            json!({"input_tokens": 7, "input_tokens_details": {"cached_tokens": 2}, "output_tokens": 1, "total_tokens": 8}),
            TokenUsage {
                input_tokens: 7,
                cached_input_tokens: 2,
                output_tokens: 1,
                total_tokens: 8,
                ..TokenUsage::default()
            },
        ),
        (json!({}), TokenUsage::default()),
    ];
    for (wire, expected) in cases {
        let usage: ResponseUsage = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(TokenUsage::from(usage), expected, "{wire}");
    }
}

#[test]
fn usage_written_schema_complete() {
    let usage = ResponseUsage::from(TokenUsage::with_total(9));
    insta::assert_snapshot!(serde_json::to_string(&usage).unwrap());
}

#[test]
fn append_last_usage_accumulates() {
    let mut info = TokenUsageInfo::default();
    info.append_last_usage(&TokenUsage {
        input_tokens: 10,
        total_tokens: 12,
        ..TokenUsage::default()
    });
    info.append_last_usage(&TokenUsage {
        input_tokens: 20,
        output_tokens: 3,
        total_tokens: 23,
        ..TokenUsage::default()
    });
    assert_eq!(
        info.total_token_usage,
        TokenUsage {
            input_tokens: 30,
            output_tokens: 3,
            total_tokens: 35,
            ..TokenUsage::default()
        }
    );
    assert_eq!(info.last_token_usage.total_tokens, 23);
}

#[test]
fn fill_to_context_window() {
    let mut info = TokenUsageInfo::default();
    info.append_last_usage(&TokenUsage::with_total(900));
    info.fill_to_context_window(1000);
    assert_eq!(info.total_token_usage, TokenUsage::with_total(1000));
    assert_eq!(info.last_token_usage, TokenUsage::with_total(100));
    assert_eq!(info.model_context_window, Some(1000));
    // Already past the window: the missing part is never negative.
    info.append_last_usage(&TokenUsage::with_total(500));
    info.fill_to_context_window(1000);
    assert_eq!(info.last_token_usage, TokenUsage::with_total(0));
    assert_eq!(
        TokenUsageInfo::full_context_window(50).last_token_usage,
        TokenUsage::with_total(50)
    );
}

#[test]
fn raw_event_payload_tolerates_peers() {
    let payload: StreamEventPayload = serde_json::from_value(json!({
        "type": "response.output_item.done", "output_index": 0, "model": "extra-field",
        "item": {"type": "compaction", "id": "cmp_1", "encrypted_content": "E", "agent_reference": null}
    }))
    .unwrap();
    assert_eq!(payload.kind, "response.output_item.done");
    assert!(payload.item.as_ref().is_some_and(ResponseItem::is_compaction));
    let wrapped: StreamEventPayload = serde_json::from_value(json!({
        "type": "error", "status_code": 400,
        "error": {"type": "invalid_request_error", "code": "websocket_connection_limit_reached", "message": "m"}
    }))
    .unwrap();
    assert_eq!(wrapped.status, Some(400));
}

#[test]
fn response_event_json() {
    let events = vec![
        ResponseEvent::Created { response_id: Some("resp-1".into()) },
        ResponseEvent::OutputItemDone { item: ResponseItem::assistant_text("hi") },
        ResponseEvent::Completed {
            response_id: "resp-1".into(),
            token_usage: Some(TokenUsage::with_total(3)),
            end_turn: Some(true),
        },
    ];
    let wire = serde_json::to_string(&events).unwrap();
    insta::assert_snapshot!(wire);
    assert_eq!(serde_json::from_str::<Vec<ResponseEvent>>(&wire).unwrap(), events);
}

#[test]
fn token_accounting_fields_are_written_only_when_known() {
    let mut info = TokenUsageInfo::default();
    info.append_last_usage(&TokenUsage {
        input_tokens: 1_210,
        total_tokens: 1_250,
        ..TokenUsage::default()
    });
    insta::assert_snapshot!("token_usage_info_bare", serde_json::to_string(&info).unwrap());
    info.model_context_window = Some(95_000);
    info.tokens_until_compaction = Some(84_250);
    info.token_counter = Some(TokenCounter::Bytes4);
    info.accuracy = Some(TokenCountAccuracy::Calibrated);
    info.estimated_input_tokens = Some(1_190);
    info.calibration =
        Some(TokenCalibration { reported_input_tokens: 1_210, estimated_input_tokens: 1_100 });
    let json = serde_json::to_string(&info).unwrap();
    insta::assert_snapshot!("token_usage_info_full", json);
    assert_eq!(serde_json::from_str::<TokenUsageInfo>(&json).unwrap(), info);
    // An older line without the new fields still reads.
    let old = r#"{"total_token_usage":{"total_tokens":5},"last_token_usage":{"total_tokens":5}}"#;
    assert_eq!(serde_json::from_str::<TokenUsageInfo>(old).unwrap().calibration, None);
}
