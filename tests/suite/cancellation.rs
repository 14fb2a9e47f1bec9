//! Cancellation of a compaction (D7, D32): before the first event and between
//! the compaction item and `response.completed` nothing is installed, the attempt is
//! `interrupted` and no task is left running; after the install the new history stays, the
//! attempt is `completed`, and `response.processed` is not sent.
//!
//! The server runs on a runtime of its own, so the test runtime's task count measures what the
//! client and core leave behind.

use std::time::Duration;

use compactor_core::EVENT_CHANNEL_CAPACITY;
use compactor_protocol::{CompactionStatus, CompactorError, ContentItem, EventMsg, ResponseItem};
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_completed_with_tokens, ev_context_compaction,
    ev_response_created,
};
use compactor_testkit::{
    ContextWindows, Fault, HttpScript, Mode, ReferenceModelConfig, TestServer, TestServerConfig,
    WsConnectionScript, WsSlot,
};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::common::{
    Harness, Options, Transport, bounded, event_types, sealed, session_config, write_rollout,
};

/// How long the server holds the cancelled response: long enough for the interrupt to land
/// first, short enough that a connection wrongly kept would hand its stale frames to the next
/// turn within the test.
const HOLD: Duration = Duration::from_secs(1);

/// A testkit server on a runtime of its own, so that the test runtime's `num_alive_tasks`
/// counts only the client's and core's tasks.
struct ServerRuntime(Option<Runtime>);

impl ServerRuntime {
    async fn start(mode: Mode) -> (Self, TestServer) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let config = TestServerConfig { mode, ..TestServerConfig::default() };
        let server = runtime.spawn(TestServer::start(config)).await.unwrap().unwrap();
        (Self(Some(runtime)), server)
    }
}

impl Drop for ServerRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another would block; its tasks stop in the background.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current().metrics().num_alive_tasks()
}

