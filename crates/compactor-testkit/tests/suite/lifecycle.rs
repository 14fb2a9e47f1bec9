//! Lifecycle: many servers at once, loopback only, bounded shutdown that ends open streams.

use std::time::{Duration, Instant};

use compactor_testkit::{Fault, TestServer};
use futures::StreamExt;
use futures::future::join_all;
use pretty_assertions::assert_eq;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{
    bounded, create, post, request, sse_events, user, ws_connect, ws_next, ws_recv_response,
    ws_send,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_servers_at_once() {
    let servers = join_all((0..12).map(|_| TestServer::reference_model())).await;
    let servers: Vec<TestServer> = servers.into_iter().map(Result::unwrap).collect();
    let mut ports: Vec<u16> = servers.iter().map(|server| server.addr().port()).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 12);
    join_all(servers.iter().enumerate().map(|(at, server)| async move {
        assert!(server.addr().ip().is_loopback());
        assert!(server.base_url().starts_with("http://127.0.0.1:"));
        let text = format!("server {at}");
        let events =
            sse_events(post(&server.responses_url(), &request(&[user(&text)])).await).await;
        let reply = &events.last().unwrap()["response"]["output"][0]["content"][0]["text"];
        assert_eq!(reply, &format!("Reply to user message 1: \"{text}\"."));
        let mut socket = ws_connect(&server.ws_url()).await;
        ws_send(&mut socket, &create(&[user(&text)])).await;
        assert_eq!(
            ws_recv_response(&mut socket).await.last().unwrap()["type"],
            "response.completed"
        );
    }))
    .await;
    for server in servers {
        assert_eq!(server.requests().len(), 1);
        server.assert_no_violations();
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_connections() {
    let server = TestServer::reference_model().await.unwrap();
    let url = server.responses_url();
    let addr = server.addr();
    // A stream that would take a minute, and an idle WebSocket connection.
    server.push_http_faults([Fault::DelayBetweenEvents(Duration::from_secs(60))]);
    let response = post(&server.responses_url(), &request(&[user("hi")])).await;
    let mut body = response.bytes_stream();
    assert!(bounded(body.next()).await.unwrap().is_ok());
    let mut socket = ws_connect(&server.ws_url()).await;
    ws_send(&mut socket, &create(&[user("hi")])).await;
    ws_recv_response(&mut socket).await;

    let start = Instant::now();
    server.shutdown().await.unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "shutdown took {took:?}");

    // The SSE body ended, the WebSocket got a Close frame (going away).
    let rest: Vec<_> = bounded(body.collect::<Vec<_>>()).await;
    assert!(rest.iter().all(Result::is_ok), "{rest:?}");
    match ws_next(&mut socket).await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Nothing listens any more.
    let refused = crate::common::client().post(url).body("{}").send().await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn drop_stops_the_server() {
    let server = TestServer::reference_model().await.unwrap();
    let addr = server.addr();
    let mut socket = ws_connect(&server.ws_url()).await;
    drop(server);
    match ws_next(&mut socket).await {
        // Cut at once: a Close frame may or may not make it out first.
        Some(Ok(Message::Close(_)) | Err(_)) | None => {}
        other => panic!("expected the connection to end, got {other:?}"),
    }
    bounded(async {
        while tokio::net::TcpStream::connect(addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_slow_upload_does_not_hold_up_shutdown() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::reference_model().await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let head = "POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"model\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    server.wait_for_requests(0).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    server.shutdown().await.unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "shutdown took {:?}", start.elapsed());
}

#[tokio::test]
async fn a_half_sent_head_is_bounded_by_the_shutdown_timeout() {
    use tokio::io::AsyncWriteExt;
    let config = compactor_testkit::TestServerConfig {
        shutdown_timeout: Duration::from_millis(300),
        ..compactor_testkit::TestServerConfig::default()
    };
    let server = TestServer::start(config).await.unwrap();
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(b"POST /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let start = Instant::now();
    let result = server.shutdown().await;
    assert!(matches!(result, Err(compactor_testkit::Error::ShutdownTimedOut { .. })), "{result:?}");
    assert!(start.elapsed() < Duration::from_secs(2), "shutdown took {:?}", start.elapsed());
    // The connection was cut: the client sees the end of the stream.
    let mut rest = Vec::new();
    let read = bounded(tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest)).await;
    assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error() {
    let first = TestServer::scripted().await.unwrap();
    let config = compactor_testkit::TestServerConfig {
        port: first.addr().port(),
        ..compactor_testkit::TestServerConfig::default()
    };
    match TestServer::start(config).await {
        Err(err @ compactor_testkit::Error::Bind { .. }) => {
            assert_eq!(
                err.to_string(),
                format!("failed to bind 127.0.0.1:{}", first.addr().port())
            );
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    first.shutdown().await.unwrap();
}
