//! Tests of the item types: exact wire JSON, lossless unknown items, the pass-through list.

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

/// Asserts `item` serializes to exactly `expected`, that `expected` reads back as `item`, and
/// snapshots the compact wire string.
#[track_caller]
fn check(name: &str, item: &ResponseItem, expected: Value) {
    let wire = serde_json::to_string(item).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&wire).unwrap(), expected, "serialize {name}");
    assert_eq!(&serde_json::from_value::<ResponseItem>(expected).unwrap(), item, "parse {name}");
    insta::assert_snapshot!(name, wire);
}

#[test]
fn context_compaction_trigger_has_no_payload() {
    check(
        "context_compaction_trigger",
        &ResponseItem::ContextCompaction { id: None, encrypted_content: None },
        json!({"type": "context_compaction"}),
    );
}

#[test]
fn context_compaction_with_content() {
    check(
        "context_compaction_with_content",
        &ResponseItem::ContextCompaction { id: None, encrypted_content: Some("abc".into()) },
        json!({"type": "context_compaction", "encrypted_content": "abc"}),
    );
}

#[test]
fn compaction_summary_alias_parses_as_compaction() {
    let item: ResponseItem =
        serde_json::from_value(json!({"type": "compaction_summary", "encrypted_content": "x"}))
            .unwrap();
    assert_eq!(
        item,
        ResponseItem::Compaction { id: None, encrypted_content: "x".into(), created_by: None }
    );
    assert_eq!(
        serde_json::to_value(&item).unwrap(),
        json!({"type": "compaction", "encrypted_content": "x"})
    );
}

#[test]
fn compaction_output_item_keeps_id_and_creator() {
    check(
        "compaction_with_id",
        &ResponseItem::Compaction {
            id: Some("cmp_1".into()),
            encrypted_content: "ENC".into(),
            created_by: Some("server".into()),
        },
        json!({"type": "compaction", "id": "cmp_1", "encrypted_content": "ENC", "created_by": "server"}),
    );
}

#[test]
fn compaction_trigger_is_a_bare_type() {
    check(
        "compaction_trigger",
        &ResponseItem::CompactionTrigger,
        json!({"type": "compaction_trigger"}),
    );
}

#[test]
fn message_with_phase() {
    check(
        "message_with_phase",
        &ResponseItem::Message {
            id: Some("msg_1".into()),
            role: "assistant".into(),
            content: vec![ContentItem::OutputText { text: "done".into() }],
            phase: Some(MessagePhase::FinalAnswer),
            extra: Default::default(),
        },
        json!({
            "type": "message", "id": "msg_1", "role": "assistant",
            "content": [{"type": "output_text", "text": "done"}],
            "phase": "final_answer"
        }),
    );
}

#[test]
fn user_message_with_image() {
    check(
        "user_message_with_image",
        &ResponseItem::Message {
            id: None,
            role: "user".into(),
            content: vec![
                ContentItem::InputText { text: "look".into() },
                ContentItem::InputImage {
                    image_url: "data:image/png;base64,AAAA".into(),
                    detail: Some("high".into()),
                },
            ],
            phase: None,
            extra: Default::default(),
        },
        json!({
            "type": "message", "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "high"}
            ]
        }),
    );
}

#[test]
fn function_call_arguments_are_a_json_string() {
    check(
        "function_call",
        &ResponseItem::FunctionCall {
            id: Some("fc_1".into()),
            name: "shell".into(),
            namespace: None,
            arguments: r#"{"cmd":"ls -la"}"#.into(),
            call_id: "call_1".into(),
        },
        json!({
            "type": "function_call", "id": "fc_1", "name": "shell",
            "arguments": "{\"cmd\":\"ls -la\"}", "call_id": "call_1"
        }),
    );
}

#[test]
fn function_call_output_as_string() {
    check(
        "function_call_output_text",
        &ResponseItem::FunctionCallOutput {
            call_id: "call_1".into(),
            output: ToolOutput::Text("total 0".into()),
        },
        json!({"type": "function_call_output", "call_id": "call_1", "output": "total 0"}),
    );
}

