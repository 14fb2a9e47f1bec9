//! Sessions against a reference model that enforces its context window as the API does: an
//! over-long request is refused with `context_length_exceeded` over HTTP and over WebSocket,
//! and reactive compaction recovers from the refusal.

use compactor_protocol::{CompactionImplementation, CompactionReason, CompactionStatus, EventMsg};
use compactor_testkit::ReferenceModelConfig;
use pretty_assertions::assert_eq;

use crate::common::{
    Harness, Options, Transport, enforcing_reference_model, event_types, session_config,
};

/// A user message of about `tokens` tokens.
fn long_text(turn: usize, tokens: usize) -> String {
    format!("turn {turn}: {}", "the parser fails on nested arrays ".repeat(tokens / 8))
}

/// A session told its window is 100 000 tokens, compacting with `chain`, talks to an endpoint
/// that enforces 6 000: six long turns go on although requests over 6 000 are refused. Checks
/// that at least two were refused, that no error reached the user, and that the last turn's
/// message and the model's answer after it are in the history.
async fn overflowing_turns(transport: Transport, chain: Vec<CompactionImplementation>) -> Harness {
    let server = enforcing_reference_model(ReferenceModelConfig::default(), 6_000).await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options { transport, context_window: 100_000, ..Options::default() };
    let mut config = session_config(&server, dir.path(), &options);
    config.compaction.chain = chain;
    let mut h = Harness::with_config(server, config, dir).await;

    for turn in 1..=6 {
        h.turn(&long_text(turn, 1_500)).await.unwrap_or_else(|err| panic!("turn {turn}: {err}"));
    }
    let refused = h.server.refused_over_window();
    assert!(refused >= 2, "a turn and the first compaction request are refused: {refused}");
    let errors: Vec<&EventMsg> =
        h.seen.iter().filter(|event| matches!(event, EventMsg::Error(_))).collect();
    assert_eq!(errors, Vec::<&EventMsg>::new(), "{:?}", event_types(&h.seen));
    // The turn that overflowed went on: its message is in the compacted history, and the
    // model answered after it.
    let history = h.session.history();
    let shown = compactor_protocol::display::format_history_truncated(&history, 60);
    assert_eq!(history.last().unwrap().role(), Some("assistant"), "{shown}");
    assert!(
        history
            .iter()
            .any(|item| item.message_text().is_some_and(|text| text.starts_with("turn 6"))),
        "{shown}"
    );
    h.server.assert_no_violations();
    h
}

/// The first request over 6 000 is refused, reactive compaction summarizes the history (whose
/// own request is refused until it is short enough), and the turn goes on.
async fn reactive_compaction_recovers(transport: Transport) {
    let h = overflowing_turns(transport, vec![CompactionImplementation::Responses]).await;
    let events = h.analytics_events(1).await;
    let reactive: Vec<_> =
        events.iter().filter(|event| event.reason == CompactionReason::ContextLimit).collect();
    assert!(!reactive.is_empty(), "{events:#?}");
    assert!(
        reactive.iter().all(|event| event.status == CompactionStatus::Completed),
        "{events:#?}"
    );
}

#[tokio::test]
async fn reactive_compaction_recovers_from_a_refusal_over_http() {
    Box::pin(reactive_compaction_recovers(Transport::Http)).await;
}

#[tokio::test]
async fn reactive_compaction_recovers_from_a_refusal_over_websocket() {
    Box::pin(reactive_compaction_recovers(Transport::Ws)).await;
}

/// The `input` items of a recorded request body.
fn input_items(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["input"].as_array().cloned().unwrap_or_default()
}

/// With remote compaction v2 only: the v2 request holds the whole history and is refused too,
/// so it is sent again without the oldest tenth of the history (D160) until it fits, and the
/// turn goes on.
async fn v2_recovers_from_its_own_overflow(transport: Transport) {
    let h =
        overflowing_turns(transport, vec![CompactionImplementation::ResponsesCompactionV2]).await;
    let events = h.analytics_events(1).await;
    assert!(
        events.iter().all(|event| event.status == CompactionStatus::Completed
            && event.implementation == CompactionImplementation::ResponsesCompactionV2),
        "{events:#?}"
    );
    if transport == Transport::Http {
        // Each v2 request sent again after a refusal is the refused one less items from the
        // front: the newest items, the trigger last, are sent as they were.
        let v2: Vec<Vec<serde_json::Value>> = h
            .server
            .responses_requests()
            .iter()
            .map(|request| input_items(request.body_json()))
            .filter(|input| input.last().is_some_and(|item| item["type"] == "context_compaction"))
            .collect();
        let shrunk = v2
            .windows(2)
            .filter(|pair| pair[1].len() < pair[0].len() && pair[0].ends_with(&pair[1]));
        assert!(shrunk.count() >= 1, "{} v2 requests", v2.len());
    }
}

