//! Tests of pre-request trimming (D37).

use compactor_protocol::PassThroughList;
use compactor_protocol::display::format_history;
use compactor_protocol::tokens::TokenCalibration;
use pretty_assertions::assert_eq;

use super::*;
use crate::estimate::estimate_history;
use crate::test_support::{
    assistant, call, custom_call, custom_output, developer, output, reasoning, tool_search_call,
    tool_search_output, user,
};

/// Trims `history` to the estimate of `fits` (with `instructions`) and expects `fits` back.
#[track_caller]
fn check(instructions: &str, history: &[ResponseItem], fits: &[ResponseItem]) {
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new(instructions, &pass_through);
    let window = estimate_history(instructions, fits, &pass_through);
    let mut trimmed = history.to_vec();
    let removed = trim_function_call_history_to_fit_context_window(
        &mut trimmed,
        &HistoryCounts::default(),
        window,
        &context,
    );
    assert_eq!(format_history(&trimmed), format_history(fits));
    assert_eq!(trimmed, fits);
    assert_eq!(removed, history.len() - fits.len());
}

fn big(text: &str) -> String {
    text.repeat(500)
}

#[test]
fn a_fitting_history_is_untouched() {
    let history = [user("u"), call("c1", "shell"), output("c1", "ok")];
    check("", &history, &history);
}

#[test]
fn the_trailing_pair_goes_and_older_pairs_stay() {
    let history = [
        user("earlier"),
        call("c1", "shell"),
        output("c1", "old output"),
        user("boundary"),
        call("c2", "shell"),
        output("c2", &big("new output ")),
    ];
    check("", &history, &history[..4]);
}

#[test]
fn trimming_stops_at_the_first_model_or_user_item() {
    // The tail after the pair is an assistant message: nothing can go.
    let history = [user("u"), call("c1", "shell"), output("c1", &big("x")), assistant("done")];
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new("", &pass_through);
    let mut trimmed = history.to_vec();
    assert_eq!(
        trim_function_call_history_to_fit_context_window(
            &mut trimmed,
            &HistoryCounts::default(),
            1,
            &context
        ),
        0
    );
    assert_eq!(trimmed, history);

    // A call still waiting for its output stops trimming too.
    let history = [user("u"), call("c1", "shell"), output("c1", &big("x")), call("c2", "shell")];
    let mut trimmed = history.to_vec();
    assert_eq!(
        trim_function_call_history_to_fit_context_window(
            &mut trimmed,
            &HistoryCounts::default(),
            1,
            &context
        ),
        0
    );

    // Everything trimmable goes, and the user message stays even when it does not fit.
    let history = [user(&big("u")), call("c1", "shell"), output("c1", "x"), developer("d")];
    let mut trimmed = history.to_vec();
    assert_eq!(
        trim_function_call_history_to_fit_context_window(
            &mut trimmed,
            &HistoryCounts::default(),
            1,
            &context
        ),
        3
    );
    assert_eq!(trimmed, [user(&big("u"))]);
}

#[test]
fn developer_messages_and_every_output_family_are_trimmed() {
    let history = [
        user("u"),
        reasoning(900),
        call("c1", "shell"),
        custom_call("c2", "apply_patch"),
        tool_search_call("c3"),
        output("c1", &big("a")),
        custom_output("c2", &big("b")),
        tool_search_output("c3"),
        developer(&big("model switch")),
    ];
    check("", &history, &history[..2]);
}

#[test]
fn parallel_pairs_are_removed_pair_by_pair() {
    let history = [
        user("u"),
        call("a", "shell"),
        call("b", "shell"),
        output("a", &big("a")),
        output("b", &big("b")),
    ];
    // Removing `b` and its call is enough.
    check("", &history, &[history[0].clone(), history[1].clone(), history[3].clone()]);
    check("", &history, &history[..1]);
}

#[test]
fn the_estimate_uses_the_session_instructions() {
    let history = [user("u"), call("c1", "shell"), output("c1", &big("x"))];
    let pass_through = PassThroughList::default();
    let window = estimate_history("short", &history, &pass_through);
    let mut trimmed = history.to_vec();
    let baseline = EstimateContext::new("short", &pass_through);
    assert_eq!(
        trim_function_call_history_to_fit_context_window(
            &mut trimmed,
            &HistoryCounts::default(),
            window,
            &baseline
        ),
        0
    );
    let long = big("long instructions ");
    let larger = EstimateContext::new(&long, &pass_through);
    assert_eq!(
        trim_function_call_history_to_fit_context_window(
            &mut trimmed,
            &HistoryCounts::default(),
            window,
            &larger
        ),
        2
    );
    assert_eq!(trimmed, history[..1]);
}

#[test]
fn an_orphan_output_goes_alone() {
    let history = [user("u"), output("ghost", &big("x"))];
    check("", &history, &history[..1]);
}

#[test]
fn trimming_reads_cached_counts_and_the_calibration() {
    let pass_through = PassThroughList::default();
    let history = vec![
        user("fix the build"),
        call("call_1", "shell"),
        output("call_1", &"x".repeat(4_000)),
        call("call_2", "shell"),
        output("call_2", &"y".repeat(4_000)),
    ];
    let context = EstimateContext::new("base", &pass_through);
    let counts = HistoryCounts::new(&history, &context.item_counter());
    let raw = context.estimate_counted(&counts);
    // The window holds the raw estimate, so nothing goes...
    let mut trimmed = history.clone();
    assert_eq!(
        trim_function_call_history_to_fit_context_window(&mut trimmed, &counts, raw, &context),
        0
    );
    // ...until reported usage says the session undercounts by half: then the last pair goes.
    let calibrated =
        EstimateContext { calibration: TokenCalibration::observe(None, 3, 2), ..context };
    assert_eq!(
        trim_function_call_history_to_fit_context_window(&mut trimmed, &counts, raw, &calibrated),
        2
    );
    assert_eq!(trimmed, history[..3]);
    // Counts that are not this history's are not trusted: the history is counted again.
    let mut again = history.clone();
    let stale = HistoryCounts::new(&history[..1], &context.item_counter());
    assert_eq!(
        trim_function_call_history_to_fit_context_window(&mut again, &stale, raw, &calibrated),
        2
    );
}
