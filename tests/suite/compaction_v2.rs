//! Remote compaction v2 end to end: manual and inline, over WebSocket and HTTP, with
//! `response.processed`, failures, cancellation and the HTTP fallback.

use std::time::Duration;

use compactor_protocol::display::format_history;
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionStatus, CompactionTrigger, CompactorError,
    EventMsg, ResponseItem, TurnItem,
};
use compactor_testkit::events::{
    assistant_message_item, ev_assistant_message, ev_completed, ev_completed_with_tokens,
    ev_context_compaction, ev_function_call, ev_output_item_done, ev_reasoning_item,
    ev_response_created,
};
use compactor_testkit::{Fault, TestServer, WsConnectionScript, WsSlot};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, bounded, event_types};

/// The slots of a first turn answered with one assistant message.
fn turn_slot(id: &str, text: &str) -> WsSlot {
    WsSlot::new(vec![
        ev_response_created(id),
        ev_assistant_message(&format!("msg-{id}"), text),
        ev_completed_with_tokens(id, 2_000),
    ])
}

fn compaction_slot(id: &str) -> WsSlot {
    WsSlot::new(vec![
        ev_response_created(id),
        ev_context_compaction("cc-1", "ENC"),
        ev_completed(id),
    ])
}

fn compaction_item() -> ResponseItem {
    ResponseItem::ContextCompaction {
        id: Some("cc-1".into()),
        encrypted_content: Some("ENC".into()),
    }
}

fn messages(harness: &Harness, connection: usize) -> Vec<Value> {
    harness
        .server
        .connection(connection)
        .unwrap()
        .messages
        .iter()
        .map(|m| m.body_json().clone())
        .collect()
}

#[tokio::test]
async fn manual_v2_over_websocket_acknowledges_on_the_same_connection() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        turn_slot("resp-1", "first reply"),
        WsSlot::new(vec![]),
        compaction_slot("resp-compact"),
        WsSlot::new(vec![]),
    ]));
    let mut h = Harness::start(server, Options::default()).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();
    bounded(h.server.wait_for_ws_message(0, 3)).await.unwrap();

    let sent = messages(&h, 0);
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[1], json!({"type": "response.processed", "response_id": "resp-1"}));
    assert_eq!(sent[2]["type"], "response.create");
    assert_eq!(
        sent[2]["input"].as_array().unwrap().last().unwrap(),
        &json!({"type": "context_compaction"})
    );
    assert_eq!(sent[3], json!({"type": "response.processed", "response_id": "resp-compact"}));
    assert_eq!(h.server.handshakes().len(), 1);
    assert_eq!(
        h.session.history(),
        vec![ResponseItem::user_text("fix the bug"), compaction_item()]
    );
    assert_eq!(h.session.window_generation(), 1);

    // Manual event order.
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
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Completed);
    assert_eq!(events[0].trigger, CompactionTrigger::Manual);
    assert_eq!(events[0].implementation, CompactionImplementation::ResponsesCompactionV2);
    assert!(events[0].active_context_tokens_after < events[0].active_context_tokens_before);
    let compaction_message = &h.server.connection(0).unwrap().messages[2];
    assert_eq!(
        events[0].bytes_sent,
        compaction_message.text.len() as u64,
        "analytics counts the bytes of the message the client sent"
    );
    h.server.assert_no_violations();
}

