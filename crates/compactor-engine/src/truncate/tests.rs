//! Tests of truncation on record: the limit with its slack, the marker, character boundaries, and
//! every kind of tool output.

use compactor_protocol::{ContentItem, ResponseItem, ToolOutput};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::test_support::{data_url_image, output, user};

/// The text of a function call output.
fn text_of(item: &ResponseItem) -> &str {
    match item {
        ResponseItem::FunctionCallOutput { output: ToolOutput::Text(text), .. }
        | ResponseItem::CustomToolCallOutput { output: ToolOutput::Text(text), .. } => text,
        _ => unreachable!("not a text output: {item:?}"),
    }
}

#[track_caller]
fn check(policy: TruncationPolicy, text: &str, expected: &str, event: Option<(u64, u64)>) {
    let mut item = output("call_1", text);
    let truncation = truncate_tool_output(&mut item, policy, TokenCounter::Bytes4);
    assert_eq!(text_of(&item), expected);
    assert_eq!(truncation.map(|cut| (cut.original_tokens, cut.kept_tokens)), event);
}

#[test]
fn outputs_within_the_limit_and_its_slack_are_recorded_whole() {
    // 10 bytes of limit are 12 with the slack.
    check(TruncationPolicy::Bytes(10), "0123456789ab", "0123456789ab", None);
    // 3 tokens are 4 with the slack: 16 bytes.
    check(TruncationPolicy::Tokens(3), &"x".repeat(16), &"x".repeat(16), None);
    check(TruncationPolicy::Tokens(0), "", "", None);
}

#[test]
fn longer_outputs_keep_their_head_and_tail_around_a_marker() {
    check(
        TruncationPolicy::Bytes(10),
        "0123456789abcdefghij",
        "012345…8 bytes truncated…efghij",
        Some((5, 9)),
    );
    // 2 tokens are 3 with the slack: 12 bytes, 6 of head and 6 of tail; 28 bytes go.
    check(
        TruncationPolicy::Tokens(2),
        &format!("{}{}", "a".repeat(20), "b".repeat(20)),
        "aaaaaa…7 tokens truncated…bbbbbb",
        Some((10, 9)),
    );
    // A limit of zero keeps the marker alone.
    check(TruncationPolicy::Bytes(0), "abc", "…3 bytes truncated…", Some((1, 6)));
}

#[test]
fn cuts_fall_on_character_boundaries() {
    // 2-, 3- and 4-byte characters, cut at every budget: the result is the original's head and
    // tail at character boundaries, within the budget, around the marker.
    for unit in ["é", "→", "😀", "a→é😀"] {
        let text = unit.repeat(40);
        for limit in 0..40u64 {
            let policy = TruncationPolicy::Bytes(limit);
            let mut item = output("call_1", &text);
            truncate_tool_output(&mut item, policy, TokenCounter::Bytes4);
            let cut = text_of(&item);
            let (head, rest) = cut.split_once('…').unwrap_or((cut, ""));
            let tail = rest.rsplit_once('…').map_or(rest, |(_, tail)| tail);
            assert!(text.starts_with(head) && text.ends_with(tail), "{unit} {limit}: {cut}");
            assert!(
                (head.len() + tail.len()) as u64 <= policy.budget_bytes(),
                "{unit} {limit}: {cut}"
            );
            assert!(cut.contains("bytes truncated…"), "{unit} {limit}: {cut}");
        }
    }
}

#[test]
fn budget_bytes_apply_the_slack_rounding_up() {
    for (policy, bytes) in [
        (TruncationPolicy::Tokens(10_000), 48_000),
        (TruncationPolicy::Tokens(1), 8),
        (TruncationPolicy::Tokens(0), 0),
        (TruncationPolicy::Bytes(5), 6),
        (TruncationPolicy::Bytes(6), 8),
        (TruncationPolicy::Bytes(u64::MAX), u64::MAX),
        (TruncationPolicy::Tokens(u64::MAX), u64::MAX),
    ] {
        assert_eq!(policy.budget_bytes(), bytes, "{policy:?}");
    }
    assert_eq!(TruncationPolicy::default(), TruncationPolicy::Tokens(DEFAULT_TOOL_OUTPUT_TOKENS));
}

/// A deterministic 2 MB log: numbered lines of build output.
fn two_megabyte_log() -> String {
    let mut log = String::with_capacity(2_000_100);
    let mut line = 0u32;
    while log.len() < 2_000_000 {
        line += 1;
        log.push_str(&format!(
            "{line:06} compiling crate_{} v0.{}.0 (/repo/crates)\n",
            line % 97,
            line % 13
        ));
    }
    log
}

