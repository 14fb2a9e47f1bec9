//! What Compactor writes, checked against an independent definition of the Responses API: the
//! testkit's events and answers in the public forms (normal turns, compaction with
//! `compaction_trigger`, server-managed compaction, `/responses/compact`) and the requests
//! Compactor's client sends each deserialize into `async-openai`'s Responses types, and those
//! types read back no field differently from the JSON (nothing mistyped or misplaced). The seed's
//! `context_compaction` form is not in the public schema and is not checked here.

use async_openai::types::responses::{
    CompactResource, CompactResponseRequest, CreateResponse, Item, OutputItem, Response,
    ResponseStreamEvent,
};
use compactor_client::{KeySource, ModelClient, ProviderConfig, SecretString};
use compactor_protocol::{
    ContentItem, ContextManagement, Prompt, Reasoning, ResponseItem, TurnSettings, owned_items,
};
use compactor_testkit::events::{
    ev_assistant_message, ev_compacting, ev_compaction, ev_completed, ev_completed_with_usage,
    ev_content_part_added, ev_content_part_done, ev_custom_tool_call,
    ev_custom_tool_call_input_delta, ev_failed, ev_function_call, ev_incomplete,
    ev_message_item_added, ev_output_text_delta, ev_output_text_done, ev_reasoning_item,
    ev_reasoning_item_added, ev_reasoning_summary_text_delta, ev_reasoning_text_delta,
    ev_response_created, ev_response_in_progress, stamp_events, usage,
};
use compactor_testkit::{ReferenceModelConfig, TestServer, ToolCallPolicy};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::common::bounded;

/// Deserializes `json` into `T`, then checks that `T` written back is contained in `json`: every
/// field `T` knows has the same value in `json` (fields `T` does not model are allowed).
#[track_caller]
fn conforms<T: DeserializeOwned + serde::Serialize>(what: &str, json: &Value) -> T {
    let typed: T = serde_json::from_value(json.clone())
        .unwrap_or_else(|err| panic!("{what} does not deserialize: {err}\n{json:#}"));
    let back = serde_json::to_value(&typed).unwrap();
    if let Err(path) = contained(&back, json, "$") {
        panic!("{what}: async-openai reads {path} differently\nours: {json:#}\ntheirs: {back:#}");
    }
    typed
}

/// Whether `theirs` (async-openai's serialization) agrees with `ours` on every field both have:
/// objects key by key (a field of theirs that ours omits was optional, or deserialization would
/// have failed), arrays element by element, numbers by value, the rest equal. `Err` names the
/// first path that differs.
fn contained(theirs: &Value, ours: &Value, path: &str) -> Result<(), String> {
    match (theirs, ours) {
        (Value::Object(theirs), Value::Object(ours)) => {
            for (key, value) in theirs {
                if let Some(mine) = ours.get(key) {
                    contained(value, mine, &format!("{path}.{key}"))?;
                }
            }
            Ok(())
        }
        (Value::Array(theirs), Value::Array(ours)) if theirs.len() == ours.len() => theirs
            .iter()
            .zip(ours)
            .enumerate()
            .try_for_each(|(i, (a, b))| contained(a, b, &format!("{path}[{i}]"))),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        (a, b) if a == b => Ok(()),
        _ => Err(path.to_owned()),
    }
}

/// Checks every event of a stream; returns them typed.
#[track_caller]
fn conforming_events(case: &str, events: &[Value]) -> Vec<ResponseStreamEvent> {
    events
        .iter()
        .map(|event| {
            let what = format!("{case}: {}", event["type"]);
            conforms(&what, event)
        })
        .collect()
}

