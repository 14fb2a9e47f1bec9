//! Tests of the bench workloads: exact sizes, determinism, valid pairing, readable output.

use compactor_protocol::tokens::estimate_history_tokens;
use compactor_protocol::{ResponseItem, RolloutItem, RolloutLine, StreamEventPayload};
use pretty_assertions::assert_eq;

use super::{
    history_with_tool_tail, initial_context, realistic_history, response_streams, rollout_jsonl,
};
use crate::check_input;

#[test]
fn histories_have_exactly_the_asked_length() {
    for (items, tail_pairs) in [(0, 0), (1, 0), (2, 0), (3, 0), (57, 0), (1_000, 0), (1_000, 50)] {
        assert_eq!(
            history_with_tool_tail(items, tail_pairs).len(),
            items,
            "{items} / {tail_pairs}"
        );
    }
}

#[test]
fn histories_are_deterministic_and_start_with_the_initial_context() {
    let history = realistic_history(500);
    assert_eq!(history, realistic_history(500));
    assert_eq!(history[..2], initial_context()[..]);
}

#[test]
fn a_tool_tail_ends_the_history_with_answered_calls() {
    let history = history_with_tool_tail(400, 30);
    let tail = &history[400 - 61..];
    assert_eq!(tail[0], ResponseItem::user_text("run every test and fix what fails"));
    for pair in tail[1..].chunks(2) {
        assert_eq!(pair[0].call_id(), pair[1].output_call_id());
    }
}

#[test]
fn generated_calls_are_all_answered() {
    // Every call has its output right after it, even where the history was cut to length.
    for items in [3_000, 3_001, 3_002, 3_003] {
        assert_eq!(check_input(&realistic_history(items)), Vec::<String>::new(), "{items}");
    }
    assert_eq!(check_input(&realistic_history(3_000)), Vec::<String>::new());
}

#[test]
fn a_10k_history_has_the_size_design_5_names() {
    let history = realistic_history(10_000);
    let bytes = serde_json::to_vec(&history).unwrap().len();
    let tokens = estimate_history_tokens("", &history);
    assert!((4_500_000..7_000_000).contains(&bytes), "{bytes} bytes, {tokens} tokens");
    assert!((700_000..1_400_000).contains(&tokens), "{tokens} tokens");
    let kinds =
        ["message", "reasoning", "function_call", "function_call_output", "custom_tool_call"];
    for kind in kinds {
        assert!(history.iter().any(|item| item.item_type() == kind), "no {kind}");
    }
    let json = String::from_utf8(serde_json::to_vec(&history).unwrap()).unwrap();
    for needle in ["data:image/png;base64,", "\\\"", "\\\\n", "\\n", "\\t", "→"] {
        assert!(json.contains(needle), "no {needle}");
    }
}

#[test]
fn rollouts_read_back_as_the_history() {
    let history = realistic_history(200);
    let jsonl = rollout_jsonl("thread-bench", &history);
    let lines: Vec<RolloutLine> = jsonl
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 201);
    assert!(matches!(&lines[0].item, RolloutItem::SessionMeta(meta) if meta.id == "thread-bench"));
    let items: Vec<ResponseItem> = lines[1..]
        .iter()
        .map(|line| match &line.item {
            RolloutItem::ResponseItem(item) => item.clone(),
            other => panic!("unexpected line {other:?}"),
        })
        .collect();
    assert_eq!(items, history);
}

#[test]
fn response_streams_are_complete_responses() {
    let responses = response_streams(200_000);
    let bytes: usize = responses.iter().flatten().map(|event| event.to_string().len()).sum();
    assert!(bytes >= 200_000);
    assert_eq!(responses, response_streams(200_000));
    for events in &responses {
        let kinds: Vec<String> = events
            .iter()
            .map(|event| serde_json::from_value::<StreamEventPayload>(event.clone()).unwrap().kind)
            .collect();
        assert_eq!(kinds.first().map(String::as_str), Some("response.created"));
        assert_eq!(kinds.last().map(String::as_str), Some("response.completed"));
        let completed = events.last().unwrap();
        let done = kinds.iter().filter(|kind| *kind == "response.output_item.done").count();
        assert_eq!(completed["response"]["output"].as_array().unwrap().len(), done);
        assert!(events.iter().all(|event| event.get("sequence_number").is_some()));
    }
}
