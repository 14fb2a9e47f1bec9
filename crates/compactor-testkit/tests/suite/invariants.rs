//! Invariant violations: recorded with a clear message, answered 400, reported by the helpers.

use std::panic::{AssertUnwindSafe, catch_unwind};

use compactor_testkit::events::{ev_completed, ev_function_call, ev_response_created};
use compactor_testkit::{Error, TestServer, WsConnectionScript};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{bounded, create, post, request, user, ws_connect, ws_recv_response, ws_send};

#[tokio::test]
async fn orphan_output_over_http() {
    let server = TestServer::reference_model().await.unwrap();
    let input =
        [user("hi"), json!({"type": "function_call_output", "call_id": "call_9", "output": "x"})];
    let response = post(&server.responses_url(), &request(&input)).await;
    assert_eq!(response.status(), 400);
    let body: Value = bounded(response.json()).await.unwrap();
    let expected =
        r#"input[1] function_call_output for call_id "call_9" has no matching call before it"#;
    assert_eq!(body["error"]["code"], "testkit_protocol_violation");
    assert!(body["error"]["message"].as_str().unwrap().ends_with(expected));

    let violations = server.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].context, "POST /v1/responses request #0");
    assert_eq!(violations[0].message, expected);

    match server.check_no_violations() {
        Err(Error::Violations { count: 1, details }) => {
            assert_eq!(details, format!("POST /v1/responses request #0: {expected}"));
        }
        other => panic!("expected the violation, got {other:?}"),
    }
    let panic = catch_unwind(AssertUnwindSafe(|| server.assert_no_violations())).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains(expected), "{message}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn call_without_output_on_compact() {
    let server = TestServer::reference_model().await.unwrap();
    let input = [
        user("hi"),
        json!({"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}),
    ];
    let response = post(&server.compact_url(), &json!({"model": "m", "input": input})).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        server.violations()[0].to_string(),
        r#"POST /v1/responses/compact request #0: input[1] function_call "shell" (call_id "c1") has no output after it"#
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn incremental_websocket_requests_are_checked_on_the_full_input() {
    let server = TestServer::scripted().await.unwrap();
    let call = vec![
        ev_response_created("resp_1"),
        ev_function_call("call_1", "shell", "{}"),
        ev_completed("resp_1"),
    ];
    server.push_ws_connection(WsConnectionScript::new([
        call.clone(),
        vec![ev_response_created("resp_2"), ev_completed("resp_2")],
        vec![],
        vec![ev_response_created("resp_3"), ev_completed("resp_3")],
    ]));
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("go")])).await;
    ws_recv_response(&mut socket).await;

    // The call is in resp_1's output, but the client answers nothing: the full input has a call
    // without output.
    let mut next = create(&[user("again")]);
    next["previous_response_id"] = json!("resp_1");
    ws_send(&mut socket, &next).await;
    let frame = &ws_recv_response(&mut socket).await[0];
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["status"], 400);
    assert_eq!(frame["error"]["code"], "testkit_protocol_violation");

    // A response.processed for a response that never completed here, and an unknown previous id.
    ws_send(&mut socket, &json!({"type": "response.processed", "response_id": "resp_2"})).await;
    server.wait_for_ws_message(0, 2).await.unwrap();
    let mut unknown = create(&[user("x")]);
    unknown["previous_response_id"] = json!("resp_nope");
    ws_send(&mut socket, &unknown).await;
    assert_eq!(ws_recv_response(&mut socket).await.last().unwrap()["type"], "response.completed");

    let messages: Vec<String> = server.violations().iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            r#"websocket connection 0 message 1: input[1] function_call "shell" (call_id "call_1") has no output after it"#,
            r#"websocket connection 0 message 2: response.processed names "resp_2", which did not complete on this connection"#,
            r#"websocket connection 0 message 3: previous_response_id "resp_nope" is unknown"#,
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_bodies_and_messages() {
    let server = TestServer::reference_model().await.unwrap();
    let response = bounded(
        crate::common::client()
            .post(server.responses_url())
            .header("content-type", "application/json")
            .body("{not json")
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &json!({"type": "response.cancel"})).await;
    assert_eq!(ws_recv_response(&mut socket).await[0]["status"], 400);
    let violations = server.violations();
    assert_eq!(violations.len(), 2);
    assert!(
        violations[0].message.starts_with("the body is not a Responses request"),
        "{violations:?}"
    );
    assert!(
        violations[1].message.starts_with("not a response.create or response.processed message")
    );
    server.shutdown().await.unwrap();
}
