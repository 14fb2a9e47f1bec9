//! What the official clients send, over HTTP and WebSocket: every request shape the Responses API
//! documents is answered, a malformed body gets the API's error naming the parameter, and a
//! model's context window is enforced as the API enforces it.

use compactor_protocol::ResponseItem;
use compactor_protocol::tokens::TokenCounter;
use compactor_testkit::{ContextWindows, Mode, ReferenceModelConfig, TestServer, TestServerConfig};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{bounded, kinds, post, sse_events, ws_connect, ws_recv_response, ws_send};

/// A request whose last user message says `text`, in each documented shape, with no
/// `instructions`.
fn shapes(text: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("input as a string", json!({"model": "m", "input": text})),
        (
            "typeless message",
            json!({"model": "m", "input": [
                {"role": "user", "content": [{"type": "input_text", "text": text}]}
            ]}),
        ),
        (
            "string content",
            json!({"model": "m", "input": [{"type": "message", "role": "user", "content": text}]}),
        ),
        (
            "typeless message with string content",
            json!({"model": "m", "input": [{"role": "user", "content": text}]}),
        ),
        (
            "an input_file part and an input_audio part",
            json!({"model": "m", "input": [{"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": text},
                {"type": "input_file", "file_id": "file_1", "filename": "notes.pdf"},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ]}]}),
        ),
    ]
}

/// Checks a completed answer to one of [`shapes`]: the reply quotes the user message, so the
/// model read it as one, and usage counts it.
#[track_caller]
fn check_answer(shape: &str, request: &Value, events: &[Value], text: &str) {
    assert_eq!(kinds(events).last().map(String::as_str), Some("response.completed"), "{shape}");
    let response = &events.last().unwrap()["response"];
    let reply = response["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(reply, format!("Reply to user message 1: \"{text}\"."), "{shape}");
    let input: Vec<ResponseItem> = match &request["input"] {
        Value::String(text) => {
            vec![serde_json::from_value(json!({"role": "user", "content": text})).unwrap()]
        }
        other => serde_json::from_value(other.clone()).unwrap(),
    };
    // The reference model counts its usage with o200k.
    let expected = TokenCounter::O200k.history_tokens("", &input);
    assert!(expected > 0);
    assert_eq!(response["usage"]["input_tokens"], expected, "{shape}");
}

#[tokio::test]
async fn every_documented_request_shape_is_answered_over_http() {
    let server = TestServer::reference_model().await.unwrap();
    for (shape, mut body) in shapes("hello there") {
        body["stream"] = json!(true);
        let events = sse_events(post(&server.responses_url(), &body).await).await;
        check_answer(shape, &body, &events, "hello there");
    }
    // `/responses/compact` takes the same input shapes.
    let compact = post(&server.compact_url(), &json!({"model": "m", "input": "compact me"})).await;
    assert_eq!(compact.status(), 200);
    let body: Value = bounded(compact.json()).await.unwrap();
    assert_eq!(body["output"][0], json!({"role": "user", "content": "compact me"}));
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_documented_request_shape_is_answered_over_websocket() {
    let server = TestServer::reference_model().await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;
    for (shape, mut body) in shapes("over the socket") {
        body["type"] = json!("response.create");
        ws_send(&mut socket, &body).await;
        let events = ws_recv_response(&mut socket).await;
        check_answer(shape, &body, &events, "over the socket");
    }
    drop(socket);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

/// Malformed bodies and the `(code, param)` the API answers them with.
fn malformed() -> Vec<(Value, &'static str, Option<&'static str>)> {
    vec![
        (json!({"input": "hi"}), "missing_required_parameter", Some("model")),
        (json!({"model": 5, "input": "hi"}), "invalid_type", Some("model")),
        (json!({"model": "m", "input": 5}), "invalid_type", Some("input")),
        (json!({"model": "m", "input": [], "tools": "shell"}), "invalid_type", Some("tools")),
        (
            json!({"model": "m", "reasoning": {"summary": ["auto"]}}),
            "invalid_type",
            Some("reasoning.summary"),
        ),
    ]
}

#[track_caller]
fn check_error(error: &Value, code: &str, param: Option<&str>) {
    let keys: Vec<&String> = error.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["type", "code", "message", "param"], "{error}");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], code, "{error}");
    assert_eq!(error["param"], param.map_or(Value::Null, Value::from), "{error}");
    let message = error["message"].as_str().unwrap();
    if let Some(param) = param {
        assert!(message.contains(&format!("'{param}'")), "the message names the field: {message}");
    }
}