/// Waits (bounded) until the test runtime is back to `baseline` tasks.
async fn assert_tasks_settle(baseline: usize, what: &str) {
    let settled = tokio::time::timeout(Duration::from_secs(5), async {
        while alive_tasks() > baseline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "{what}: {} tasks alive, {baseline} before", alive_tasks());
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    BeforeFirstEvent,
    AfterCompactionItem,
}

/// The compaction's answer, held at `stage`.
fn held_answer(stage: Stage) -> (Vec<Value>, Fault) {
    let item = ev_context_compaction("cc-held", &sealed("context_compaction"));
    match stage {
        Stage::BeforeFirstEvent => (
            vec![ev_response_created("resp-held"), item, ev_completed("resp-held")],
            Fault::DelayBeforeFirstEvent(HOLD),
        ),
        // The testkit delays every gap alike: the item goes first, the hold follows it.
        Stage::AfterCompactionItem => {
            (vec![item, ev_completed("resp-held")], Fault::DelayBetweenEvents(HOLD))
        }
    }
}

/// Interrupts a manual compaction that the server holds at `stage`, and checks that nothing was
/// installed, nothing runs on, and the next turn gets its own answer on a clean connection.
async fn cancel_during(transport: Transport, stage: Stage) {
    let name = format!("{transport:?} {stage:?}");
    let (_runtime, server) = ServerRuntime::start(Mode::ReferenceModel(ReferenceModelConfig {
        context_windows: ContextWindows::every_model(100_000),
        ..ReferenceModelConfig::default()
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_rollout(&dir.path().join("rollout.jsonl"), sealed("compaction")).await;
    let options = Options { transport, response_processed: true, ..Options::default() };
    let config = session_config(&server, dir.path(), &options);
    // The compaction is the resumed session's first request, so its answer can be scripted.
    let mut h = Harness::resume(server, config, dir).await;
    let before = h.snapshot().await;
    let (events, fault) = held_answer(stage);
    match transport {
        // Connection 0 holds the compaction's answer. Were it kept after the interrupt, the next
        // turn would read the held frames as its own answer, then this slot.
        Transport::Ws => h.server.push_ws_connection(WsConnectionScript::new([
            WsSlot::new(events).with_fault(fault),
            WsSlot::new(vec![
                ev_response_created("resp-stale"),
                ev_assistant_message("m-stale", "ANSWER ON A REUSED CONNECTION"),
                ev_completed("resp-stale"),
            ]),
        ])),
        Transport::Http => h.server.push_http(HttpScript::new(events).with_fault(fault)),
    }
    let baseline = alive_tasks();

    let session = h.session.clone();
    let compaction = tokio::spawn(async move { session.compact().await });
    match transport {
        Transport::Ws => drop(bounded(h.server.wait_for_ws_message(0, 0)).await.unwrap()),
        Transport::Http => drop(bounded(h.server.wait_for_requests(1)).await.unwrap()),
    }
    if stage == Stage::AfterCompactionItem {
        // The item is sent at once; give it time to reach the client before the interrupt.
        tokio::time::sleep(Duration::from_millis(200)).await;
        // The count sees the client's work: the compaction task and the stream's producer.
        assert!(alive_tasks() >= baseline + 2, "{name}: {} tasks alive", alive_tasks());
    }
    h.session.interrupt();
    let result = bounded(compaction).await.unwrap();
    assert_eq!(result, Err(CompactorError::Cancelled), "{name}");
    assert_tasks_settle(baseline, &name).await;
    h.drain();

    assert_eq!(h.snapshot().await, before, "{name}: nothing is installed");
    assert_eq!(h.session.window_generation(), 1, "{name}");
    let events = h.analytics_events(1).await;
    assert_eq!(
        (events.len(), events[0].status, events[0].error.as_deref()),
        (1, CompactionStatus::Interrupted, Some("cancelled")),
        "{name}"
    );
    assert!(!h.seen.iter().any(|e| matches!(e, EventMsg::Error(_))), "{name}: no error event");
    let types = event_types(&h.seen);
    assert_eq!(types.last().map(String::as_str), Some("turn_aborted"), "{name}: {types:?}");
    assert!(!types.iter().any(|t| t == "item_completed"), "{name}: {types:?}");

    // The next turn gets the model's answer to its own request.
    h.turn("next task").await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let history = h.session.history();
    let reply = history.last().and_then(ResponseItem::message_text).unwrap_or_default();
    assert!(reply.contains("next task"), "{name}: the next turn's answer is {reply:?}");
    assert_eq!(
        history.iter().filter(|item| item.is_compaction()).count(),
        1,
        "{name}: only the resumed compaction item: {history:#?}"
    );
    if transport == Transport::Ws {
        // The interrupted stream's connection was dropped, not handed to the next turn.
        assert_eq!(h.server.handshakes().len(), 2, "{name}: the next turn reconnects");
        assert_eq!(h.server.connection(0).unwrap().messages.len(), 1, "{name}");
    }
    // No acknowledgement of a response that was never installed.
    for connection in h.server.connections() {
        assert!(
            connection.messages.iter().all(|m| m.message_type() != Some("response.processed")
                || m.body_json()["response_id"] != "resp-held"),
            "{name}"
        );
    }
    h.server.assert_no_violations();
}

#[tokio::test]
async fn interrupt_before_the_first_event_over_websocket() {
    Box::pin(cancel_during(Transport::Ws, Stage::BeforeFirstEvent)).await;
}

#[tokio::test]
async fn interrupt_before_the_first_event_over_http() {
    Box::pin(cancel_during(Transport::Http, Stage::BeforeFirstEvent)).await;
}

#[tokio::test]
async fn interrupt_after_the_compaction_item_over_websocket() {
    Box::pin(cancel_during(Transport::Ws, Stage::AfterCompactionItem)).await;
}

#[tokio::test]
async fn interrupt_after_the_compaction_item_over_http() {
    Box::pin(cancel_during(Transport::Http, Stage::AfterCompactionItem)).await;
}

/// A turn answered with `messages` assistant messages: each becomes an `agent_message` event.
fn chatty_slot(id: &str, messages: usize) -> WsSlot {
    let mut events = vec![ev_response_created(id)];
    events.extend((0..messages).map(|n| ev_assistant_message(&format!("m-{n}"), "ok")));
    events.push(ev_completed_with_tokens(id, 2_000));
    WsSlot::new(events)
}

/// How many events a first turn answered by `chatty_slot(_, messages)` emits.
async fn events_of_a_chatty_turn(messages: usize) -> usize {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([chatty_slot("r", messages), vec![].into()]));
    let h = Harness::start(server, Options::default()).await;
    bounded(h.session.run_turn(vec![ContentItem::InputText { text: "go".into() }])).await.unwrap();
    h.pending_events()
}

/// D32: a cancellation between the install and `response.processed` keeps the new
/// history, tracks `completed` and skips the acknowledgement.
///
/// Core offers no hook between the install and the acknowledgement (`PostCompact` runs after
/// it), so the test holds the compaction there with the event channel's backpressure: the
/// harness leaves exactly two free slots (`turn_started`, `item_started`), so the install blocks
/// on its `token_count` event after the history was replaced (the window generation has moved)
/// and before the acknowledgement. The interrupt lands there; then the harness reads on.
#[tokio::test]
async fn interrupt_after_install_keeps_the_history_and_skips_the_acknowledgement() {
    let per_turn = events_of_a_chatty_turn(1).await - 1;
    let messages = EVENT_CHANNEL_CAPACITY - 2 - per_turn;

    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        chatty_slot("resp-1", messages),
        WsSlot::new(vec![]),
        WsSlot::new(vec![
            ev_response_created("resp-cc"),
            ev_context_compaction("cc-1", "ENC"),
            ev_completed("resp-cc"),
        ]),
        WsSlot::new(vec![
            ev_response_created("resp-2"),
            ev_assistant_message("m-next", "next answer"),
            ev_completed("resp-2"),
        ]),
        WsSlot::new(vec![]),
    ]));
    let mut h = Harness::start(server, Options::default()).await;
    bounded(h.session.run_turn(vec![ContentItem::InputText { text: "go".into() }])).await.unwrap();
    assert_eq!(h.pending_events(), EVENT_CHANNEL_CAPACITY - 2, "the channel is set up");

    let session = h.session.clone();
    let compaction = tokio::spawn(async move { session.compact().await });
    bounded(async {
        while h.session.window_generation() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    // Installed, and blocked before the acknowledgement.
    assert_eq!(
        h.session.history(),
        vec![
            ResponseItem::user_text("go"),
            ResponseItem::ContextCompaction {
                id: Some("cc-1".into()),
                encrypted_content: Some("ENC".into())
            }
        ]
    );
    h.session.interrupt();
    h.drain();
    let result = bounded(compaction).await.unwrap();
    assert_eq!(result, Ok(()), "an installed compaction has succeeded");
    h.drain();

    let analytics = h.analytics_events(1).await;
    assert_eq!(analytics[0].status, CompactionStatus::Completed);
    assert_eq!(h.compacted_lines().await, 1);
    assert_eq!(h.resumed_history().await, h.session.history());
    let types = event_types(&h.seen);
    let start = types.iter().rposition(|t| t == "turn_started").unwrap();
    assert_eq!(
        types[start..],
        [
            "turn_started",
            "item_started",
            "token_count",
            "item_completed",
            "context_compacted",
            "compaction_receipt",
            "turn_complete"
        ]
    );

    // The next turn on the same connection: its `response.create` directly follows the
    // compaction's, with no `response.processed` for `resp-cc` in between.
    h.turn("next").await.unwrap();
    bounded(h.server.wait_for_ws_message(0, 4)).await.unwrap();
    let sent: Vec<Value> =
        h.server.connection(0).unwrap().messages.iter().map(|m| m.body_json().clone()).collect();
    let kinds: Vec<(&str, &str)> = sent
        .iter()
        .map(|m| (m["type"].as_str().unwrap_or(""), m["response_id"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        [
            ("response.create", ""),
            ("response.processed", "resp-1"),
            ("response.create", ""),
            ("response.create", ""),
            ("response.processed", "resp-2"),
        ]
    );
    h.server.assert_no_violations();
}
