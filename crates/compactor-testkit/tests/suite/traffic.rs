//! The traffic log: every HTTP request, WebSocket handshake and client message, appended as JSON
//! lines with credentials redacted.

use compactor_testkit::{TestServer, TestServerConfig};
use futures::SinkExt as _;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::common::{bounded, client, create, request, user, ws_recv_response, ws_send};

const SECRET: &str = "sk-test-0123456789abcdef";

#[tokio::test]
async fn every_request_handshake_and_message_is_appended_without_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traffic.jsonl");
    std::fs::write(&path, "{\"kind\":\"earlier run\"}\n").unwrap();
    let server = TestServer::start(TestServerConfig {
        mode: compactor_testkit::Mode::ReferenceModel(Default::default()),
        record_traffic: Some(path.clone()),
        ..TestServerConfig::default()
    })
    .await
    .unwrap();

    let body = request(&[user("hello")]);
    let sent = bounded(
        client()
            .post(format!("{}?api-key={SECRET}&trace=1", server.responses_url()))
            .bearer_auth(SECRET)
            .header("x-api-key", SECRET)
            .header("openai-organization", "org-1")
            .json(&body)
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(sent.status(), 200);
    bounded(sent.text()).await.unwrap();
    let missing =
        bounded(client().post(format!("{}/nowhere", server.base_url())).body("plain text").send())
            .await
            .unwrap();
    assert_eq!(missing.status(), 404);

    let mut handshake = server.ws_url().into_client_request().unwrap();
    handshake.headers_mut().insert("authorization", format!("Bearer {SECRET}").parse().unwrap());
    let (mut socket, _) =
        bounded(Box::pin(tokio_tungstenite::connect_async(handshake))).await.unwrap();
    let first = create(&[user("over the socket")]);
    ws_send(&mut socket, &first).await;
    let events = ws_recv_response(&mut socket).await;
    let id = events.last().unwrap()["response"]["id"].clone();
    let processed = json!({"type": "response.processed", "response_id": id});
    ws_send(&mut socket, &processed).await;
    bounded(socket.send(Message::text("not json"))).await.unwrap();
    assert_eq!(ws_recv_response(&mut socket).await[0]["type"], "error");
    drop(socket);
    server.shutdown().await.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains(SECRET), "a credential reached the log:\n{text}");
    let lines: Vec<Value> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let kinds: Vec<&str> = lines.iter().map(|line| line["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "earlier run",
            "http_request",
            "http_request",
            "ws_handshake",
            "ws_message",
            "ws_message",
            "ws_message"
        ],
        "appended after what the file held"
    );
    let post = &lines[1];
    assert_eq!((&post["method"], &post["index"]), (&json!("POST"), &json!(0)));
    assert_eq!(post["uri"], "/v1/responses?api-key=[redacted]&trace=1");
    assert_eq!(post["headers"]["authorization"], "Bearer [redacted]");
    assert_eq!(post["headers"]["x-api-key"], "[redacted]");
    assert_eq!(post["headers"]["openai-organization"], "org-1");
    assert_eq!(post["body"], body);
    assert!(post["at_ms"].as_u64().unwrap() > 0);
    assert_eq!(
        (&lines[2]["uri"], &lines[2]["body_text"]),
        (&json!("/v1/nowhere"), &json!("plain text"))
    );
    let handshake = &lines[3];
    assert_eq!((&handshake["status"], &handshake["connection"]), (&json!(101), &json!(0)));
    assert_eq!(handshake["headers"]["authorization"], "Bearer [redacted]");
    assert_eq!(lines[4]["message"], first);
    assert_eq!((&lines[5]["message"], &lines[5]["index"]), (&processed, &json!(1)));
    assert_eq!(lines[6]["message_text"], "not json");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let fresh = dir.path().join("fresh.jsonl");
        let server = TestServer::start(TestServerConfig {
            record_traffic: Some(fresh.clone()),
            ..TestServerConfig::default()
        })
        .await
        .unwrap();
        server.shutdown().await.unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_log_that_cannot_be_opened_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = TestServerConfig {
        record_traffic: Some(dir.path().join("missing").join("traffic.jsonl")),
        ..TestServerConfig::default()
    };
    let err = TestServer::start(config).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot record traffic to "), "{err}");
}
