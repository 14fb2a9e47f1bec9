//! Tests of the request invariants: one case per rule.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

#[track_caller]
fn check(input: Value, expected: &[&str]) {
    let items: Vec<ResponseItem> = serde_json::from_value(input).unwrap();
    assert_eq!(check_input(&items), expected);
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn call(call_id: &str) -> Value {
    json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": call_id})
}

fn output(call_id: &str) -> Value {
    json!({"type": "function_call_output", "call_id": call_id, "output": "ok"})
}

#[test]
fn sound_inputs_pass() {
    check(json!([]), &[]);
    check(json!([user("hi"), call("c1"), output("c1"), user("more")]), &[]);
    check(json!([user("hi"), call("c1"), call("c2"), output("c2"), output("c1")]), &[]);
    check(
        json!([
            {"type": "custom_tool_call", "call_id": "c3", "name": "patch", "input": "x"},
            {"type": "custom_tool_call_output", "call_id": "c3", "output": "done"},
        ]),
        &[],
    );
    check(
        json!([
            {"type": "local_shell_call", "call_id": "c4", "status": "completed",
             "action": {"type": "exec", "command": ["ls"]}},
            output("c4"),
        ]),
        &[],
    );
    check(
        json!([{"type": "tool_search_call", "call_id": "t1", "execution": "server", "arguments": {}}]),
        &[],
    );
    check(json!([user("hi"), call("c1"), output("c1"), {"type": "context_compaction"}]), &[]);
    check(json!([user("hi"), {"type": "compaction_trigger"}]), &[]);
    check(json!([{"type": "context_compaction", "encrypted_content": "E"}, user("hi")]), &[]);
}

#[test]
fn output_without_call() {
    check(
        json!([user("hi"), output("c9")]),
        &[r#"input[1] function_call_output for call_id "c9" has no matching call before it"#],
    );
}

#[test]
fn output_before_its_call() {
    check(
        json!([output("c1"), call("c1")]),
        &[
            r#"input[0] function_call_output for call_id "c1" has no matching call before it"#,
            r#"input[1] function_call "shell" (call_id "c1") has no output after it"#,
        ],
    );
}

#[test]
fn call_without_output() {
    check(
        json!([user("hi"), call("c1")]),
        &[r#"input[1] function_call "shell" (call_id "c1") has no output after it"#],
    );
    check(
        json!([{"type": "tool_search_call", "call_id": "t1", "execution": "client", "arguments": {}}]),
        &[r#"input[0] tool_search_call (call_id "t1") has no output after it"#],
    );
}

#[test]
fn empty_call_ids() {
    check(
        json!([call(""), output("")]),
        &[
            "input[0] function_call has an empty call_id",
            "input[1] function_call_output has an empty call_id",
        ],
    );
}

#[test]
fn trigger_not_last() {
    check(
        json!([{"type": "context_compaction"}, user("hi")]),
        &["input[0] context_compaction trigger is not the last input item (1 items follow it)"],
    );
    check(
        json!([{"type": "compaction_trigger"}, user("a"), user("b")]),
        &["input[0] compaction_trigger trigger is not the last input item (2 items follow it)"],
    );
}

#[test]
fn problems_come_in_input_order_and_the_unanswered_calls_last() {
    check(
        json!([
            call("c1"),
            output("c1"),
            // A second call with an answered id still needs an output after it.
            call("c1"),
            output("c2"),
            call("c2"),
            {"type": "context_compaction"},
            {"type": "custom_tool_call", "call_id": "c3", "name": "patch", "input": "x"},
            output("c3"),
            call(""),
        ]),
        &[
            r#"input[3] function_call_output for call_id "c2" has no matching call before it"#,
            "input[5] context_compaction trigger is not the last input item (3 items follow it)",
            "input[8] function_call has an empty call_id",
            r#"input[2] function_call "shell" (call_id "c1") has no output after it"#,
            r#"input[4] function_call "shell" (call_id "c2") has no output after it"#,
        ],
    );
}
