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
    for kind in ["configuration_update", "ghost_snapshot"] {
        let item = unknown(kind);
        let serialized = serde_json::to_string(&item).unwrap().len() as u64;
        assert_eq!(item_tokens(&item, &PassThroughList::default()), serialized.div_ceil(4));
        assert_eq!(
            item_tokens(&item, &PassThroughList::new(Vec::<String>::new())),
            serialized.div_ceil(4)
        );
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
fn history_estimate_is_instructions_plus_items() {
    let pass_through = PassThroughList::default();
    let items = [user("hello"), assistant("world"), unknown("configuration_update")];
    let expected = approx_token_count("instructions!")
        + items.iter().map(|item| item_tokens(item, &pass_through)).sum::<u64>();
    assert_eq!(estimate_history("instructions!", &items, &pass_through), expected);
    let context =
        EstimateContext { base_instructions: "instructions!", pass_through: &pass_through };
    assert_eq!(context.estimate(&items), expected);
    assert_eq!(estimate_history("", &[], &pass_through), 0);
}

#[track_caller]
fn check_usage(
    items: &[ResponseItem],
    history_len_at_last_usage: Option<usize>,
    reasoning: ReasoningAccounting,
    expected: i64,
) {
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    let input = TotalUsageInput {
        items,
        last_total_tokens: 1_000,
        history_len_at_last_usage,
        reasoning,
        markers: &markers,
        pass_through: &pass_through,
    };
    assert_eq!(total_token_usage(&input), expected);
}

#[test]
fn usage_adds_items_after_the_last_model_generated_item() {
    let new_user = user("new user message");
    let new_output = output("call-tail", "new tool output");
    check_usage(
        &[assistant("already counted"), new_user.clone(), new_output.clone()],
        None,
        ReasoningAccounting::Estimated,
        1_000 + tokens(&new_user) + tokens(&new_output),
    );
    // A call is model-generated: only its output is new.
    check_usage(
        &[user("a"), call("c1", "shell"), new_output.clone()],
        None,
        ReasoningAccounting::Estimated,
        1_000 + tokens(&new_output),
    );
}

#[test]
fn usage_without_model_generated_items_adds_nothing() {
    check_usage(&[user("a"), developer("b")], None, ReasoningAccounting::Estimated, 1_000);
    check_usage(&[], None, ReasoningAccounting::Estimated, 1_000);
}

#[test]
fn usage_from_a_recorded_history_length() {
    let added = user("added after the estimate");
    check_usage(
        &[user("summary"), added.clone()],
        Some(1),
        ReasoningAccounting::Estimated,
        1_000 + tokens(&added),
    );
    check_usage(&[user("a")], Some(7), ReasoningAccounting::Estimated, 1_000);
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
    check_usage(
        &items,
        None,
        ReasoningAccounting::Estimated,
        1_000 + tokens(&early) + tokens(&middle),
    );
    check_usage(&items, None, ReasoningAccounting::IncludedByServer, 1_000);
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
    check_usage(&items, None, ReasoningAccounting::Estimated, 1_000);
    let items = [user("first"), early.clone(), assistant("reply"), user("second"), assistant("r")];
    check_usage(&items, None, ReasoningAccounting::Estimated, 1_000 + tokens(&early));
}

#[test]
fn usage_saturates() {
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    let items = [user("x")];
    let input = TotalUsageInput {
        items: &items,
        last_total_tokens: i64::MAX,
        history_len_at_last_usage: Some(0),
        reasoning: ReasoningAccounting::Estimated,
        markers: &markers,
        pass_through: &pass_through,
    };
    assert_eq!(total_token_usage(&input), i64::MAX);
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
        reasoning,
        markers: &markers,
        calibration,
    })
}

#[test]
fn usage_from_cached_counts_is_the_usage_from_items() {
    let histories = [
        vec![assistant("already counted"), user("new user message"), output("c", "new output")],
        vec![user("a"), call("c1", "shell"), output("c1", "out")],
        vec![user("a"), developer("b")],
        vec![],
        vec![
            reasoning(900),
            user("first"),
            reasoning(1_000),
            assistant("reply"),
            user("second"),
            reasoning(2_000),
            assistant("reply"),
        ],
        vec![
            user("first"),
            reasoning(1_000),
            assistant("reply"),
            user("<environment_context>cwd</environment_context>"),
            reasoning(2_000),
            assistant("reply"),
        ],
    ];
    let markers = ContextualMarkers::default();
    let pass_through = PassThroughList::default();
    for items in &histories {
        for reasoning in [ReasoningAccounting::Estimated, ReasoningAccounting::IncludedByServer] {
            let from_items = total_token_usage(&TotalUsageInput {
                items,
                last_total_tokens: 1_000,
                history_len_at_last_usage: None,
                reasoning,
                markers: &markers,
                pass_through: &pass_through,
            });
            assert_eq!(
                counted_usage(items, reasoning, None, TokenCounter::Bytes4),
                from_items,
                "{items:?}"
            );
        }
    }
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
