//! Tests of the contextual markers and the user-turn boundary.

use pretty_assertions::assert_eq;

use super::*;

fn message(role: &str, parts: &[ContentItem]) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: role.into(),
        content: parts.to_vec(),
        phase: None,
        extra: Default::default(),
    }
}

fn text(text: &str) -> ContentItem {
    ContentItem::InputText { text: text.into() }
}

fn image() -> ContentItem {
    ContentItem::InputImage { image_url: "data:image/png;base64,AAAA".into(), detail: None }
}

#[track_caller]
fn check_text(markers: &ContextualMarkers, cases: &[(&str, bool)]) {
    for (text, contextual) in cases {
        assert_eq!(markers.is_contextual_text(text), *contextual, "{text:?}");
    }
}

#[test]
fn default_markers_match_after_whitespace_in_any_case() {
    check_text(
        &ContextualMarkers::default(),
        &[
            ("<environment_context>cwd</environment_context>", true),
            ("  \n<ENVIRONMENT_CONTEXT>cwd", true),
            ("<Environment_Context>cwd", true),
            ("# AGENTS.md instructions for /repo", true),
            ("# agents.md INSTRUCTIONS for /repo", true),
            ("<user_instructions>be nice</user_instructions>", true),
            ("<user_shell_command>ls</user_shell_command>", true),
            ("<turn_aborted>", true),
            ("<skill>\nname: x", true),
            ("<subagent_notification>done", true),
            ("please look at <environment_context>", false),
            ("<environment_contex", false),
            ("fix the bug", false),
            ("", false),
        ],
    );
}

#[test]
fn harness_markers_replace_the_defaults() {
    let markers = ContextualMarkers::new(["<repo_map>"]);
    check_text(
        &markers,
        &[
            ("<repo_map>src/</repo_map>", true),
            ("<REPO_MAP>", true),
            ("<environment_context>", false),
        ],
    );
    check_text(&ContextualMarkers::new([""]), &[("anything", false), ("", false)]);
    check_text(&ContextualMarkers::new(Vec::<String>::new()), &[("<environment_context>", false)]);
}

#[test]
fn user_turn_boundaries() {
    let markers = ContextualMarkers::default();
    let output_part = ContentItem::OutputText { text: "<skill>x".into() };
    let cases = [
        (message("user", &[text("fix it")]), true),
        (message("user", &[image()]), true),
        (message("user", &[text("look"), image()]), true),
        (message("user", &[]), true),
        // Any text part, not only the first, makes the message context.
        (message("user", &[text("fix it"), text("<environment_context>x")]), false),
        (message("user", &[image(), text("<TURN_ABORTED>")]), false),
        (message("user", &[output_part]), false),
        (message("user", &[text("  <USER_SHELL_COMMAND>ls")]), false),
        (message("assistant", &[text("fix it")]), false),
        (message("developer", &[text("fix it")]), false),
        (message("system", &[text("fix it")]), false),
        (ResponseItem::context_compaction_trigger(), false),
    ];
    for (item, boundary) in cases {
        assert_eq!(is_user_turn_boundary(&item, &markers), boundary, "{item:?}");
    }
}

#[test]
fn custom_markers_decide_the_boundary() {
    let markers = ContextualMarkers::new(["<ctx>"]);
    let cases = [
        (message("user", &[text("<environment_context>x")]), true),
        (message("user", &[text("hello"), text("<CTX>a</CTX>")]), false),
        (message("user", &[text("<Ctx>b")]), false),
    ];
    for (item, boundary) in cases {
        assert_eq!(is_user_turn_boundary(&item, &markers), boundary, "{item:?}");
    }
}
