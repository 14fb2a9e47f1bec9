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

/// A copy of the Codex 0.171 rollout fixture in `dir` (resuming appends to it).
fn codex_fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/codex-rollouts/codex-0.171-exec-compacted.jsonl");
    let copy = dir.join("rollout.jsonl");
    std::fs::copy(source, &copy).unwrap();
    copy
}

/// The history the fixture describes, each item as Codex wrote it: the replacement history of
/// its `compacted` line, then the `response_item` payloads after it.
fn codex_items(rollout: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Compacted<'a> {
        #[serde(borrow)]
        replacement_history: Vec<&'a serde_json::value::RawValue>,
    }
    let mut items = Vec::new();
    for text in rollout.lines() {
        let line: Line<'_> = serde_json::from_str(text).unwrap();
        match line.kind {
            "compacted" => {
                let compacted: Compacted<'_> = serde_json::from_str(line.payload.get()).unwrap();
                items =
                    compacted.replacement_history.iter().map(|raw| raw.get().to_owned()).collect();
            }
            "response_item" => items.push(line.payload.get().to_owned()),
            _ => {}
        }
    }
    items
}

const CODEX_THREAD: &str = "01a248a6-6e30-7b50-905b-3bdc08c62262";

#[tokio::test]
async fn a_codex_rollout_resumes_with_its_items_as_codex_wrote_them() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let path = codex_fixture(dir.path());
    let expected = codex_items(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(expected.len(), 6, "four replacement items, then a user message and the answer");
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let config = session_config(&server, dir.path(), &options);
    let mut h = Harness::resume(server, config, dir).await;
    assert_eq!(h.session.thread_id(), CODEX_THREAD);

    let history: Vec<String> =
        h.session.history().iter().map(|item| serde_json::to_string(item).unwrap()).collect();
    assert_eq!(history, expected, "byte for byte, unknown message fields included");
    assert!(expected[2].contains("internal_chat_message_metadata_passthrough"));
    assert!(expected[5].starts_with(r#"{"type":"message","status":"completed","id":"msg_8""#));

    // The session goes on: the reference model accepts the sealed item Codex stored.
    h.turn("and a third turn").await.unwrap();
    let sent = h.server.requests().last().unwrap().body_json()["input"].clone();
    let sent: Vec<String> = sent.as_array().unwrap().iter().map(Value::to_string).collect();
    for item in &expected {
        assert!(sent.contains(item), "{item} was not sent as Codex wrote it");
    }
    h.server.assert_no_violations();
}

/// Every `response_item` payload of `rollout`, and the replacement history items of its
/// `compacted` lines, each as written.
fn written_items(rollout: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Line<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        #[serde(borrow)]
        payload: &'a serde_json::value::RawValue,
    }
    #[derive(serde::Deserialize)]
    struct Compacted<'a> {
        #[serde(borrow)]
        replacement_history: Vec<&'a serde_json::value::RawValue>,
    }
    let mut items = Vec::new();
    for text in rollout.lines() {
        let line: Line<'_> = serde_json::from_str(text).unwrap();
        match line.kind {
            "compacted" => {
                let compacted: Compacted<'_> = serde_json::from_str(line.payload.get()).unwrap();
                items.extend(compacted.replacement_history.iter().map(|raw| raw.get().to_owned()));
            }
            "response_item" => items.push(line.payload.get().to_owned()),
            _ => {}
        }
    }
    items
}

#[tokio::test]
async fn a_codex_rollout_forks_byte_for_byte_and_rolls_back_one_turn() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let path = codex_fixture(dir.path());
    let original = std::fs::read_to_string(&path).unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let config = session_config(&server, dir.path(), &options);
    let fork_path = dir.path().join("fork.jsonl");
    let mut h = Harness::resume(server, config, dir).await;

    // Fork: the new rollout's copies of the items are the originals, byte for byte.
    bounded(h.session.fork(&fork_path, 0)).await.unwrap();
    let fork = std::fs::read_to_string(&fork_path).unwrap();
    let copied = written_items(&fork);
    assert_eq!(copied, written_items(&original));
    assert_eq!(copied.len(), 10, "four items before the compaction, four in it, two after");
    assert_eq!(codex_items(&fork), codex_items(&original));

    // Rollback of one turn: Codex marks turns with `task_started`; the second turn (with the
    // compaction) is undone, and the history is the first turn's, as Codex wrote it.
    bounded(h.session.rollback(1)).await.unwrap();
    let history: Vec<String> =
        h.session.history().iter().map(|item| serde_json::to_string(item).unwrap()).collect();
    let first_turn: Vec<String> = written_items(&original)[..4].to_vec();
    assert_eq!(history, first_turn);
    assert!(history[2].contains(r#""text":"say hi""#), "{history:#?}");
    // And the session goes on from there.
    h.turn("say hello instead").await.unwrap();
    h.server.assert_no_violations();
}
