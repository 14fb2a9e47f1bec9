//! Tests of the interop task's pure parts: libtest lines, `/proc` stat lines, HTTP status lines,
//! the report, and the peers' command lines.

use std::collections::BTreeMap;
use std::path::Path;

use pretty_assertions::assert_eq;

use super::*;

#[track_caller]
fn check_test_line(line: &str, expected: Option<(&str, Outcome)>) {
    let expected = expected.map(|(name, outcome)| CaseResult { name: name.to_owned(), outcome });
    assert_eq!(parse_test_line(line), expected);
}

#[test]
fn test_lines() {
    check_test_line("test llmock::verdict ... ok", Some(("llmock::verdict", Outcome::Pass)));
    check_test_line(
        "test aimock::two_turns_on_one_websocket ... FAILED",
        Some(("aimock::two_turns_on_one_websocket", Outcome::Fail)),
    );
    check_test_line("test a::b ... ignored", None);
    check_test_line("running 12 tests", None);
    check_test_line("test result: ok. 12 passed; 0 failed", None);
    check_test_line("    test a::b ... ok", None);
}

#[test]
fn stat_lines() {
    let check = |line: &str, expected: Option<(u32, char)>| assert_eq!(parse_stat(line), expected);
    check("4242 (python3.11) S 1 4242 4242 0 -1 4194560 ...", Some((4242, 'S')));
    // A command name with spaces and parentheses.
    check("77 (node (x) y) R 76 70 70 0 -1", Some((70, 'R')));
    check("9 (zombie) Z 1 9 9", Some((9, 'Z')));
    check("garbage", None);
}

#[test]
fn status_lines() {
    let check = |head: &str, expected: Option<u16>| assert_eq!(parse_status_line(head), expected);
    check("HTTP/1.1 200 OK\r\ncontent-type: text/plain", Some(200));
    check("HTTP/1.0 503 Service Unavailable", Some(503));
    check("SSH-2.0-OpenSSH", None);
    check("", None);
}

#[test]
fn report_groups_cases_by_peer() {
    let cases: Vec<CaseResult> = [
        ("aimock::sse_text_turn", Outcome::Pass),
        ("litellm::sse_text_turn", Outcome::Pass),
        ("litellm::websocket_two_turns", Outcome::Fail),
        ("llmock::retry_after_is_honoured", Outcome::Pass),
        ("otlp::demo_spans_equal_the_jsonl_analytics", Outcome::Pass),
        ("stray_test", Outcome::Pass),
    ]
    .into_iter()
    .map(|(name, outcome)| CaseResult { name: name.to_owned(), outcome })
    .collect();
    let urls: BTreeMap<PeerKind, String> = [
        (PeerKind::Litellm, "http://127.0.0.1:1/v1".to_owned()),
        (PeerKind::Agentserver, "http://127.0.0.1:2".to_owned()),
    ]
    .into_iter()
    .collect();
    let verdict =
        "== llmock::retry_after_is_honoured\nLLMock resilience verdict: 1 call(s)\n\n  PASS  ok\n";
    let expected = "\
litellm (http://127.0.0.1:1/v1)
  pass  sse_text_turn
  FAIL  websocket_two_turns
agentserver (http://127.0.0.1:2)
  FAIL  (no case ran)
llmock
  pass  retry_after_is_honoured
aimock
  pass  sse_text_turn
otlp
  pass  demo_spans_equal_the_jsonl_analytics
other
  pass  stray_test

llmock's verdicts on Compactor's client:
  == llmock::retry_after_is_honoured
  LLMock resilience verdict: 1 call(s)

    PASS  ok

interop: 5 passed, 1 failed
";
    assert_eq!(render_report(&cases, &urls, Some(verdict)), expected);
    assert!(render_report(&[], &BTreeMap::new(), None).contains("  (none recorded)\n"));
}

#[test]
fn peers_are_served_on_loopback_at_their_documented_routes() {
    let layout = Layout::new(Path::new("/repo"));
    let rows: Vec<String> = PEERS
        .into_iter()
        .map(|peer| {
            let (program, args) = peer.command(&layout, 4000);
            format!(
                "{} {} | {} {} | {}",
                peer.name(),
                peer.base_url(4000),
                program.display(),
                args.join(" "),
                peer.readiness_path()
            )
        })
        .collect();
    let cache = layout.cache.display().to_string();
    let expected = [
        format!(
            "litellm http://127.0.0.1:4000/v1 | {cache}/venvs/litellm/bin/litellm --config \
             /repo/interop/litellm/config.yaml --host 127.0.0.1 --port 4000 --num_workers 1 \
             | /health/liveliness"
        ),
        format!(
            "agentserver http://127.0.0.1:4000 | {cache}/venvs/agentserver/bin/python \
             /repo/interop/agentserver/handler.py 4000 | /readiness"
        ),
        format!(
            "llmock http://127.0.0.1:4000/v1 | {cache}/venvs/llmock/bin/llmock serve --host \
             127.0.0.1 --port 4000 --response-style hello | /_llmock/scenario"
        ),
        format!(
            "aimock http://127.0.0.1:4000/v1 | node \
             {cache}/aimock/node_modules/@copilotkit/aimock/dist/cli.js -h 127.0.0.1 -p 4000 -f \
             /repo/interop/aimock | /health"
        ),
        format!(
            "otlp http://127.0.0.1:4000 | {cache}/venvs/otlp/bin/python \
             /repo/interop/otlp/receiver.py 4000 | /health"
        ),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn free_ports_are_distinct() {
    let ports = free_ports(4).unwrap();
    let mut unique = ports.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{ports:?}");
}

#[test]
fn new_keys_are_not_well_known() {
    let key = new_key();
    assert!(key.starts_with("sk-interop-") && key.len() > 20, "{key}");
}
