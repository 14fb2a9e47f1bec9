//! A server that stays small: bounded records and `previous_response_id` memory, read timeouts
//! that drop slow clients, and a close with 1003 for a binary WebSocket frame.

use std::time::{Duration, Instant};

use compactor_testkit::{Mode, RecordLimits, ReferenceModelConfig, TestServer, TestServerConfig};
use futures::{SinkExt, StreamExt};
use pretty_assertions::assert_eq;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{bounded, create, post, request, user, ws_connect, ws_recv_response, ws_send};

fn model(record: RecordLimits) -> TestServerConfig {
    TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig::default()),
        record,
        ..TestServerConfig::default()
    }
}

#[tokio::test]
async fn records_keep_the_newest_entries_within_their_limits() {
    let limits = RecordLimits {
        requests: 2,
        connections: 1,
        messages_per_connection: 2,
        violations: 1,
        ..RecordLimits::default()
    };
    let server = TestServer::start(model(limits)).await.unwrap();
    for text in ["one", "two", "three"] {
        let response = post(&server.responses_url(), &request(&[user(text)])).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let kept: Vec<usize> = server.requests().iter().map(|r| r.index).collect();
    assert_eq!(kept, [1, 2], "the newest two, at their positions");
    assert!(server.requests()[1].body_contains_text("three"));
    assert_eq!(server.wait_for_requests(3).await.unwrap().len(), 2, "waits count every request");
    for _ in 0..2 {
        let mut socket = ws_connect(&server.ws_url()).await;
        for text in ["a", "b", "c"] {
            ws_send(&mut socket, &create(&[user(text)])).await;
            ws_recv_response(&mut socket).await;
        }
    }
    let connections = server.connections();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].index, 1);
    let messages: Vec<usize> = connections[0].messages.iter().map(|m| m.index).collect();
    assert_eq!(messages, [1, 2]);
    assert_eq!(server.wait_for_ws_message(1, 2).await.unwrap().index, 2);
    assert!(server.connection(0).is_none());
    assert_eq!(server.handshakes().len(), 1);
    assert_eq!(server.model_requests(), 9);
    // Violations: only the newest is kept, all are counted.
    for _ in 0..2 {
        post(&format!("http://{}/nowhere", server.addr()), &json!({})).await;
    }
    assert_eq!(server.violations().len(), 1);
    assert_eq!(server.violation_count(), 2);
    assert!(server.check_no_violations().is_err());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_byte_budget_keeps_at_least_the_newest_request() {
    let limits = RecordLimits { request_bytes: 1, ..RecordLimits::default() };
    let server = TestServer::start(model(limits)).await.unwrap();
    for text in ["one", "two"] {
        post(&server.responses_url(), &request(&[user(text)])).await.bytes().await.unwrap();
    }
    let kept: Vec<usize> = server.requests().iter().map(|r| r.index).collect();
    assert_eq!(kept, [1]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn none_records_nothing_and_still_serves() {
    let server = TestServer::start(model(RecordLimits::none())).await.unwrap();
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("hi")])).await;
    let events = ws_recv_response(&mut socket).await;
    let id = events.last().unwrap()["response"]["id"].as_str().unwrap().to_owned();
    // Chaining still works: that memory is not a record.
    ws_send(
        &mut socket,
        &json!({"type": "response.create", "model": "m", "input": [user("more")], "previous_response_id": id}),
    )
    .await;
    let chained = ws_recv_response(&mut socket).await;
    assert_eq!(chained.last().unwrap()["type"], "response.completed", "{chained:?}");
    assert!(server.requests().is_empty());
    assert!(server.connections().is_empty());
    assert!(server.handshakes().is_empty());
    assert_eq!(server.model_requests(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_connection_remembers_only_its_latest_responses() {
    let limits = RecordLimits { responses_per_connection: 1, ..RecordLimits::default() };
    let server = TestServer::start(model(limits)).await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;
    let mut ids = Vec::new();
    for text in ["a", "b"] {
        ws_send(&mut socket, &create(&[user(text)])).await;
        let events = ws_recv_response(&mut socket).await;
        ids.push(events.last().unwrap()["response"]["id"].as_str().unwrap().to_owned());
    }
    let chain = |previous: &str| json!({"type": "response.create", "model": "m", "input": [user("c")], "previous_response_id": previous});
    ws_send(&mut socket, &chain(&ids[0])).await;
    let forgotten = ws_recv_response(&mut socket).await;
    assert_eq!(forgotten[0]["error"]["code"], "previous_response_not_found", "{forgotten:?}");
    ws_send(&mut socket, &chain(&ids[1])).await;
    let kept = ws_recv_response(&mut socket).await;
    assert_eq!(kept.last().unwrap()["type"], "response.completed", "{kept:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_binary_frame_gets_a_close_with_1003() {
    let server = TestServer::reference_model().await.unwrap();
    let mut socket = ws_connect(&server.ws_url()).await;
    socket.send(Message::Binary(b"{\"type\":\"response.create\"}".to_vec().into())).await.unwrap();
    let close = loop {
        match bounded(socket.next()).await {
            Some(Ok(Message::Close(frame))) => break frame,
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(close.map(|frame| frame.code), Some(CloseCode::Unsupported));
    assert_eq!(server.violation_count(), 1);
    server.shutdown().await.unwrap();
}

/// A server whose clients must send heads and bodies within a second.
async fn impatient() -> TestServer {
    TestServer::start(TestServerConfig {
        header_read_timeout: Duration::from_secs(1),
        body_read_timeout: Duration::from_secs(1),
        ..model(RecordLimits::default())
    })
    .await
    .unwrap()
}

/// Sends `bytes` one per `pace` until the server closes the connection; returns how long that
/// took and what the server answered.
async fn trickle(
    server: &TestServer,
    head: &[u8],
    bytes: &[u8],
    pace: Duration,
) -> (Duration, String) {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(head).await.unwrap();
    let start = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let writer = async move {
        for byte in bytes {
            if write.write_all(std::slice::from_ref(byte)).await.is_err() {
                return;
            }
            tokio::time::sleep(pace).await;
        }
        std::future::pending::<()>().await;
    };
    let mut answer = Vec::new();
    let reader = read.read_to_end(&mut answer);
    tokio::select! {
        () = writer => unreachable!(),
        read = bounded(reader) => { let _ = read; }
    }
    (start.elapsed(), String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_trickles_its_head_is_disconnected() {
    let server = impatient().await;
    let head = b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\n";
    let (took, _) = trickle(&server, b"", head, Duration::from_millis(400)).await;
    assert!(took < Duration::from_millis(2_500), "disconnected after {took:?}");
    // An idle connection goes the same way.
    let (idle, _) = trickle(&server, b"", b"", Duration::from_secs(60)).await;
    assert!(idle < Duration::from_millis(2_500), "an idle connection lasted {idle:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_trickles_its_body_gets_408_and_is_disconnected() {
    let server = impatient().await;
    let head = b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    let body = [b' '; 100];
    let (took, answer) = trickle(&server, head, &body, Duration::from_millis(400)).await;
    assert!(took < Duration::from_millis(2_500), "disconnected after {took:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    server.shutdown().await.unwrap();
}

/// Writes `raw` (a request, head and body) on a connection and reads the answer to its end.
async fn exchange(server: &TestServer, raw: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut answer = Vec::new();
    bounded(stream.read_to_end(&mut answer)).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// `body` in chunked transfer coding, `size` bytes a chunk.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in body.chunks(size) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const HEAD: &str = "POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\n";

#[tokio::test]
async fn a_body_over_the_limit_gets_413_whether_its_length_is_declared_or_not() {
    let server = TestServer::start(TestServerConfig {
        max_body_bytes: 64,
        ..model(RecordLimits::default())
    })
    .await
    .unwrap();
    let body = [b' '; 100];
    let declared = [format!("{HEAD}content-length: 100\r\n\r\n").as_bytes(), &body].concat();
    let unknown =
        [format!("{HEAD}transfer-encoding: chunked\r\n\r\n").as_bytes(), &chunked(&body, 40)]
            .concat();
    for raw in [declared, unknown] {
        let answer = exchange(&server, &raw).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.ends_with(
                r#"{"error":{"type":"invalid_request_error","code":"request_body_unreadable","message":"The request body could not be read (limit 64 bytes): length limit exceeded","param":null}}"#
            ),
            "{answer}"
        );
    }
    assert_eq!(server.requests().len(), 0, "an unread body is not a request");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_body_in_many_chunks_is_read_whole() {
    let server = TestServer::start(model(RecordLimits::default())).await.unwrap();
    let body =
        serde_json::to_vec(&request(&[user("the body arrives seven bytes at a time")])).unwrap();
    let raw = [format!("{HEAD}transfer-encoding: chunked\r\n\r\n").as_bytes(), &chunked(&body, 7)]
        .concat();
    let answer = exchange(&server, &raw).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("the body arrives seven bytes at a time"), "{answer}");
    assert_eq!(server.requests()[0].body.as_ref(), body.as_slice());
    server.assert_no_violations();
    server.shutdown().await.unwrap();
}
