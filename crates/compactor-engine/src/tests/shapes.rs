//! Snapshots of the histories each compaction path sends and installs, in the `NN:type/role:text`
//! form of `compactor_protocol::display`, for manual, mid-turn, multi-summary and prune compactions.

use compactor_protocol::display::{format_history, format_history_truncated};
use compactor_protocol::{
    CompactorError, ContextualMarkers, InitialContextInjection, PassThroughList, ResponseEvent,
    ResponseItem, V2TriggerForm,
};
use futures::executor::block_on;
use futures::stream;

use crate::counts::HistoryCounts;
use crate::test_support::{
    assistant, call, compaction, context_compaction, custom_call, custom_output, developer, output,
    reasoning, user, user_with_image,
};
use crate::{
    Compacted, EstimateContext, Layout, PromptOptions, PruneConfig, SUMMARIZATION_PROMPT,
    SUMMARY_PREFIX, V2PromptOptions, append_v2_trigger, collect_context_compaction_output,
    collect_user_messages, compacted_history, estimate_history, for_prompt, prune, summary_text,
    trim_function_call_history_to_fit_context_window, v2_request_messages,
};

/// The harness's initial context in these scenarios.
fn initial_context() -> Vec<ResponseItem> {
    vec![
        developer("<PERMISSIONS_INSTRUCTIONS>"),
        user("<environment_context>cwd=/repo</environment_context>"),
    ]
}

/// Renders labelled histories, with the long fixed texts replaced by placeholders.
fn render(sections: &[(&str, &[ResponseItem])]) -> String {
    let mut out = String::new();
    for (label, items) in sections {
        out.push_str(&format!("## {label}\n{}", format_history(items)));
    }
    out.replace(&SUMMARIZATION_PROMPT.replace('\n', "\\n"), "<SUMMARIZATION_PROMPT>")
        .replace(SUMMARY_PREFIX, "<SUMMARY_PREFIX>")
}

/// A local compaction: the summarization request, then the installed history.
fn local_compaction(
    history: &[ResponseItem],
    summary: &str,
    injection: InitialContextInjection,
) -> (Vec<ResponseItem>, Vec<ResponseItem>) {
    let mut request = history.to_vec();
    request.push(user(SUMMARIZATION_PROMPT));
    let request = for_prompt(&request, &PromptOptions::default());
    let markers = ContextualMarkers::default();
    let user_messages = collect_user_messages(history, &markers);
    let summary = summary_text(summary);
    let context = initial_context();
    let layout = Layout { initial_context: &context, injection, ..Layout::new(&markers) };
    let installed = compacted_history(
        Compacted::Local { user_messages: &user_messages, summary: &summary },
        &layout,
    )
    .unwrap();
    (request, installed)
}

/// A remote v2 compaction answered by `payload`: the request, then the installed history.
fn v2_compaction(
    history: &[ResponseItem],
    payload: &str,
    injection: InitialContextInjection,
) -> (Vec<ResponseItem>, Vec<ResponseItem>) {
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new("base", &pass_through);
    let mut trimmed = history.to_vec();
    trim_function_call_history_to_fit_context_window(
        &mut trimmed,
        &HistoryCounts::default(),
        1_000_000,
        &context,
    );
    let mut request = for_prompt(&trimmed, &PromptOptions::default());
    let prompt_len = append_v2_trigger(&mut request, &V2PromptOptions::default());
    let events: Vec<Result<ResponseEvent, CompactorError>> = vec![
        Ok(ResponseEvent::OutputItemDone { item: assistant("ignored commentary") }),
        Ok(ResponseEvent::OutputItemDone { item: context_compaction(payload) }),
        Ok(ResponseEvent::Completed {
            response_id: "resp-compact".into(),
            token_usage: None,
            end_turn: None,
        }),
    ];
    let collected = block_on(collect_context_compaction_output(
        stream::iter(events),
        V2TriggerForm::ContextCompaction,
    ))
    .unwrap();
    let markers = ContextualMarkers::default();
    let context = initial_context();
    let layout = Layout { initial_context: &context, injection, ..Layout::new(&markers) };
    let compacted = Compacted::RemoteV2 {
        messages: v2_request_messages(&request[..prompt_len]),
        item: collected.item,
    };
    let installed = compacted_history(compacted, &layout).unwrap();
    (request, installed)
}

/// The next turn after a `DoNotInject` compaction: the full initial context is re-injected
/// after the compacted history, then the new user message.
fn next_turn(installed: &[ResponseItem], message: &str) -> Vec<ResponseItem> {
    let mut next = installed.to_vec();
    next.extend(initial_context());
    next.push(user(message));
    for_prompt(&next, &PromptOptions::default())
}

