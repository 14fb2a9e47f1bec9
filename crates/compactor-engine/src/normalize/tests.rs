//! Tests of `for_prompt` and `prompt_input`: answered calls, orphan outputs, images, unknown items, triggers.

use compactor_protocol::display::format_history;
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::test_support::{
    assistant, call, custom_call, custom_output, data_url_image, output, tool_search_call,
    tool_search_output, unknown, user, user_with_image,
};

#[track_caller]
fn check(items: &[ResponseItem], options: &PromptOptions, expected: &[ResponseItem]) {
    let prompt = for_prompt(items, options);
    assert_eq!(format_history(&prompt), format_history(expected));
    assert_eq!(prompt, expected);
    // The borrowing form gives the same items; what it borrows is an item of `items` itself.
    let borrowed = prompt_input(items, options);
    for item in &borrowed {
        if let Cow::Borrowed(item) = item {
            assert!(items.iter().any(|original| std::ptr::eq(original, *item)));
        }
    }
    let owned: Vec<ResponseItem> = borrowed.into_iter().map(Cow::into_owned).collect();
    assert_eq!(owned, expected);
}

fn aborted(call_id: &str) -> ResponseItem {
    output(call_id, "aborted")
}

#[test]
fn well_formed_history_is_unchanged() {
    let items = [user("u"), call("c1", "shell"), output("c1", "ok"), assistant("done")];
    check(&items, &PromptOptions::default(), &items);
    // Nothing is copied: every input item borrows its history item, in order.
    let input = prompt_input(&items, &PromptOptions::default());
    assert_eq!(input.len(), items.len());
    for (item, original) in input.iter().zip(&items) {
        assert!(matches!(item, Cow::Borrowed(item) if std::ptr::eq(*item, original)));
    }
}

#[test]
fn unanswered_calls_get_an_aborted_output_of_their_type_right_after_them() {
    let items = [
        user("u"),
        call("c1", "shell"),
        custom_call("c2", "apply_patch"),
        tool_search_call("c3"),
        ResponseItem::LocalShellCall {
            id: None,
            call_id: Some("c4".into()),
            status: "completed".into(),
            action: Box::new(compactor_protocol::LocalShellAction::Exec {
                command: vec!["ls".into()],
                timeout_ms: None,
                working_directory: None,
                env: None,
                user: None,
            }),
        },
        output("c1", "ok"),
    ];
    let expected = [
        user("u"),
        call("c1", "shell"),
        custom_call("c2", "apply_patch"),
        ResponseItem::CustomToolCallOutput {
            call_id: "c2".into(),
            name: None,
            output: ToolOutput::Text("aborted".into()),
        },
        tool_search_call("c3"),
        ResponseItem::ToolSearchOutput {
            call_id: Some("c3".into()),
            status: "completed".into(),
            execution: "client".into(),
            tools: vec![],
        },
        items[4].clone(),
        aborted("c4"),
        output("c1", "ok"),
    ];
    check(&items, &PromptOptions::default(), &expected);
}

#[test]
fn orphan_outputs_are_dropped() {
    let items = [
        output("early", "answer before its call"),
        call("early", "shell"),
        output("missing", "no call"),
        custom_call("c2", "apply_patch"),
        output("c2", "wrong family"),
        custom_output("c2", "right family"),
        custom_output("c2", "a second answer"),
        tool_search_output("nobody"),
    ];
    let expected = [
        call("early", "shell"),
        aborted("early"),
        custom_call("c2", "apply_patch"),
        custom_output("c2", "right family"),
    ];
    check(&items, &PromptOptions::default(), &expected);
}

#[test]
fn server_executed_tool_search_is_not_paired() {
    let server_call = ResponseItem::ToolSearchCall {
        id: None,
        call_id: Some("s1".into()),
        status: Some("completed".into()),
        execution: "server".into(),
        arguments: Box::new(json!({})),
    };
    let server_output = ResponseItem::ToolSearchOutput {
        call_id: Some("s2".into()),
        status: "completed".into(),
        execution: "server".into(),
        tools: vec![],
    };
    let items = [server_call, server_output];
    check(&items, &PromptOptions::default(), &items);
}

#[test]
fn reused_call_ids_each_get_one_answer() {
    let items = [call("c", "a"), call("c", "b"), output("c", "for b")];
    let expected = [call("c", "a"), aborted("c"), call("c", "b"), output("c", "for b")];
    check(&items, &PromptOptions::default(), &expected);
}

#[test]
fn images_are_replaced_for_text_only_models() {
    let image_output = ResponseItem::FunctionCallOutput {
        call_id: "c1".into(),
        output: ToolOutput::Content(vec![
            ContentItem::InputText { text: "screenshot".into() },
            data_url_image(),
        ]),
    };
    let items = [user_with_image("look"), call("c1", "screenshot"), image_output];
    check(&items, &PromptOptions::default(), &items);

    let placeholder = ContentItem::InputText { text: IMAGE_OMITTED_PLACEHOLDER.into() };
    let expected = [
        ResponseItem::Message {
            id: None,
            role: "user".into(),
            content: vec![ContentItem::InputText { text: "look".into() }, placeholder.clone()],
            phase: None,
            extra: Default::default(),
        },
        call("c1", "screenshot"),
        ResponseItem::FunctionCallOutput {
            call_id: "c1".into(),
            output: ToolOutput::Content(vec![
                ContentItem::InputText { text: "screenshot".into() },
                placeholder,
            ]),
        },
    ];
    let text_only =
        PromptOptions { input_modalities: InputModalities::TextOnly, ..PromptOptions::default() };
    check(&items, &text_only, &expected);
}

#[test]
fn unknown_items_follow_the_pass_through_list() {
    let items = [user("u"), unknown("configuration_update"), unknown("ghost_snapshot")];
    check(&items, &PromptOptions::default(), &items[..2]);
    let none = PromptOptions {
        pass_through: PassThroughList::new(Vec::<String>::new()),
        ..PromptOptions::default()
    };
    check(&items, &none, &items[..1]);
    let ghosts = PromptOptions {
        pass_through: PassThroughList::new(["ghost_snapshot"]),
        ..PromptOptions::default()
    };
    check(&items, &ghosts, &[items[0].clone(), items[2].clone()]);
}

#[test]
fn triggers_never_reach_the_prompt_from_history() {
    let items = [
        user("u"),
        ResponseItem::context_compaction_trigger(),
        ResponseItem::CompactionTrigger,
        crate::test_support::context_compaction("ENC"),
    ];
    check(
        &items,
        &PromptOptions::default(),
        &[user("u"), crate::test_support::context_compaction("ENC")],
    );
}
