//! Tests of the one layout: the order of every implementation's compacted history, the budget
//! accounting of pins, ledger and initial context, and the image cap.

use compactor_protocol::display::format_history_truncated;
use compactor_protocol::tokens::estimate_item_tokens;
use compactor_protocol::{ContentItem, InitialContextInjection, ResponseItem};
use pretty_assertions::assert_eq;

use super::*;
use crate::counts::HistoryCounts;
use crate::test_support::{
    assistant, call, compaction, context_compaction, developer, output, reasoning, user,
};
use crate::{
    EstimateContext, PromptOptions, PruneConfig, SUMMARY_PREFIX, collect_user_messages, for_prompt,
    prune, v2_request_messages,
};

/// `items` as owned messages of a v2 compaction.
fn owned(items: &[ResponseItem]) -> Vec<Cow<'static, ResponseItem>> {
    items.iter().cloned().map(Cow::Owned).collect()
}

fn initial_context() -> Vec<ResponseItem> {
    vec![
        developer("<PERMISSIONS_INSTRUCTIONS>"),
        user("<environment_context>cwd=/repo</environment_context>"),
    ]
}

fn tokens(items: &[ResponseItem]) -> u64 {
    items.iter().map(estimate_item_tokens).sum()
}

/// A user message with a screenshot whose payload is `tag` repeated.
fn user_with_screenshot(text: &str, tag: char) -> ResponseItem {
    ResponseItem::Message {
        id: None,
        role: "user".into(),
        content: vec![
            ContentItem::InputText { text: text.into() },
            ContentItem::InputImage {
                image_url: format!("data:image/png;base64,{}", tag.to_string().repeat(40)),
                detail: None,
            },
        ],
        phase: None,
        extra: Default::default(),
    }
}

/// A session that compacted once before, then went on with long messages, screenshots and tools.
fn session() -> Vec<ResponseItem> {
    let mut history = vec![user("OLD_TASK"), context_compaction("OLD_SEALED")];
    history.extend(initial_context());
    for (n, tag) in ('a'..='j').enumerate() {
        history.push(user_with_screenshot(&format!("SCREENSHOT_{n}"), tag));
        history.push(assistant(&format!("looked at {n}")));
    }
    history.push(user(&format!("LONG_PASTE {}", "x".repeat(2_000))));
    history.extend([
        reasoning(600),
        call("c1", "shell"),
        output("c1", &"o".repeat(3_000)),
        assistant("ran it"),
        user("LAST_REQUEST"),
        call("c2", "shell"),
        output("c2", "ok"),
    ]);
    history
}

/// Renders labelled histories.
fn render(sections: &[(&str, Vec<ResponseItem>)]) -> String {
    let mut out = String::new();
    for (label, items) in sections {
        out.push_str(&format!("## {label}\n{}", format_history_truncated(items, 60)));
    }
    out.replace(SUMMARY_PREFIX, "<SUMMARY_PREFIX>")
}

/// What each implementation installs for [`session`] with `layout` (server-managed compaction
/// never injects the initial context).
fn every_implementation(layout: &Layout<'_>) -> Vec<(&'static str, Vec<ResponseItem>)> {
    every_implementation_of(&session(), layout)
}

/// What each implementation installs for `history` with `layout`.
fn every_implementation_of(
    history: &[ResponseItem],
    layout: &Layout<'_>,
) -> Vec<(&'static str, Vec<ResponseItem>)> {
    let markers = layout.markers;
    let prompt = for_prompt(history, &PromptOptions::default());
    let v2 = Compacted::RemoteV2 {
        messages: v2_request_messages(&prompt),
        item: context_compaction("NEW_SEALED"),
    };
    // What `/responses/compact` answers: the user messages, then one compaction item.
    let mut v1_output: Vec<ResponseItem> =
        prompt.iter().filter(|item| item.role() == Some("user")).cloned().collect();
    v1_output.push(compaction("V1_SEALED"));
    let user_messages = collect_user_messages(history, markers);
    let local =
        Compacted::Local { user_messages: &user_messages, summary: "<SUMMARY_PREFIX>\nDID_X" };
    let pass_through = compactor_protocol::PassThroughList::default();
    let estimate = EstimateContext::new("", &pass_through);
    let pruned = prune(
        history,
        &HistoryCounts::new(history, &estimate.item_counter()),
        &PruneConfig { protected_user_turns: 1, target_tokens: 0 },
        &estimate,
        markers,
    );
    vec![
        ("v2", compacted_history(v2, layout).unwrap()),
        ("v1", compacted_history(Compacted::RemoteV1 { output: v1_output }, layout).unwrap()),
        ("local", compacted_history(local, layout).unwrap()),
        ("prune", compacted_history(Compacted::Prune { history: pruned.history }, layout).unwrap()),
        (
            // Installed as the server made it: the item carries the context.
            "server_managed",
            compacted_history(
                Compacted::ServerManaged { item: compaction("SERVER_SEALED") },
                &Layout { injection: InitialContextInjection::DoNotInject, ..*layout },
            )
            .unwrap(),
        ),
    ]
}

