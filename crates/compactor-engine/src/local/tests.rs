//! Tests of local compaction: the summary message, collecting user messages, and the
//! budgeted rebuild (D38).

use compactor_protocol::display::format_history;
use compactor_protocol::tokens::approx_token_count;
use pretty_assertions::assert_eq;

use super::*;
use crate::layout::{Compacted, Layout, compacted_history};
use crate::test_support::{
    assistant, call, data_url_image, developer, output, user, user_with_image,
};

fn content(item: &ResponseItem) -> Vec<ContentItem> {
    match item {
        ResponseItem::Message { content, .. } => content.clone(),
        _ => unreachable!("not a message"),
    }
}

#[test]
fn summary_text_starts_with_the_prefix_line() {
    assert_eq!(summary_text("did X"), format!("{SUMMARY_PREFIX}\ndid X"));
    assert_eq!(summary_text(" \n"), format!("{SUMMARY_PREFIX}\n{NO_SUMMARY_PLACEHOLDER}"));
    assert!(!SUMMARY_PREFIX.contains('\n'));
}

#[test]
fn summary_messages_are_recognised() {
    for (item, expected) in [
        (user(&summary_text("s")), true),
        (user(&format!("{SUMMARY_PREFIX}\n")), true),
        (user(SUMMARY_PREFIX), false),
        (user(&format!("{SUMMARY_PREFIX} and more")), false),
        (user("a summary"), false),
        (assistant(&summary_text("s")), false),
        (developer(&summary_text("s")), false),
    ] {
        assert_eq!(is_summary_message(&item), expected, "{item:?}");
    }
}

#[test]
fn focus_is_appended_to_the_prompt() {
    // (base, focus, prompt)
    let cases = [
        (SUMMARIZATION_PROMPT, "", SUMMARIZATION_PROMPT.to_owned()),
        (SUMMARIZATION_PROMPT, " \n ", SUMMARIZATION_PROMPT.to_owned()),
        (
            SUMMARIZATION_PROMPT,
            "the failing test",
            format!(
                "{SUMMARIZATION_PROMPT}\n\nGive particular attention to the following:\n\
                 the failing test"
            ),
        ),
        ("Summarize.", "", "Summarize.".to_owned()),
        (
            "Summarize.",
            "  the API\n",
            "Summarize.\n\nGive particular attention to the following:\nthe API".to_owned(),
        ),
    ];
    for (base, focus, prompt) in cases {
        assert_eq!(summarization_prompt_with_focus(base, focus), prompt, "{base:?} {focus:?}");
    }
}

#[track_caller]
fn check_drop_oldest(history: &[ResponseItem], expected: &[ResponseItem]) {
    let mut history = history.to_vec();
    drop_oldest(&mut history);
    assert_eq!(format_history(&history), format_history(expected));
    assert_eq!(history, expected);
}

#[test]
fn drop_oldest_takes_the_first_item_with_its_outputs() {
    check_drop_oldest(&[], &[]);
    check_drop_oldest(&[user("a")], &[]);
    check_drop_oldest(&[user("a"), assistant("b"), user("c")], &[assistant("b"), user("c")]);
    // A call goes with its output, wherever that is; other calls stay.
    check_drop_oldest(
        &[call("c1", "shell"), call("c2", "shell"), output("c2", "two"), output("c1", "one")],
        &[call("c2", "shell"), output("c2", "two")],
    );
    // An output goes alone: its call is gone already.
    check_drop_oldest(&[output("c1", "one"), user("a")], &[user("a")]);
}

#[test]
fn drop_oldest_tokens_takes_a_counted_prefix_with_its_outputs_and_keeps_the_newest() {
    let pass_through = compactor_protocol::PassThroughList::default();
    let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    let history = vec![
        user(&"a".repeat(400)),
        call("c1", "shell"),
        assistant(&"b".repeat(400)),
        output("c1", &"o".repeat(400)),
        user("newest"),
    ];
    let first = counter.count(&history[0]);
    let check = |at_least: u64, expected: &[ResponseItem], removed: usize| {
        let mut left = history.clone();
        assert_eq!(drop_oldest_tokens(&mut left, at_least, &counter), removed, "{at_least}");
        assert_eq!(format_history(&left), format_history(expected), "{at_least}");
    };
    // Nothing asked still drops one item, as an overflow must change the request.
    check(0, &history[1..], 1);
    check(first, &history[1..], 1);
    // One token more takes the call too, and its output wherever it sits.
    check(first + 1, &[history[2].clone(), history[4].clone()], 3);
    // Never the newest item.
    check(u64::MAX, &history[4..], 4);
    let mut one = vec![user("only")];
    assert_eq!(drop_oldest_tokens(&mut one, u64::MAX, &counter), 0);
    assert_eq!(one.len(), 1);
}

