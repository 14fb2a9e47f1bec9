//! llmock 0.2.2: faults injected through its `/_llmock` control API, and its verdict on how
//! Compactor's client coped. Every case starts from a reset, and ends by reading the verdict
//! (written to the report `cargo xtask interop` prints), which must be a clean PASS: no error and
//! no warning.
//!
//! Its streams have `event:` lines and no `cache_write_tokens`.

use std::io::Write as _;
use std::time::{Duration, Instant};

use compactor_client::{ClientNotice, KeySource, ModelClient, ProviderConfig, WebsocketMode};
use compactor_protocol::{CompactorError, Prompt, ResponseItem};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{
    Harness, Notices, Turn, assert_text_turn, assert_tool_turn, bounded, client, peer_url, prompt,
    provider, settings, shell_tool, stream_turn,
};

const MODEL: &str = "gpt-4o";

/// What llmock's `hello` style answers for [`MODEL`].
const HELLO: &str = "Hello! This is a mock response from gpt-4o.";

/// The error of a stream that ends before `response.completed` (D44).
const EARLY_END: &str = "stream closed before response.completed";

fn url() -> String {
    peer_url("COMPACTOR_INTEROP_LLMOCK_URL")
}

fn config() -> ProviderConfig {
    provider("llmock", &url(), KeySource::None, WebsocketMode::Disabled)
}

/// llmock's control API.
struct Llmock {
    control: String,
    http: reqwest::Client,
}

impl Llmock {
    /// Resets llmock: no queued behaviour, an empty journal.
    async fn reset() -> Self {
        let control = format!("{}/_llmock", url().trim_end_matches("/v1"));
        let mock = Self { control, http: reqwest::Client::new() };
        mock.post("reset", &json!({})).await;
        mock
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = bounded(
            "llmock's control API",
            self.http
                .post(format!("{}/{path}", self.control))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send(),
        )
        .await
        .unwrap();
        assert!(response.status().is_success(), "POST {path}: {}", response.status());
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }

    async fn get(&self, path: &str) -> String {
        let response = bounded(
            "llmock's control API",
            self.http.get(format!("{}/{path}", self.control)).send(),
        )
        .await
        .unwrap();
        assert!(response.status().is_success(), "GET {path}: {}", response.status());
        response.text().await.unwrap()
    }

    /// Queues behaviours for the next requests.
    async fn scenario(&self, behaviors: Value) {
        self.post("scenario", &json!({ "behaviors": behaviors })).await;
    }

    /// llmock's verdict on everything since the reset: written to the report, then required to
    /// be a clean PASS.
    async fn assert_verdict_passes(&self, case: &str) {
        let text = self.get("verdict?format=text").await;
        let verdict: Value = serde_json::from_str(&self.get("verdict").await).unwrap();
        record_verdict(case, &text);
        assert_eq!(verdict["passed"], json!(true), "{text}");
        assert_eq!(
            (verdict["errors"].clone(), verdict["warnings"].clone()),
            (json!(0), json!(0)),
            "{text}"
        );
        assert!(text.contains("PASS"), "{text}");
    }
}

/// Appends a case's verdict to the report folder `cargo xtask interop` reads.
fn record_verdict(case: &str, text: &str) {
    let dir = peer_url("COMPACTOR_INTEROP_REPORT_DIR");
    let path = std::path::Path::new(&dir).join("llmock-verdicts.txt");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&path).unwrap();
    write!(file, "== llmock::{case}\n{}\n", text.trim_end()).unwrap();
}

fn hello_prompt() -> Prompt<'static> {
    prompt(vec![ResponseItem::user_text("hello llmock")], Vec::new())
}

/// A stream that broke: the documented error after some events, then the caller's retry (the
/// client leaves retries after events to its caller, D10) completes.
async fn broken_then_retried(client: &ModelClient) -> (Turn, Turn) {
    let broken = stream_turn(client, &hello_prompt(), &settings(MODEL)).await.unwrap();
    let retried = stream_turn(client, &hello_prompt(), &settings(MODEL)).await.unwrap();
    (broken, retried)
}

#[tokio::test]
async fn sse_text_turn() {
    let mock = Llmock::reset().await;
    let client = client(config(), &Notices::default());
    let turn = stream_turn(&client, &hello_prompt(), &settings(MODEL)).await.unwrap();
    assert_text_turn(&turn, HELLO);
    mock.assert_verdict_passes("sse_text_turn").await;
}