#[test]
fn function_call_output_as_content_items() {
    check(
        "function_call_output_content",
        &ResponseItem::FunctionCallOutput {
            call_id: "call_2".into(),
            output: ToolOutput::Content(vec![
                ContentItem::InputText { text: "screenshot".into() },
                ContentItem::InputImage { image_url: "https://x/y.png".into(), detail: None },
            ]),
        },
        json!({
            "type": "function_call_output", "call_id": "call_2",
            "output": [
                {"type": "input_text", "text": "screenshot"},
                {"type": "input_image", "image_url": "https://x/y.png"}
            ]
        }),
    );
}

#[test]
fn reasoning_writes_encrypted_content_even_when_null() {
    check(
        "reasoning",
        &ResponseItem::Reasoning {
            id: Some("rs_1".into()),
            summary: vec![ReasoningSummary::SummaryText { text: "thinking".into() }],
            content: None,
            encrypted_content: None,
        },
        json!({
            "type": "reasoning", "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "thinking"}],
            "encrypted_content": null
        }),
    );
}

#[test]
fn local_shell_call() {
    check(
        "local_shell_call",
        &ResponseItem::LocalShellCall {
            id: None,
            call_id: Some("call_3".into()),
            status: "completed".into(),
            action: Box::new(LocalShellAction::Exec {
                command: vec!["ls".into()],
                timeout_ms: Some(1000),
                working_directory: None,
                env: None,
                user: None,
            }),
        },
        json!({
            "type": "local_shell_call", "call_id": "call_3", "status": "completed",
            "action": {"type": "exec", "command": ["ls"], "timeout_ms": 1000}
        }),
    );
}

#[test]
fn unknown_item_round_trips_identically() {
    for raw in [
        r#"{"type":"ghost_snapshot","ghost_commit":{"id":"g1"}}"#,
        r#"{"type":"configuration_update","id":"cu_1","settings":{"a":[1,2,{"b":null}]}}"#,
        // A known type in a shape this version cannot read is kept, not lost.
        r#"{"type":"function_call","name":"x"}"#,
    ] {
        let item: ResponseItem = serde_json::from_str(raw).unwrap();
        assert!(matches!(item, ResponseItem::Unknown(_)), "{raw}");
        assert_eq!(
            serde_json::from_str::<Value>(&serde_json::to_string(&item).unwrap()).unwrap(),
            serde_json::from_str::<Value>(raw).unwrap()
        );
    }
}

#[test]
fn unknown_content_part_round_trips() {
    let raw = json!({"type": "message", "role": "user", "content": [{"type": "input_file", "file_id": "f"}]});
    let item: ResponseItem = serde_json::from_value(raw.clone()).unwrap();
    assert!(
        matches!(&item, ResponseItem::Message { content, .. } if matches!(content[0], ContentItem::Unknown(_)))
    );
    assert_eq!(serde_json::to_value(&item).unwrap(), raw);
}

#[test]
fn pass_through_list_decides_unknown_items() {
    let list = PassThroughList::default();
    let parse = |raw: Value| serde_json::from_value::<ResponseItem>(raw).unwrap();
    assert!(list.allows(&parse(json!({"type": "configuration_update", "x": 1}))));
    assert!(!list.allows(&parse(json!({"type": "ghost_snapshot", "ghost_commit": {"id": "g1"}}))));
    assert!(list.allows(&ResponseItem::user_text("hi")));
    let custom = PassThroughList::new(["ghost_snapshot"]);
    assert!(custom.allows(&parse(json!({"type": "ghost_snapshot"}))));
    assert!(!custom.allows(&parse(json!({"type": "configuration_update"}))));
}

