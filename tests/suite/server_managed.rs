//! Server-managed compaction (`context_management`, D46): the server compacts by itself and
//! Compactor installs its `compaction` item as a compaction.

use compactor_core::{ToolCall, ToolFuture, ToolHandler};
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionStatus, ContentItem, ContextManagement,
    EventMsg, PinPlacement, ResponseItem, ToolOutput,
};
use compactor_testkit::{ReferenceModelConfig, TestServer, ToolCallPolicy};
use pretty_assertions::assert_eq;

use crate::common::{Harness, Options, Transport, bounded, session_config};

struct Outputs;

impl ToolHandler for Outputs {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolOutput::Text("build log line\n".repeat(600))))
    }
}

async fn server() -> TestServer {
    let model = ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: "run".into(),
            name: "shell".into(),
            arguments: "{}".into(),
        },
        ..ReferenceModelConfig::default()
    };
    crate::common::enforcing_reference_model(model, 100_000).await
}

async fn session(transport: Transport) -> Harness {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options { transport, response_processed: false, context_window: 100_000 };
    let mut config = session_config(&server, dir.path(), &options);
    config.context_management =
        Some(vec![ContextManagement::Compaction { compact_threshold: 2_000 }]);
    let analytics = compactor_analytics::MemorySink::default();
    let client = compactor_analytics::AnalyticsClient::start(
        compactor_analytics::AnalyticsConfig::default(),
        vec![Box::new(analytics.clone())],
    )
    .unwrap();
    let (session, events) = compactor_core::Session::builder(config)
        .tools(Outputs)
        .analytics(client)
        .build()
        .await
        .unwrap();
    Harness::from_parts(server, session, events, analytics, dir)
}

fn text(text: &str) -> Vec<ContentItem> {
    vec![ContentItem::InputText { text: text.into() }]
}

fn max_input_tokens(events: &[EventMsg]) -> Vec<i64> {
    let mut usage: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            EventMsg::TokenCount { info: Some(info), .. } => {
                Some(info.last_token_usage.input_tokens)
            }
            _ => None,
        })
        .filter(|tokens| *tokens > 0)
        .collect();
    // A session also reports its budget as it records items, repeating the last usage.
    usage.dedup();
    usage
}

#[tokio::test]
async fn server_compaction_is_installed_and_resumes() {
    let mut h = session(Transport::Http).await;
    bounded(h.session.run_turn(text("run the build"))).await.unwrap();
    bounded(h.session.run_turn(text("thanks, what next?"))).await.unwrap();
    h.drain();

    let events = h.analytics_events(1).await;
    assert_eq!(events.len(), 1, "installed once");
    assert_eq!(events[0].implementation, CompactionImplementation::ServerManaged);
    assert_eq!(events[0].status, CompactionStatus::Completed);
    assert_eq!(events[0].phase, CompactionPhase::MidTurn);
    assert_eq!(h.session.window_generation(), 1);

    let requests = h.server.responses_requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].body_json()["context_management"][0]["compact_threshold"], 2000);
    let next: Vec<ResponseItem> =
        serde_json::from_value(requests[2].body_json()["input"].clone()).unwrap();
    assert!(
        matches!(next[0], ResponseItem::Compaction { .. }),
        "the next request starts with the item"
    );
    assert_eq!(next.last().unwrap().message_text().as_deref(), Some("thanks, what next?"));

    let usage = max_input_tokens(&h.seen);
    assert!(usage.last().unwrap() * 4 < usage[1], "usage drops: {usage:?}");
    assert_eq!(h.resumed_history().await, h.session.history());
    assert!(h.seen.iter().any(|e| matches!(e, EventMsg::ItemCompleted { .. })));
    h.server.assert_no_violations();
}

#[tokio::test]
async fn chaining_sends_only_the_new_input() {
    let mut h = session(Transport::Ws).await;
    bounded(h.session.run_turn(text("run the build"))).await.unwrap();
    bounded(h.session.run_turn(text("thanks, what next?"))).await.unwrap();
    h.drain();
    assert_eq!(h.analytics_events(1).await.len(), 1);
    let messages = h.server.connection(0).unwrap().messages;
    assert_eq!(messages.len(), 3);
    let last = messages[2].body_json();
    assert!(last["previous_response_id"].is_string(), "{last}");
    let input: Vec<ResponseItem> = serde_json::from_value(last["input"].clone()).unwrap();
    assert_eq!(input, vec![ResponseItem::user_text("thanks, what next?")]);
    assert_eq!(h.server.handshakes().len(), 1);
    h.server.assert_no_violations();
}

#[tokio::test]
async fn pins_are_not_reinserted_and_the_receipt_says_which_were_sent() {
    let mut h = session(Transport::Http).await;
    bounded(h.session.run_turn(text("hello"))).await.unwrap();
    let sent = bounded(h.session.pin_note("sent: in the pin slot")).await.unwrap();
    h.compact().await.unwrap();
    let not_sent =
        bounded(h.session.pin_note("not sent: pinned after the compaction")).await.unwrap();
    bounded(h.session.run_turn(text("run the build"))).await.unwrap();
    bounded(h.session.run_turn(text("thanks, what next?"))).await.unwrap();
    h.drain();

    let receipt = h
        .seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::CompactionReceipt { receipt } => Some(receipt),
            _ => None,
        })
        .find(|receipt| receipt.implementation == CompactionImplementation::ServerManaged)
        .expect("the server-managed compaction's receipt");
    let placements: Vec<_> = receipt.pins.iter().map(|pin| (pin.id, pin.placement)).collect();
    assert_eq!(
        placements,
        vec![(sent, PinPlacement::SentAsInput), (not_sent, PinPlacement::NotSent)]
    );
    assert!(receipt.adds_up());
    let history = h.session.history();
    assert!(matches!(history[0], ResponseItem::Compaction { .. }), "{history:#?}");
    assert!(
        !history.iter().any(|item| item.message_text().is_some_and(|t| t.starts_with("sent: "))),
        "the pins are not re-inserted"
    );
}
