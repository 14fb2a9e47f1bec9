//! Tests of request bodies and WebSocket client messages.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn prompt() -> Prompt<'static> {
    Prompt {
        input: owned_items([
            ResponseItem::user_text("hi"),
            ResponseItem::context_compaction_trigger(),
        ]),
        tools: vec![json!({"type": "function", "name": "shell", "parameters": {"type": "object"}})],
        parallel_tool_calls: true,
        base_instructions: "be brief".into(),
        ..Prompt::default()
    }
}

fn settings() -> TurnSettings {
    TurnSettings {
        model: "gpt-test".into(),
        reasoning: Some(Reasoning { effort: Some("medium".into()), summary: Some("auto".into()) }),
        ..TurnSettings::default()
    }
}

#[test]
fn http_request_body() {
    let prompt = prompt();
    let settings = settings();
    let mut request = ResponsesApiRequest::from_prompt(&prompt, &settings);
    request.prompt_cache_key = Some("thread-1".into());
    let wire = serde_json::to_string(&request).unwrap();
    insta::assert_snapshot!(wire);
    let back: ResponsesApiRequest<'_> = serde_json::from_str(&wire).unwrap();
    assert_eq!(back, request);
}

#[test]
fn empty_instructions_and_no_reasoning() {
    let prompt =
        Prompt { input: owned_items([ResponseItem::user_text("hi")]), ..Prompt::default() };
    let settings = TurnSettings { model: "m".into(), ..TurnSettings::default() };
    let value = serde_json::to_value(ResponsesApiRequest::from_prompt(&prompt, &settings)).unwrap();
    assert_eq!(
        value,
        json!({
            "model": "m",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
            "tools": [], "tool_choice": "auto", "parallel_tool_calls": false,
            "reasoning": null, "store": false, "stream": true, "include": []
        })
    );
}

#[test]
fn output_schema_and_context_management() {
    let prompt = Prompt { output_schema: Some(json!({"type": "object"})), ..Prompt::default() };
    let settings = TurnSettings {
        model: "m".into(),
        verbosity: Some("low".into()),
        context_management: Some(vec![ContextManagement::Compaction {
            compact_threshold: 200_000,
        }]),
        ..TurnSettings::default()
    };
    let value = serde_json::to_value(ResponsesApiRequest::from_prompt(&prompt, &settings)).unwrap();
    assert_eq!(
        value["text"],
        json!({"verbosity": "low", "format": {"type": "json_schema", "strict": true, "schema": {"type": "object"}, "name": "compactor_output_schema"}})
    );
    assert_eq!(
        value["context_management"],
        json!([{"type": "compaction", "compact_threshold": 200000}])
    );
}

#[test]
fn websocket_response_create() {
    let prompt = prompt();
    let settings = settings();
    let mut request = ResponsesApiRequest::from_prompt(&prompt, &settings);
    request.stream = None;
    request.previous_response_id = Some("resp-1".into());
    let message = WsClientMessage::ResponseCreate(Box::new(request));
    let wire = serde_json::to_string(&message).unwrap();
    let value: Value = serde_json::from_str(&wire).unwrap();
    assert_eq!(value["type"], "response.create");
    assert!(value.get("stream").is_none());
    assert_eq!(value["previous_response_id"], "resp-1");
    insta::assert_snapshot!(wire);
    assert_eq!(serde_json::from_str::<WsClientMessage<'_>>(&wire).unwrap(), message);
}

#[test]
fn websocket_response_processed() {
    let message = WsClientMessage::ResponseProcessed { response_id: "resp-compact".into() };
    let wire = serde_json::to_string(&message).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&wire).unwrap(),
        json!({"type": "response.processed", "response_id": "resp-compact"})
    );
    insta::assert_snapshot!(wire);
    assert_eq!(serde_json::from_str::<WsClientMessage<'_>>(&wire).unwrap(), message);
}

#[test]
fn compact_request_and_response() {
    let prompt = prompt();
    let request = CompactRequest {
        model: "gpt-test".into(),
        input: (&prompt.input[..1]).into(),
        instructions: "be brief".into(),
        tools: (&prompt.tools[..]).into(),
        parallel_tool_calls: true,
        reasoning: Some(Reasoning { effort: Some("medium".into()), summary: None }),
        service_tier: None,
        prompt_cache_key: Some("thread-1".into()),
        text: None,
    };
    insta::assert_snapshot!(serde_json::to_string(&request).unwrap());
    let response: CompactResponse = serde_json::from_value(json!({
        "id": "cmp-1", "object": "response.compaction", "created_at": 1,
        "output": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "compaction", "encrypted_content": "ENC"}
        ],
        "usage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
    }))
    .unwrap();
    assert_eq!(response.output.len(), 2);
    assert!(response.output[1].is_compaction());
    assert_eq!(response.usage.map(|u| u.total_tokens), Some(12));
}

#[test]
fn compact_request_from_prompt_carries_what_a_normal_request_does() {
    let prompt = Prompt { output_schema: Some(json!({"type": "object"})), ..prompt() };
    let settings = TurnSettings {
        verbosity: Some("low".into()),
        service_tier: Some("priority".into()),
        ..settings()
    };
    let normal =
        serde_json::to_value(ResponsesApiRequest::from_prompt(&prompt, &settings)).unwrap();
    let compact = serde_json::to_value(CompactRequest::from_prompt(&prompt, &settings)).unwrap();
    for field in
        ["model", "input", "instructions", "tools", "parallel_tool_calls", "reasoning", "text"]
    {
        assert_eq!(compact[field], normal[field], "{field}");
    }
    assert_eq!(compact["service_tier"], "priority");
    assert_eq!(compact["text"]["verbosity"], "low");
    assert!(compact.get("prompt_cache_key").is_none());
    assert!(compact.get("stream").is_none());
}

#[test]
fn input_as_a_string_is_one_user_message() {
    let request: ResponsesApiRequest<'_> =
        serde_json::from_str(r#"{"model":"m","input":"hello there"}"#).unwrap();
    assert_eq!(request.input.len(), 1);
    let item = request.input[0].as_ref();
    assert_eq!((item.role(), item.message_text().as_deref()), (Some("user"), Some("hello there")));
    assert_eq!(
        serde_json::to_value(&request).unwrap()["input"],
        json!([{"role": "user", "content": "hello there"}])
    );
    assert_eq!(request.instructions, "");
    let compact: CompactRequest<'_> =
        serde_json::from_str(r#"{"model":"m","input":"compact me"}"#).unwrap();
    assert_eq!(compact.input[0].message_text().as_deref(), Some("compact me"));
}

#[test]
fn input_may_be_absent() {
    let request: ResponsesApiRequest<'_> =
        serde_json::from_str(r#"{"model":"m","previous_response_id":"resp_1"}"#).unwrap();
    assert!(request.input.is_empty());
    let err =
        serde_json::from_str::<ResponsesApiRequest<'_>>(r#"{"model":"m","input":5}"#).unwrap_err();
    assert!(err.to_string().contains("a list of input items or a string"), "{err}");
}