#[test]
fn filter_input_drops_what_the_list_keeps_from_a_model() {
    let parse = |raw: Value| serde_json::from_value::<ResponseItem>(raw).unwrap();
    let ghost = parse(json!({"type": "ghost_snapshot"}));
    let update = parse(json!({"type": "configuration_update"}));
    let list = PassThroughList::default();
    let input = crate::borrowed_items(std::slice::from_ref(&update));
    assert!(matches!(list.filter_input(&input), Cow::Borrowed(_)), "nothing removed: no copy");
    let history = [ResponseItem::user_text("hi"), ghost, update.clone()];
    let input = crate::borrowed_items(&history);
    let filtered = list.filter_input(&input);
    let kept: Vec<&ResponseItem> = filtered.iter().map(AsRef::as_ref).collect();
    assert_eq!(kept, [&history[0], &update]);
}

#[test]
fn accessors() {
    let call = ResponseItem::FunctionCall {
        id: None,
        name: "t".into(),
        namespace: None,
        arguments: "{}".into(),
        call_id: "c".into(),
    };
    assert_eq!(call.call_id(), Some("c"));
    assert_eq!(call.output_call_id(), None);
    let out = ResponseItem::FunctionCallOutput {
        call_id: "c".into(),
        output: ToolOutput::Text("o".into()),
    };
    assert_eq!(out.output_call_id(), Some("c"));
    assert!(ResponseItem::context_compaction_trigger().is_compaction_trigger());
    assert!(!ResponseItem::context_compaction_trigger().is_compaction());
    assert_eq!(ResponseItem::user_text("a").message_text().as_deref(), Some("a"));
    let image_only = vec![ContentItem::InputImage { image_url: "u".into(), detail: None }];
    assert_eq!(content_text(&image_only), None);
    let two = vec![
        ContentItem::InputText { text: "a".into() },
        ContentItem::InputText { text: String::new() },
        ContentItem::InputText { text: "b".into() },
    ];
    assert_eq!(content_text(&two).as_deref(), Some("a\nb"));
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z ]{0,12}", "\\PC{0,8}", Just("line\nbreak \"quoted\" \\".to_owned())]
}

fn content_item() -> impl Strategy<Value = ContentItem> {
    prop_oneof![
        text().prop_map(|text| ContentItem::InputText { text }),
        text().prop_map(|text| ContentItem::OutputText { text }),
        (text(), proptest::option::of(Just("low".to_owned())))
            .prop_map(|(image_url, detail)| ContentItem::InputImage { image_url, detail }),
        text().prop_map(|v| ContentItem::Unknown(json!({"type": "input_file", "file": v}))),
    ]
}

fn tool_output() -> impl Strategy<Value = ToolOutput> {
    prop_oneof![
        text().prop_map(ToolOutput::Text),
        proptest::collection::vec(content_item(), 0..3).prop_map(ToolOutput::Content),
    ]
}

fn response_item() -> impl Strategy<Value = ResponseItem> {
    let id = || proptest::option::of("[a-z]{1,6}_[0-9]{1,3}");
    prop_oneof![
        (
            id(),
            prop_oneof![Just("user"), Just("assistant"), Just("developer"), Just("system")],
            proptest::collection::vec(content_item(), 0..4),
            proptest::option::of(prop_oneof![
                Just(MessagePhase::Commentary),
                Just(MessagePhase::FinalAnswer)
            ])
        )
            .prop_map(|(id, role, content, phase)| ResponseItem::Message {
                id,
                role: role.to_owned(),
                content,
                phase,
                extra: Default::default(),
            }),
        (id(), proptest::collection::vec(text(), 0..2), proptest::option::of(text())).prop_map(
            |(id, summary, encrypted_content)| ResponseItem::Reasoning {
                id,
                summary: summary
                    .into_iter()
                    .map(|text| ReasoningSummary::SummaryText { text })
                    .collect(),
                content: None,
                encrypted_content,
            }
        ),
        (id(), text(), text(), "[a-z0-9]{1,8}").prop_map(|(id, name, arguments, call_id)| {
            ResponseItem::FunctionCall { id, name, namespace: None, arguments, call_id }
        }),
        ("[a-z0-9]{1,8}", tool_output())
            .prop_map(|(call_id, output)| ResponseItem::FunctionCallOutput { call_id, output }),
        ("[a-z0-9]{1,8}", text(), text()).prop_map(|(call_id, name, input)| {
            ResponseItem::CustomToolCall { id: None, status: None, call_id, name, input }
        }),
        ("[a-z0-9]{1,8}", proptest::option::of(text()), tool_output()).prop_map(
            |(call_id, name, output)| ResponseItem::CustomToolCallOutput { call_id, name, output }
        ),
        (id(), text()).prop_map(|(id, encrypted_content)| ResponseItem::Compaction {
            id,
            encrypted_content,
            created_by: None
        }),
        (id(), proptest::option::of(text())).prop_map(|(id, encrypted_content)| {
            ResponseItem::ContextCompaction { id, encrypted_content }
        }),
        Just(ResponseItem::CompactionTrigger),
        (text(), 0i64..1000).prop_map(|(v, n)| ResponseItem::Unknown(
            json!({"type": "ghost_snapshot", "note": v, "n": n, "nested": {"list": [n, null]}})
        )),
    ]
}