#[test]
fn layout_of_every_implementation() {
    let markers = ContextualMarkers::default();
    let context = initial_context();
    let layout = Layout {
        initial_context: &context,
        injection: InitialContextInjection::BeforeLastUserMessage,
        retained_budget_tokens: 6_000,
        local_budget_tokens: 6_000,
        max_retained_images: 3,
        ..Layout::new(&markers)
    };
    let sections = every_implementation(&layout);
    insta::assert_snapshot!(render(&sections));
}

#[test]
fn pins_and_the_ledger_come_first_and_count_against_the_budget() {
    let markers = ContextualMarkers::default();
    let context = initial_context();
    let pinned = [developer("PINNED_NOTE"), user("PINNED_ITEM")];
    let ledger = [developer("LEDGER: read src/lib.rs; fixed the parser")];
    let layout = Layout {
        pinned: &pinned,
        ledger: &ledger,
        initial_context: &context,
        injection: InitialContextInjection::BeforeLastUserMessage,
        retained_budget_tokens: 700,
        local_budget_tokens: 700,
        max_retained_images: 3,
        ..Layout::new(&markers)
    };
    let fixed = tokens(&pinned) + tokens(&ledger);
    for (label, history) in every_implementation(&layout) {
        assert_eq!(
            history[..3],
            [pinned[0].clone(), pinned[1].clone(), ledger[0].clone()],
            "{label}"
        );
        if label == "v2" || label == "v1" {
            // Retained items, without the pins, the ledger, the context and the compaction item.
            let retained: Vec<ResponseItem> = history[3..history.len() - 1]
                .iter()
                .filter(|item| !context.contains(item))
                .cloned()
                .collect();
            assert!(tokens(&retained) + fixed <= 700, "{label}: {}", tokens(&retained) + fixed);
        }
    }
    // Pins over the budget fail the compaction of every budgeted implementation.
    let big = [user(&"p".repeat(4_000))];
    let over = Layout { pinned: &big, ..layout };
    let compacted = Compacted::RemoteV2 {
        messages: vec![Cow::Owned(user("m"))],
        item: context_compaction("S"),
    };
    assert_eq!(
        compacted_history(compacted, &over),
        Err(Error::PinnedOverBudget {
            pinned_tokens: tokens(&big) + tokens(&ledger),
            budget_tokens: 700
        })
    );
    let local = Compacted::Local { user_messages: &[], summary: "S" };
    assert!(matches!(compacted_history(local, &over), Err(Error::PinnedOverBudget { .. })));
    // Unbudgeted implementations place them all the same.
    let pruned = compacted_history(Compacted::Prune { history: vec![user("m")] }, &over).unwrap();
    assert_eq!(pruned, [big[0].clone(), ledger[0].clone(), user("m")]);
}