/// The JSON payloads of an SSE body, in order.
fn sse_payloads(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|block| {
            let data: Vec<&str> = block
                .lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

async fn reference_server(tool_calls: ToolCallPolicy) -> TestServer {
    let model = ReferenceModelConfig { tool_calls, ..ReferenceModelConfig::default() };
    crate::common::enforcing_reference_model(
        model,
        crate::common::Options::default().context_window,
    )
    .await
}

/// POSTs `body` to `url` and returns the answer's text, which must be a success.
async fn post(url: &str, body: &Value) -> String {
    let response = bounded(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send(),
    )
    .await
    .unwrap();
    let status = response.status();
    let text = bounded(response.text()).await.unwrap();
    assert!(status.is_success(), "{url}: {status}: {text}");
    text
}

/// Streams one request from the reference model and returns its events.
async fn stream_events(server: &TestServer, request: &Value) -> Vec<Value> {
    let mut body = request.clone();
    body["stream"] = json!(true);
    sse_payloads(&post(&server.responses_url(), &body).await)
}

fn user(text: &str) -> Value {
    json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

fn types_of(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["type"].as_str().unwrap_or("?")).collect()
}

/// The `response` of the stream's `response.completed`, typed.
fn completed_response(events: &[ResponseStreamEvent]) -> &Response {
    events
        .iter()
        .find_map(|event| match event {
            ResponseStreamEvent::ResponseCompleted(completed) => Some(&completed.response),
            _ => None,
        })
        .expect("no response.completed")
}

#[tokio::test]
async fn reference_model_text_and_tool_turns() {
    let server = reference_server(ToolCallPolicy::OnUserText {
        trigger: "run the tool".to_owned(),
        name: "shell".to_owned(),
        arguments: "{\"cmd\":\"ls\"}".to_owned(),
    })
    .await;
    let tools = json!([{"type": "function", "name": "shell", "strict": false, "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]);

    let text = stream_events(
        &server,
        &json!({"model": "gpt-test", "input": [user("hello there")], "tools": tools}),
    )
    .await;
    let mut kinds = types_of(&text);
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let typed = conforming_events("text turn", &text);
    let response = completed_response(&typed);
    assert!(matches!(response.output.as_slice(), [OutputItem::Message(_)]), "{response:?}");
    assert!(response.usage.is_some());

    let tool = stream_events(
        &server,
        &json!({"model": "gpt-test", "input": [user("please run the tool")], "tools": tools}),
    )
    .await;
    let typed = conforming_events("tool turn", &tool);
    let response = completed_response(&typed);
    match response.output.as_slice() {
        [OutputItem::FunctionCall(call)] => {
            assert_eq!(
                (call.name.as_str(), call.arguments.as_str()),
                ("shell", "{\"cmd\":\"ls\"}")
            );
        }
        other => panic!("expected one function call, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reference_model_compaction_with_compaction_trigger() {
    let server = reference_server(ToolCallPolicy::Never).await;
    let input = json!([
        user("first task"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
        {"type": "compaction_trigger"},
    ]);
    let events = stream_events(&server, &json!({"model": "gpt-test", "input": input})).await;
    let typed = conforming_events("compaction_trigger", &events);
    let response = completed_response(&typed);
    match response.output.as_slice() {
        [OutputItem::Compaction(item)] => assert!(!item.encrypted_content.is_empty()),
        other => panic!("expected one compaction item, got {other:?}"),
    }
    // The sealed item is accepted back as input, in the public input form.
    let sealed =
        events.iter().find(|e| e["type"] == "response.output_item.done").unwrap()["item"].clone();
    let next =
        stream_events(&server, &json!({"model": "gpt-test", "input": [sealed, user("next task")]}))
            .await;
    conforming_events("after compaction", &next);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reference_model_server_managed_compaction() {
    let server = reference_server(ToolCallPolicy::Never).await;
    let long = "words of an earlier task ".repeat(400);
    let request = json!({
        "model": "gpt-test",
        "input": [user(&long), user("next task")],
        "context_management": [{"type": "compaction", "compact_threshold": 1000}],
    });
    let events = stream_events(&server, &request).await;
    let typed = conforming_events("server-managed compaction", &events);
    assert!(
        typed.iter().any(|event| matches!(event, ResponseStreamEvent::CompactionCompacting(_))),
        "{:?}",
        types_of(&events)
    );
    let response = completed_response(&typed);
    assert!(matches!(response.output.first(), Some(OutputItem::Compaction(_))), "{response:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reference_model_compact_endpoint() {
    let server = reference_server(ToolCallPolicy::Never).await;
    let request = json!({
        "model": "gpt-test",
        "input": [
            user("first task"),
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
            user("second task"),
        ],
        "instructions": "You are a coding agent.",
    });
    let answer: Value = serde_json::from_str(&post(&server.compact_url(), &request).await).unwrap();
    // The documented answer is the user messages, then one compaction item; async-openai 0.43
    // types `output` as output items, whose messages are assistant messages only. So each item is
    // checked as an `Item`, and the envelope with the compaction item alone.
    let output = answer["output"].as_array().unwrap();
    let items: Vec<Item> = output
        .iter()
        .enumerate()
        .map(|(i, item)| conforms(&format!("/responses/compact output[{i}]"), item))
        .collect();
    match items.as_slice() {
        [users @ .., Item::Compaction(compaction)] => {
            assert!(!compaction.encrypted_content.is_empty());
            assert_eq!(users.len(), 2, "{items:?}");
            assert!(users.iter().all(|item| matches!(item, Item::Message(_))), "{items:?}");
        }
        other => panic!("expected user messages and a compaction item, got {other:?}"),
    }
    let mut envelope = answer.clone();
    envelope["output"] = json!([output.last().unwrap()]);
    let typed: CompactResource = conforms("the /responses/compact answer", &envelope);
    assert_eq!(typed.object, "response.compaction");
    server.shutdown().await.unwrap();
}

#[test]
fn scripted_event_builders() {
    let completed = ev_completed_with_usage("resp_1", usage(120, 30));
    let batches = [
        (
            "a text message",
            vec![
                ev_response_created("resp_1"),
                ev_response_in_progress("resp_1"),
                ev_message_item_added("msg_1"),
                ev_content_part_added("msg_1"),
                ev_output_text_delta("msg_1", "Hel"),
                ev_output_text_delta("msg_1", "lo"),
                ev_output_text_done("msg_1", "Hello"),
                ev_content_part_done("msg_1", "Hello"),
                ev_assistant_message("msg_1", "Hello"),
                completed,
            ],
        ),
        (
            "reasoning and tool calls",
            vec![
                ev_response_created("resp_2"),
                ev_reasoning_item_added("rs_1", &[]),
                ev_reasoning_summary_text_delta("rs_1", "Thinking", 0),
                ev_reasoning_text_delta("rs_1", "raw", 0),
                ev_reasoning_item("rs_1", &["Thinking"], &["raw"]),
                ev_function_call("call_1", "shell", "{\"cmd\":\"ls\"}"),
                ev_custom_tool_call_input_delta("ctc_call_2", "call_2", "*** Begin Patch"),
                ev_custom_tool_call("call_2", "apply_patch", "*** Begin Patch"),
                ev_completed("resp_2"),
            ],
        ),
        (
            "a compaction item",
            vec![
                ev_response_created("resp_3"),
                ev_compacting("cmp_1"),
                ev_compaction("cmp_1", "ENCRYPTED"),
                ev_completed("resp_3"),
            ],
        ),
        (
            "a failed response",
            vec![ev_response_created("resp_4"), ev_failed("resp_4", "server_error", "boom")],
        ),
        (
            "an incomplete response",
            vec![ev_response_created("resp_5"), ev_incomplete("resp_5", "max_output_tokens")],
        ),
    ];
    for (case, events) in batches {
        conforming_events(case, &stamp_events(events));
    }
}

/// A client of `server` over HTTP.
fn client_of(server: &TestServer) -> ModelClient {
    let mut config = ProviderConfig::new("testkit", server.base_url());
    config.key = KeySource::Value(SecretString::new("sk-test-key"));
    ModelClient::builder(config, "thread-openai-types").build().unwrap()
}

#[tokio::test]
async fn client_requests_deserialize_as_create_and_compact_requests() {
    let server = reference_server(ToolCallPolicy::Never).await;
    let client = client_of(&server);
    let prompt = Prompt {
        input: owned_items([
            ResponseItem::developer_text("<permissions instructions>"),
            ResponseItem::user_text("list the files"),
            serde_json::from_value(json!({"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thinking."}], "encrypted_content": "ENC"})).unwrap(),
            serde_json::from_value(json!({"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "shell", "arguments": "{}"})).unwrap(),
            serde_json::from_value(json!({"type": "function_call_output", "call_id": "call_1", "output": "a.txt"})).unwrap(),
            ResponseItem::Message {
                id: None,
                role: "user".to_owned(),
                content: vec![
                    ContentItem::InputText { text: "and this image?".to_owned() },
                    ContentItem::InputImage { image_url: "data:image/png;base64,iVBORw0KGgo=".to_owned(), detail: None },
                ],
                phase: None,
                extra: Default::default(),
            },
        ]),
        tools: vec![json!({"type": "function", "name": "shell", "strict": false, "parameters": {"type": "object"}})],
        parallel_tool_calls: true,
        base_instructions: "You are a coding agent.".to_owned(),
        ..Prompt::default()
    };
    let settings = TurnSettings {
        model: "gpt-test".to_owned(),
        reasoning: Some(Reasoning {
            effort: Some("medium".to_owned()),
            summary: Some("auto".to_owned()),
        }),
        service_tier: Some("priority".to_owned()),
        verbosity: Some("low".to_owned()),
        context_management: Some(vec![ContextManagement::Compaction {
            compact_threshold: 100_000,
        }]),
    };
    let mut session = client.new_session();
    let mut stream = bounded(session.stream(&prompt, &settings)).await.unwrap();
    while let Some(event) = bounded(stream.next()).await {
        event.unwrap();
    }
    let compacted = bounded(client.compact(&prompt, &settings)).await.unwrap();
    assert!(compacted.iter().any(ResponseItem::is_compaction));

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let create: CreateResponse = conforms("the /responses request", requests[0].body_json());
    assert_eq!(create.model.as_deref(), Some("gpt-test"));
    conforms::<CompactResponseRequest>("the /responses/compact request", requests[1].body_json());
    server.shutdown().await.unwrap();
}
