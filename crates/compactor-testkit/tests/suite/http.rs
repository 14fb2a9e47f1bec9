//! HTTP: SSE framing, stamping on the wire, recording, routes.

use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_output_text_delta, ev_response_created,
};
use compactor_testkit::{CompactScript, Endpoint, HttpScript, TestServer};
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{bounded, client, kinds, post, request, sse_events, user};

#[tokio::test]
async fn sse_framing_and_stamping() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("resp_1"),
        ev_output_text_delta("msg_1", "Hel"),
        ev_output_text_delta("msg_1", "lo"),
        ev_assistant_message("msg_1", "Hello"),
        ev_completed("resp_1"),
    ]);
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let events = sse_events(response).await;
    assert_eq!(
        kinds(&events),
        [
            "response.created",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let sequence: Vec<u64> =
        events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(sequence, [0, 1, 2, 3, 4]);
    assert_eq!(events[1]["logprobs"], json!([]));
    assert_eq!(events[4]["response"]["output"], json!([events[3]["item"]]));
    let usage = &events[4]["response"]["usage"];
    assert_eq!(usage["input_tokens_details"], json!({"cached_tokens": 0, "cache_write_tokens": 0}));
    assert_eq!(usage["output_tokens_details"], json!({"reasoning_tokens": 0}));
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn raw_body_bytes_are_exact() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![json!({"type": "response.in_progress"}), ev_completed("r")]);
    let response = post(&server.responses_url(), &request(&[])).await;
    let body = bounded(response.text()).await.unwrap();
    assert!(
        body.starts_with(
            "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":0}\n\nevent: response.completed\ndata: {"
        ),
        "{body}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn requests_are_recorded() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http(
        HttpScript::new(vec![ev_response_created("r1"), ev_completed("r1")])
            .with_header("x-codex-turn-state", "ts-1")
            .with_header("openai-model", "served-model"),
    );
    server.push_compact(CompactScript::json(json!({"output": [user("kept")]})));
    let body = json!({
        "model": "test-model",
        "instructions": "be brief",
        "input": [
            user("hello"),
            {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
        "stream": true,
        "prompt_cache_key": "thread-1",
        "client_metadata": {"x-codex-installation-id": "abc"},
        "some_future_field": {"nested": true},
    });
    let response = bounded(
        client()
            .post(server.responses_url())
            .header("x-client-request-id", "thread-1")
            .header("authorization", "Bearer test-key")
            .json(&body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.headers()["x-codex-turn-state"], "ts-1");
    assert_eq!(response.headers()["openai-model"], "served-model");
    assert_eq!(kinds(&sse_events(response).await), ["response.created", "response.completed"]);
    let compact =
        post(&server.compact_url(), &json!({"model": "m", "input": [user("kept")]})).await;
    assert_eq!(compact.status(), 200);
    assert_eq!(
        bounded(compact.json::<serde_json::Value>()).await.unwrap(),
        json!({"output": [user("kept")]})
    );

    let requests = server.wait_for_requests(2).await.unwrap();
    let first = &requests[0];
    assert_eq!(
        (first.index, first.endpoint, first.method.as_str()),
        (0, Endpoint::Responses, "POST")
    );
    assert_eq!(first.path(), "/v1/responses");
    assert_eq!(first.header("x-client-request-id"), Some("thread-1"));
    assert_eq!(first.header("authorization"), Some("Bearer test-key"));
    assert!(!format!("{first:?}").contains("test-key"), "credentials stay out of Debug");
    assert_eq!(first.body_json(), &body);
    assert_eq!(first.instructions_text(), Some("be brief"));
    assert_eq!(first.message_input_texts("user"), ["hello"]);
    assert_eq!(first.inputs_of_type("function_call").len(), 1);
    assert_eq!(first.function_call_output("c1").unwrap()["output"], "ok");
    assert!(first.body_contains_text("some_future_field"));
    assert_eq!(requests[1].endpoint, Endpoint::Compact);
    assert_eq!(server.responses_requests().len(), 1);
    assert_eq!(server.compact_requests().len(), 1);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn routes_without_v1_prefix() {
    let server = TestServer::reference_model().await.unwrap();
    let base = format!("http://{}", server.addr());
    let events =
        sse_events(post(&format!("{base}/responses"), &request(&[user("hi")])).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");
    let compact =
        post(&format!("{base}/responses/compact"), &json!({"model": "m", "input": [user("hi")]}))
            .await;
    assert_eq!(compact.status(), 200);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_routes_are_violations() {
    let server = TestServer::scripted().await.unwrap();
    let response =
        bounded(client().get(format!("{}/models", server.base_url())).send()).await.unwrap();
    assert_eq!(response.status(), 404);
    let violations = server.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].to_string(), "GET /v1/models: no such route on this server");
    assert_eq!(server.requests()[0].endpoint, Endpoint::Other);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn unscripted_requests_are_violations() {
    let server = TestServer::scripted().await.unwrap();
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = bounded(response.json()).await.unwrap();
    assert_eq!(body["error"]["code"], "testkit_protocol_violation");
    let compact = post(&server.compact_url(), &json!({"model": "m", "input": []})).await;
    assert_eq!(compact.status(), 400);
    let messages: Vec<String> = server.violations().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "POST /v1/responses request #0: no scripted response left",
            "POST /v1/responses/compact request #1: no scripted compact response left",
        ]
    );
    server.shutdown().await.unwrap();
}
