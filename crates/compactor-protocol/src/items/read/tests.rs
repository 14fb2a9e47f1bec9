//! The hand-written reader agrees with the general reading (the reference): on every variant in
//! every form (typeless messages, string content and unmodelled fields included), on changed,
//! reordered, extended and broken items, and on arbitrary JSON.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::oracle::ReferenceItem;
use super::*;

/// Items of every variant and field, in the form Compactor writes.
pub(in crate::items) fn every_variant() -> Vec<Value> {
    vec![
        json!({"type": "message", "id": "msg_1", "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}, {"type": "input_text", "text": "yo"},
                {"type": "input_image", "image_url": "data:x", "detail": "low"},
                {"type": "input_image", "image_url": "data:y"},
                {"type": "input_file", "file_id": "f", "n": 1}], "phase": "commentary"}),
        json!({"type": "message", "role": "user", "content": []}),
        json!({"role": "user", "content": "typeless, with string content"}),
        json!({"type": "message", "role": "assistant", "content": "string content"}),
        json!({"type": "message", "id": "msg_2", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": "a", "annotations": [], "logprobs": []}],
            "internal_chat_message_metadata_passthrough": {"turn": 1}}),
        json!({"content": [{"text": "b", "type": "input_text"}], "role": "user", "type": "message"}),
        json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
            "content": [{"type": "reasoning_text", "text": "r"}, {"type": "text", "text": "t"}],
            "encrypted_content": "enc"}),
        json!({"type": "reasoning", "summary": [], "encrypted_content": null}),
        json!({"type": "local_shell_call", "id": "lsh", "call_id": "c1", "status": "completed",
            "action": {"type": "exec", "command": ["ls", "-la"], "timeout_ms": 10,
                "working_directory": "/w", "env": {"A": "1"}, "user": "me"}}),
        json!({"type": "function_call", "id": "fc", "name": "shell", "namespace": "ns",
            "arguments": "{\"a\":1}", "call_id": "c2"}),
        json!({"type": "tool_search_call", "id": "ts", "call_id": "c3", "status": "done",
            "execution": "server", "arguments": {"q": ["x", 1.5, -2, null, true]}}),
        json!({"type": "function_call_output", "call_id": "c2", "output": "out"}),
        json!({"type": "function_call_output", "call_id": "c2",
            "output": [{"type": "input_text", "text": "out"},
                {"type": "input_image", "image_url": "u", "detail": "high"}]}),
        json!({"type": "custom_tool_call", "id": "ct", "status": "s", "call_id": "c4",
            "name": "apply", "input": "patch"}),
        json!({"type": "custom_tool_call_output", "call_id": "c4", "name": "apply", "output": "ok"}),
        json!({"type": "tool_search_output", "call_id": "c3", "status": "s", "execution": "e",
            "tools": [{"type": "function", "name": "f"}]}),
        json!({"type": "web_search_call", "id": "ws", "status": "s",
            "action": {"type": "search", "query": "q", "queries": ["a", "b"]}}),
        json!({"type": "image_generation_call", "id": "ig", "status": "s", "revised_prompt": "p",
            "result": "b64"}),
        json!({"type": "compaction", "id": "cmp", "encrypted_content": "E", "created_by": "srv"}),
        json!({"type": "compaction_summary", "encrypted_content": "E"}),
        json!({"type": "context_compaction", "id": "cc", "encrypted_content": "E"}),
        json!({"type": "context_compaction"}),
        json!({"type": "compaction_trigger"}),
        json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1", "parents": [1, 2.5]}}),
    ]
}