#[test]
fn a_two_megabyte_output_is_recorded_within_the_limit_plus_the_marker() {
    let log = two_megabyte_log();
    let mut item = output("call_big", &log);
    let truncation =
        truncate_tool_output(&mut item, TruncationPolicy::default(), TokenCounter::Bytes4).unwrap();
    let recorded = text_of(&item);
    let (head, rest) = recorded.split_once('…').unwrap();
    let (marker, tail) = rest.split_once('…').unwrap();
    let budget = TruncationPolicy::default().budget_bytes();
    assert_eq!((head.len() + tail.len()) as u64, budget);
    assert!(log.starts_with(head) && log.ends_with(tail));
    let shown = format!(
        "original: {} bytes, {} tokens\nrecorded: {} bytes, {} tokens (budget {budget} bytes of text)\n\
         marker: …{marker}…\nhead starts: {:?}\ntail ends: {:?}\nrecorded item: {}\n",
        log.len(),
        truncation.original_tokens,
        recorded.len(),
        truncation.kept_tokens,
        &head[..60],
        &tail[tail.len() - 60..],
        serde_json::to_string(&json!({
            "type": item.item_type(),
            "call_id": "call_big",
            "output": format!("{}…{marker}…{}", &head[..30], &tail[tail.len() - 30..]),
        }))
        .unwrap(),
    );
    insta::assert_snapshot!(shown);
}

#[test]
fn content_outputs_cut_their_text_and_keep_their_images() {
    let mut item = ResponseItem::CustomToolCallOutput {
        call_id: "call_1".into(),
        name: Some("screenshot".into()),
        output: ToolOutput::Content(vec![
            ContentItem::InputText { text: "a".repeat(30) },
            data_url_image(),
            ContentItem::InputText { text: "b".repeat(30) },
        ]),
    };
    let truncation =
        truncate_tool_output(&mut item, TruncationPolicy::Bytes(10), TokenCounter::Bytes4).unwrap();
    let ResponseItem::CustomToolCallOutput { output: ToolOutput::Content(parts), .. } = &item
    else {
        unreachable!()
    };
    assert_eq!(
        parts,
        &[
            ContentItem::InputText { text: "aaaaaa…48 bytes truncated…".into() },
            data_url_image(),
            ContentItem::InputText { text: "bbbbbb".into() },
        ]
    );
    assert_eq!((truncation.original_tokens, truncation.kept_tokens), (15, 9));
}

#[test]
fn tool_search_outputs_keep_whole_tools_from_the_first() {
    let tools: Vec<serde_json::Value> = (0..10)
        .map(|n| json!({"type": "function", "name": format!("tool_{n}"), "description": "x".repeat(50)}))
        .collect();
    let size = serde_json::to_string(&tools[0]).unwrap().len() as u64;
    let mut item = ResponseItem::ToolSearchOutput {
        call_id: Some("call_1".into()),
        status: "completed".into(),
        execution: "client".into(),
        tools: tools.clone(),
    };
    // Room for three and a half tools: three stay.
    let limit = (size * 7 / 2) * 5 / 6;
    let truncation =
        truncate_tool_output(&mut item, TruncationPolicy::Bytes(limit), TokenCounter::Bytes4)
            .unwrap();
    let ResponseItem::ToolSearchOutput { tools: kept, .. } = &item else { unreachable!() };
    assert_eq!(kept, &tools[..3]);
    assert_eq!(truncation.kept_tokens, (3 * size).div_ceil(4));
    assert_eq!(truncation.original_tokens, (10 * size).div_ceil(4));
    // Within the limit nothing changes.
    let mut whole = item.clone();
    assert_eq!(
        truncate_tool_output(&mut whole, TruncationPolicy::Bytes(10 * size), TokenCounter::Bytes4),
        None
    );
    assert_eq!(whole, item);
}

#[test]
fn only_tool_outputs_are_truncated() {
    let long = "z".repeat(1_000);
    for mut item in [
        user(&long),
        ResponseItem::assistant_text(long.clone()),
        crate::test_support::call("call_1", "shell"),
        crate::test_support::context_compaction(&long),
    ] {
        let before = item.clone();
        assert_eq!(
            truncate_tool_output(&mut item, TruncationPolicy::Bytes(1), TokenCounter::Bytes4),
            None
        );
        assert_eq!(item, before);
    }
}

#[test]
fn a_token_limit_counts_with_the_session_counter() {
    // Digits are three to an o200k token: four bytes per token would keep a third too many.
    let dense = "1234567890".repeat(2_000);
    let mut exact = output("call_1", &dense);
    let cut =
        truncate_tool_output(&mut exact, TruncationPolicy::Tokens(1_000), TokenCounter::O200k)
            .unwrap();
    assert_eq!(cut.original_tokens, TokenCounter::O200k.text_tokens(&dense));
    // The limit with its slack (1 200), give or take the marker and the cut's rounding.
    assert!((1_150..=1_230).contains(&cut.kept_tokens), "{cut:?}");
    let mut by_bytes = output("call_1", &dense);
    truncate_tool_output(&mut by_bytes, TruncationPolicy::Tokens(1_000), TokenCounter::Bytes4)
        .unwrap();
    let kept = |item: &ResponseItem| match item {
        ResponseItem::FunctionCallOutput { output: ToolOutput::Text(text), .. } => text.len(),
        _ => 0,
    };
    assert!(kept(&exact) < kept(&by_bytes) * 4 / 5, "{} vs {}", kept(&exact), kept(&by_bytes));
}
