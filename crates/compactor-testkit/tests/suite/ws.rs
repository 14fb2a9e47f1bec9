//! WebSocket: one event per text frame, slots, handshakes, HTTP on the same port, closing.

use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_function_call, ev_response_created,
};
use compactor_testkit::{AfterSlots, TestServer, WsConnectionScript};
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{
    create, kinds, post, request, sse_events, user, ws_connect, ws_next, ws_recv_response, ws_send,
};

#[tokio::test]
async fn one_event_per_text_frame_and_slots() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([
            vec![ev_response_created("resp_prewarm"), ev_completed("resp_prewarm")],
            vec![
                ev_response_created("resp_1"),
                ev_assistant_message("msg_1", "hi"),
                ev_completed("resp_1"),
            ],
            vec![],
        ])
        .with_response_header("x-codex-turn-state", "ts-ws"),
    );
    let mut request = server.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("x-client-request-id", "thread-9".parse().unwrap());
    request.headers_mut().insert("openai-beta", "responses_websockets=2026-02-06".parse().unwrap());
    let (mut socket, response) = Box::pin(tokio_tungstenite::connect_async(request)).await.unwrap();
    assert_eq!(response.headers()["x-codex-turn-state"], "ts-ws");

    ws_send(
        &mut socket,
        &json!({"type": "response.create", "model": "m", "input": [], "generate": false}),
    )
    .await;
    let prewarm = ws_recv_response(&mut socket).await;
    assert_eq!(kinds(&prewarm), ["response.created", "response.completed"]);

    ws_send(
        &mut socket,
        &json!({"type": "response.create", "model": "m", "input": [user("hi")], "previous_response_id": "resp_prewarm"}),
    )
    .await;
    let events = ws_recv_response(&mut socket).await;
    assert_eq!(
        kinds(&events),
        ["response.created", "response.output_item.done", "response.completed"]
    );
    let sequence: Vec<u64> =
        events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(sequence, [0, 1, 2], "numbered per response");

    ws_send(&mut socket, &json!({"type": "response.processed", "response_id": "resp_1"})).await;
    let processed = server.wait_for_ws_message(0, 2).await.unwrap();
    assert_eq!(processed.message_type(), Some("response.processed"));

    let handshakes = server.wait_for_handshakes(1).await.unwrap();
    assert_eq!(handshakes[0].uri.path(), "/v1/responses");
    assert_eq!(handshakes[0].header("x-client-request-id"), Some("thread-9"));
    assert_eq!(handshakes[0].header("openai-beta"), Some("responses_websockets=2026-02-06"));
    assert_eq!(handshakes[0].status, 101);
    let connection = server.connection(0).unwrap();
    assert_eq!(connection.messages.len(), 3);
    assert_eq!(connection.messages[1].previous_response_id(), Some("resp_prewarm"));
    assert_eq!(connection.messages[1].message_input_texts("user"), ["hi"]);

    // Slots are used up: the next message gets a Close frame.
    ws_send(&mut socket, &create(&[])).await;
    match ws_next(&mut socket).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close frame, got {other:?}"),
    }
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_and_websocket_share_one_port() {
    let server = TestServer::reference_model().await.unwrap();
    assert_eq!(server.ws_url(), format!("ws://{}/v1/responses", server.addr()));
    let mut socket = ws_connect(&server.ws_url()).await;
    let events =
        sse_events(post(&server.responses_url(), &request(&[user("over http")])).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");
    ws_send(&mut socket, &create(&[user("over websocket")])).await;
    let ws_events = ws_recv_response(&mut socket).await;
    assert_eq!(ws_events.last().unwrap()["type"], "response.completed");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.connections().len(), 1);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn keep_open_after_slots_and_several_connections() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(
        WsConnectionScript::new([vec![ev_response_created("a"), ev_completed("a")]])
            .after_slots(AfterSlots::KeepOpen),
    );
    server.push_ws_connection(WsConnectionScript::new([vec![
        ev_response_created("b"),
        ev_completed("b"),
    ]]));
    let mut first = ws_connect(&server.ws_url()).await;
    let mut second = ws_connect(&server.ws_url()).await;
    server.wait_for_handshakes(2).await.unwrap();
    ws_send(&mut second, &create(&[])).await;
    assert_eq!(ws_recv_response(&mut second).await[0]["response"]["id"], "b");
    ws_send(&mut first, &create(&[])).await;
    assert_eq!(ws_recv_response(&mut first).await[0]["response"]["id"], "a");
    // No slot left, but the connection stays open and records what arrives.
    ws_send(&mut first, &create(&[user("late")])).await;
    let late = server.wait_for_ws_message(0, 1).await.unwrap();
    assert_eq!(late.message_input_texts("user"), ["late"]);
    ws_send(&mut first, &json!({"type": "response.processed", "response_id": "a"})).await;
    server.wait_for_ws_message(0, 2).await.unwrap();
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn scripted_incremental_requests_are_resolved() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        vec![
            ev_response_created("resp_1"),
            ev_function_call("call_1", "shell", "{}"),
            ev_completed("resp_1"),
        ],
        vec![
            ev_response_created("resp_2"),
            ev_assistant_message("m", "done"),
            ev_completed("resp_2"),
        ],
    ]));
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("run ls")])).await;
    ws_recv_response(&mut socket).await;
    // Only the tool output is sent; its call is in the previous response's output.
    let incremental = json!({
        "type": "response.create",
        "model": "test-model",
        "previous_response_id": "resp_1",
        "input": [{"type": "function_call_output", "call_id": "call_1", "output": "a b"}],
    });
    ws_send(&mut socket, &incremental).await;
    let events = ws_recv_response(&mut socket).await;
    assert_eq!(events.last().unwrap()["type"], "response.completed");
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn refused_without_a_script_or_upgrade() {
    let server = TestServer::scripted().await.unwrap();
    let err = Box::pin(tokio_tungstenite::connect_async(server.ws_url())).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 400),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
    assert_eq!(server.handshakes()[0].status, 400);
    let plain = crate::common::bounded(crate::common::client().get(server.responses_url()).send())
        .await
        .unwrap();
    assert!(plain.status().is_client_error());
    let messages: Vec<String> = server.violations().iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0], "websocket handshake #0: no scripted WebSocket connection left");
    assert!(
        messages[1].starts_with("GET /v1/responses: not a WebSocket upgrade"),
        "{}",
        messages[1]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_close_completes_the_handshake() {
    let server = TestServer::reference_model().await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;
    crate::common::bounded(socket.close(None)).await.unwrap();
    match ws_next(&mut socket).await {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the close reply, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}