#[test]
fn the_summary_is_the_last_assistant_text() {
    let items = [assistant("first"), user("u"), assistant("SUMMARY"), output("c", "o")];
    assert_eq!(last_assistant_text(&items).as_deref(), Some("SUMMARY"));
    assert_eq!(last_assistant_text(&[user("u")]), None);
}

#[test]
fn collect_user_messages_skips_context_summaries_and_other_roles() {
    let items = [
        developer("<PERMISSIONS>"),
        user("# AGENTS.md instructions for /repo\n<INSTRUCTIONS>..."),
        user("<environment_context>cwd</environment_context>"),
        user("first"),
        assistant("reply"),
        user(&summary_text("older summary")),
        call("c1", "shell"),
        output("c1", "out"),
        user_with_image("look at this"),
    ];
    let collected = collect_user_messages(&items, &ContextualMarkers::default());
    assert_eq!(collected, [content(&items[3]).as_slice(), content(&items[8]).as_slice()]);
}

/// Local compaction's installed history: the user messages within `max_tokens`, then `summary`.
fn rebuild(user_messages: &[&[ContentItem]], summary: &str, max_tokens: u64) -> Vec<ResponseItem> {
    let markers = ContextualMarkers::default();
    let layout = Layout { local_budget_tokens: max_tokens, ..Layout::new(&markers) };
    compacted_history(Compacted::Local { user_messages, summary }, &layout).unwrap()
}

#[track_caller]
fn check_rebuild(messages: &[ResponseItem], max_tokens: u64, expected: &str) {
    let collected = collect_user_messages(messages, &ContextualMarkers::default());
    let history = rebuild(&collected, &summary_text("SUMMARY"), max_tokens);
    let expected = expected.replace("<PREFIX>", SUMMARY_PREFIX);
    assert_eq!(format_history(&history), expected);
}

#[test]
fn the_summary_is_appended_last() {
    check_rebuild(
        &[user("first"), user("second")],
        COMPACT_USER_MESSAGE_MAX_TOKENS,
        "00:message/user:first\n01:message/user:second\n02:message/user:<PREFIX>\\nSUMMARY\n",
    );
    check_rebuild(&[], 100, "00:message/user:<PREFIX>\\nSUMMARY\n");
}

#[test]
fn budget_16_truncates_an_overlong_message() {
    // 200 bytes = 50 tokens; 16 tokens = 64 bytes kept: 32 of head, 32 of tail.
    let long = format!("{}{}", "a".repeat(100), "b".repeat(100));
    check_rebuild(
        &[user(&long)],
        16,
        &format!(
            "00:message/user:{}…34 tokens truncated…{}\n01:message/user:<PREFIX>\\nSUMMARY\n",
            "a".repeat(32),
            "b".repeat(32)
        ),
    );
}

#[test]
fn newest_messages_win_the_budget() {
    // Each message is 40 bytes = 10 tokens: 3 and 2 fit whole, 1 gets the 5 tokens left.
    let messages: Vec<ResponseItem> = ["1", "2", "3"].iter().map(|n| user(&n.repeat(40))).collect();
    check_rebuild(
        &messages,
        25,
        &format!(
            "00:message/user:{ones}…5 tokens truncated…{ones}\n01:message/user:{}\n02:message/user:{}\n03:message/user:<PREFIX>\\nSUMMARY\n",
            "2".repeat(40),
            "3".repeat(40),
            ones = "1".repeat(10),
        ),
    );
    // An exhausted budget drops older messages outright.
    check_rebuild(
        &messages,
        20,
        &format!(
            "00:message/user:{}\n01:message/user:{}\n02:message/user:<PREFIX>\\nSUMMARY\n",
            "2".repeat(40),
            "3".repeat(40),
        ),
    );
}

#[test]
fn images_survive_the_rebuild() {
    let items = [user_with_image("look"), user("then this")];
    let collected = collect_user_messages(&items, &ContextualMarkers::default());
    let history = rebuild(&collected, &summary_text("S"), COMPACT_USER_MESSAGE_MAX_TOKENS);
    assert_eq!(history[0], user_with_image("look"));
    assert_eq!(history[1], user("then this"));
    assert_eq!(history.len(), 3);
}

