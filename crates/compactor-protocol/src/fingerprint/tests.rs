//! Tests of item fingerprints: they agree with `==` on every variant and field, on JSON objects
//! in any key order and on the kinds of JSON numbers.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const KEY: FingerprintKey = FingerprintKey { k0: 0x0123_4567_89ab_cdef, k1: 0xfedc_ba98_7654_3210 };

fn item(raw: Value) -> ResponseItem {
    serde_json::from_value(raw).unwrap()
}

/// One item of every variant (and every optional field set), as wire JSON.
fn every_variant() -> Vec<Value> {
    vec![
        json!({"type": "message", "id": "msg_1", "role": "assistant", "phase": "commentary",
            "content": [{"type": "output_text", "text": "hi"}, {"type": "input_text", "text": "yo"},
                {"type": "input_image", "image_url": "data:x", "detail": "low"},
                {"type": "input_file", "file_id": "f", "n": 1}]}),
        json!({"role": "user", "content": "typeless, with string content", "metadata": {"k": 1}}),
        json!({"content": [{"text": "t", "type": "output_text", "annotations": [1]}],
            "role": "assistant", "type": "message", "status": "completed"}),
        json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "s"}],
            "content": [{"type": "reasoning_text", "text": "r"}, {"type": "text", "text": "t"}],
            "encrypted_content": "enc"}),
        json!({"type": "local_shell_call", "id": "lsh", "call_id": "c1", "status": "completed",
            "action": {"type": "exec", "command": ["ls", "-la"], "timeout_ms": 10,
                "working_directory": "/w", "env": {"A": "1", "B": 2}, "user": "me"}}),
        json!({"type": "function_call", "id": "fc", "name": "shell", "namespace": "ns",
            "arguments": "{\"a\":1}", "call_id": "c2"}),
        json!({"type": "tool_search_call", "id": "ts", "call_id": "c3", "status": "done",
            "execution": "server", "arguments": {"q": ["x", 1.5, -2, null, true]}}),
        json!({"type": "function_call_output", "call_id": "c2", "output": "out"}),
        json!({"type": "function_call_output", "call_id": "c2",
            "output": [{"type": "input_text", "text": "out"}]}),
        json!({"type": "custom_tool_call", "id": "ct", "status": "s", "call_id": "c4",
            "name": "apply", "input": "patch"}),
        json!({"type": "custom_tool_call_output", "call_id": "c4", "name": "apply", "output": "ok"}),
        json!({"type": "tool_search_output", "call_id": "c3", "status": "s", "execution": "e",
            "tools": [{"type": "function", "name": "f"}]}),
        json!({"type": "web_search_call", "id": "ws", "status": "s",
            "action": {"type": "search", "query": "q", "queries": ["a", "b"]}}),
        json!({"type": "web_search_call", "action": {"type": "open_page", "url": "u"}}),
        json!({"type": "web_search_call", "action": {"type": "find_in_page", "url": "u", "pattern": "p"}}),
        json!({"type": "web_search_call", "action": {"type": "scroll", "by": 3}}),
        json!({"type": "image_generation_call", "id": "ig", "status": "s", "revised_prompt": "p",
            "result": "b64"}),
        json!({"type": "compaction", "id": "cmp", "encrypted_content": "E", "created_by": "srv"}),
        json!({"type": "context_compaction", "id": "cc", "encrypted_content": "E"}),
        json!({"type": "context_compaction"}),
        json!({"type": "compaction_trigger"}),
        json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1", "parents": [1, 2.5]}}),
    ]
}

/// Every JSON value in `value` with one leaf changed (a string extended, a number bumped, a
/// boolean flipped, a null made a string), and every object and array with one entry removed.
fn mutations(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match value {
        Value::Null => out.push(json!("")),
        Value::Bool(flag) => out.push(json!(!flag)),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                out.push(json!(n + 1));
                // The same number as a float is a different value.
                out.push(json!(n as f64));
            } else if let Some(n) = number.as_i64() {
                out.push(json!(n - 1));
            } else {
                out.push(json!(number.as_f64().unwrap() * 2.0 + 1.0));
            }
        }
        Value::String(text) => out.push(json!(format!("{text}x"))),
        Value::Array(values) => {
            for (index, entry) in values.iter().enumerate() {
                let mut fewer = values.clone();
                fewer.remove(index);
                out.push(Value::Array(fewer));
                for changed in mutations(entry) {
                    let mut next = values.clone();
                    next[index] = changed;
                    out.push(Value::Array(next));
                }
            }
        }
        Value::Object(object) => {
            for (key, entry) in object {
                let mut fewer = object.clone();
                fewer.shift_remove(key);
                out.push(Value::Object(fewer));
                for changed in mutations(entry) {
                    let mut next = object.clone();
                    next.insert(key.clone(), changed);
                    out.push(Value::Object(next));
                }
            }
        }
    }
    out
}

