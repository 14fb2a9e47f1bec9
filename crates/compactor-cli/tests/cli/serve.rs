//! `serve` answers a plain HTTP client with a valid SSE stream and a WebSocket client on the
//! same port; it stays small over many requests and drops clients that send too slowly.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// The resident memory of process `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line["VmRSS:".len()..].trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Sends `count` small streaming requests, a few at a time, and reads every answer to its end.
async fn requests(client: &reqwest::Client, url: &str, count: usize) {
    let mut body = request();
    body["stream"] = Value::Bool(true);
    let body = &body;
    futures::stream::iter(0..count)
        .for_each_concurrent(4, |_| async move {
            let response = client.post(url).json(body).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        })
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heavy_serve_memory_stays_flat_over_10_000_requests() {
    let dir = tempfile::tempdir().unwrap();
    let served = Served::start(dir.path()).await;
    let pid = served.child.id().unwrap();
    let url = format!("{}/responses", served.base_url);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    requests(&client, &url, 1_000).await;
    let at_1_000 = rss_kb(pid);
    requests(&client, &url, 9_000).await;
    let at_10_000 = rss_kb(pid);
    let growth = at_10_000.saturating_sub(at_1_000);
    assert!(
        growth < 20 * 1024,
        "RSS grew by {growth} kB from request 1 000 ({at_1_000} kB) to 10 000 ({at_10_000} kB)"
    );
    assert_eq!(served.stop().await, 0);
}

/// Connects to `base_url`'s server, sends `head` at once and then `trickled` one byte a second,
/// and returns how long the server took to close the connection and what it answered.
async fn trickle(base_url: &str, head: &[u8], trickled: &[u8]) -> (Duration, String) {
    let addr = base_url.trim_start_matches("http://").trim_end_matches("/v1");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    write.write_all(head).await.unwrap();
    let start = Instant::now();
    let trickled = trickled.to_vec();
    let writer = tokio::spawn(async move {
        for byte in trickled {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, read.read_to_end(&mut answer)).await;
    let took = start.elapsed();
    writer.abort();
    (took, String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_a_byte_a_second_is_disconnected() {
    let dir = tempfile::tempdir().unwrap();
    let served =
        Served::start_with(dir.path(), &["--header-timeout", "2", "--body-timeout", "2"]).await;
    // Its request head: cut off within the header timeout, not held while it trickles.
    let head =
        b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n";
    let (took, _) = trickle(&served.base_url, b"", head).await;
    assert!(took < Duration::from_millis(3_500), "head: disconnected after {took:?}");
    // Its body: a 408, then the connection goes.
    let head = b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n";
    let (took, answer) = trickle(&served.base_url, head, &[b' '; 200]).await;
    assert!(took < Duration::from_millis(3_500), "body: disconnected after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(served.stop().await, 0);
}