/// Asserts that `text` reads the same by hand and the general way (from the text, and from its
/// JSON value, which differ only for duplicate keys, where the reader agrees with the value), and
/// that a message is written back as it came.
#[track_caller]
pub(in crate::items) fn check(text: &str) {
    let Ok(value) = serde_json::from_str::<Value>(text) else { return };
    let ours = serde_json::from_str::<ResponseItem>(text).unwrap();
    let theirs = serde_json::from_value::<ReferenceItem>(value.clone()).unwrap().0;
    assert_eq!(ours, theirs, "{text}");
    assert_eq!(serde_json::from_value::<ResponseItem>(value.clone()).unwrap(), ours, "{text}");
    let canonical = value.to_string();
    assert_eq!(serde_json::from_str::<ReferenceItem>(&canonical).unwrap().0, ours, "{text}");
    // A message keeps its form.
    if let ResponseItem::Message { .. } = &ours {
        assert_eq!(serde_json::to_string(&ours).unwrap(), canonical, "{text}");
    }
    // A raw item keeps its JSON exactly.
    if let ResponseItem::Unknown(raw) = &ours {
        assert_eq!(raw, &value, "{text}");
        assert_eq!(serde_json::to_string(raw).unwrap(), canonical);
    }
    // The direct reader, when it takes the text, reads the same item from all of it.
    for text in [text, canonical.as_str()] {
        if let Some((direct, end)) = super::super::direct::read_item(text, 0) {
            assert_eq!(direct, ours, "{text}");
            assert!(text[end..].trim_start_matches([' ', '\n', '\t', '\r']).is_empty(), "{text}");
        }
    }
}

/// `value` with one change: a leaf changed in kind or content, an entry removed, an entry added,
/// or the keys of an object reversed; every such change of every node.
pub(in crate::items) fn changes(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match value {
        Value::Null => out.extend([json!(""), json!(0)]),
        Value::Bool(flag) => out.push(json!(!flag)),
        Value::Number(_) => out.extend([json!(1.5), json!("n"), Value::Null]),
        Value::String(text) => {
            out.extend([
                json!(format!("{text}x")),
                Value::Null,
                json!(1),
                json!([text]),
                json!({"text": text}),
            ]);
        }
        Value::Array(values) => {
            out.push(Value::Null);
            out.push(json!("s"));
            for (index, entry) in values.iter().enumerate() {
                let mut fewer = values.clone();
                fewer.remove(index);
                out.push(Value::Array(fewer));
                for changed in changes(entry) {
                    let mut next = values.clone();
                    next[index] = changed;
                    out.push(Value::Array(next));
                }
            }
        }
        Value::Object(object) => {
            out.push(Value::Object(
                object.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect(),
            ));
            let mut more = object.clone();
            more.insert("extra".to_owned(), json!({"kept": [1, "two"]}));
            out.push(Value::Object(more));
            for (key, entry) in object {
                let mut fewer = object.clone();
                fewer.shift_remove(key);
                out.push(Value::Object(fewer));
                for changed in changes(entry) {
                    let mut next = object.clone();
                    next.insert(key.clone(), changed);
                    out.push(Value::Object(next));
                }
            }
        }
    }
    out
}

#[test]
fn every_variant_reads_as_the_reference() {
    for item in every_variant() {
        check(&item.to_string());
    }
}

