//! Tests of the `prune` strategy (D20).

use compactor_protocol::PassThroughList;
use compactor_protocol::display::format_history;
use pretty_assertions::assert_eq;

use super::*;
use crate::estimate::estimate_history;
use crate::test_support::{
    assistant, call, custom_call, custom_output, data_url_image, output, reasoning,
    tool_search_call, tool_search_output, user,
};

fn run(history: &[ResponseItem], config: PruneConfig) -> PruneOutcome {
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new("instructions", &pass_through);
    let outcome = prune(
        history,
        &HistoryCounts::new(history, &context.item_counter()),
        &config,
        &context,
        &ContextualMarkers::default(),
    );
    // The report's estimates agree with a fresh estimate.
    assert_eq!(
        outcome.report.tokens_before,
        estimate_history("instructions", history, &pass_through)
    );
    assert_eq!(
        outcome.report.tokens_after,
        estimate_history("instructions", &outcome.history, &pass_through)
    );
    outcome
}

fn keep_all(protected_user_turns: usize) -> PruneConfig {
    PruneConfig { protected_user_turns, target_tokens: u64::MAX }
}

#[test]
fn the_target_is_a_share_of_the_limit_or_of_the_usable_window() {
    // (auto-compact limit, usable window, percent, target)
    let cases = [
        (360_000, Some(500_000), 50, 180_000),
        (360_000, None, 50, 180_000),
        (360_000, Some(500_000), 100, 360_000),
        (101, None, 50, 50),
        // No limit: the usable window, or nothing at all.
        (i64::MAX, Some(258_400), 50, 129_200),
        (i64::MAX, Some(258_400), 1, 2_584),
        (i64::MAX, None, 50, 0),
        (0, Some(1_000), 50, 0),
        (-5, Some(1_000), 50, 0),
        (i64::MAX, Some(-1), 50, 0),
        // Huge limits do not overflow.
        (i64::MAX - 1, None, 100, (i64::MAX - 1) as u64),
        (i64::MAX, Some(i64::MAX - 1), 200, (i64::MAX - 1) as u64 * 2),
    ];
    for (limit, window, percent, target) in cases {
        assert_eq!(
            prune_target_tokens(limit, window, percent),
            target,
            "{limit} {window:?} {percent}"
        );
    }
}

#[test]
fn old_outputs_are_masked_and_the_last_turns_are_protected() {
    let long = "o".repeat(2_000);
    let history = [
        user("one"),
        call("c1", "shell"),
        output("c1", &long),
        custom_call("c2", "apply_patch"),
        custom_output("c2", &long),
        user("two"),
        call("c3", "shell"),
        output("c3", &long),
        user("three"),
        call("c4", "read_file"),
        output("c4", &long),
    ];
    let outcome = run(&history, keep_all(2));
    assert_eq!(
        format_history(&outcome.history[..6]),
        "00:message/user:one\n\
         01:function_call/shell\n\
         02:function_call_output:[output of shell removed by compaction: 500 tokens]\n\
         03:custom_tool_call/apply_patch\n\
         04:custom_tool_call_output:[output of apply_patch removed by compaction: 500 tokens]\n\
         05:message/user:two\n"
    );
    assert_eq!(outcome.history[6..], history[6..]);
    assert_eq!(outcome.report.masked_outputs, 2);
    assert_eq!(outcome.report.dropped_pairs, 0);

    // With one protected turn, turn two's output is masked as well; with none, all are.
    assert_eq!(run(&history, keep_all(1)).report.masked_outputs, 3);
    assert_eq!(run(&history, keep_all(0)).report.masked_outputs, 4);
    // Fewer user turns than protected: nothing is masked.
    assert_eq!(run(&history, keep_all(5)).report.masked_outputs, 0);
}

#[test]
fn masking_only_when_it_shrinks_and_only_once() {
    let history = [
        user("one"),
        call("c1", "shell"),
        output("c1", "ok"),
        tool_search_call("c2"),
        tool_search_output("c2"),
        call("c3", "screenshot"),
        ResponseItem::FunctionCallOutput {
            call_id: "c3".into(),
            output: ToolOutput::Content(vec![data_url_image()]),
        },
        user("two"),
    ];
    let first = run(&history, keep_all(1));
    assert_eq!(first.report.masked_outputs, 1);
    assert_eq!(first.history[..6], history[..6]);
    assert_eq!(
        first.history[6],
        output("c3", "[output of screenshot removed by compaction: 1844 tokens]")
    );
    let second = run(&first.history, keep_all(1));
    assert_eq!(second.report.masked_outputs, 0);
    assert_eq!(second.history, first.history);
}

#[test]
fn oldest_pairs_are_dropped_until_the_target() {
    let long = "o".repeat(2_000);
    let history = [
        user("one"),
        reasoning(1_200),
        call("c1", "shell"),
        call("c2", "shell"),
        output("c1", &long),
        output("c2", &long),
        assistant("looked"),
        user("two"),
        call("c3", "shell"),
        output("c3", &long),
        call("pending", "shell"),
    ];
    let pass_through = PassThroughList::default();
    // A target the history meets without c1 (and its reasoning) but not with it.
    let mut without_c1 = history.to_vec();
    without_c1.drain(1..3);
    without_c1.remove(2);
    let target = estimate_history("instructions", &without_c1, &pass_through);
    let outcome = run(&history, PruneConfig { protected_user_turns: 2, target_tokens: target });
    assert_eq!(format_history(&outcome.history), format_history(&without_c1));
    assert_eq!(
        outcome.report,
        PruneReport {
            masked_outputs: 0,
            dropped_pairs: 1,
            dropped_items: 3,
            tokens_before: estimate_history("instructions", &history, &pass_through),
            tokens_after: target,
        }
    );

    // A target nothing meets: every pair goes, user and assistant messages and the pending call
    // stay.
    let outcome = run(&history, PruneConfig { protected_user_turns: 2, target_tokens: 0 });
    assert_eq!(
        format_history(&outcome.history),
        "00:message/user:one\n\
         01:message/assistant:looked\n\
         02:message/user:two\n\
         03:function_call/shell\n"
    );
    assert_eq!(outcome.report.dropped_pairs, 3);
    assert_eq!(outcome.report.dropped_items, 7);
}

#[test]
fn masking_runs_before_dropping() {
    let long = "o".repeat(4_000);
    let history =
        [user("one"), call("c1", "shell"), output("c1", &long), user("two"), user("three")];
    let masked = run(&history, keep_all(2));
    let outcome = run(
        &history,
        PruneConfig { protected_user_turns: 2, target_tokens: masked.report.tokens_after },
    );
    assert_eq!(outcome.report.masked_outputs, 1);
    assert_eq!(outcome.report.dropped_pairs, 0);
    assert_eq!(outcome.history, masked.history);
}

#[test]
fn the_placeholder_names_the_tool_and_size() {
    assert_eq!(
        masked_output_text("shell", 1234),
        "[output of shell removed by compaction: 1234 tokens]"
    );
}