#[tokio::test]
async fn v2_recovers_from_its_own_overflow_over_http() {
    Box::pin(v2_recovers_from_its_own_overflow(Transport::Http)).await;
}

#[tokio::test]
async fn v2_recovers_from_its_own_overflow_over_websocket() {
    Box::pin(v2_recovers_from_its_own_overflow(Transport::Ws)).await;
}

/// A v2 request built from a history trimmed to fit the window, then refused as over the
/// window and sent again without its oldest items: the receipt tells the trimmed tool traffic
/// (never sent) from the items the retry dropped, and from those it summarized.
#[tokio::test]
async fn a_receipt_tells_trimmed_items_from_those_an_overflow_dropped() {
    use compactor_protocol::{ItemOutcome, ResponseItem};
    use compactor_testkit::events::{ev_completed, ev_context_compaction, ev_response_created};
    use compactor_testkit::{Fault, TestServer};

    let mut history: Vec<ResponseItem> =
        (0..20).map(|turn| ResponseItem::user_text(long_text(turn, 200))).collect();
    history.push(
        serde_json::from_value(serde_json::json!({
            "type": "function_call", "name": "shell", "arguments": "{\"cmd\":\"make\"}",
            "call_id": "c1"
        }))
        .unwrap(),
    );
    history.push(
        serde_json::from_value(serde_json::json!({
            "type": "function_call_output", "call_id": "c1", "output": "error: ".repeat(2_000)
        }))
        .unwrap(),
    );
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::error(
        400,
        "context_length_exceeded",
        "Your input exceeds the context window of this model.",
    )]);
    server.push_sse(vec![
        ev_response_created("rc"),
        ev_context_compaction("cc", "SEALED"),
        ev_completed("rc"),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rollout.jsonl"),
        compactor_testkit::workload::rollout_jsonl("thread-trim", &history),
    )
    .unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, context_window: 0 };
    let mut config = session_config(&server, dir.path(), &options);
    // A window between the history without its trailing tool traffic and the whole history.
    let estimate = |items: &[ResponseItem]| {
        compactor_engine::estimate_history(
            &config.base_instructions,
            items,
            &compactor_protocol::PassThroughList::default(),
        )
    };
    let (whole, kept) = (estimate(&history), estimate(&history[..history.len() - 2]));
    assert!(whole > kept + 1_000, "{whole} vs {kept}");
    config.model.context_window = Some(i64::try_from((whole + kept) / 2).unwrap());
    config.model.effective_context_window_percent = 100;
    config.compaction.chain = vec![CompactionImplementation::ResponsesCompactionV2];
    let mut h = Harness::resume(server, config, dir).await;
    h.compact().await.unwrap();

    let receipt = h
        .seen
        .iter()
        .find_map(|event| match event {
            EventMsg::CompactionReceipt { receipt } => Some(receipt.clone()),
            _ => None,
        })
        .expect("a receipt");
    let outcomes: Vec<ItemOutcome> = receipt.items.iter().map(|item| item.outcome).collect();
    let (messages, tail) = outcomes.split_at(20);
    assert_eq!(tail, [ItemOutcome::TrimmedBeforeSending; 2], "{outcomes:?}");
    // The retry dropped the oldest messages; v2 summarized the rest or kept it (the newest cut
    // to the retained budget).
    let dropped = messages.iter().take_while(|outcome| **outcome == ItemOutcome::Dropped).count();
    assert!(dropped >= 1, "{outcomes:?}");
    assert!(
        messages[dropped..].iter().all(|outcome| matches!(
            outcome,
            ItemOutcome::Summarized | ItemOutcome::KeptVerbatim | ItemOutcome::KeptTruncated
        )),
        "{outcomes:?}"
    );
    // The retry was the refused request less its oldest items.
    let inputs: Vec<usize> = h
        .server
        .responses_requests()
        .iter()
        .map(|request| input_items(request.body_json()).len())
        .collect();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert!(inputs[1] < inputs[0], "{inputs:?}");
}