#[tokio::test]
async fn feature_off_sends_no_acknowledgement() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        turn_slot("resp-1", "hi"),
        compaction_slot("resp-compact"),
    ]));
    let options = Options { response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();
    bounded(h.server.wait_for_ws_message(0, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = messages(&h, 0);
    assert_eq!(
        sent.iter().map(|m| m["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["response.create", "response.create"]
    );
    h.server.assert_no_violations();
}

#[tokio::test]
async fn http_never_acknowledges() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("resp-1"),
        ev_assistant_message("m1", "hi"),
        ev_completed("resp-1"),
    ]);
    server.push_sse(vec![
        ev_response_created("resp-compact"),
        ev_context_compaction("cc-1", "ENC"),
        ev_completed("resp-compact"),
    ]);
    let options = Options { transport: Transport::Http, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();
    assert_eq!(h.server.requests().len(), 2);
    assert!(h.server.connections().is_empty());
    let events = h.analytics_events(1).await;
    assert_eq!(
        events[0].bytes_sent,
        h.server.requests()[1].body.len() as u64,
        "analytics counts the bytes of the body the client sent"
    );
    assert_eq!(
        h.session.history(),
        vec![ResponseItem::user_text("fix the bug"), compaction_item()]
    );
    h.server.assert_no_violations();
}

#[tokio::test]
async fn inline_mid_turn_compaction_rides_the_turn_connection() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(vec![
            ev_response_created("resp-1"),
            ev_function_call("call-1", "shell", r#"{"cmd":"cargo test"}"#),
            ev_completed_with_tokens("resp-1", 9_500),
        ]),
        WsSlot::new(vec![]),
        compaction_slot("resp-compact"),
        WsSlot::new(vec![]),
        turn_slot("resp-2", "all green"),
        WsSlot::new(vec![]),
    ]));
    let options =
        Options { response_processed: true, context_window: 10_000, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("make the tests pass").await.unwrap();
    bounded(h.server.wait_for_ws_message(0, 5)).await.unwrap();

    assert_eq!(h.server.handshakes().len(), 1);
    let sent = messages(&h, 0);
    assert_eq!(sent.len(), 6, "{sent:#?}");
    assert_eq!(sent[1], json!({"type": "response.processed", "response_id": "resp-1"}));
    let compaction_input = sent[2]["input"].as_array().unwrap();
    assert_eq!(compaction_input.last().unwrap(), &json!({"type": "context_compaction"}));
    assert_eq!(sent[3], json!({"type": "response.processed", "response_id": "resp-compact"}));
    let follow_up: Vec<ResponseItem> = serde_json::from_value(sent[4]["input"].clone()).unwrap();
    assert!(sent[4].get("previous_response_id").is_none(), "the follow-up is a full create");
    assert_eq!(sent[5], json!({"type": "response.processed", "response_id": "resp-2"}));
    insta::assert_snapshot!(format_history(&follow_up), @r"
    00:message/developer:<permissions instructions>
    01:message/user:<environment_context>cwd=/repo</environment_context>
    02:message/user:make the tests pass
    03:context_compaction:encrypted=true
    ");
    // The tool loop went on: the final answer is in history after the compaction item.
    let history = h.session.history();
    let last = history.last().unwrap();
    assert_eq!(
        (last.role(), last.message_text().as_deref()),
        (Some("assistant"), Some("all green"))
    );
    // Recorded as the server sent it: fields Compactor does not model (`status`) are kept.
    assert_eq!(
        serde_json::to_value(last).unwrap(),
        assistant_message_item("msg-resp-2", "all green")
    );
    let events = h.analytics_events(1).await;
    assert_eq!(
        (events[0].trigger, events[0].phase),
        (CompactionTrigger::Auto, CompactionPhase::MidTurn)
    );
    // The compaction item belongs to the turn.
    let turn_id = h
        .seen
        .iter()
        .find_map(|e| match e {
            EventMsg::TurnStarted { turn_id, .. } => Some(turn_id.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(events[0].turn_id, turn_id);
    h.server.assert_no_violations();
}

#[tokio::test]
async fn pre_turn_compaction_excludes_the_incoming_message() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        WsSlot::new(vec![
            ev_response_created("resp-1"),
            ev_assistant_message("m1", "done"),
            ev_completed_with_tokens("resp-1", 9_500),
        ]),
        compaction_slot("resp-compact"),
        turn_slot("resp-2", "second answer"),
    ]));
    let options =
        Options { response_processed: false, context_window: 10_000, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("first task").await.unwrap();
    h.turn("second task").await.unwrap();
    let sent = messages(&h, 0);
    assert_eq!(sent.len(), 3);
    assert!(!sent[1].to_string().contains("second task"), "{}", sent[1]);
    let follow_up: Vec<ResponseItem> = serde_json::from_value(sent[2]["input"].clone()).unwrap();
    insta::assert_snapshot!(format_history(&follow_up), @r"
    00:message/user:first task
    01:context_compaction:encrypted=true
    02:message/developer:<permissions instructions>
    03:message/user:<environment_context>cwd=/repo</environment_context>
    04:message/user:second task
    ");
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].phase, CompactionPhase::PreTurn);
}

#[tokio::test]
async fn extra_output_items_never_reach_history() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        turn_slot("resp-1", "hi"),
        WsSlot::new(vec![
            ev_response_created("resp-compact"),
            ev_reasoning_item("rs-1", &["thinking"], &[]),
            ev_assistant_message("m-extra", "EXTRA ASSISTANT TEXT"),
            ev_context_compaction("cc-1", "ENC"),
            ev_completed("resp-compact"),
        ]),
    ]));
    let options = Options { response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();
    assert_eq!(
        h.session.history(),
        vec![ResponseItem::user_text("fix the bug"), compaction_item()]
    );
    assert!(!serde_json::to_string(&h.resumed_history().await).unwrap().contains("EXTRA"));
}