#[test]
fn manual_compaction_shapes() {
    let mut history = initial_context();
    history.extend([
        user("first manual turn"),
        reasoning(1_200),
        call("c1", "shell"),
        output("c1", "README.md src/"),
        assistant("FIRST_REPLY"),
    ]);
    let (local_request, local_installed) =
        local_compaction(&history, "SUMMARY", InitialContextInjection::DoNotInject);
    let (v2_request, v2_installed) =
        v2_compaction(&history, "ENCRYPTED", InitialContextInjection::DoNotInject);
    insta::assert_snapshot!(
        "manual_compaction_shapes",
        render(&[
            ("local request", &local_request),
            ("local installed", &local_installed),
            ("local next turn", &next_turn(&local_installed, "second manual turn")),
            ("v2 request", &v2_request),
            ("v2 installed", &v2_installed),
            ("v2 next turn", &next_turn(&v2_installed, "second manual turn")),
        ])
    );
}

#[test]
fn mid_turn_compaction_shapes() {
    let mut history = initial_context();
    history.extend([
        user("USER_ONE"),
        assistant("earlier reply"),
        user_with_image("USER_TWO with a screenshot"),
        call("c1", "shell"),
        output("c1", "tests failed"),
        custom_call("c2", "apply_patch"),
        custom_output("c2", "patch applied"),
    ]);
    let (local_request, local_installed) =
        local_compaction(&history, "AUTO_SUMMARY", InitialContextInjection::BeforeLastUserMessage);
    let (v2_request, v2_installed) =
        v2_compaction(&history, "ENCRYPTED", InitialContextInjection::BeforeLastUserMessage);
    insta::assert_snapshot!(
        "mid_turn_compaction_shapes",
        render(&[
            ("local request", &local_request),
            ("local installed", &local_installed),
            ("v2 request", &v2_request),
            ("v2 installed", &v2_installed),
        ])
    );
}

#[test]
fn multi_summary_compaction_shapes() {
    // Local: a second compaction leaves the first summary out of the retained user messages.
    let (_, first) = local_compaction(
        &[user("USER_ONE"), assistant("reply one")],
        "FIRST_SUMMARY",
        InitialContextInjection::DoNotInject,
    );
    let mut history = first.clone();
    history.extend(initial_context());
    history.extend([user("USER_TWO"), assistant("reply two")]);
    let (local_request, local_installed) =
        local_compaction(&history, "SECOND_SUMMARY", InitialContextInjection::DoNotInject);

    // Remote: the old compaction item is replaced by the new one.
    let history = [user("USER_ONE"), compaction("OLD_ENCRYPTED")];
    let (v2_request, v2_installed) =
        v2_compaction(&history, "NEW_ENCRYPTED", InitialContextInjection::DoNotInject);
    insta::assert_snapshot!(
        "multi_summary_compaction_shapes",
        render(&[
            ("local first installed", &first),
            ("local second request", &local_request),
            ("local second installed", &local_installed),
            ("v2 request", &v2_request),
            ("v2 installed", &v2_installed),
            ("v2 next turn", &next_turn(&v2_installed, "USER_TWO")),
        ])
    );
}

#[test]
fn prune_shapes() {
    let mut history = initial_context();
    history.extend([
        user("turn one: explore"),
        reasoning(1_500),
        call("c1", "shell"),
        output("c1", &"listing ".repeat(300)),
        call("c2", "read_file"),
        output("c2", &"fn main() {} ".repeat(200)),
        assistant("explored"),
        user("turn two: fix"),
        custom_call("c3", "apply_patch"),
        custom_output("c3", &"hunk applied ".repeat(100)),
        call("c4", "shell"),
        output("c4", "ok"),
        assistant("fixed"),
        user("turn three: test"),
        call("c5", "shell"),
        output("c5", &"test result: ok ".repeat(150)),
        user("turn four: ship it"),
        call("c6", "shell"),
    ]);
    let pass_through = PassThroughList::default();
    let context = EstimateContext::new("base", &pass_through);
    let markers = ContextualMarkers::default();
    let masking_only = PruneConfig { protected_user_turns: 2, target_tokens: u64::MAX };
    let masked = prune(
        &history,
        &HistoryCounts::new(&history, &context.item_counter()),
        &masking_only,
        &context,
        &markers,
    );
    // A target that needs the oldest pair dropped, and nothing more.
    let with_dropping =
        PruneConfig { protected_user_turns: 2, target_tokens: masked.report.tokens_after - 150 };
    let dropped = prune(
        &history,
        &HistoryCounts::new(&history, &context.item_counter()),
        &with_dropping,
        &context,
        &markers,
    );
    assert_eq!(
        dropped.report.tokens_after,
        estimate_history("base", &dropped.history, &pass_through)
    );
    insta::assert_snapshot!(
        "prune_shapes",
        format!(
            "{}\nmasking only: {:?}\nwith dropping: {:?}\n",
            [
                ("before", &history),
                ("masking only", &masked.history),
                ("with dropping", &dropped.history)
            ]
            .iter()
            .map(|(label, items)| format!("## {label}\n{}", format_history_truncated(items, 60)))
            .collect::<String>(),
            masked.report,
            dropped.report,
        )
    );
}