#[test]
fn the_initial_context_does_not_count_against_the_budget() {
    let markers = ContextualMarkers::default();
    let huge_context = [developer(&"i".repeat(40_000))];
    let messages: Vec<ResponseItem> =
        (0..50).map(|n| user(&format!("{n} {}", "m".repeat(400)))).collect();
    let budget = 1_000;
    let without = Layout { retained_budget_tokens: budget, ..Layout::new(&markers) };
    let with = Layout {
        initial_context: &huge_context,
        injection: InitialContextInjection::BeforeLastUserMessage,
        ..without
    };
    let compact = |layout: &Layout<'_>| {
        let compacted =
            Compacted::RemoteV2 { messages: owned(&messages), item: context_compaction("S") };
        compacted_history(compacted, layout).unwrap()
    };
    let plain = compact(&without);
    let mut expected = plain.clone();
    let last_user = expected.len() - 2;
    expected.insert(last_user, huge_context[0].clone());
    assert_eq!(compact(&with), expected);
}

#[test]
fn a_hundred_thousand_tokens_of_user_messages_compact_to_the_budget_plus_the_item() {
    let markers = ContextualMarkers::default();
    let mut history = initial_context();
    let mut n = 0;
    while tokens(&history) < 100_000 {
        n += 1;
        history.push(user(&format!("message {n}: {}", "word ".repeat(1 + n % 700))));
        history.push(assistant("ok"));
    }
    let prompt = for_prompt(&history, &PromptOptions::default());
    let item = context_compaction(&"S".repeat(2_000));
    for budget in [crate::default_retained_budget_tokens(Some(32_000)), 64_000, 1_000] {
        let layout = Layout { retained_budget_tokens: budget, ..Layout::new(&markers) };
        let compacted =
            Compacted::RemoteV2 { messages: v2_request_messages(&prompt), item: item.clone() };
        let installed = compacted_history(compacted, &layout).unwrap();
        assert_eq!(installed.last(), Some(&item));
        let total = tokens(&installed);
        assert!(total <= budget + estimate_item_tokens(&item), "{total} > {budget} + item");
        assert!(total >= budget * 9 / 10, "the budget is used: {total} of {budget}");
        // The newest message is there whole.
        assert_eq!(installed[installed.len() - 2], history[history.len() - 2]);
    }
}

#[test]
fn images_beyond_the_cap_become_placeholders() {
    let markers = ContextualMarkers::default();
    let messages: Vec<ResponseItem> =
        ('a'..='l').map(|tag| user_with_screenshot(&format!("shot {tag}"), tag)).collect();
    let layout = Layout::new(&markers);
    let compacted =
        Compacted::RemoteV2 { messages: owned(&messages), item: context_compaction("S") };
    let installed = compacted_history(compacted, &layout).unwrap();
    let kinds: Vec<&str> = installed[..12]
        .iter()
        .map(|item| match item {
            ResponseItem::Message { content, .. } => match &content[1] {
                ContentItem::InputImage { .. } => "image",
                ContentItem::InputText { text }
                    if text.starts_with(crate::images::IMAGE_PLACEHOLDER_PREFIX) =>
                {
                    "placeholder"
                }
                _ => "other",
            },
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, [&["placeholder"; 4][..], &["image"; 8][..]].concat());
    assert_eq!(
        installed[0].message_text().unwrap(),
        "shot a\n[image removed from the compacted history: image/png, 30 bytes]"
    );
}

#[test]
fn a_new_ledger_replaces_the_previous_one_in_every_implementation() {
    let markers = ContextualMarkers::default();
    let old = developer(&format!("{}\nOLD_LEDGER", crate::LEDGER_TAG));
    let new = developer(&format!("{}\nNEW_LEDGER", crate::LEDGER_TAG));
    // The history as a previous compaction left it: its ledger first.
    let mut history = vec![old.clone()];
    history.extend(session());
    let ledger = [new.clone()];
    let layout = Layout { ledger: &ledger, ..Layout::new(&markers) };
    for (implementation, installed) in every_implementation_of(&history, &layout) {
        let ledgers: Vec<&ResponseItem> =
            installed.iter().filter(|item| is_ledger_message(item)).collect();
        assert_eq!(ledgers, [&new], "{implementation}");
        assert_eq!(installed[0], new, "{implementation}: the ledger comes first");
    }
    // Without a ledger of its own, the layout keeps none of an earlier compaction's.
    for (implementation, installed) in every_implementation_of(&history, &Layout::new(&markers)) {
        assert!(!installed.iter().any(is_ledger_message), "{implementation}");
    }
}
