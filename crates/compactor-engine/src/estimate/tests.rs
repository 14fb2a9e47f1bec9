//! Tests of history estimation and of the session usage gate (D35, D36).

use compactor_protocol::tokens::{TokenCounter, estimate_item_tokens};
use pretty_assertions::assert_eq;

use super::*;
use crate::counts::ItemCounter;
use crate::test_support::{assistant, call, developer, output, reasoning, unknown, user};

fn tokens(item: &ResponseItem) -> i64 {
    i64::try_from(estimate_item_tokens(item)).unwrap()
}

#[test]
fn unknown_items_count_their_raw_json_whether_sent_or_not() {
    let sent = PassThroughList::default();
    let refused = PassThroughList::new(Vec::<String>::new());
    for kind in ["configuration_update", "ghost_snapshot"] {
        let item = unknown(kind);
        let serialized = serde_json::to_string(&item).unwrap().len() as u64;
        for pass_through in [&sent, &refused] {
            let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through };
            assert_eq!(counter.count(&item), serialized.div_ceil(4));
        }
    }
}

#[test]
fn a_large_unknown_item_is_not_free() {
    let big = ResponseItem::Unknown(serde_json::json!({
        "type": "vendor_blob",
        "data": "x".repeat(4 << 20),
    }));
    let tokens = estimate_history("", std::slice::from_ref(&big), &PassThroughList::default());
    assert!(tokens > 1 << 20, "{tokens}");
}

#[test]
fn history_estimate_is_instructions_tools_and_items_calibrated() {
    let pass_through = PassThroughList::default();
    let items = [user("hello"), assistant("world"), unknown("configuration_update")];
    let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    let expected = TokenCounter::Bytes4.text_tokens("instructions!")
        + items.iter().map(|item| counter.count(item)).sum::<u64>();
    assert_eq!(estimate_history("instructions!", &items, &pass_through), expected);
    let context = EstimateContext::new("instructions!", &pass_through);
    assert_eq!(context.estimate(&items), expected);
    assert_eq!(estimate_history("", &[], &pass_through), 0);
    let counts = HistoryCounts::new(&items, &counter);
    assert_eq!(context.estimate_counted(&counts), expected);
    // Tools count as part of every request; the calibration corrects the whole.
    let with_tools = EstimateContext { tool_tokens: 100, ..context };
    assert_eq!(with_tools.estimate(&items), expected + 100);
    let calibrated =
        EstimateContext { calibration: TokenCalibration::observe(None, 3, 2), ..with_tools };
    let corrected = ((expected + 100) as f64 * 1.5).round() as u64;
    assert_eq!(calibrated.estimate(&items), corrected);
    assert_eq!(calibrated.estimate_counted(&counts), corrected);
    assert_eq!(calibrated.raw_estimate_counted(&counts), expected + 100);
    // The session's counter counts the text.
    let o200k = EstimateContext { counter: TokenCounter::O200k, ..context };
    let russian = [user("Когда окно контекста почти заполнено, история сжимается.")];
    assert!(o200k.estimate(&russian) < context.estimate(&russian));
}

#[track_caller]
fn check_usage(items: &[ResponseItem], reasoning: ReasoningAccounting, expected: i64) {
    assert_eq!(counted_usage(items, reasoning, None, TokenCounter::Bytes4), expected);
}

#[test]
fn usage_adds_items_after_the_last_model_generated_item() {
    let new_user = user("new user message");
    let new_output = output("call-tail", "new tool output");
    check_usage(
        &[assistant("already counted"), new_user.clone(), new_output.clone()],
        ReasoningAccounting::Estimated,
        1_000 + tokens(&new_user) + tokens(&new_output),
    );
    // A call is model-generated: only its output is new.
    check_usage(
        &[user("a"), call("c1", "shell"), new_output.clone()],
        ReasoningAccounting::Estimated,
        1_000 + tokens(&new_output),
    );
}

#[test]
fn usage_without_model_generated_items_adds_nothing() {
    check_usage(&[user("a"), developer("b")], ReasoningAccounting::Estimated, 1_000);
    check_usage(&[], ReasoningAccounting::Estimated, 1_000);
}

#[test]
fn usage_counts_encrypted_reasoning_before_the_last_user_turn() {
    let early = reasoning(900);
    let middle = reasoning(1_000);
    let items = [
        early.clone(),
        user("first"),
        middle.clone(),
        assistant("reply"),
        user("second"),
        reasoning(2_000),
        assistant("reply"),
    ];
    check_usage(&items, ReasoningAccounting::Estimated, 1_000 + tokens(&early) + tokens(&middle));
    check_usage(&items, ReasoningAccounting::IncludedByServer, 1_000);
}