#[tokio::test]
async fn sse_tool_call_turn() {
    let mock = Llmock::reset().await;
    let client = client(config(), &Notices::default());
    let input = vec![ResponseItem::user_text("list the files")];
    let turn =
        stream_turn(&client, &prompt(input, vec![shell_tool()]), &settings(MODEL)).await.unwrap();
    assert_tool_turn(&turn, "shell", &json!({"cmd": "mock-cmd"}));
    mock.assert_verdict_passes("sse_tool_call_turn").await;
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let mock = Llmock::reset().await;
    mock.scenario(json!([{"type": "fail", "status": 429, "retry_after": 1, "times": 1}])).await;
    let notices = Notices::default();
    let client = client(config(), &notices);
    let started = Instant::now();
    let turn = stream_turn(&client, &hello_prompt(), &settings(MODEL)).await.unwrap();
    let elapsed = started.elapsed();
    assert_text_turn(&turn, HELLO);
    assert!(elapsed >= Duration::from_secs(1), "retried after {elapsed:?}");
    match notices.all().as_slice() {
        [ClientNotice::Retry(retry)] => {
            assert_eq!((retry.attempt, retry.delay), (1, Duration::from_secs(1)));
            assert!(
                matches!(retry.error, CompactorError::RetryLimit { status: 429, .. }),
                "{:?}",
                retry.error
            );
        }
        other => panic!("expected one retry, got {other:?}"),
    }
    mock.assert_verdict_passes("rate_limit_retry_after_is_honoured").await;
}

#[tokio::test]
async fn disconnect_ends_the_stream_with_the_documented_error() {
    let mock = Llmock::reset().await;
    mock.scenario(
        json!([{"type": "stream_fault", "kind": "disconnect", "after_chunks": 3, "times": 1}]),
    )
    .await;
    let client = client(config(), &Notices::default());
    let (broken, retried) = broken_then_retried(&client).await;
    assert!(!broken.events.is_empty(), "events flowed before the disconnect");
    // llmock drops the connection in the middle of the chunked body: the read fails (a recorded
    // copy of such a body, read from a file, ends early instead; the client tests cover that).
    match &broken.error {
        Some(CompactorError::Stream { message, retry_after: None }) => {
            assert!(message.starts_with("error reading the response stream: "), "{message}");
        }
        other => panic!("expected a stream error, got {other:?} after {:?}", broken.events),
    }
    assert!(broken.error.as_ref().is_some_and(CompactorError::is_retryable));
    assert_text_turn(&retried, HELLO);
    mock.assert_verdict_passes("disconnect_ends_the_stream_with_the_documented_error").await;
}

#[tokio::test]
async fn truncation_ends_the_stream_with_the_documented_error() {
    let mock = Llmock::reset().await;
    mock.scenario(
        json!([{"type": "stream_fault", "kind": "truncate", "after_chunks": 3, "times": 1}]),
    )
    .await;
    let client = client(config(), &Notices::default());
    let (broken, retried) = broken_then_retried(&client).await;
    assert!(!broken.events.is_empty(), "events flowed before the cut");
    assert_eq!(broken.error, Some(CompactorError::stream(EARLY_END)), "{:?}", broken.events);
    assert!(broken.error.as_ref().is_some_and(CompactorError::is_retryable));
    assert_text_turn(&retried, HELLO);
    mock.assert_verdict_passes("truncation_ends_the_stream_with_the_documented_error").await;
}

/// A core turn owns the retries of a stream that broke after events flowed: one disconnect and
/// one truncation cost two `Reconnecting...` notices, and the turn completes.
#[tokio::test]
async fn core_turn_retries_broken_streams() {
    let mock = Llmock::reset().await;
    mock.scenario(json!([
        {"type": "stream_fault", "kind": "disconnect", "after_chunks": 3, "times": 1},
        {"type": "stream_fault", "kind": "truncate", "after_chunks": 3, "times": 1},
    ]))
    .await;
    let mut h = Harness::start(config(), MODEL, |config| config.tools = Vec::new()).await;
    let answer = h.turn("hello llmock").await;
    assert_eq!(answer.as_deref(), Some(HELLO));
    assert_eq!(h.stream_errors(), ["Reconnecting... 1/5", "Reconnecting... 2/5"]);
    bounded("shutdown", h.session.shutdown()).await.unwrap();
    mock.assert_verdict_passes("core_turn_retries_broken_streams").await;
}

/// With no chain configured, a session against llmock compacts through local summarization.
#[tokio::test]
async fn core_session_compacts_locally_without_a_chain() {
    let mock = Llmock::reset().await;
    crate::common::compacts_locally_without_a_chain(config(), MODEL).await;
    mock.assert_verdict_passes("core_session_compacts_locally_without_a_chain").await;
}
