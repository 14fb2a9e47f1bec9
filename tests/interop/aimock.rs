//! aimock 1.43.0 (`interop/aimock/fixtures.json`): the most lenient server, with WebSocket on the
//! HTTP port. Its events have no `sequence_number` and no `logprobs`, and its usage has no
//! details. The fixtures match on the last user message.

use compactor_client::{KeySource, ProviderConfig, WebsocketMode};
use compactor_protocol::ResponseItem;
use pretty_assertions::assert_eq;
use serde_json::json;

use crate::common::{
    Harness, Notices, Tap, assert_text_turn, assert_tool_turn, bounded, client, peer_url, prompt,
    provider, settings, shell_tool, stream_turn,
};

const MODEL: &str = "aimock-model";

const HELLO: &str = "Hello from aimock, a deterministic fixture.";

fn url() -> String {
    peer_url("COMPACTOR_INTEROP_AIMOCK_URL")
}

fn config(base_url: &str, websocket: WebsocketMode) -> ProviderConfig {
    provider("aimock", base_url, KeySource::None, websocket)
}

#[tokio::test]
async fn sse_text_turn() {
    let client = client(config(&url(), WebsocketMode::Disabled), &Notices::default());
    let input = vec![ResponseItem::user_text("hello aimock")];
    let turn = stream_turn(&client, &prompt(input, Vec::new()), &settings(MODEL)).await.unwrap();
    assert_text_turn(&turn, HELLO);
}

#[tokio::test]
async fn sse_tool_call_turn() {
    let client = client(config(&url(), WebsocketMode::Disabled), &Notices::default());
    let input = vec![ResponseItem::user_text("please use the tool")];
    let turn =
        stream_turn(&client, &prompt(input, vec![shell_tool()]), &settings(MODEL)).await.unwrap();
    assert_tool_turn(&turn, "shell", &json!({"cmd": "ls"}));
}

#[tokio::test]
async fn websocket_text_turn() {
    let tap = Tap::start(&url()).await;
    let notices = Notices::default();
    let client = client(config(&tap.url(&url()), WebsocketMode::Enabled), &notices);
    let input = vec![ResponseItem::user_text("hello over a websocket")];
    let turn = stream_turn(&client, &prompt(input, Vec::new()), &settings(MODEL)).await.unwrap();
    assert_text_turn(&turn, HELLO);
    notices.assert_no_fallback();
    assert_eq!(tap.connections(), 1);
}

#[tokio::test]
async fn websocket_two_turns_on_one_connection() {
    let tap = Tap::start(&url()).await;
    let notices = Notices::default();
    let client = client(config(&tap.url(&url()), WebsocketMode::Enabled), &notices);
    let mut history = vec![ResponseItem::user_text("hello")];
    let first = stream_turn(&client, &prompt(history.clone(), Vec::new()), &settings(MODEL)).await;
    let first = first.unwrap();
    let first_id = assert_text_turn(&first, HELLO);
    history.extend(first.output_items());
    history.push(ResponseItem::user_text("second turn"));
    let second = stream_turn(&client, &prompt(history, Vec::new()), &settings(MODEL)).await;
    let second_id = assert_text_turn(&second.unwrap(), "aimock answers the second turn.");
    assert_ne!(first_id, second_id);
    assert_eq!(notices.all(), Vec::new(), "no retry, no fallback");
    assert_eq!(tap.connections(), 1, "both turns must share one WebSocket connection");
}

/// A core session over WebSocket: a tool round (the follow-up goes incrementally, with the tool
/// output, on the same connection), then a second turn, all on one connection.
#[tokio::test]
async fn core_session_over_one_websocket() {
    let tap = Tap::start(&url()).await;
    let mut h =
        Harness::start(config(&tap.url(&url()), WebsocketMode::Enabled), MODEL, |_| {}).await;
    let answer = h.turn("please use the tool").await;
    assert_eq!(answer.as_deref(), Some("aimock read the tool result."));
    assert_eq!(h.tools.calls.lock().unwrap().len(), 1);
    let answer = h.turn("second turn").await;
    assert_eq!(answer.as_deref(), Some("aimock answers the second turn."));
    assert!(h.session.client().uses_websocket(), "the session fell back to HTTP");
    assert_eq!(tap.connections(), 1, "the session must keep one WebSocket connection");
    let (rebuilt, _) = h.resumed().await;
    assert_eq!(rebuilt, h.session.history());
    bounded("shutdown", h.session.shutdown()).await.unwrap();
}

/// With no chain configured, a session against aimock compacts through local summarization
/// (its fixtures answer the summarization prompt).
#[tokio::test]
async fn core_session_compacts_locally_without_a_chain() {
    crate::common::compacts_locally_without_a_chain(config(&url(), WebsocketMode::Enabled), MODEL)
        .await;
}
