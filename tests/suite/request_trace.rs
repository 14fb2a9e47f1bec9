//! Compaction traces hold the requests as the client sent them (D80): the logical request byte
//! for byte as an HTTP server received it, the WebSocket `response.create` as the server
//! received it, and analytics `bytes_sent` as the size of what went out; local compaction is
//! traced too (D82).

use std::path::{Path, PathBuf};

use compactor_core::{RemoteCompaction, SessionConfig};
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_context_compaction, ev_response_created,
};
use compactor_testkit::{TestServer, WsConnectionScript, WsSlot};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, session_config};

fn reply(id: &str, text: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_assistant_message(&format!("m-{id}"), text), ev_completed(id)]
}

fn compaction(id: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_context_compaction("cc-1", "ENC"), ev_completed(id)]
}

async fn harness(
    server: TestServer,
    transport: Transport,
    edit: impl FnOnce(&mut SessionConfig),
) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let options = Options { transport, response_processed: false, ..Options::default() };
    let mut config = session_config(&server, dir.path(), &options);
    // A verbosity makes `text` part of every request, so a body built without it differs.
    config.model.verbosity = Some("low".into());
    edit(&mut config);
    Harness::with_config(server, config, dir).await
}

/// The session's trace bundle.
async fn bundle(h: &Harness) -> PathBuf {
    h.session.flush().await.unwrap();
    let traces = h.dir.path().join("traces");
    std::fs::read_dir(&traces).unwrap().next().unwrap().unwrap().path()
}

fn trace_events(bundle: &Path) -> Vec<Value> {
    std::fs::read_to_string(bundle.join("trace.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The `payload` of every event of `kind`.
fn of_kind(events: &[Value], kind: &str) -> Vec<Value> {
    events.iter().filter(|e| e["payload"]["type"] == kind).map(|e| e["payload"].clone()).collect()
}

/// The bytes of the payload file `reference` cites, without the newline the trace appends.
fn payload_bytes(bundle: &Path, reference: &Value) -> Vec<u8> {
    let mut bytes = std::fs::read(bundle.join(reference["path"].as_str().unwrap())).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    bytes
}

#[tokio::test]
async fn v1_trace_holds_the_body_the_server_received() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_compact_json(json!({"output": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
        {"type": "compaction", "encrypted_content": "ENC_V1"}
    ]}));
    let mut h = harness(server, Transport::Http, |config| {
        config.features.remote_compaction_v2 = false;
    })
    .await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();

    let recorded = h.server.compact_requests();
    assert_eq!(recorded.len(), 1);
    let bundle = bundle(&h).await;
    let events = trace_events(&bundle);
    let started = of_kind(&events, "compaction_request_started");
    assert_eq!(started.len(), 1, "{events:#?}");
    assert_eq!(
        String::from_utf8(payload_bytes(&bundle, &started[0]["request_payload"])).unwrap(),
        String::from_utf8(recorded[0].body.to_vec()).unwrap(),
        "the logical request is the body, byte for byte"
    );
    assert!(started[0].get("wire_payload").is_none(), "over HTTP the body is the wire message");
    assert_eq!(recorded[0].body_json()["prompt_cache_key"], "thread-test");
    assert_eq!(recorded[0].body_json()["text"], json!({"verbosity": "low"}));
    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics[0].bytes_sent, recorded[0].body.len() as u64);
}

#[tokio::test]
async fn v2_http_trace_holds_the_body_the_server_received() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_sse(compaction("resp-compact"));
    let mut h = harness(server, Transport::Http, |_| {}).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();

    let recorded = h.server.responses_requests();
    assert_eq!(recorded.len(), 2);
    let request = &recorded[1];
    assert_eq!(request.inputs_of_type("context_compaction").len(), 1);
    let bundle = bundle(&h).await;
    let started = of_kind(&trace_events(&bundle), "compaction_request_started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        String::from_utf8(payload_bytes(&bundle, &started[0]["request_payload"])).unwrap(),
        String::from_utf8(request.body.to_vec()).unwrap(),
        "the logical request is the body, byte for byte"
    );
    assert!(started[0].get("wire_payload").is_none());
    assert_eq!(request.body_json()["prompt_cache_key"], "thread-test");
    assert_eq!(request.body_json()["stream"], true);
    assert_eq!(request.body_json()["text"], json!({"verbosity": "low"}));
    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics[0].bytes_sent, request.body.len() as u64);
}

#[tokio::test]
async fn v2_websocket_trace_holds_the_response_create_the_server_received() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(reply("resp-1", "first reply")),
        WsSlot::new(compaction("resp-compact")),
    ]));
    let mut h = harness(server, Transport::Ws, |_| {}).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();

    let messages = h.server.connection(0).unwrap().messages;
    assert_eq!(messages.len(), 2);
    let create = &messages[1];
    assert_eq!(create.previous_response_id(), Some("resp-1"), "an incremental request");
    let bundle = bundle(&h).await;
    let started = of_kind(&trace_events(&bundle), "compaction_request_started");
    assert_eq!(started.len(), 1);
    assert_eq!(
        String::from_utf8(payload_bytes(&bundle, &started[0]["wire_payload"])).unwrap(),
        create.text,
        "the wire message is the response.create, byte for byte"
    );
    // The logical request is the whole request in its HTTP form: the first request's input,
    // the first response's output (which the server already holds), then what the incremental
    // message sent.
    let logical: Value =
        serde_json::from_slice(&payload_bytes(&bundle, &started[0]["request_payload"])).unwrap();
    let input = logical["input"].as_array().unwrap();
    let (first, suffix) = (messages[0].input(), create.input());
    assert_eq!(input.len(), first.len() + 1 + suffix.len());
    assert_eq!(&input[..first.len()], first);
    assert_eq!(input[first.len()]["id"], "m-resp-1");
    assert_eq!(&input[first.len() + 1..], suffix);
    assert_eq!(suffix, [json!({"type": "context_compaction"})]);
    assert_eq!(logical["stream"], true);
    assert_eq!(logical["prompt_cache_key"], "thread-test");
    assert_eq!(logical["text"], json!({"verbosity": "low"}));
    assert!(logical.get("previous_response_id").is_none());
    assert!(logical.get("type").is_none());
    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics[0].bytes_sent, create.text.len() as u64, "the wire size");
}

#[tokio::test]
async fn local_compaction_writes_a_trace() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_sse(reply("resp-summary", "The bug is in the parser."));
    let mut h = harness(server, Transport::Http, |config| {
        config.remote_compaction = RemoteCompaction::Unsupported;
    })
    .await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();

    let recorded = h.server.responses_requests();
    assert_eq!(recorded.len(), 2);
    let bundle = bundle(&h).await;
    let events = trace_events(&bundle);
    let kinds: Vec<&str> = events.iter().map(|e| e["payload"]["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["compaction_request_started", "compaction_request_completed", "compaction_installed"]
    );
    let started = &events[0]["payload"];
    assert_eq!(
        String::from_utf8(payload_bytes(&bundle, &started["request_payload"])).unwrap(),
        String::from_utf8(recorded[1].body.to_vec()).unwrap()
    );
    let response: Value =
        serde_json::from_slice(&payload_bytes(&bundle, &events[1]["payload"]["response_payload"]))
            .unwrap();
    assert_eq!(
        response["output_items"][0]["content"][0]["text"], "The bug is in the parser.",
        "the summarization's output"
    );
    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics[0].bytes_sent, recorded[1].body.len() as u64);
}
