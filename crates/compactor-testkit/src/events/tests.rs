//! Tests of the event builders, the stamping and the SSE writer.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

/// Sets every `created_at` to 0, so snapshots do not depend on the clock.
fn fixed_time(mut value: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    if key == "created_at" {
                        *child = Value::from(0);
                    } else {
                        walk(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    walk(&mut value);
    value
}

/// Renders one line per event: the compact JSON.
fn lines(events: &[Value]) -> String {
    events.iter().map(|event| format!("{}\n", fixed_time(event.clone()))).collect()
}

#[test]
fn builders_are_schema_complete() {
    let events = vec![
        ev_response_created("resp_1"),
        ev_response_in_progress("resp_1"),
        ev_message_item_added("msg_1"),
        ev_content_part_added("msg_1"),
        ev_output_text_delta("msg_1", "Hel"),
        ev_output_text_done("msg_1", "Hello"),
        ev_content_part_done("msg_1", "Hello"),
        ev_assistant_message("msg_1", "Hello"),
        ev_reasoning_item_added("rs_1", &["thinking"]),
        ev_reasoning_summary_text_delta("rs_1", "think", 0),
        ev_reasoning_text_delta("rs_1", "raw", 0),
        ev_reasoning_item("rs_1", &["thinking"], &["raw"]),
        ev_function_call("call_1", "shell", r#"{"cmd":"ls"}"#),
        ev_custom_tool_call("call_2", "apply_patch", "*** Begin Patch"),
        ev_custom_tool_call_input_delta("ctc_call_2", "call_2", "*** Begin"),
        ev_compacting("cc_1"),
        ev_context_compaction("cc_1", "ENC"),
        ev_compaction("cmp_1", "ENC"),
        ev_completed_with_tokens("resp_1", 42),
        ev_failed("resp_2", "context_length_exceeded", "too long"),
        ev_incomplete("resp_3", "max_output_tokens"),
        ev_error_frame(400, "previous_response_not_found", "not found"),
    ];
    insta::assert_snapshot!(lines(&events));
}

#[test]
fn stamping_numbers_events_and_fills_completed_output() {
    let events = stamp_events(vec![
        ev_response_created("resp_1"),
        ev_message_item_added("msg_1"),
        ev_output_text_delta("msg_1", "Hi"),
        ev_assistant_message("msg_1", "Hi"),
        ev_function_call("call_1", "shell", "{}"),
        ev_completed("resp_1"),
    ]);
    insta::assert_snapshot!(lines(&events));
    let sequence: Vec<u64> =
        events.iter().map(|event| event["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(sequence, [0, 1, 2, 3, 4, 5]);
    let indices: Vec<Value> = events.iter().map(|event| event["output_index"].clone()).collect();
    assert_eq!(indices, [Value::Null, json!(0), json!(0), json!(0), json!(1), Value::Null]);
    assert_eq!(
        events[5]["response"]["output"],
        json!([events[3]["item"].clone(), events[4]["item"].clone()])
    );
}

#[test]
fn stamping_keeps_given_numbers_and_outputs() {
    let mut completed = ev_completed("resp_1");
    completed["response"]["output"] =
        json!([{"type": "message", "role": "assistant", "content": []}]);
    let mut first = ev_response_created("resp_1");
    first["sequence_number"] = json!(7);
    let events = stamp_events(vec![first, ev_assistant_message("msg_1", "x"), completed.clone()]);
    assert_eq!(events[0]["sequence_number"], json!(7));
    assert_eq!(events[1]["sequence_number"], json!(8));
    assert_eq!(events[2]["response"]["output"], completed["response"]["output"]);
}

#[test]
fn sse_framing() {
    #[track_caller]
    fn check(event: &Value, expected: &str) {
        assert_eq!(sse_event(event), expected);
    }
    check(
        &json!({"type": "response.created", "response": {"id": "r"}}),
        "event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\"}}\n\n",
    );
    check(&json!({"type": "response.in_progress"}), "event: response.in_progress\n\n");
    check(&json!({"delta": "x"}), "data: {\"delta\":\"x\"}\n\n");
    assert_eq!(
        sse(&[json!({"type": "a"}), json!({"type": "b", "x": 1})]),
        "event: a\n\nevent: b\ndata: {\"type\":\"b\",\"x\":1}\n\n"
    );
}

#[test]
fn usage_json_always_has_details() {
    let bare =
        ResponseUsage { input_tokens: 3, output_tokens: 2, total_tokens: 5, ..Default::default() };
    assert_eq!(
        usage_json(&bare),
        json!({
            "input_tokens": 3,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 2,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 5,
        })
    );
    assert_eq!(
        usage(3, 2),
        ResponseUsage {
            input_tokens_details: Some(Default::default()),
            output_tokens_details: Some(Default::default()),
            ..bare
        }
    );
}

#[test]
fn protocol_reads_every_builder_event() {
    use compactor_protocol::StreamEventPayload;
    let events = stamp_events(vec![
        ev_response_created("resp_1"),
        ev_output_text_delta("msg_1", "Hi"),
        ev_assistant_message("msg_1", "Hi"),
        ev_reasoning_item("rs_1", &["s"], &[]),
        ev_function_call("call_1", "shell", "{}"),
        ev_custom_tool_call("call_2", "patch", "x"),
        ev_context_compaction("cc_1", "ENC"),
        ev_compaction("cmp_1", "ENC"),
        ev_completed("resp_1"),
    ]);
    for event in events {
        let payload: StreamEventPayload = serde_json::from_value(event.clone()).unwrap();
        assert_eq!(Some(payload.kind.as_str()), event["type"].as_str());
        assert!(payload.sequence_number.is_some());
        if let Some(item) = payload.item {
            assert!(!matches!(item, compactor_protocol::ResponseItem::Unknown(_)), "{event}");
        }
    }
}
