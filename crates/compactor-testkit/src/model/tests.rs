//! Tests of the reference model, without a server.

use compactor_protocol::into_owned_items;
use compactor_protocol::tokens::estimate_history_tokens;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn model() -> ReferenceModel {
    ReferenceModel::new(ReferenceModelConfig::default())
}

fn request(body: Value) -> ResponsesApiRequest<'static> {
    serde_json::from_value(body).unwrap()
}

fn items(input: Value) -> Vec<ResponseItem> {
    serde_json::from_value(input).unwrap()
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn assistant(text: &str) -> Value {
    json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
}

/// A long conversation: `turns` user/assistant pairs of about 400 bytes each.
fn conversation(turns: usize) -> Vec<Value> {
    (0..turns)
        .flat_map(|turn| {
            let filler = "word ".repeat(80);
            [
                user(&format!("question {turn}: {filler}")),
                assistant(&format!("answer {turn}: {filler}")),
            ]
        })
        .collect()
}

/// Runs `input` through the model; returns the events.
fn respond(
    model: &ReferenceModel,
    instructions: &str,
    input: &[Value],
) -> Result<Vec<Value>, ErrorReply> {
    let req = request(json!({"model": "m", "instructions": instructions, "input": input}));
    model.respond(&req, &into_owned_items(req.input.clone())).map_err(|refusal| match refusal {
        Refusal::Error(reply) => reply,
        Refusal::ContextLength { input_tokens, window, .. } => {
            ErrorReply::context_length_exceeded(input_tokens, window)
        }
    })
}

fn completed(events: &[Value]) -> &Value {
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    &last["response"]
}

fn output_items(events: &[Value]) -> Vec<ResponseItem> {
    serde_json::from_value(completed(events)["output"].clone()).unwrap()
}

fn without_time(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut event| {
            if let Some(response) = event.get_mut("response") {
                response["created_at"] = json!(0);
            }
            event
        })
        .collect()
}

#[test]
fn text_reply_is_deterministic_and_streams() {
    let input =
        [user("first"), assistant("ok"), user("Please summarize the design document for me now")];
    let first = without_time(respond(&model(), "be brief", &input).unwrap());
    let second = without_time(respond(&model(), "be brief", &input).unwrap());
    assert_eq!(first, second);
    let rendered: String = first.iter().map(|event| format!("{event}\n")).collect();
    insta::assert_snapshot!(rendered);
}

#[test]
fn usage_counts_instructions_tools_and_input_with_o200k() {
    let mut input = conversation(5);
    input.push(user("Когда окно контекста почти заполнено, история сжимается. 1234567890"));
    let tools = json!([{"type": "function", "name": "shell", "description": "Runs a command.",
                        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}]);
    let req =
        request(json!({"model": "m", "instructions": "be brief", "input": input, "tools": tools}));
    let model = model();
    let events = model.respond(&req, &into_owned_items(req.input.clone())).unwrap();
    let usage = &completed(&events)["usage"];
    let history = items(Value::from(input.clone()));
    let expected_input = TokenCounter::O200k.history_tokens("be brief", &history)
        + TokenCounter::O200k.json_tokens(&tools);
    let expected_output: u64 =
        output_items(&events).iter().map(|item| TokenCounter::O200k.item_tokens(item)).sum();
    assert_eq!(usage["input_tokens"], json!(expected_input));
    assert_eq!(usage["output_tokens"], json!(expected_output));
    assert_eq!(usage["total_tokens"], json!(expected_input + expected_output));
    assert_eq!(usage["input_tokens_details"], json!({"cached_tokens": 0, "cache_write_tokens": 0}));
    // A real tokenizer, not the byte estimate the engine makes by default.
    assert_ne!(expected_input, estimate_history_tokens("be brief", &history));
}

#[test]
fn both_triggers_seal_the_history() {
    #[track_caller]
    fn check(trigger: &str, kind: &str) {
        let model = model();
        let mut input = conversation(40);
        input.push(json!({"type": trigger}));
        let events = respond(&model, "", &input).unwrap();
        let output = output_items(&events);
        assert_eq!(output.len(), 1);
        assert_eq!(output[0].item_type(), kind);
        assert!(output[0].is_compaction());
        let replaced =
            TokenCounter::O200k.history_tokens("", &items(Value::from(input[..80].to_vec())));
        let sealed = TokenCounter::O200k.item_tokens(&output[0]);
        assert!(replaced > 8_000, "replaced {replaced}");
        assert!(sealed * 50 < replaced, "sealed {sealed} vs replaced {replaced}");
    }
    check("context_compaction", "context_compaction");
    check("compaction_trigger", "compaction");
}

#[test]
fn digest_of_a_small_history() {
    let input = [
        user("first question about the parser"),
        assistant("ok"),
        json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}),
        json!({"type": "function_call_output", "call_id": "c1", "output": "done"}),
        user("second question"),
        json!({"type": "context_compaction"}),
    ];
    let events = respond(&model(), "inst", &input).unwrap();
    let output = output_items(&events);
    let ResponseItem::ContextCompaction { encrypted_content: Some(sealed), id } = &output[0] else {
        panic!("expected a sealed context_compaction, got {output:?}");
    };
    assert_eq!(id.as_deref(), Some("cc_2"));
    let digest = SealKey::default().open(sealed).unwrap();
    insta::assert_json_snapshot!(digest);
}

