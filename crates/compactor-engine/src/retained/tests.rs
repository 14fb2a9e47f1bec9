//! Tests of the retained budget: newest first, the boundary message cut, pairs kept whole.

use compactor_protocol::display::format_history_truncated;
use compactor_protocol::tokens::estimate_item_tokens;
use compactor_protocol::{ContentItem, ResponseItem};
use pretty_assertions::assert_eq;

use super::*;
use crate::test_support::{assistant, call, data_url_image, output, user};

/// [`retain_within_budget`] on owned items.
fn retain(items: Vec<ResponseItem>, budget: u64, counter: TokenCounter) -> Vec<ResponseItem> {
    let items = items.into_iter().map(Cow::Owned).collect();
    retain_within_budget(items, budget, counter).into_iter().map(Cow::into_owned).collect()
}

/// The estimate of `items`, summed.
fn tokens(items: &[ResponseItem]) -> u64 {
    items.iter().map(estimate_item_tokens).sum()
}

#[track_caller]
fn check(items: Vec<ResponseItem>, budget: u64, expected: &str) {
    let kept = retain(items, budget, TokenCounter::Bytes4);
    assert!(tokens(&kept) <= budget, "{} > {budget}", tokens(&kept));
    assert_eq!(format_history_truncated(&kept, 40), expected);
}

/// A user message of `n` tokens exactly: 19 tokens of JSON around the text, the rest text.
fn user_of(tag: char, n: u64) -> ResponseItem {
    let item = user(&tag.to_string().repeat(usize::try_from(n.saturating_sub(19) * 4).unwrap()));
    assert_eq!(estimate_item_tokens(&item), n, "adjust the overhead");
    item
}

#[test]
fn everything_within_the_budget_stays() {
    let items = vec![user_of('a', 100), user_of('b', 100)];
    let before = format_history_truncated(&items, 40);
    check(items, 200, &before);
}

#[test]
fn the_newest_messages_win_and_the_boundary_message_is_cut() {
    let items = vec![user_of('a', 100), user_of('b', 100), user_of('c', 100)];
    check(
        items,
        250,
        "00:message/user:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…(+77 chars)\n\
         01:message/user:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb…(+284 chars)\n\
         02:message/user:cccccccccccccccccccccccccccccccccccccccc…(+284 chars)\n",
    );
    let kept = retain(
        vec![user_of('a', 100), user_of('b', 100), user_of('c', 100)],
        250,
        TokenCounter::Bytes4,
    );
    let first = kept[0].message_text().unwrap();
    assert!(first.contains("tokens truncated…"), "{first}");
    assert!(estimate_item_tokens(&kept[0]) <= 50);
    assert_eq!(kept[1], user_of('b', 100));
    assert_eq!(kept[2], user_of('c', 100));
}

#[test]
fn older_messages_past_the_boundary_are_dropped() {
    let items = vec![user_of('a', 100), user_of('b', 100), user_of('c', 100), user_of('d', 100)];
    let kept = retain(items, 250, TokenCounter::Bytes4);
    assert_eq!(kept.len(), 3);
    assert!(kept[0].message_text().unwrap().starts_with('b'));
    // A boundary where not even the marker fits drops the message.
    let kept = retain(vec![user_of('a', 100), user_of('b', 100)], 110, TokenCounter::Bytes4);
    assert_eq!(kept, [user_of('b', 100)]);
}

#[test]
fn the_newest_message_is_cut_rather_than_dropped() {
    let kept = retain(vec![user_of('a', 100), user_of('z', 1_000)], 200, TokenCounter::Bytes4);
    assert_eq!(kept.len(), 1);
    let text = kept[0].message_text().unwrap();
    assert!(text.starts_with("zzz") && text.ends_with("zzz") && text.contains("tokens truncated…"));
    assert!(estimate_item_tokens(&kept[0]) <= 200);
    assert!(estimate_item_tokens(&kept[0]) >= 190, "the cut uses the budget");
}

