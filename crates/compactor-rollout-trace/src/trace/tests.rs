//! Tests of compaction trace bundles: disabled is free, enabled writes payloads before events.

use std::os::unix::fs::PermissionsExt;

use compactor_protocol::{CompactorError, ResponseItem};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

const NOW_MS: u64 = 1_778_839_200_123;

fn config(root: &Path) -> TraceConfig {
    TraceConfig::with_root(root).clock(Clock::fixed_unix_ms(NOW_MS))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn events(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("trace.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The payload file an event cites, read and parsed; `None` when the event cites none.
fn cited_payload(dir: &Path, event: &Value) -> Option<Value> {
    let payload = &event["payload"];
    let reference = ["request_payload", "response_payload", "checkpoint_payload"]
        .iter()
        .find_map(|field| payload.get(*field))?;
    let path = dir.join(reference["path"].as_str().unwrap());
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn v2_request() -> Value {
    json!({
        "model": "gpt-test",
        "instructions": "be helpful",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "fix the bug"}]},
            {"type": "context_compaction"}
        ],
        "parallel_tool_calls": false
    })
}

fn v2_request_json() -> Vec<u8> {
    serde_json::to_vec(&v2_request()).unwrap()
}

/// A request sent as it is (over HTTP).
fn sent(request: &[u8]) -> SentRequestJson<'_> {
    SentRequestJson { request, wire_message: None }
}

fn compaction_output() -> ResponseItem {
    ResponseItem::ContextCompaction { id: None, encrypted_content: Some("ENC".into()) }
}

#[test]
fn config_from_env_value() {
    assert!(!TraceConfig::from_env_value(None).is_enabled());
    assert!(!TraceConfig::from_env_value(Some("".into())).is_enabled());
    let enabled = TraceConfig::from_env_value(Some("/tmp/traces".into()));
    assert_eq!(enabled.root(), Some(Path::new("/tmp/traces")));
    // Whatever the environment holds, reading it does not panic.
    let _ = TraceConfig::from_env();
}

#[test]
fn dir_names_are_filesystem_safe() {
    let cases = [
        ("rollout-2026-05-15-thread", "rollout-2026-05-15-thread"),
        ("a b/c:d", "a_b_c_d"),
        ("../etc", ".._etc"),
        ("", "bundle"),
        ("..", "bundle.."),
        ("é", "_"),
    ];
    for (input, expected) in cases {
        assert_eq!(dir_name(input), expected, "{input:?}");
    }
}

#[tokio::test]
async fn disabled_trace_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&TraceConfig::disabled(), "rollout", "thread").await.unwrap();
    assert!(!trace.is_enabled());
    assert_eq!(trace.bundle_dir(), None);
    let ctx = trace.compaction_trace_context("turn", "cmp", "model", "provider");
    assert!(!ctx.is_enabled());
    let attempt = ctx.start_attempt(sent(b"{}")).await;
    assert_eq!(attempt.request_id(), None);
    attempt.record_result(Ok(&[compaction_output()])).await;
    attempt.record_result(Err(&CompactorError::InternalServerError)).await;
    ctx.record_installed(&[], &[]).await;
    trace.flush().await;
    trace.shutdown().await;
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn v2_attempt_writes_cited_payloads() {
    let root = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&config(&root.path().join("traces")), "rollout-1", "thread-1")
        .await
        .unwrap();
    let dir = trace.bundle_dir().unwrap().to_path_buf();
    assert_eq!(dir, root.path().join("traces/rollout-1"));
    let ctx = trace.compaction_trace_context("turn-1", "cmp-1", "gpt-test", "testkit");
    let attempt = ctx.start_attempt(sent(&v2_request_json())).await;
    assert_eq!(attempt.request_id(), Some("compaction_request:1"));
    attempt.record_result(Ok(&[compaction_output()])).await;
    let input = vec![ResponseItem::user_text("fix the bug"), ResponseItem::assistant_text("done")];
    let replacement = vec![ResponseItem::user_text("fix the bug"), compaction_output()];
    ctx.record_installed(&input, &replacement).await;
    trace.shutdown().await;

    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("payloads")), 0o700);
    assert_eq!(mode(&dir.join("trace.jsonl")), 0o600);
    assert_eq!(mode(&dir.join("manifest.json")), 0o600);
    let events = events(&dir);
    let kinds: Vec<&str> = events.iter().map(|e| e["payload"]["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["compaction_request_started", "compaction_request_completed", "compaction_installed"]
    );
    let payloads: Vec<Option<Value>> =
        events.iter().map(|event| cited_payload(&dir, event)).collect();
    assert_eq!(
        payloads,
        vec![
            Some(v2_request()),
            Some(
                json!({"output_items": [{"type": "context_compaction", "encrypted_content": "ENC"}]})
            ),
            Some(json!({
                "input_history": serde_json::to_value(&input).unwrap(),
                "replacement_history": serde_json::to_value(&replacement).unwrap(),
            })),
        ]
    );
    insta::assert_snapshot!(
        "v2_attempt_trace_jsonl",
        std::fs::read_to_string(dir.join("trace.jsonl")).unwrap()
    );
    insta::assert_snapshot!(
        "manifest_json",
        std::fs::read_to_string(dir.join("manifest.json")).unwrap()
    );
}

