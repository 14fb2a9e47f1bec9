//! Every fault kind, over HTTP and WebSocket, in scripted and reference-model mode.

use std::time::{Duration, Instant};

use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_output_text_delta, ev_response_created,
};
use compactor_testkit::{
    CompactScript, ErrorReply, Fault, HandshakeFault, HttpScript, TestServer, WsConnectionScript,
    WsSlot,
};
use futures::StreamExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{
    bounded, create, kinds, parse_sse, post, request, sse_events, user, ws_connect, ws_next,
    ws_recv, ws_recv_response, ws_send,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn script() -> Vec<Value> {
    vec![
        ev_response_created("resp_1"),
        ev_output_text_delta("msg_1", "a"),
        ev_output_text_delta("msg_1", "b"),
        ev_assistant_message("msg_1", "ab"),
        ev_completed("resp_1"),
    ]
}

async fn error_json(response: reqwest::Response) -> Value {
    bounded(response.json()).await.unwrap()
}

#[tokio::test]
async fn http_error_statuses_leave_the_script_for_the_retry() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(script());
    server.push_http_faults([Fault::rate_limited(MS(1200))]);
    server.push_http_faults([Fault::internal_error()]);
    server.push_http_faults([Fault::overloaded()]);
    server.push_http_faults([Fault::error(400, "context_length_exceeded", "too long")]);

    let limited = post(&server.responses_url(), &request(&[])).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "2");
    assert_eq!(limited.headers()["retry-after-ms"], "1200");
    let body = error_json(limited).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(body["error"]["message"].as_str().unwrap().contains("try again in 1.200s"));

    let failed = post(&server.responses_url(), &request(&[])).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(error_json(failed).await["error"]["type"], "server_error");

    let overloaded = post(&server.responses_url(), &request(&[])).await;
    assert_eq!(overloaded.status(), 503);
    assert_eq!(error_json(overloaded).await["error"]["code"], "server_is_overloaded");

    let rejected = post(&server.responses_url(), &request(&[])).await;
    assert_eq!(rejected.status(), 400);
    assert_eq!(error_json(rejected).await["error"]["code"], "context_length_exceeded");

    // The retry gets the script.
    let events = sse_events(post(&server.responses_url(), &request(&[])).await).await;
    assert_eq!(events.len(), 5);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn response_failed_and_incomplete_in_both_modes() {
    let scripted = TestServer::scripted().await.unwrap();
    scripted.push_http(
        HttpScript::new(script()).with_fault(Fault::failed("insufficient_quota", "no quota")),
    );
    let events = sse_events(post(&scripted.responses_url(), &request(&[])).await).await;
    assert_eq!(kinds(&events), ["response.created", "response.failed"]);
    assert_eq!(events[1]["response"]["id"], "resp_1");
    assert_eq!(
        events[1]["response"]["error"],
        json!({"code": "insufficient_quota", "message": "no quota"})
    );
    scripted.shutdown().await.unwrap();

    let model = TestServer::reference_model().await.unwrap();
    model.push_http_faults([Fault::failed(
        "context_length_exceeded",
        "Your input exceeds the context window",
    )]);
    model.push_http_faults([Fault::incomplete("max_output_tokens")]);
    let events = sse_events(post(&model.responses_url(), &request(&[user("hi")])).await).await;
    assert_eq!(kinds(&events), ["response.created", "response.failed"]);
    assert_eq!(events[1]["response"]["status"], "failed");
    assert_eq!(events[1]["response"]["error"]["code"], "context_length_exceeded");
    let events = sse_events(post(&model.responses_url(), &request(&[user("hi")])).await).await;
    assert_eq!(kinds(&events), ["response.created", "response.incomplete"]);
    assert_eq!(events[1]["response"]["incomplete_details"]["reason"], "max_output_tokens");
    let events = sse_events(post(&model.responses_url(), &request(&[user("hi")])).await).await;
    assert_eq!(kinds(&events).last().unwrap(), "response.completed");
    model.assert_no_violations();
    model.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_delays() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_http_faults([Fault::DelayBeforeResponse(MS(100))]);
    server.push_http_faults([Fault::DelayBeforeFirstEvent(MS(250))]);
    server.push_http_faults([Fault::DelayBetweenEvents(MS(25))]);

    let start = Instant::now();
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    assert!(start.elapsed() >= MS(100), "headers after {:?}", start.elapsed());
    sse_events(response).await;

    // The head comes at once; the first event only after the delay.
    let start = Instant::now();
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    let head = start.elapsed();
    let mut body = response.bytes_stream();
    bounded(body.next()).await.unwrap().unwrap();
    let first = start.elapsed();
    assert!(first >= MS(250), "first event after {first:?}");
    assert!(head + MS(100) < first, "head after {head:?}, first event after {first:?}");

    // A reference reply to "hi" has 9 events: 8 pauses.
    let start = Instant::now();
    let events = sse_events(post(&server.responses_url(), &request(&[user("hi")])).await).await;
    assert_eq!(events.len(), 9);
    assert!(start.elapsed() >= MS(200), "stream took {:?}", start.elapsed());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_close_and_drop_mid_stream() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http(HttpScript::new(script()).with_fault(Fault::CloseAfterEvents(2)));
    server.push_http(HttpScript::new(script()).with_fault(Fault::DropAfterEvents(1)));

    // A clean end of the body before response.completed.
    let events = sse_events(post(&server.responses_url(), &request(&[])).await).await;
    assert_eq!(kinds(&events), ["response.created", "response.output_text.delta"]);

    // A broken body: the first event arrives, then the connection breaks.
    let response = post(&server.responses_url(), &request(&[])).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = Vec::new();
    let mut broken = false;
    while let Some(chunk) = bounded(body.next()).await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    assert!(broken, "the body must end with an error");
    assert_eq!(kinds(&parse_sse(std::str::from_utf8(&received).unwrap())), ["response.created"]);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_malformed_event() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_http_faults([Fault::MalformedEventAt(1)]);
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    let body = bounded(response.text()).await.unwrap();
    let blocks: Vec<&str> = body.split_terminator("\n\n").collect();
    let unparsable: Vec<usize> = blocks
        .iter()
        .enumerate()
        .filter(|(_, block)| {
            let data = block.lines().find_map(|line| line.strip_prefix("data: ")).unwrap();
            serde_json::from_str::<Value>(data).is_err()
        })
        .map(|(at, _)| at)
        .collect();
    assert_eq!(unparsable, [1]);
    assert_eq!(blocks.len(), 10);
    assert!(blocks[9].contains("response.completed"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn compact_faults() {
    let server = TestServer::reference_model().await.unwrap();
    let body = json!({"model": "m", "input": [user("hi")]});
    server.push_compact_faults([Fault::rate_limited(MS(10))]);
    server.push_compact_faults([Fault::MalformedEventAt(0)]);
    server.push_compact_faults([Fault::DropAfterEvents(0)]);
    server.push_compact_faults([Fault::DelayBeforeResponse(MS(100))]);
    server.push_compact_faults([Fault::failed("context_length_exceeded", "too long")]);

    assert_eq!(post(&server.compact_url(), &body).await.status(), 429);
    let malformed = post(&server.compact_url(), &body).await;
    assert_eq!(malformed.status(), 200);
    let text = bounded(malformed.text()).await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    let dropped = post(&server.compact_url(), &body).await;
    assert!(bounded(dropped.bytes()).await.is_err());
    let start = Instant::now();
    assert_eq!(post(&server.compact_url(), &body).await.status(), 200);
    assert!(start.elapsed() >= MS(100));
    let failed = post(&server.compact_url(), &body).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(error_json(failed).await["error"]["code"], "context_length_exceeded");
    server.shutdown().await.unwrap();

    let scripted = TestServer::scripted().await.unwrap();
    scripted.push_compact(
        CompactScript::json(json!({"output": []})).with_fault(Fault::CloseAfterEvents(0)),
    );
    let closed = post(&scripted.compact_url(), &body).await;
    let text = bounded(closed.text()).await.unwrap();
    assert_eq!(text, "{\"outp", "half of the body, then a clean end");
    scripted.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_error_frames_with_status() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_ws_faults([Fault::rate_limited(MS(500))]);
    server.push_ws_faults([Fault::error(400, "websocket_connection_limit_reached", "60 minutes")]);
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("hi")])).await;
    let frame = ws_recv(&mut socket).await;
    assert_eq!(frame["type"], "error");
    assert_eq!(frame["status"], 429);
    assert_eq!(frame["error"]["code"], "rate_limit_exceeded");
    assert_eq!(frame["headers"], json!({"retry-after": "1", "retry-after-ms": "500"}));
    ws_send(&mut socket, &create(&[user("hi")])).await;
    let frame = ws_recv(&mut socket).await;
    assert_eq!(
        (frame["status"].clone(), frame["error"]["code"].clone()),
        (json!(400), json!("websocket_connection_limit_reached"))
    );
    // The connection stays open.
    ws_send(&mut socket, &create(&[user("hi")])).await;
    assert_eq!(ws_recv_response(&mut socket).await.last().unwrap()["type"], "response.completed");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_close_mid_stream() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(script()).with_fault(Fault::CloseAfterEvents(1))
    ]));
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[])).await;
    assert_eq!(ws_recv(&mut socket).await["type"], "response.created");
    match ws_next(&mut socket).await {
        Some(Ok(Message::Close(Some(_)))) => {}
        other => panic!("expected a close frame, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_drop_without_close_handshake() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_ws_faults([Fault::DropAfterEvents(2)]);
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("hi")])).await;
    assert_eq!(ws_recv(&mut socket).await["type"], "response.created");
    assert_eq!(ws_recv(&mut socket).await["type"], "response.output_item.added");
    match ws_next(&mut socket).await {
        Some(Err(tokio_tungstenite::tungstenite::Error::Protocol(_))) | None => {}
        other => panic!("expected a reset without a close frame, got {other:?}"),
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn websocket_malformed_failed_and_delays() {
    let server = TestServer::reference_model().await.unwrap();
    server.push_ws_faults([Fault::MalformedEventAt(0)]);
    server.push_ws_faults([Fault::failed("server_is_overloaded", "busy")]);
    server
        .push_ws_faults([Fault::DelayBeforeFirstEvent(MS(150)), Fault::DelayBetweenEvents(MS(20))]);
    let mut socket = ws_connect(&server.ws_url()).await;

    ws_send(&mut socket, &create(&[user("hi")])).await;
    match ws_next(&mut socket).await {
        Some(Ok(Message::Text(text))) => {
            assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
    assert_eq!(ws_recv_response(&mut socket).await.last().unwrap()["type"], "response.completed");

    ws_send(&mut socket, &create(&[user("hi")])).await;
    let events = ws_recv_response(&mut socket).await;
    assert_eq!(kinds(&events), ["response.created", "response.failed"]);
    assert_eq!(events[1]["response"]["error"]["code"], "server_is_overloaded");

    let start = Instant::now();
    ws_send(&mut socket, &create(&[user("hi")])).await;
    let events = ws_recv_response(&mut socket).await;
    assert_eq!(events.len(), 9);
    assert!(start.elapsed() >= MS(150 + 8 * 20), "took {:?}", start.elapsed());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn upgrade_refused_with_426_then_accepted() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([vec![
        ev_response_created("r"),
        ev_completed("r"),
    ]]));
    server.push_handshake_fault(HandshakeFault::Reject(ErrorReply::upgrade_required()));
    match bounded(Box::pin(tokio_tungstenite::connect_async(server.ws_url()))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 426);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "upgrade_required");
        }
        other => panic!("expected 426, got {other:?}"),
    }
    // The refused handshake left the connection script for the next one.
    server.push_handshake_fault(HandshakeFault::Delay(MS(150)));
    let start = Instant::now();
    let mut socket = ws_connect(&server.ws_url()).await;
    assert!(start.elapsed() >= MS(150));
    ws_send(&mut socket, &create(&[])).await;
    assert_eq!(ws_recv_response(&mut socket).await.len(), 2);
    let statuses: Vec<u16> = server.handshakes().iter().map(|handshake| handshake.status).collect();
    assert_eq!(statuses, [426, 101]);
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}