#[test]
fn every_change_of_every_variant_reads_as_the_reference() {
    let mut checked = 0;
    for item in every_variant() {
        for changed in changes(&item) {
            check(&changed.to_string());
            checked += 1;
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn items_written_by_compactor_take_the_fast_path_and_others_still_read() {
    // `type` after other keys, keys in another order, extra fields, a duplicate key.
    for text in [
        r#"{"role":"user","type":"message","content":[{"type":"input_text","text":"a"}]}"#,
        r#"{"type":"message","content":[{"text":"a","type":"input_text"}],"role":"user"}"#,
        r#"{"type":"message","role":"user","content":[{"type":"output_text","text":"a","annotations":[]}],"status":"completed"}"#,
        r#"{"type":"function_call","name":"a","name":"b","arguments":"{}","call_id":"c"}"#,
        r#"{"type":"message","role":"user","content":[],"type":"reasoning"}"#,
        r#"{"type":"message","role":"user","content":"a string"}"#,
        r#"{"type":"message","role":7,"content":[]}"#,
        r#"{"type":7,"role":"user","content":[]}"#,
        r#"{"type":"message"}"#,
        r#"{}"#,
        r#"[]"#,
        r#"["message"]"#,
        r#"["compaction_trigger"]"#,
        r#""text""#,
        r#"12"#,
        r#"-1.5"#,
        r#"null"#,
        r#"true"#,
        r#"{"type":"compaction_trigger","extra":1}"#,
        r#"{"type":"reasoning","summary":[{"type":"summary_text","text":"a","extra":1}]}"#,
        r#"{"type":"reasoning","summary":[{"type":"other","text":"a"}]}"#,
        r#"{"type":"reasoning","summary":null}"#,
        r#"{"type":"message","role":"user","content":[{"type":"input_image","image_url":"u","detail":null}]}"#,
        r#"{"type":"function_call_output","call_id":"c","output":null}"#,
        r#"{"type":"function_call_output","call_id":"c","output":{"a":1}}"#,
        r#"{"type":"message","role":"assistant","content":[],"phase":"other"}"#,
        r#"{"type":"message","role":"assistant","content":[],"phase":null,"id":null}"#,
        r#"{"type":"message","id":"a\"b\\c\u00e9","role":"user","content":[{"type":"input_text","text":"line\nbreak \u2603"}]}"#,
    ] {
        check(text);
    }
}

#[test]
fn a_request_reads_its_items_by_hand() {
    let request = json!({"model": "m", "input": every_variant(), "tools": [], "tool_choice": "auto",
        "parallel_tool_calls": false, "reasoning": null, "store": false, "include": []});
    let parsed: crate::ResponsesApiRequest<'static> =
        serde_json::from_value(request.clone()).unwrap();
    let expected: Vec<ResponseItem> = every_variant()
        .into_iter()
        .map(|item| serde_json::from_value::<ReferenceItem>(item).unwrap().0)
        .collect();
    let read: Vec<ResponseItem> = parsed.input.iter().map(|item| item.as_ref().clone()).collect();
    assert_eq!(read, expected);
}

/// JSON shaped like items: objects with a `type` among the known ones, known field names and
/// values of every kind, in any order.
fn item_like() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        Just("message"),
        Just("reasoning"),
        Just("function_call"),
        Just("function_call_output"),
        Just("custom_tool_call"),
        Just("custom_tool_call_output"),
        Just("compaction"),
        Just("context_compaction"),
        Just("compaction_trigger"),
        Just("local_shell_call"),
        Just("ghost"),
        Just("input_text"),
        // No `type` at all.
        Just(""),
    ];
    let key = prop_oneof![
        Just("type"),
        Just("id"),
        Just("role"),
        Just("content"),
        Just("phase"),
        Just("summary"),
        Just("encrypted_content"),
        Just("name"),
        Just("arguments"),
        Just("call_id"),
        Just("output"),
        Just("status"),
        Just("input"),
        Just("text"),
        Just("image_url"),
        Just("detail"),
        Just("namespace"),
        Just("created_by"),
        Just("x"),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        Just(json!(0.5)),
        prop_oneof![
            Just("user"),
            Just("commentary"),
            Just("a"),
            Just("input_text"),
            Just("output_text"),
            Just("summary_text"),
            Just("input_image"),
            Just("text")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let value = leaf.prop_recursive(3, 32, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..5).prop_map(|entries| {
                Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    });
    (kind, proptest::collection::vec((key_strategy(), value), 0..6), 0..7usize).prop_map(
        |(kind, fields, at)| {
            let mut object: Vec<(String, Value)> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if !kind.is_empty() {
                object.insert(at.min(object.len()), ("type".to_owned(), json!(kind)));
            }
            Value::Object(object.into_iter().collect())
        },
    )
}

fn key_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("id"),
        Just("role"),
        Just("content"),
        Just("phase"),
        Just("summary"),
        Just("encrypted_content"),
        Just("name"),
        Just("arguments"),
        Just("call_id"),
        Just("output"),
        Just("status"),
        Just("input"),
        Just("x"),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_item_like_json_reads_as_the_reference(value in item_like()) {
        check(&value.to_string());
    }

    #[test]
    fn arbitrary_variants_with_a_changed_part_read_as_derived(
        index in 0..20usize,
        change in 0..10_000usize,
    ) {
        let items = every_variant();
        let item = &items[index % items.len()];
        let changed = changes(item);
        check(&changed[change % changed.len()].to_string());
    }
}