proptest! {
    #[test]
    fn history_round_trips_through_json(history in proptest::collection::vec(response_item(), 0..24)) {
        let wire = serde_json::to_string(&history).unwrap();
        let back: Vec<ResponseItem> = serde_json::from_str(&wire).unwrap();
        prop_assert_eq!(&back, &history);
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), wire);
    }
}

#[test]
fn unknown_item_floats_round_trip_exactly() {
    // Found by fuzzing: without serde_json's `float_roundtrip`, this came back one ulp off. The
    // value is kept exactly; only the exponent's spelling may change (`e62` -> `e+62`).
    let raw = r#"{"type":"future","n":8.88888888888889e62,"m":0.1,"k":-1.5e-300}"#;
    let item: ResponseItem = serde_json::from_str(raw).unwrap();
    let written = serde_json::to_string(&item).unwrap();
    assert_eq!(written.replace("e+", "e"), raw);
}

// Messages in every form the Responses API accepts, written back in the form they came.

/// Reads `raw` as an item, checks it is a message with `role` and `text`, and that it is
/// written back byte for byte.
#[track_caller]
fn check_message_form(raw: &str, role: &str, text: &str) -> ResponseItem {
    let item: ResponseItem = serde_json::from_str(raw).unwrap();
    assert_eq!(item.role(), Some(role), "{raw} is a message");
    assert_eq!(item.message_text().as_deref(), Some(text), "{raw}");
    assert_eq!(serde_json::to_string(&item).unwrap(), raw, "written back as it came");
    assert_eq!(serialized_len_of(&item), raw.len() as u64, "estimated on its own form");
    item
}

fn serialized_len_of(item: &ResponseItem) -> u64 {
    crate::tokens::serialized_len(item)
}