#[test]
fn a_digest_quotes_the_last_eight_user_messages_with_text_in_order() {
    let mut input = Vec::new();
    for turn in 0..12 {
        input.push(user(&format!("question {turn} with more than eight words in it, cut")));
        input.push(assistant(&format!("answer {turn}")));
        if turn == 9 {
            // A user message without text is not quoted, and does not take a place.
            input.push(json!({"type": "message", "role": "user", "content": [
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
            ]}));
        }
    }
    input.push(json!({"type": "compaction_trigger"}));
    let events = respond(&model(), "", &input).unwrap();
    let ResponseItem::Compaction { encrypted_content, .. } = &output_items(&events)[0] else {
        panic!("expected a compaction item");
    };
    let quoted = SealKey::default().open(encrypted_content).unwrap()["user_messages"].clone();
    let expected: Vec<String> =
        (4..12).map(|turn| format!("question {turn} with more than eight words in")).collect();
    assert_eq!(quoted, json!(expected));
}

#[test]
fn sealed_items_are_accepted_back_and_usage_drops() {
    let model = model();
    let mut input = conversation(40);
    let before = respond(&model, "", &input).unwrap();
    let before_tokens = completed(&before)["usage"]["input_tokens"].as_u64().unwrap();
    input.push(json!({"type": "context_compaction"}));
    let compacted = respond(&model, "", &input).unwrap();
    let sealed = completed(&compacted)["output"][0].clone();

    let after_input = [user("question 0"), sealed.clone(), user("next")];
    let after = respond(&model, "", &after_input).unwrap();
    let after_tokens = completed(&after)["usage"]["input_tokens"].as_u64().unwrap();
    assert!(after_tokens * 20 < before_tokens, "{after_tokens} vs {before_tokens}");
    let text = output_items(&after)[0].message_text().unwrap();
    assert_eq!(
        text,
        "Reply to user message 2: \"next\". (memory: 1 compaction(s) covering 80 earlier items)"
    );

    // A second compaction is generation 2 and counts the items of both.
    let second_input =
        [user("question 0"), sealed, user("next"), json!({"type": "compaction_trigger"})];
    let second = respond(&model, "", &second_input).unwrap();
    let ResponseItem::Compaction { encrypted_content, .. } = &output_items(&second)[0] else {
        panic!("expected a compaction item");
    };
    let digest = SealKey::default().open(encrypted_content).unwrap();
    assert_eq!(digest["generation"], json!(2));
    assert_eq!(digest["summarized_items"], json!(82));
}

#[test]
fn tampered_and_foreign_items_are_rejected() {
    let model = model();
    let sealed = SealKey::default().seal(&json!({"v": 1}));
    let mut tampered = sealed.clone().into_bytes();
    tampered[4] = if tampered[4] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let foreign = SealKey::new("another key").seal(&json!({"v": 1}));
    for (encrypted, kind) in [
        (&tampered, "compaction"),
        (&foreign, "context_compaction"),
        (&"ENC".to_owned(), "compaction"),
    ] {
        let input = [json!({"type": kind, "encrypted_content": encrypted}), user("hi")];
        let err = respond(&model, "", &input).unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, "invalid_encrypted_content"));
        assert!(
            err.message.starts_with(&format!("The encrypted content of input[0] ({kind})")),
            "{}",
            err.message
        );
    }
    let input = [json!({"type": "compaction", "encrypted_content": sealed}), user("hi")];
    assert!(respond(&model, "", &input).is_ok());
}

#[test]
fn prewarm_generates_nothing() {
    let model = model();
    let req = request(
        json!({"model": "m", "input": [], "generate": false, "tools": [{"type": "function", "name": "t"}]}),
    );
    let events = model.respond(&req, &into_owned_items(req.input.clone())).unwrap();
    let kinds: Vec<&str> = events.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["response.created", "response.completed"]);
    let response = completed(&events);
    assert_eq!(response["output"], json!([]));
    assert_eq!(response["tools"], json!([{"type": "function", "name": "t"}]));
    assert_eq!(response["usage"]["total_tokens"], json!(0));
}

#[test]
fn tool_call_policy() {
    let model = ReferenceModel::new(ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: "run ls".to_owned(),
            name: "shell".to_owned(),
            arguments: r#"{"command":["ls"]}"#.to_owned(),
        },
        ..ReferenceModelConfig::default()
    });
    let events = respond(&model, "", &[user("please run ls")]).unwrap();
    let output = output_items(&events);
    let ResponseItem::FunctionCall { name, arguments, call_id, .. } = &output[0] else {
        panic!("expected a function call, got {output:?}");
    };
    assert_eq!(
        (name.as_str(), arguments.as_str(), call_id.as_str()),
        ("shell", r#"{"command":["ls"]}"#, "call_2")
    );
    let answered = [
        user("please run ls"),
        serde_json::to_value(&output[0]).unwrap(),
        json!({"type": "function_call_output", "call_id": "call_2", "output": "Cargo.toml src"}),
    ];
    let events = respond(&model, "", &answered).unwrap();
    assert_eq!(
        output_items(&events)[0].message_text().unwrap(),
        "Tool call call_2 returned 14 bytes: \"Cargo.toml src\"."
    );
    let events = respond(&model, "", &[user("hello")]).unwrap();
    assert_eq!(output_items(&events)[0].item_type(), "message");
}

