//! `serve` answers a plain HTTP client with a valid SSE stream and a WebSocket client on the
//! same port.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::Served;

const WAIT: Duration = Duration::from_secs(20);

fn request() -> Value {
    json!({
        "model": "compactor-reference",
        "instructions": "Be brief.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]}],
        "tools": [],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "store": false,
    })
}

/// Checks one response's events: created first, completed last, increasing sequence numbers,
/// an assistant message in between.
fn check_events(events: &[Value]) {
    let types: Vec<&str> = events.iter().map(|event| event["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    assert!(types.contains(&"response.output_text.delta"), "{types:?}");
    let numbers: Vec<u64> =
        events.iter().map(|event| event["sequence_number"].as_u64().unwrap()).collect();
    assert!(numbers.windows(2).all(|pair| pair[0] < pair[1]), "{numbers:?}");
    let completed = &events[events.len() - 1]["response"];
    assert_eq!(completed["status"], "completed");
    let text = completed["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("hello there"), "{text}");
    assert!(completed["usage"]["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_sse_and_websocket_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path()).await;

    // Plain HTTP + SSE.
    let client = reqwest::Client::new();
    let mut body = request();
    body["stream"] = Value::Bool(true);
    let response = tokio::time::timeout(
        WAIT,
        client.post(format!("{}/responses", served.base_url)).json(&body).send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let text = tokio::time::timeout(WAIT, response.text()).await.unwrap().unwrap();
    let mut events = Vec::new();
    for block in text.split("\n\n").filter(|block| !block.trim().is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event: ") {
                name = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("data: ") {
                data = Some(value.to_owned());
            }
        }
        let event: Value = serde_json::from_str(&data.expect("every SSE block has data")).unwrap();
        if let Some(name) = name {
            assert_eq!(event["type"], name.as_str(), "event: and the data's type agree");
        }
        events.push(event);
    }
    check_events(&events);

    // WebSocket on the same port.
    let ws_url = served.base_url.replacen("http://", "ws://", 1) + "/responses";
    let (mut socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
        .await
        .unwrap()
        .unwrap();
    let mut create = request();
    create["type"] = Value::from("response.create");
    socket.send(Message::text(create.to_string())).await.unwrap();
    let mut events = Vec::new();
    while events.last().is_none_or(|event: &Value| event["type"] != "response.completed") {
        let frame = tokio::time::timeout(WAIT, socket.next()).await.unwrap().unwrap().unwrap();
        if let Message::Text(text) = frame {
            events.push(serde_json::from_str(text.as_str()).unwrap());
        }
    }
    check_events(&events);
    socket.close(None).await.unwrap();

    assert_eq!(served.stop().await, 0);
}