#[test]
fn typeless_message_with_string_content() {
    let item = check_message_form(r#"{"role":"user","content":"hi"}"#, "user", "hi");
    let ResponseItem::Message { content, extra, .. } = &item else { unreachable!() };
    assert_eq!(content, &vec![ContentItem::InputText { text: "hi".into() }]);
    assert!(extra.is_typeless() && extra.has_string_content());
    insta::assert_snapshot!(
        "typeless_message_with_string_content",
        serde_json::to_string(&item).unwrap()
    );
}

#[test]
fn typed_message_with_string_content() {
    let item = check_message_form(
        r#"{"type":"message","role":"assistant","content":"done"}"#,
        "assistant",
        "done",
    );
    let ResponseItem::Message { content, extra, .. } = &item else { unreachable!() };
    assert_eq!(content, &vec![ContentItem::OutputText { text: "done".into() }]);
    assert!(!extra.is_typeless() && extra.has_string_content());
}

#[test]
fn typeless_message_with_parts_and_an_input_file() {
    let raw = r#"{"role":"user","content":[{"type":"input_text","text":"read this"},{"type":"input_file","file_id":"file_1"},{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}"#;
    let item = check_message_form(raw, "user", "read this");
    let ResponseItem::Message { content, .. } = &item else { unreachable!() };
    assert!(
        matches!(content[1], ContentItem::Unknown(_))
            && matches!(content[2], ContentItem::Unknown(_))
    );
}

#[test]
fn codex_message_fields_and_key_order_are_kept() {
    // An assistant message as Codex 0.171 records it: `status` before `id`, output parts with
    // `annotations` and `logprobs`, and Codex's own metadata.
    let raw = r#"{"type":"message","status":"completed","id":"msg_3","role":"assistant","content":[{"type":"output_text","text":"Reply.","annotations":[],"logprobs":[]}],"internal_chat_message_metadata_passthrough":{"turn_id":"t1","content_item_kinds":["unknown"]}}"#;
    let item = check_message_form(raw, "assistant", "Reply.");
    let ResponseItem::Message { id, extra, .. } = &item else { unreachable!() };
    assert_eq!(id.as_deref(), Some("msg_3"));
    assert_eq!(extra.get("status"), Some(&json!("completed")));
    assert_eq!(extra.get("internal_chat_message_metadata_passthrough").unwrap()["turn_id"], "t1");
    let keys: Vec<&String> = extra.fields().unwrap().keys().collect();
    assert_eq!(keys, ["status", "internal_chat_message_metadata_passthrough"]);
    insta::assert_snapshot!("codex_assistant_message", serde_json::to_string(&item).unwrap());
}

#[test]
fn any_key_order_and_unreadable_known_fields_are_kept() {
    for (raw, text) in [
        (r#"{"content":[{"text":"a","type":"input_text"}],"role":"user","type":"message"}"#, "a"),
        (
            r#"{"type":"message","id":null,"role":"user","content":[{"type":"input_text","text":"b"}]}"#,
            "b",
        ),
        (r#"{"type":"message","role":"assistant","content":"c","phase":"analysis"}"#, "c"),
        (
            r#"{"type":"message","role":"user","content":[{"type":"input_image","image_url":"https://x/y.png","detail":null},{"type":"input_text","text":"d"}]}"#,
            "d",
        ),
    ] {
        let role = if raw.contains("assistant") { "assistant" } else { "user" };
        let item = check_message_form(raw, role, text);
        let ResponseItem::Message { id, phase, .. } = &item else { unreachable!() };
        assert_eq!((id, phase), (&None, &None), "{raw}: unreadable fields are kept, not read");
    }
}

#[test]
fn a_message_in_canonical_form_has_nothing_unmodelled() {
    let item = ResponseItem::user_text("x");
    let back: ResponseItem = serde_json::from_str(&serde_json::to_string(&item).unwrap()).unwrap();
    assert_eq!(back, item);
    let ResponseItem::Message { extra, .. } = &back else { unreachable!() };
    assert!(extra.is_empty());
    assert_eq!(extra.fields(), None);
}

#[test]
fn messages_that_cannot_be_read_stay_unknown() {
    for raw in [
        r#"{"type":"message","role":5,"content":"x"}"#,
        r#"{"type":"message","role":"user"}"#,
        r#"{"type":"message","role":"user","content":7}"#,
        r#"{"role":"user"}"#,
        r#"{"content":"x"}"#,
        r#"{"role":"user","content":{"text":"x"}}"#,
    ] {
        let item: ResponseItem = serde_json::from_str(raw).unwrap();
        assert!(matches!(item, ResponseItem::Unknown(_)), "{raw}");
        assert_eq!(serde_json::to_string(&item).unwrap(), raw);
    }
}

#[test]
fn changed_messages_keep_what_still_applies() {
    let raw = r#"{"role":"assistant","content":[{"type":"output_text","text":"a","annotations":[]},{"type":"input_image","image_url":"u","extra":1}],"status":"completed"}"#;
    let mut item: ResponseItem = serde_json::from_str(raw).unwrap();
    let ResponseItem::Message { content, .. } = &mut item else { unreachable!() };
    // The image becomes text, as a text-only model needs: its extra field no longer applies.
    content[1] = ContentItem::InputText { text: "[image]".into() };
    if let ContentItem::OutputText { text } = &mut content[0] {
        text.push('!');
    }
    assert_eq!(
        serde_json::to_string(&item).unwrap(),
        r#"{"role":"assistant","content":[{"type":"output_text","text":"a!","annotations":[]},{"type":"input_text","text":"[image]"}],"status":"completed"}"#
    );

    // A string content stays a string while it is one text part, and becomes parts after.
    let mut item: ResponseItem =
        serde_json::from_str(r#"{"role":"user","content":"one"}"#).unwrap();
    let ResponseItem::Message { content, phase, .. } = &mut item else { unreachable!() };
    content[0] = ContentItem::InputText { text: "two".into() };
    *phase = Some(MessagePhase::Commentary);
    assert_eq!(
        serde_json::to_string(&item).unwrap(),
        r#"{"role":"user","content":"two","phase":"commentary"}"#
    );
    let ResponseItem::Message { content, .. } = &mut item else { unreachable!() };
    content.push(ContentItem::InputText { text: "three".into() });
    assert_eq!(
        serde_json::to_string(&item).unwrap(),
        r#"{"role":"user","content":[{"type":"input_text","text":"two"},{"type":"input_text","text":"three"}],"phase":"commentary"}"#
    );
}

#[test]
fn non_object_items_stay_unknown() {
    for raw in [r#""hi""#, "3", "null", "[1,2]", "{}"] {
        let item: ResponseItem = serde_json::from_str(raw).unwrap();
        assert!(matches!(item, ResponseItem::Unknown(_)), "{raw}");
        assert_eq!(serde_json::to_string(&item).unwrap(), raw);
    }
}

/// A JSON object with `entries` in this order.
fn object(entries: Vec<(String, Value)>) -> Value {
    Value::Object(entries.into_iter().collect())
}

/// A message in any form the API accepts: typed or not, string or part content, parts and the
/// message with extra fields, every object in a random key order.
fn message_form() -> impl Strategy<Value = String> {
    let extra = || proptest::collection::vec(("x_[a-z]{1,4}", text()), 0..3);
    let part =
        (prop_oneof![Just("input_text"), Just("output_text")], text(), extra(), any::<u64>())
            .prop_map(|(kind, text, extra, seed)| {
                let mut entries =
                    vec![("type".to_owned(), json!(kind)), ("text".to_owned(), json!(text))];
                entries.extend(extra.into_iter().map(|(key, value)| (key, json!(value))));
                object(shuffled(entries, seed))
            });
    let content = prop_oneof![
        text().prop_map(Value::String),
        proptest::collection::vec(part, 1..3).prop_map(Value::Array),
    ];
    (
        any::<bool>(),
        prop_oneof![Just("user"), Just("assistant"), Just("developer")],
        content,
        extra(),
        any::<u64>(),
    )
        .prop_map(|(typed, role, content, extra, seed)| {
            let mut entries =
                vec![("role".to_owned(), json!(role)), ("content".to_owned(), content)];
            if typed {
                entries.push(("type".to_owned(), json!("message")));
            }
            entries.extend(extra.into_iter().map(|(key, value)| (key, json!(value))));
            serde_json::to_string(&object(shuffled(entries, seed))).unwrap()
        })
}

/// `entries` in an order picked by `seed`.
fn shuffled<T>(mut entries: Vec<T>, mut seed: u64) -> Vec<T> {
    for index in (1..entries.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        entries.swap(index, (seed >> 33) as usize % (index + 1));
    }
    entries
}

proptest! {
    #[test]
    fn every_message_form_is_a_message_written_back_byte_for_byte(raw in message_form()) {
        let item: ResponseItem = serde_json::from_str(&raw).unwrap();
        prop_assert!(matches!(item, ResponseItem::Message { .. }), "{}", raw);
        prop_assert_eq!(serde_json::to_string(&item).unwrap(), raw.clone());
        let again: ResponseItem = serde_json::from_str(&raw).unwrap();
        prop_assert_eq!(again, item);
    }
}