/// A failing compaction case: the events the compaction slot answers with (or a fault).
struct FailureCase {
    name: &'static str,
    slot: WsSlot,
    error: &'static str,
}

#[tokio::test]
async fn failures_leave_everything_as_it_was() {
    let cases = [
        FailureCase {
            name: "payload-less item",
            slot: WsSlot::new(vec![
                ev_response_created("r"),
                ev_output_item_done(json!({"type": "context_compaction"})),
                ev_completed("r"),
            ]),
            error: "Error running remote compact task: remote compaction v2 returned context_compaction without encrypted_content",
        },
        FailureCase {
            name: "two items",
            slot: WsSlot::new(vec![
                ev_response_created("r"),
                ev_context_compaction("a", "ENC1"),
                ev_context_compaction("b", "ENC2"),
                ev_completed("r"),
            ]),
            error: "Error running remote compact task: remote compaction v2 expected exactly one context_compaction output item, got 2 from 2 output items",
        },
        FailureCase {
            name: "response.failed",
            slot: WsSlot::new(vec![])
                .with_fault(Fault::failed("invalid_prompt", "the prompt is not allowed")),
            error: "Error running remote compact task: invalid request: the prompt is not allowed",
        },
    ];
    for case in cases {
        let server = TestServer::scripted().await.unwrap();
        server.push_ws_connection(WsConnectionScript::new([turn_slot("resp-1", "hi"), case.slot]));
        let options = Options { response_processed: false, ..Options::default() };
        let mut h = Harness::start(server, options).await;
        h.turn("fix the bug").await.unwrap();
        let before = h.snapshot().await;
        let error = h.compact().await.unwrap_err();
        assert_eq!(h.snapshot().await, before, "{}", case.name);
        let errors: Vec<&str> = h
            .seen
            .iter()
            .filter_map(|e| match e {
                EventMsg::Error(e) => Some(e.message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(errors, [case.error], "{}: {error}", case.name);
        let events = h.analytics_events(1).await;
        assert_eq!(events[0].status, CompactionStatus::Failed, "{}", case.name);
        assert_eq!(h.session.window_generation(), 0);
        // The next turn works.
        h.server.push_ws_connection(WsConnectionScript::new([turn_slot("resp-3", "ok")]));
        h.turn("next").await.unwrap();
    }
}

#[tokio::test]
async fn http_500_after_client_retries_is_not_retried_by_core() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(vec![
        ev_response_created("resp-1"),
        ev_assistant_message("m1", "hi"),
        ev_completed("resp-1"),
    ]);
    let options = Options { transport: Transport::Http, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    for _ in 0..3 {
        h.server.push_http_faults([Fault::internal_error()]);
    }
    let before = h.snapshot().await;
    let error = h.compact().await.unwrap_err();
    assert_eq!(error, CompactorError::InternalServerError);
    // One turn request, then the client's 1 + 2 retries; core adds none.
    assert_eq!(h.server.requests().len(), 4);
    assert_eq!(h.snapshot().await, before);
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Failed);
    assert!(h.seen.iter().any(|e| matches!(e, EventMsg::Error(e) if e.message == "Error running remote compact task: internal server error")));
}

#[tokio::test]
async fn cancellation_mid_stream_is_interrupted_and_changes_nothing() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        turn_slot("resp-1", "hi"),
        WsSlot::new(vec![
            ev_response_created("r"),
            ev_context_compaction("cc-1", "ENC"),
            ev_completed("r"),
        ])
        .with_fault(Fault::DelayBetweenEvents(Duration::from_secs(30))),
    ]));
    let options = Options { response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    let before = h.snapshot().await;
    let session = h.session.clone();
    let compaction = tokio::spawn(async move { session.compact().await });
    bounded(h.server.wait_for_ws_message(0, 1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    h.session.interrupt();
    let result = bounded(compaction).await.unwrap();
    assert_eq!(result, Err(CompactorError::Cancelled));
    h.drain();
    assert_eq!(h.snapshot().await, before);
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Interrupted);
    assert!(!h.seen.iter().any(|e| matches!(e, EventMsg::Error(_))));
    assert!(h.seen.iter().any(|e| matches!(e, EventMsg::TurnAborted { .. })));
}

#[tokio::test]
async fn early_end_on_websocket_falls_back_to_http() {
    let server = TestServer::scripted().await.unwrap();
    let early_end = || {
        WsSlot::new(vec![
            ev_response_created("r"),
            ev_context_compaction("cc-x", "X"),
            ev_completed("r"),
        ])
        .with_fault(Fault::CloseAfterEvents(1))
    };
    server.push_ws_connection(WsConnectionScript::new([turn_slot("resp-1", "hi"), early_end()]));
    server.push_ws_connection(WsConnectionScript::new([early_end()]));
    server.push_ws_connection(WsConnectionScript::new([early_end()]));
    server.push_sse(vec![
        ev_response_created("resp-compact"),
        ev_context_compaction("cc-1", "ENC"),
        ev_completed("resp-compact"),
    ]);
    let mut h = Harness::start(server, Options::default()).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();

    assert_eq!(
        h.session.history(),
        vec![ResponseItem::user_text("fix the bug"), compaction_item()]
    );
    assert_eq!(h.compacted_lines().await, 1);
    let notices: Vec<String> = h
        .seen
        .iter()
        .filter_map(|e| match e {
            EventMsg::StreamError { message, .. } | EventMsg::Warning { message } => {
                Some(message.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        notices,
        [
            "Reconnecting... 1/2",
            "Reconnecting... 2/2",
            "Falling back from WebSockets to HTTPS transport"
        ]
    );
    assert!(!h.seen.iter().any(|e| matches!(e, EventMsg::Error(_))));
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].status, CompactionStatus::Completed);
    assert_eq!(events[0].retries, 2);
    assert_eq!(h.server.handshakes().len(), 3);
    assert_eq!(h.server.requests().len(), 1, "the last attempt went over HTTP");
    assert!(!h.session.client().uses_websocket(), "the fallback is sticky");
}

#[tokio::test]
async fn item_events_share_the_trace_compaction_id() {
    let server = TestServer::scripted().await.unwrap();
    server.push_ws_connection(WsConnectionScript::new([
        turn_slot("resp-1", "hi"),
        compaction_slot("resp-compact"),
    ]));
    let options = Options { response_processed: false, ..Options::default() };
    let mut h = Harness::start(server, options).await;
    h.turn("fix the bug").await.unwrap();
    h.compact().await.unwrap();
    let started = h
        .seen
        .iter()
        .find_map(|e| match e {
            EventMsg::ItemStarted { item: TurnItem::ContextCompaction(item), turn_id, .. } => {
                Some((item.id.clone(), turn_id.clone()))
            }
            _ => None,
        })
        .unwrap();
    let completed = h
        .seen
        .iter()
        .find_map(|e| match e {
            EventMsg::ItemCompleted {
                item: TurnItem::ContextCompaction(item), turn_id, ..
            } => Some((item.id.clone(), turn_id.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(started, completed);
    let turn_ids: Vec<String> = h
        .seen
        .iter()
        .filter_map(|e| match e {
            EventMsg::TurnStarted { turn_id, .. } => Some(turn_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(&started.1, turn_ids.last().unwrap());

    h.session.flush().await.unwrap();
    let traces = h.dir.path().join("traces");
    let bundle = std::fs::read_dir(&traces).unwrap().next().unwrap().unwrap().path();
    let trace = std::fs::read_to_string(bundle.join("trace.jsonl")).unwrap();
    let installed: Vec<Value> = trace
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["payload"]["type"] == "compaction_installed")
        .collect();
    assert_eq!(installed.len(), 1);
    assert_eq!(installed[0]["payload"]["compaction_id"], started.0.as_str());
    let events = h.analytics_events(1).await;
    assert_eq!(events[0].compaction_id, started.0);
}

#[tokio::test]
async fn rate_limits_from_the_stream_reach_token_count() {
    let server = TestServer::scripted().await.unwrap();
    let rate_limits = json!({"type": "codex.rate_limits", "plan_type": "pro", "rate_limits": {
        "primary": {"used_percent": 61.0, "window_minutes": 300, "reset_at": 1_767_225_600},
    }});
    server.push_ws_connection(WsConnectionScript::new([WsSlot::new(vec![
        ev_response_created("resp-1"),
        rate_limits,
        ev_assistant_message("msg-1", "hi"),
        ev_completed_with_tokens("resp-1", 2_000),
    ])]));
    let mut h = Harness::start(server, Options::default()).await;
    h.turn("fix the bug").await.unwrap();
    let last = h
        .seen
        .iter()
        .rev()
        .find_map(|event| match event {
            EventMsg::TokenCount { rate_limits, .. } => Some(rate_limits.clone()),
            _ => None,
        })
        .expect("a token_count event");
    let primary = last.and_then(|snapshot| snapshot.primary).expect("the primary window");
    assert_eq!(primary.used_percent, 61.0);
    assert_eq!(primary.window_minutes, Some(300));
    assert_eq!(primary.resets_at, Some(1_767_225_600));
    h.server.assert_no_violations();
}