#[test]
fn tool_traffic_that_does_not_fit_is_dropped_whole() {
    let items = vec![
        user_of('a', 100),
        assistant("reply"),
        call("c1", "shell"),
        output("c1", &"o".repeat(4_000)),
    ];
    let kept = retain(items, 150, TokenCounter::Bytes4);
    assert_eq!(
        format_history_truncated(&kept, 10),
        "00:message/user:aaaaaaaaaa…(+314 chars)\n01:message/assistant:reply\n"
    );
}

#[test]
fn pairs_are_kept_or_dropped_whole() {
    let items = vec![
        user_of('a', 50),
        call("c1", "shell"),
        assistant("between"),
        output("c1", &"o".repeat(400)),
        call("c2", "shell"),
        output("c2", "small"),
    ];
    let kept = retain(items, 150, TokenCounter::Bytes4);
    assert_eq!(
        format_history_truncated(&kept, 10),
        "00:message/user:aaaaaaaaaa…(+114 chars)\n01:message/assistant:between\n02:function_call/shell\n03:function_call_output:small\n"
    );
}

#[test]
fn images_count_and_become_placeholders_when_they_cannot_fit() {
    let with_image = ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![ContentItem::InputText { text: "t".repeat(400) }, data_url_image()],
        phase: None,
        extra: Default::default(),
    };
    // The image alone is about 1 844 tokens: it fits 2 000, so the text is cut around it.
    let kept = retain(vec![user_of('a', 100), with_image.clone()], 1_900, TokenCounter::Bytes4);
    assert_eq!(kept.len(), 1);
    let ResponseItem::Message { content, .. } = &kept[0] else { unreachable!() };
    assert!(matches!(content.last(), Some(ContentItem::InputImage { .. })), "{content:?}");
    // Under its estimate, the image becomes a placeholder.
    let kept = retain(vec![with_image], 200, TokenCounter::Bytes4);
    let text = kept[0].message_text().unwrap();
    assert!(text.contains(crate::images::IMAGE_PLACEHOLDER_PREFIX), "{text}");
    assert!(estimate_item_tokens(&kept[0]) <= 200);
}

#[test]
fn multi_byte_text_is_cut_on_character_boundaries() {
    for unit in ["é", "→", "😀"] {
        let long = user(&unit.repeat(3_000));
        for budget in [MIN_RETAINED_BUDGET_TOKENS, 100, 333, 1_000] {
            let kept = retain(vec![long.clone()], budget, TokenCounter::Bytes4);
            let text = kept[0].message_text().unwrap();
            let (head, rest) = text.split_once('…').unwrap();
            let tail = rest.rsplit_once('…').unwrap().1;
            assert!(head.chars().all(|c| c.to_string() == unit), "{unit} {budget}");
            assert!(tail.chars().all(|c| c.to_string() == unit), "{unit} {budget}");
            assert!(estimate_item_tokens(&kept[0]) <= budget, "{unit} {budget}");
        }
    }
}

#[test]
fn the_default_budget_is_a_quarter_of_the_window_up_to_64_000() {
    for (window, budget) in [
        (Some(32_000), 8_000),
        (Some(256_000), 64_000),
        (Some(1_000_000), 64_000),
        (Some(-1), 64_000),
        (None, 64_000),
    ] {
        assert_eq!(default_retained_budget_tokens(window), budget, "{window:?}");
    }
}

#[test]
fn the_budget_counts_with_the_session_counter() {
    // Russian text: about half the tokens four bytes per token would count.
    let russian = "Когда окно контекста почти заполнено, история сжимается. ".repeat(40);
    let items = vec![user(&russian), user(&russian), user(&russian)];
    let one = TokenCounter::O200k.item_tokens(&items[0]);
    // A budget of two messages by o200k holds two, where four bytes per token holds one.
    let budget = one * 2 + 10;
    assert_eq!(retain(items.clone(), budget, TokenCounter::O200k).len(), 2);
    assert!(TokenCounter::Bytes4.item_tokens(&items[0]) > budget / 2);
}