/// Asserts that `a` and `b` have the same fingerprint exactly when they are equal.
#[track_caller]
fn check(a: &ResponseItem, b: &ResponseItem) {
    assert_eq!(
        a.fingerprint(KEY) == b.fingerprint(KEY),
        a == b,
        "fingerprints disagree with ==\n{a:?}\n{b:?}"
    );
}

#[test]
fn an_item_has_one_fingerprint() {
    for raw in every_variant() {
        let a = item(raw.clone());
        let b = item(raw);
        assert_eq!(a.fingerprint(KEY), b.fingerprint(KEY));
    }
}

#[test]
fn every_change_of_a_field_changes_the_fingerprint_exactly_when_it_changes_the_item() {
    let mut compared = 0;
    for raw in every_variant() {
        let original = item(raw.clone());
        for changed in mutations(&raw) {
            // A change that makes the item unreadable as its type gives an `Unknown` item, which
            // must differ from the original too.
            let Ok(changed) = serde_json::from_value::<ResponseItem>(changed) else { continue };
            check(&original, &changed);
            compared += 1;
        }
    }
    assert!(compared > 150, "only {compared} comparisons");
}

#[test]
fn items_of_different_variants_differ() {
    let items: Vec<ResponseItem> = every_variant().into_iter().map(item).collect();
    for a in &items {
        for b in &items {
            check(a, b);
        }
    }
}

#[test]
fn object_key_order_does_not_count_as_for_equality() {
    let a = item(json!({"type": "ghost", "a": 1, "b": {"x": [1, {"p": null, "q": "s"}], "y": 2}}));
    let b = item(json!({"type": "ghost", "b": {"y": 2, "x": [1, {"q": "s", "p": null}]}, "a": 1}));
    assert_eq!(a, b);
    assert_eq!(a.fingerprint(KEY), b.fingerprint(KEY));
}

#[test]
fn numbers_count_by_kind_and_zero_has_one_sign() {
    let ghost = |n: Value| item(json!({"type": "ghost", "n": n}));
    let cases = [
        (json!(1), json!(1)),
        (json!(1), json!(1.0)),
        (json!(-1), json!(-1.0)),
        (json!(0.0), json!(-0.0)),
        (json!(0), json!(0.0)),
        (json!(u64::MAX), json!(-1)),
        (json!(2.5), json!(2.5)),
    ];
    for (a, b) in cases {
        check(&ghost(a), &ghost(b));
    }
}

#[test]
fn strings_cannot_run_into_each_other() {
    let call = |name: &str, arguments: &str| {
        item(json!({"type": "function_call", "name": name, "arguments": arguments, "call_id": "c"}))
    };
    check(&call("ab", "c"), &call("a", "bc"));
    check(&call("", "abc"), &call("abc", ""));
}

#[test]
fn the_key_changes_every_fingerprint() {
    let other = FingerprintKey::new(1, 2);
    for raw in every_variant() {
        let item = item(raw);
        assert_ne!(item.fingerprint(KEY), item.fingerprint(other), "{item:?}");
        assert_eq!(item.fingerprint(KEY).text_bytes(), item.fingerprint(other).text_bytes());
    }
}

#[test]
fn text_bytes_count_the_strings() {
    let item = item(json!({"type": "function_call_output", "call_id": "abc", "output": "12345"}));
    assert_eq!(item.fingerprint(KEY).text_bytes(), 8);
}

#[test]
fn the_key_is_not_printed() {
    assert_eq!(format!("{KEY:?}"), "FingerprintKey(..)");
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-d]", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// `value` with the keys of every object in reverse order.
fn reversed(value: &Value) -> Value {
    match value {
        Value::Array(values) => Value::Array(values.iter().map(reversed).collect()),
        Value::Object(object) => {
            Value::Object(object.iter().rev().map(|(k, v)| (k.clone(), reversed(v))).collect())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => value.clone(),
    }
}

proptest! {
    #[test]
    fn fingerprints_agree_with_equality_on_arbitrary_json(a in json_value(), b in json_value()) {
        let wrap = |v: Value| ResponseItem::Unknown(json!({"type": "ghost", "v": v}));
        let (a, b) = (wrap(a), wrap(b));
        check(&a, &b);
        let ResponseItem::Unknown(raw) = &a else { unreachable!() };
        let flipped = ResponseItem::Unknown(reversed(raw));
        prop_assert_eq!(&flipped, &a);
        prop_assert_eq!(flipped.fingerprint(KEY), a.fingerprint(KEY));
    }
}
