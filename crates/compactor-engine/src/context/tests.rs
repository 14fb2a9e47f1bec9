//! Tests of contextual-message detection, `process_compacted_history` and initial-context
//! placement (D16).

use compactor_protocol::ContentItem;
use compactor_protocol::display::format_history;
use pretty_assertions::assert_eq;

use super::*;
use compactor_protocol::InitialContextInjection;

use crate::layout::{Compacted, Layout, compacted_history};
use crate::local::summary_text;
use crate::test_support::{
    assistant, call, compaction, context_compaction, developer, message, output, reasoning,
    unknown, user, user_with_image,
};

fn initial_context() -> Vec<ResponseItem> {
    vec![developer("<PERMISSIONS>"), user("<environment_context>cwd=/repo</environment_context>")]
}

/// The engine counts user turns by protocol's one rule: any text part, any ASCII case.
#[test]
fn any_text_part_makes_a_message_contextual() {
    let markers = ContextualMarkers::default();
    let item = ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![
            ContentItem::InputText { text: "first".into() },
            ContentItem::InputText { text: "<TURN_ABORTED>".into() },
        ],
        phase: None,
        extra: Default::default(),
    };
    assert!(!is_user_turn_boundary(&item, &markers));
    assert!(!is_real_user_message(&item, &markers));
}

#[test]
fn real_user_messages_and_boundaries() {
    let markers = ContextualMarkers::default();
    let summary = user(&summary_text("done so far"));
    for (item, boundary, real) in [
        (user("fix it"), true, true),
        (user_with_image("look"), true, true),
        (summary, true, false),
        (user("<environment_context>"), false, false),
        (assistant("fix it"), false, false),
        (developer("fix it"), false, false),
        (output("c", "fix it"), false, false),
    ] {
        assert_eq!(is_user_turn_boundary(&item, &markers), boundary, "{item:?}");
        assert_eq!(is_real_user_message(&item, &markers), real, "{item:?}");
    }
}

#[track_caller]
fn check_process(
    items: Vec<ResponseItem>,
    injection: InitialContextInjection,
    expected: &[ResponseItem],
) {
    let markers = ContextualMarkers::default();
    let context = initial_context();
    let layout = Layout { initial_context: &context, injection, ..Layout::new(&markers) };
    let processed = compacted_history(Compacted::RemoteV1 { output: items }, &layout).unwrap();
    assert_eq!(format_history(&processed), format_history(expected));
    assert_eq!(processed, expected);
}

#[test]
fn process_drops_instructions_context_and_tool_traffic() {
    let items = vec![
        developer("stale instructions"),
        message("system", "system text"),
        user("<environment_context>old</environment_context>"),
        user("# AGENTS.md instructions for /repo"),
        user("first"),
        assistant("reply"),
        reasoning(900),
        call("c1", "shell"),
        output("c1", "ok"),
        unknown("configuration_update"),
        ResponseItem::context_compaction_trigger(),
        user("second"),
        context_compaction("ENC"),
    ];
    check_process(
        items,
        InitialContextInjection::DoNotInject,
        &[user("first"), assistant("reply"), user("second"), context_compaction("ENC")],
    );
}

#[test]
fn process_injects_context_before_the_last_real_user_message_only() {
    let items = vec![developer("stale"), user("first"), user("second"), compaction("ENC")];
    let mut expected = vec![user("first")];
    expected.extend(initial_context());
    expected.extend([user("second"), compaction("ENC")]);
    check_process(items, InitialContextInjection::BeforeLastUserMessage, &expected);
}

#[track_caller]
fn check_insert(history: Vec<ResponseItem>, expected: &[ResponseItem]) {
    let mut history = history;
    insert_initial_context(&mut history, &initial_context(), &ContextualMarkers::default());
    assert_eq!(format_history(&history), format_history(expected));
}

#[test]
fn insert_keeps_summary_last() {
    let summary = user(&summary_text("AUTO_SUMMARY"));
    let mut expected = vec![user("first")];
    expected.extend(initial_context());
    expected.push(user("last"));
    expected.push(summary.clone());
    check_insert(vec![user("first"), user("last"), summary.clone()], &expected);

    // Without a real user message the context goes before the last summary.
    let mut expected = vec![user(&summary_text("older"))];
    expected.extend(initial_context());
    expected.push(summary.clone());
    check_insert(vec![user(&summary_text("older")), summary], &expected);
}

#[test]
fn insert_keeps_compaction_last() {
    let mut expected = initial_context();
    expected.push(context_compaction("ENC"));
    check_insert(vec![context_compaction("ENC")], &expected);

    let mut expected = vec![compaction("OLD")];
    expected.extend(initial_context());
    expected.push(compaction("NEW"));
    check_insert(vec![compaction("OLD"), compaction("NEW")], &expected);
}

#[test]
fn insert_appends_when_nothing_anchors_it() {
    let mut expected = vec![assistant("only")];
    expected.extend(initial_context());
    check_insert(vec![assistant("only")], &expected);
    check_insert(vec![], &initial_context());
}

#[test]
fn insert_of_nothing_changes_nothing() {
    let mut history = vec![user("a"), compaction("ENC")];
    insert_initial_context(&mut history, &[], &ContextualMarkers::default());
    assert_eq!(history, vec![user("a"), compaction("ENC")]);
}

#[test]
fn contextual_user_messages_do_not_anchor_the_context() {
    let env = user("<environment_context>x</environment_context>");
    let mut expected = initial_context();
    expected.extend([user("real"), env.clone(), compaction("ENC")]);
    check_insert(vec![user("real"), env, compaction("ENC")], &expected);
}