#[tokio::test]
async fn a_malformed_body_gets_the_api_error_naming_the_field() {
    let server = TestServer::reference_model().await.unwrap();
    for (body, code, param) in malformed() {
        let response = post(&server.responses_url(), &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = bounded(response.json()).await.unwrap();
        check_error(&answer["error"], code, param);
    }
    let not_json = bounded(
        crate::common::client()
            .post(server.responses_url())
            .header("content-type", "application/json")
            .body("{\"model\":")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(not_json.status(), 400);
    check_error(&bounded(not_json.json::<Value>()).await.unwrap()["error"], "invalid_json", None);
    let compact = post(&server.compact_url(), &json!({"input": []})).await;
    assert_eq!(compact.status(), 400);
    check_error(
        &bounded(compact.json::<Value>()).await.unwrap()["error"],
        "missing_required_parameter",
        Some("model"),
    );

    // Over a WebSocket the same errors are the API's `error` event; the connection stays open.
    let mut socket = ws_connect(&server.ws_url()).await;
    for (mut body, code, param) in malformed() {
        body["type"] = json!("response.create");
        ws_send(&mut socket, &body).await;
        let events = ws_recv_response(&mut socket).await;
        assert_eq!(events.len(), 1, "{events:#?}");
        assert_eq!((&events[0]["type"], &events[0]["status"]), (&json!("error"), &json!(400)));
        check_error(&events[0]["error"], code, param);
    }
    ws_send(&mut socket, &json!({"type": "response.cancel"})).await;
    let events = ws_recv_response(&mut socket).await;
    check_error(&events[0]["error"], "invalid_value", Some("type"));
    ws_send(&mut socket, &json!({"type": "response.create", "model": "m", "input": "still open"}))
        .await;
    assert_eq!(kinds(&ws_recv_response(&mut socket).await).last().unwrap(), "response.completed");
    drop(socket);
    assert_eq!(server.violations().len(), 2 * malformed().len() + 3);
    server.shutdown().await.unwrap();
}

/// A reference model with `windows`.
async fn windowed(windows: ContextWindows) -> TestServer {
    TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig {
            context_windows: windows,
            ..ReferenceModelConfig::default()
        }),
        ..TestServerConfig::default()
    })
    .await
    .unwrap()
}

/// A user message of about `tokens` tokens, as the reference model counts them (o200k: one
/// token a word, and a few for the message around them).
fn message_of(tokens: usize) -> Value {
    json!({"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "word ".repeat(tokens)}
    ]})
}

#[tokio::test]
async fn a_request_over_the_window_fails_like_the_api_over_both_transports() {
    let server = windowed(ContextWindows::every_model(1_000).with_model("big", 100_000)).await;
    let fits = json!({"model": "m", "input": [message_of(900)], "stream": true});
    let events = sse_events(post(&server.responses_url(), &fits).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");

    let over = json!({"model": "m", "input": [message_of(1_100)], "stream": true});
    let response = post(&server.responses_url(), &over).await;
    assert_eq!(response.status(), 400);
    let error = bounded(response.json::<Value>()).await.unwrap()["error"].clone();
    assert_eq!(
        (&error["code"], &error["param"]),
        (&json!("context_length_exceeded"), &json!("input"))
    );
    assert_eq!(error["type"], "invalid_request_error");

    // A compaction request is a request like any other: over the window it fails too.
    let mut trigger = over.clone();
    trigger["input"].as_array_mut().unwrap().push(json!({"type": "context_compaction"}));
    assert_eq!(post(&server.responses_url(), &trigger).await.status(), 400);
    let compact =
        post(&server.compact_url(), &json!({"model": "m", "input": [message_of(1_100)]})).await;
    assert_eq!(compact.status(), 400);
    assert_eq!(
        bounded(compact.json::<Value>()).await.unwrap()["error"]["code"],
        "context_length_exceeded"
    );

    // Windows are per model.
    let mut big = over.clone();
    big["model"] = json!("big");
    let events = sse_events(post(&server.responses_url(), &big).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");

    // Over a WebSocket the response fails, and the connection goes on.
    let mut socket = ws_connect(&server.ws_url()).await;
    let mut create = over.clone();
    create["type"] = json!("response.create");
    create.as_object_mut().unwrap().remove("stream");
    ws_send(&mut socket, &create).await;
    let events = ws_recv_response(&mut socket).await;
    assert_eq!(kinds(&events), ["response.failed"]);
    let failed = &events[0]["response"];
    assert_eq!(
        (&failed["status"], &failed["error"]["code"]),
        (&json!("failed"), &json!("context_length_exceeded"))
    );
    create["input"] = json!([message_of(10)]);
    ws_send(&mut socket, &create).await;
    assert_eq!(kinds(&ws_recv_response(&mut socket).await).last().unwrap(), "response.completed");
    drop(socket);
    assert_eq!(server.refused_over_window(), 4);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_a_window_nothing_is_refused() {
    let server = TestServer::reference_model().await.unwrap();
    let long = json!({"model": "m", "input": [message_of(300_000)], "stream": true});
    let events = sse_events(post(&server.responses_url(), &long).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");
    server.shutdown().await.unwrap();
}
