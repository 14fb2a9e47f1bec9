//! The testkit server in your own tests: script the answers, point your client at the server,
//! then assert on what it recorded.
//!
//! Here the "client under test" is three plain HTTP requests: one rejected by an injected 429,
//! its retry, answered by a scripted stream, and a request that breaks a protocol invariant.
//! `cargo run -p compactor-testkit --example server_in_your_tests`

#![allow(clippy::print_stdout, reason = "an example prints what it checked")]

use std::time::Duration;

use compactor_testkit::events::{ev_assistant_message, ev_completed, ev_response_created};
use compactor_testkit::{Fault, TestServer};
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::scripted().await?;
    // The first request is refused with 429 and `Retry-After: 1`; the next gets a text reply.
    server.push_http_faults([Fault::rate_limited(Duration::from_secs(1))]);
    server.push_sse(vec![
        ev_response_created("resp_1"),
        ev_assistant_message("msg_1", "Hello from the script."),
        ev_completed("resp_1"),
    ]);

    let url = format!("{}/responses", server.base_url());
    let user = json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]});
    let request = json!({"model": "gpt-test", "stream": true, "input": [user]});
    let http = reqwest::Client::new();
    let first = http.post(&url).bearer_auth("sk-test").json(&request).send().await?;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "1");
    let second = http.post(&url).bearer_auth("sk-test").json(&request).send().await?;
    let stream = second.text().await?;
    assert!(stream.contains("Hello from the script."), "unexpected stream: {stream}");

    // What your client sent, as the server saw it (secret headers are hidden from `Debug`).
    let recorded = server.wait_for_requests(2).await?;
    assert_eq!(recorded[1].body_json()["model"], "gpt-test");
    assert_eq!(recorded[1].message_input_texts("user"), ["hi"]);
    assert_eq!(recorded[1].header("authorization"), Some("Bearer sk-test"));
    println!("recorded {} requests; the second asked for {}", recorded.len(), recorded[1].uri);

    // A tool output without its call breaks an invariant: answered 400 and recorded.
    let orphan = json!({"type": "function_call_output", "call_id": "call_9", "output": "ok"});
    let broken = json!({"model": "gpt-test", "stream": true, "input": [user, orphan]});
    let answer = http.post(&url).json(&broken).send().await?;
    assert_eq!(answer.status(), 400);
    let violations = server.violations();
    assert_eq!(violations.len(), 1);
    println!("violation caught: {}", violations[0]);
    let body: Value = answer.json().await?;
    println!("the client got: {body}");

    server.shutdown().await?;
    println!("ok");
    Ok(())
}