#[tokio::test]
async fn failed_attempt_records_the_error_text() {
    let root = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&config(root.path()), "rollout", "thread").await.unwrap();
    let dir = trace.bundle_dir().unwrap().to_path_buf();
    let ctx = trace.compaction_trace_context("turn-1", "cmp-1", "gpt-test", "testkit");
    let first = ctx.start_attempt(sent(&v2_request_json())).await;
    let error =
        CompactorError::stream("remote compaction v2 stream closed before response.completed");
    first.record_result(Err(&error)).await;
    let second = ctx.start_attempt(sent(&v2_request_json())).await;
    assert_eq!(second.request_id(), Some("compaction_request:2"));
    trace.flush().await;

    let events = events(&dir);
    let failed = &events[1]["payload"];
    assert_eq!(
        failed,
        &json!({
            "type": "compaction_request_failed",
            "compaction_id": "cmp-1",
            "compaction_request_id": "compaction_request:1",
            "error": "stream error: remote compaction v2 stream closed before response.completed",
        })
    );
    assert_eq!(cited_payload(&dir, &events[1]), None);
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3]);
    // Payload numbers skip nothing: the failure had no payload.
    assert_eq!(events[2]["payload"]["request_payload"]["path"], "payloads/2.json");
    trace.shutdown().await;
}

#[tokio::test]
async fn an_event_whose_payload_cannot_be_written_is_dropped() {
    let root = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&config(root.path()), "rollout", "thread").await.unwrap();
    let dir = trace.bundle_dir().unwrap().to_path_buf();
    std::fs::remove_dir(dir.join("payloads")).unwrap();
    let ctx = trace.compaction_trace_context("turn-1", "cmp-1", "gpt-test", "testkit");
    let attempt = ctx.start_attempt(sent(&v2_request_json())).await;
    attempt.record_result(Err(&CompactorError::InternalServerError)).await;
    trace.shutdown().await;
    let kinds: Vec<String> =
        events(&dir).iter().map(|e| e["payload"]["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["compaction_request_failed"]);
}

#[tokio::test]
async fn bundles_of_one_rollout_id_get_distinct_directories() {
    let root = tempfile::tempdir().unwrap();
    let first = ThreadTrace::open(&config(root.path()), "same", "thread").await.unwrap();
    let second = ThreadTrace::open(&config(root.path()), "same", "thread").await.unwrap();
    assert_eq!(first.bundle_dir().unwrap(), root.path().join("same"));
    assert_eq!(second.bundle_dir().unwrap(), root.path().join("same-2"));
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn events_after_shutdown_are_dropped() {
    let root = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&config(root.path()), "rollout", "thread").await.unwrap();
    let dir = trace.bundle_dir().unwrap().to_path_buf();
    trace.shutdown().await;
    trace.shutdown().await;
    let ctx = trace.compaction_trace_context("turn-1", "cmp-1", "gpt-test", "testkit");
    let attempt = ctx.start_attempt(sent(&v2_request_json())).await;
    attempt.record_result(Ok(&[])).await;
    trace.flush().await;
    assert_eq!(std::fs::read_to_string(dir.join("trace.jsonl")).unwrap(), "");
}

#[tokio::test]
async fn a_wire_message_is_a_second_payload_and_both_are_written_as_sent() {
    let root = tempfile::tempdir().unwrap();
    let trace = ThreadTrace::open(&config(root.path()), "rollout", "thread").await.unwrap();
    let dir = trace.bundle_dir().unwrap().to_path_buf();
    let ctx = trace.compaction_trace_context("turn-1", "cmp-1", "gpt-test", "testkit");
    // Bytes as a client wrote them, key order and spacing included.
    let request = br#"{"model":"gpt-test","input":[{"type":"context_compaction"}],"stream":true}"#;
    let wire = br#"{"type":"response.create","model":"gpt-test","previous_response_id":"resp-1","input":[{"type":"context_compaction"}]}"#;
    let attempt = ctx.start_attempt(SentRequestJson { request, wire_message: Some(wire) }).await;
    attempt.record_result(Ok(&[compaction_output()])).await;
    trace.shutdown().await;

    let events = events(&dir);
    let started = &events[0]["payload"];
    assert_eq!(
        (&started["request_payload"], &started["wire_payload"]),
        (
            &json!({"raw_payload_id": "raw_payload:1", "kind": {"type": "compaction_request"}, "path": "payloads/1.json"}),
            &json!({"raw_payload_id": "raw_payload:2", "kind": {"type": "compaction_request_wire_message"}, "path": "payloads/2.json"}),
        )
    );
    let file = |name: &str| std::fs::read(dir.join("payloads").join(name)).unwrap();
    assert_eq!(file("1.json"), [&request[..], b"\n"].concat());
    assert_eq!(file("2.json"), [&wire[..], b"\n"].concat());
    assert_eq!(mode(&dir.join("payloads/2.json")), 0o600);
    assert_eq!(events[1]["payload"]["response_payload"]["path"], "payloads/3.json");
}