#[test]
fn images_in_a_truncated_message_are_kept_when_they_fit() {
    // The image estimate is 7 373 bytes, about 1 844 tokens.
    let text = "t".repeat(8_000);
    let message = [ContentItem::InputText { text: text.clone() }, data_url_image()];
    let history = rebuild(&[&message], "S", 2_000);
    let kept = content(&history[0]);
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[1], data_url_image());
    let ContentItem::InputText { text: cut } = &kept[0] else { panic!("text first") };
    assert!(cut.contains("tokens truncated"), "{cut}");

    // When the image alone is over the budget, it goes and the text gets the budget.
    let history = rebuild(&[&message], "S", 100);
    let kept = content(&history[0]);
    assert_eq!(kept.len(), 1);
    assert!(matches!(&kept[0], ContentItem::InputText { text } if text.len() < 500));
}

#[test]
fn truncation_spans_parts() {
    let message = [
        ContentItem::InputText { text: "<image>".into() },
        ContentItem::InputText { text: "x".repeat(400) },
        ContentItem::InputText { text: "y".repeat(400) },
        ContentItem::InputText { text: "</image>".into() },
    ];
    // 815 bytes of text; 20 tokens = 80 bytes: 40 of head, 40 of tail.
    let history = rebuild(&[&message], "S", 20);
    assert_eq!(
        content(&history[0]),
        [
            ContentItem::InputText { text: "<image>".into() },
            ContentItem::InputText {
                text: format!("{}…184 tokens truncated…", "x".repeat(33))
            },
            ContentItem::InputText { text: "y".repeat(32) },
            ContentItem::InputText { text: "</image>".into() },
        ]
    );
}

/// Middle-truncates one text to `max_tokens`.
fn truncate_middle(text: &str, max_tokens: u64) -> String {
    if approx_token_count(text) <= max_tokens {
        return text.to_owned();
    }
    let part = ContentItem::InputText { text: text.to_owned() };
    match truncate_content(std::slice::from_ref(&part), max_tokens).as_slice() {
        [ContentItem::InputText { text }] => text.clone(),
        other => panic!("one text part expected, not {other:?}"),
    }
}

#[test]
fn truncate_middle_respects_char_boundaries() {
    assert_eq!(truncate_middle("short", 2), "short");
    assert_eq!(truncate_middle(&"ab".repeat(20), 2), "abab…8 tokens truncated…abab");
    let text = "é".repeat(20); // 40 bytes
    let cut = truncate_middle(&text, 1);
    assert!(cut.starts_with("é…"), "{cut}");
    assert_eq!(cut, "é…9 tokens truncated…é");
    assert_eq!(truncate_middle("abcdefgh", 0), "…2 tokens truncated…");
}

#[test]
fn an_empty_summary_text_still_carries_the_prefix() {
    let history = rebuild(&[], "", COMPACT_USER_MESSAGE_MAX_TOKENS);
    assert_eq!(history, [user(&summary_text(""))]);
    assert!(is_summary_message(&history[0]));
}

#[test]
fn mid_turn_context_goes_before_the_last_user_message_and_the_summary_stays_last() {
    let markers = ContextualMarkers::default();
    let messages = [content(&user("first")), content(&user("second"))];
    let messages: Vec<&[ContentItem]> = messages.iter().map(Vec::as_slice).collect();
    let layout = Layout {
        initial_context: &[developer("ctx")][..],
        injection: compactor_protocol::InitialContextInjection::BeforeLastUserMessage,
        ..Layout::new(&markers)
    };
    let summary = summary_text("S");
    let history = compacted_history(
        Compacted::Local { user_messages: &messages, summary: &summary },
        &layout,
    );
    assert_eq!(history.unwrap(), [user("first"), developer("ctx"), user("second"), user(&summary)]);
}

#[test]
fn legacy_compacted_lines_are_rebuilt_from_user_messages() {
    let history = [
        user("<environment_context>cwd</environment_context>"),
        user("first"),
        assistant("reply"),
        user(&summary_text("old")),
        user("second"),
    ];
    let message = summary_text("legacy");
    assert_eq!(
        rebuild_legacy_compacted(&history, &message, &ContextualMarkers::default()),
        [user("first"), user("second"), user(&message)]
    );
    // The replay's markers decide which messages are the user's.
    assert_eq!(
        rebuild_legacy_compacted(&history, &message, &ContextualMarkers::new(["first"])),
        [user("<environment_context>cwd</environment_context>"), user("second"), user(&message)]
    );
    let rebuild: fn(&[ResponseItem], &str, &ContextualMarkers) -> Vec<ResponseItem> =
        rebuild_legacy_compacted;
    assert_eq!(rebuild(&[], "m", &ContextualMarkers::default()), [user("m")]);
}