#[test]
fn contextual_user_messages_are_not_turn_boundaries() {
    let early = reasoning(1_000);
    let items = [
        user("first"),
        early.clone(),
        assistant("reply"),
        user("<environment_context>cwd</environment_context>"),
        reasoning(2_000),
        assistant("reply"),
    ];
    check_usage(&items, ReasoningAccounting::Estimated, 1_000);
    let items = [user("first"), early.clone(), assistant("reply"), user("second"), assistant("r")];
    check_usage(&items, ReasoningAccounting::Estimated, 1_000 + tokens(&early));
}

#[test]
fn usage_saturates() {
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    let items = [assistant("a"), user("x")];
    let counts = HistoryCounts::new(
        &items,
        &ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through },
    );
    let input = ContextUsageInput {
        items: &items,
        counts: &counts,
        last_total_tokens: i64::MAX,
        history_len_at_last_usage: None,
        reasoning: ReasoningAccounting::Estimated,
        markers: &markers,
        calibration: None,
    };
    assert_eq!(context_usage(&input), i64::MAX);
}

#[test]
fn model_generated_items() {
    let generated = [
        assistant("a"),
        reasoning(10),
        call("c", "shell"),
        crate::test_support::context_compaction("x"),
        crate::test_support::compaction("x"),
    ];
    for item in &generated {
        assert!(is_model_generated(item), "{item:?}");
    }
    let local = [
        user("u"),
        developer("d"),
        output("c", "o"),
        ResponseItem::context_compaction_trigger(),
        ResponseItem::CompactionTrigger,
        unknown("configuration_update"),
    ];
    for item in &local {
        assert!(!is_model_generated(item), "{item:?}");
    }
}

fn counted_usage(
    items: &[ResponseItem],
    reasoning: ReasoningAccounting,
    calibration: Option<TokenCalibration>,
    counter: TokenCounter,
) -> i64 {
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    let counts = HistoryCounts::new(items, &ItemCounter { counter, pass_through: &pass_through });
    context_usage(&ContextUsageInput {
        items,
        counts: &counts,
        last_total_tokens: 1_000,
        history_len_at_last_usage: None,
        reasoning,
        markers: &markers,
        calibration,
    })
}

#[test]
fn usage_from_cached_counts_calibrates_what_it_estimates() {
    let items = [assistant("reply"), user("next"), output("c", &"x".repeat(4_000))];
    let plain = counted_usage(&items, ReasoningAccounting::Estimated, None, TokenCounter::Bytes4);
    let estimated = plain - 1_000;
    let calibration = TokenCalibration::observe(None, 1_250, 1_000);
    let calibrated =
        counted_usage(&items, ReasoningAccounting::Estimated, calibration, TokenCounter::Bytes4);
    // Only the estimated part is corrected; the reported 1 000 stays as reported.
    assert_eq!(calibrated, 1_000 + (estimated as f64 * 1.25).round() as i64);
    // A ratio outside the bounds is applied at its bound.
    let wild = TokenCalibration::observe(None, 10_000, 1_000);
    let bounded = counted_usage(&items, ReasoningAccounting::Estimated, wild, TokenCounter::Bytes4);
    assert_eq!(bounded, 1_000 + estimated * 2);
}

#[test]
fn usage_from_cached_counts_uses_the_session_counter() {
    let items =
        [assistant("reply"), user("Когда окно контекста почти заполнено, история сжимается.")];
    let bytes4 = counted_usage(&items, ReasoningAccounting::Estimated, None, TokenCounter::Bytes4);
    let o200k = counted_usage(&items, ReasoningAccounting::Estimated, None, TokenCounter::O200k);
    assert!(o200k < bytes4, "{o200k} vs {bytes4}");
}

#[test]
fn usage_from_a_tracked_history_length() {
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    let added = user("added after the usage");
    let items = [user("summary"), added.clone()];
    let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    let counts = HistoryCounts::new(&items, &counter);
    let usage = |covered| {
        context_usage(&ContextUsageInput {
            items: &items,
            counts: &counts,
            last_total_tokens: 1_000,
            history_len_at_last_usage: covered,
            reasoning: ReasoningAccounting::Estimated,
            markers: &markers,
            calibration: None,
        })
    };
    assert_eq!(usage(Some(1)), 1_000 + tokens(&added));
    // Nothing covered: everything is estimated, model-generated or not.
    assert_eq!(usage(Some(0)), 1_000 + tokens(&items[0]) + tokens(&added));
    assert_eq!(usage(Some(7)), 1_000);
    // Untracked: only what follows the last model-generated item, here nothing.
    assert_eq!(usage(None), 1_000);
}
