//! What real clients and real rollouts hold: messages in the shapes the official SDKs send and
//! the fields Codex writes, carried through a session as they came.

use compactor_protocol::ResponseItem;
use compactor_protocol::tokens::estimate_item_tokens;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, bounded, session_config};

/// A user message as the SDKs send a one-line prompt: no `type`, string content.
const TYPELESS: &str = r#"{"role":"user","content":"fix the flaky test in parser.rs"}"#;

/// A rollout holding a typeless user message and a Codex-style assistant answer.
fn rollout_with_typeless_message() -> String {
    let lines = [
        json!({"timestamp": "2026-12-01T10:00:00.000Z", "type": "session_meta",
               "payload": {"id": "thread-typeless"}}),
        json!({"timestamp": "2026-12-01T10:00:01.000Z", "type": "response_item",
               "payload": serde_json::from_str::<Value>(TYPELESS).unwrap()}),
        json!({"timestamp": "2026-12-01T10:00:02.000Z", "type": "response_item",
               "payload": {"type": "message", "status": "completed", "id": "msg_1", "role": "assistant",
                           "content": [{"type": "output_text", "text": "Fixed.", "annotations": [], "logprobs": []}]}}),
    ];
    lines.iter().map(|line| format!("{line}\n")).collect()
}

#[tokio::test]
async fn a_typeless_user_message_is_sent_counted_and_rolled_back_as_a_turn() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rollout.jsonl"), rollout_with_typeless_message()).unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let config = session_config(&server, dir.path(), &options);
    let mut h = Harness::resume(server, config, dir).await;

    // Counted: a message of the history, and in the context estimate.
    let history = h.session.history();
    assert_eq!(history[0].role(), Some("user"));
    assert_eq!(history[0].message_text().as_deref(), Some("fix the flaky test in parser.rs"));
    assert!(estimate_item_tokens(&history[0]) > 0);
    let without: Vec<ResponseItem> = history[1..].to_vec();
    let estimate = |items: &[ResponseItem]| {
        compactor_engine::estimate_history(
            &h.session.config().base_instructions,
            items,
            &h.session.config().provider.pass_through,
        )
    };
    assert_eq!(estimate(&history), estimate(&without) + estimate_item_tokens(&history[0]));

    // Sent, in the form it came.
    h.turn("and add a regression test").await.unwrap();
    let request = h.server.responses_requests()[0].body_json().clone();
    let input = request["input"].as_array().unwrap();
    let sent: Vec<String> = input.iter().map(Value::to_string).collect();
    assert!(sent.contains(&TYPELESS.to_owned()), "{sent:#?}");
    assert!(sent.iter().any(|item| item.contains(r#""status":"completed""#)), "{sent:#?}");

    // A user turn: rolling back two turns undoes it, one turn keeps it.
    h.session.rollback(1).await.unwrap();
    assert_eq!(h.session.history()[0].message_text(), history[0].message_text());
    h.session.rollback(1).await.unwrap();
    assert!(
        h.session
            .history()
            .iter()
            .all(|item| item.message_text().as_deref() != Some("fix the flaky test in parser.rs")),
        "{:#?}",
        h.session.history()
    );
    // Written back as it came: the rollout still holds the line byte for byte.
    let rollout = std::fs::read_to_string(h.rollout_path()).unwrap();
    assert!(rollout.contains(&format!(r#""payload":{TYPELESS}"#)), "{rollout}");
    bounded(h.session.shutdown()).await.unwrap();
}
