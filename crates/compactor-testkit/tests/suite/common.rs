//! Client helpers shared by the tests: a plain reqwest client, an SSE reader that checks the
//! framing, and a WebSocket client.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound of every network wait in the tests.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A reqwest client that never uses a proxy (loopback only).
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(TIMEOUT).build().unwrap()
}

/// Awaits `future` or fails the test after [`TIMEOUT`].
pub(crate) async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future).await.expect("timed out")
}

/// POSTs `body` as JSON to `url`.
pub(crate) async fn post(url: &str, body: &Value) -> reqwest::Response {
    bounded(client().post(url).json(body).send()).await.unwrap()
}

/// Splits an SSE body into its events, asserting the framing of D44: every event is an
/// `event: <type>` line, a `data: <json>` line whose `type` matches, and a blank line.
#[track_caller]
pub(crate) fn parse_sse(body: &str) -> Vec<Value> {
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "body does not end with a blank line: {body:?}"
    );
    body.split_terminator("\n\n")
        .map(|block| {
            let lines: Vec<&str> = block.split('\n').collect();
            assert_eq!(lines.len(), 2, "an event is two lines: {block:?}");
            let kind = lines[0].strip_prefix("event: ").expect("event line");
            let data = lines[1].strip_prefix("data: ").expect("data line");
            let event: Value = serde_json::from_str(data).expect("data is JSON");
            assert_eq!(event["type"], kind, "event line matches the JSON type");
            event
        })
        .collect()
}

/// The events of an SSE response, after checking status and content type.
pub(crate) async fn sse_events(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    parse_sse(&bounded(response.text()).await.unwrap())
}

/// The `type`s of `events`.
pub(crate) fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|event| event["type"].as_str().unwrap_or("?").to_owned()).collect()
}

/// Connects a WebSocket to `url` with the headers a Responses client sends.
pub(crate) async fn ws_connect(url: &str) -> Ws {
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("openai-beta", "responses_websockets=2026-02-06".parse().unwrap());
    // Boxed: with rustls enabled elsewhere in the workspace the connect future is large.
    let (socket, response) =
        bounded(Box::pin(tokio_tungstenite::connect_async(request))).await.unwrap();
    assert_eq!(response.status(), 101);
    socket
}

/// Sends one JSON text frame.
pub(crate) async fn ws_send(socket: &mut Ws, message: &Value) {
    bounded(socket.send(Message::text(message.to_string()))).await.unwrap();
}

/// The next frame.
pub(crate) async fn ws_next(
    socket: &mut Ws,
) -> Option<Result<Message, tokio_tungstenite::tungstenite::Error>> {
    bounded(socket.next()).await
}

/// The next frame, which must be a JSON text frame.
pub(crate) async fn ws_recv(socket: &mut Ws) -> Value {
    match ws_next(socket).await {
        Some(Ok(Message::Text(text))) => {
            serde_json::from_str(&text).expect("one JSON event per frame")
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Receives events until (and including) a terminal one: `response.completed`,
/// `response.failed`, `response.incomplete` or a wrapped `error`.
pub(crate) async fn ws_recv_response(socket: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let event = ws_recv(socket).await;
        let kind = event["type"].as_str().unwrap_or_default().to_owned();
        events.push(event);
        if matches!(
            kind.as_str(),
            "response.completed" | "response.failed" | "response.incomplete" | "error"
        ) {
            return events;
        }
    }
}

/// A user message input item.
pub(crate) fn user(text: &str) -> Value {
    serde_json::json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})
}

/// A minimal Responses request body.
pub(crate) fn request(input: &[Value]) -> Value {
    serde_json::json!({"model": "test-model", "input": input, "stream": true})
}

/// A WebSocket `response.create` message.
pub(crate) fn create(input: &[Value]) -> Value {
    serde_json::json!({"type": "response.create", "model": "test-model", "input": input})
}