fn script(forgetful: bool) -> ReferenceModel {
    let read = |path: &str| PlannedCall::new("read_file", &json!({ "path": path }));
    let turns = vec![
        ScriptedTurn { marker: "first".into(), calls: vec![read("src/a.rs"), read("src/b.rs")] },
        ScriptedTurn {
            marker: "second".into(),
            calls: vec![PlannedCall::new("shell", &json!({ "command": "cargo test" }))],
        },
    ];
    ReferenceModel::new(ReferenceModelConfig {
        tool_calls: ToolCallPolicy::Script(ToolScript {
            turns,
            forgetful,
            read_tool: "read_file".into(),
        }),
        ..ReferenceModelConfig::default()
    })
}

fn calls(events: &[Value]) -> Vec<(String, String)> {
    output_items(events)
        .into_iter()
        .filter_map(|item| match item {
            ResponseItem::FunctionCall { name, arguments, .. } => Some((name, arguments)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_script_calls_several_tools_per_turn() {
    let model = script(false);
    let events = respond(&model, "", &[user("the first task")]).unwrap();
    assert_eq!(
        calls(&events),
        [
            ("read_file".to_owned(), r#"{"path":"src/a.rs"}"#.to_owned()),
            ("read_file".to_owned(), r#"{"path":"src/b.rs"}"#.to_owned()),
        ]
    );
    // Not forgetful: the second turn makes its own call only, whatever the request shows.
    let events = respond(&model, "", &[user("the second task")]).unwrap();
    assert_eq!(calls(&events).len(), 1);
    let events = respond(&model, "", &[user("no marker here")]).unwrap();
    assert!(calls(&events).is_empty());
}

#[test]
fn a_forgetful_script_reads_again_the_files_the_request_does_not_show() {
    let model = script(true);
    // The request shows src/a.rs (in a ledger, say) but not src/b.rs.
    let input = [
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "files: src/a.rs (read)"}]}),
        user("the second task"),
    ];
    let events = respond(&model, "", &input).unwrap();
    assert_eq!(
        calls(&events),
        [
            ("read_file".to_owned(), r#"{"path":"src/b.rs"}"#.to_owned()),
            ("shell".to_owned(), r#"{"command":"cargo test"}"#.to_owned()),
        ]
    );
    // A request that shows both reads nothing again.
    let input = [
        json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "src/a.rs src/b.rs"}]}),
        user("the second task"),
    ];
    assert_eq!(calls(&respond(&model, "", &input).unwrap()).len(), 1);
}

#[test]
fn reply_padding() {
    let model = ReferenceModel::new(ReferenceModelConfig {
        reply_padding_bytes: 100,
        ..ReferenceModelConfig::default()
    });
    let events = respond(&model, "", &[user("hi")]).unwrap();
    let text = output_items(&events)[0].message_text().unwrap();
    assert_eq!(text.len(), "Reply to user message 1: \"hi\".".len() + 1 + 100);
}

#[test]
fn compact_endpoint_keeps_user_messages() {
    let model = model();
    let mut input = conversation(3);
    input.insert(0, json!({"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "dev"}]}));
    let req: CompactRequest<'static> =
        serde_json::from_value(json!({"model": "m", "input": input, "extra_field": true})).unwrap();
    let items = into_owned_items(req.input.clone());
    let mut answer = model.compact(&req, &items).unwrap();
    answer["created_at"] = json!(0);
    let output: Vec<ResponseItem> = serde_json::from_value(answer["output"].clone()).unwrap();
    let roles: Vec<String> =
        output.iter().map(|item| item.role().unwrap_or(item.item_type()).to_owned()).collect();
    assert_eq!(roles, ["user", "user", "user", "compaction"]);
    assert_eq!(answer["object"], json!("response.compaction"));
    assert_eq!(
        answer["usage"]["input_tokens"],
        json!(TokenCounter::O200k.history_tokens("", &items))
    );
    let ResponseItem::Compaction { encrypted_content, .. } = &output[3] else { panic!() };
    assert_eq!(SealKey::default().open(encrypted_content).unwrap()["items"], json!(7));
}

#[test]
fn snippets() {
    #[track_caller]
    fn check(text: &str, expected: &str) {
        assert_eq!(snippet(text), expected);
    }
    check("", "");
    check("  one\n two  ", "one two");
    check("a b c d e f g h i j", "a b c d e f g h");
    check(&"x".repeat(100), &format!("{}...", "x".repeat(80)));
    check(&"é".repeat(100), &format!("{}...", "é".repeat(80)));
}
