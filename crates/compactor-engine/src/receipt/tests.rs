//! Tests of receipt accounting: one case per outcome, and property tests over random histories
//! compacted by `prune` and by local compaction.

use compactor_protocol::tokens::{TokenCounter, approx_token_count, estimate_item_tokens};
use compactor_protocol::{
    ContextualMarkers, ItemOutcome, ItemReceipt, PassThroughList, ResponseItem,
};
use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;
use crate::context::is_real_user_message;
use crate::test_support::{
    assistant, call, context_compaction, custom_call, custom_output, developer, output, reasoning,
    user,
};
use crate::{
    Compacted, EstimateContext, HistoryCounts, LEDGER_TAG, Layout, PruneConfig,
    collect_user_messages, compacted_history, drop_oldest, estimate_history, prune, summary_text,
};

use ItemOutcome::{Dropped, KeptTruncated, KeptVerbatim, Pinned, Summarized, TrimmedBeforeSending};

const TOKENS: ReceiptTokens =
    ReceiptTokens { counter: TokenCounter::Bytes4, before: 10_000, instructions: 7, tools: 30 };

#[track_caller]
fn check(input: &ReceiptInput<'_>, expected: &[ItemOutcome]) {
    let (items, totals) = account_items(input, &TOKENS);
    let outcomes: Vec<ItemOutcome> = items.iter().map(|item| item.outcome).collect();
    assert_eq!(outcomes, expected);
    assert_eq!(totals.sum(), i128::from(TOKENS.before));
    let estimated: u64 = input.history.iter().map(estimate_item_tokens).sum();
    assert_eq!(totals.attributed(), i128::from(estimated + TOKENS.instructions + TOKENS.tools));
    assert_eq!(totals.items(), input.history.len() as u64);
}

fn input<'a>(history: &'a [ResponseItem], new_history: &'a [ResponseItem]) -> ReceiptInput<'a> {
    ReceiptInput {
        history,
        pinned: &[],
        trimmed: None,
        sent: Sent::All,
        new_history,
        new_pin_slot: 0,
        produced: 1,
    }
}

#[test]
fn a_remote_compaction_keeps_messages_and_summarizes_the_rest() {
    let history = [user("fix it"), call("c1", "shell"), output("c1", "log"), assistant("done")];
    let new_history = [user("fix it"), context_compaction("SEALED")];
    check(&input(&history, &new_history), &[KeptVerbatim, Summarized, Summarized, Summarized]);
}

#[test]
fn pins_and_their_originals_are_pinned_and_the_new_slot_is_not_matched() {
    let history = [developer("old note"), user("keep me"), user("other"), assistant("a")];
    let pinned = [developer("old note"), user("keep me")];
    let new_history =
        [pinned[0].clone(), pinned[1].clone(), user("other"), context_compaction("S")];
    let input = ReceiptInput { pinned: &pinned, new_pin_slot: 2, ..input(&history, &new_history) };
    check(&input, &[Pinned, Pinned, KeptVerbatim, Summarized]);
}

#[test]
fn an_unpinned_slot_item_is_summarized_like_any_other() {
    let history = [developer("unpinned note"), user("u")];
    let new_history = [user("u"), context_compaction("S")];
    check(&input(&history, &new_history), &[Summarized, KeptVerbatim]);
}

#[test]
fn cut_messages_and_masked_outputs_are_kept_truncated() {
    let long = format!("{}{}", "the first words of a long paste ", "x".repeat(400));
    let cut = format!("{}…100 tokens truncated…xx", "the first words of a long paste ");
    let history = [user(&long), call("c1", "shell"), output("c1", "a very long output")];
    let new_history = [user(&cut), call("c1", "shell"), output("c1", "[masked]")];
    let input = ReceiptInput { produced: 0, ..input(&history, &new_history) };
    check(&input, &[KeptTruncated, KeptVerbatim, KeptTruncated]);
}

#[test]
fn the_produced_summary_stands_for_nothing_it_resembles() {
    let old_summary = user(&summary_text("earlier"));
    let history = [old_summary, user("u")];
    let new_history = [user("u"), user(&summary_text("now"))];
    check(&input(&history, &new_history), &[Summarized, KeptVerbatim]);
}

#[test]
fn the_new_ledger_is_no_cut_of_the_old_one() {
    let old_ledger = developer(&format!("{LEDGER_TAG}\nfiles read: src/main.rs"));
    let new_ledger = developer(&format!("{LEDGER_TAG}\nfiles read: src/main.rs, src/lib.rs"));
    let history = [old_ledger.clone(), user("u"), assistant("a")];
    let new_history = [new_ledger, user("u"), context_compaction("SEALED")];
    check(&input(&history, &new_history), &[Summarized, KeptVerbatim, Summarized]);
    // An unchanged ledger is kept as it was.
    let new_history = [old_ledger, user("u"), context_compaction("SEALED")];
    check(&input(&history, &new_history), &[KeptVerbatim, KeptVerbatim, Summarized]);
}

#[test]
fn trimmed_items_were_never_sent() {
    let history = [user("u"), call("c1", "shell"), output("c1", "big")];
    let trimmed = [user("u")];
    let new_history = [user("u"), context_compaction("S")];
    let input = ReceiptInput { trimmed: Some(&trimmed), ..input(&history, &new_history) };
    check(&input, &[KeptVerbatim, TrimmedBeforeSending, TrimmedBeforeSending]);
}

#[test]
fn what_a_model_was_not_sent_is_dropped() {
    let history = [call("c1", "shell"), output("c1", "big"), user("u"), assistant("a")];
    let sent = [user("u"), assistant("a")];
    let new_history = [user("u"), user(&summary_text("s"))];
    let input = ReceiptInput { sent: Sent::Only(&sent), ..input(&history, &new_history) };
    check(&input, &[Dropped, Dropped, KeptVerbatim, Summarized]);
    let pruned = ReceiptInput { sent: Sent::Nothing, produced: 0, ..input };
    let new_history = [user("u")];
    check(
        &ReceiptInput { new_history: &new_history, ..pruned },
        &[Dropped, Dropped, KeptVerbatim, Dropped],
    );
}

#[test]
fn duplicates_are_matched_once_each_newest_first() {
    let history = [user("same"), user("same"), user("same")];
    let new_history = [user("same"), user("same"), context_compaction("S")];
    check(&input(&history, &new_history), &[Summarized, KeptVerbatim, KeptVerbatim]);
}

#[test]
fn an_unchanged_history_is_kept_verbatim() {
    let history = [user("u"), call("c1", "shell"), output("c1", "x"), reasoning(900)];
    let (items, totals) = unchanged_items(&history, &TOKENS, None);
    assert!(items.iter().all(|item| item.outcome == KeptVerbatim));
    assert_eq!(totals.kept_verbatim.items, 4);
    assert_eq!(totals.sum(), i128::from(TOKENS.before));
}

#[test]
fn unattributed_may_be_negative_and_saturates() {
    let history = [user(&"x".repeat(4_000))];
    let (_, totals) = unchanged_items(&history, &ReceiptTokens { before: 5, ..TOKENS }, None);
    assert!(totals.unattributed < 0);
    assert_eq!(totals.sum(), 5);
    let (_, totals) =
        unchanged_items(&history, &ReceiptTokens { before: i64::MIN, ..TOKENS }, None);
    assert_eq!(totals.unattributed, i64::MIN);
}

#[test]
fn items_are_counted_with_the_session_counter() {
    // Russian text: o200k counts about half of what four bytes per token does.
    let history = [user(&"Когда окно контекста почти заполнено, история сжимается. ".repeat(20))];
    let tokens = ReceiptTokens { counter: TokenCounter::O200k, ..TOKENS };
    let (items, totals) = unchanged_items(&history, &tokens, None);
    let exact = TokenCounter::O200k.item_tokens(&history[0]);
    assert_eq!(items[0].tokens, exact);
    assert!(exact < estimate_item_tokens(&history[0]), "{exact}");
    assert_eq!(totals.sum(), i128::from(TOKENS.before));
}

// Property tests.

/// One step of a random conversation.
#[derive(Debug, Clone)]
enum Step {
    User(usize),
    Contextual,
    Summary,
    Assistant(usize),
    Developer(usize),
    Reasoning(usize),
    Pair { custom: bool, size: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..600usize).prop_map(Step::User),
        1 => Just(Step::Contextual),
        1 => Just(Step::Summary),
        2 => (0..300usize).prop_map(Step::Assistant),
        1 => (0..300usize).prop_map(Step::Developer),
        1 => (0..3_000usize).prop_map(Step::Reasoning),
        4 => (any::<bool>(), 0..4_000usize).prop_map(|(custom, size)| Step::Pair { custom, size }),
    ]
}

fn history() -> impl Strategy<Value = Vec<ResponseItem>> {
    prop::collection::vec(step(), 0..40).prop_map(|steps| {
        let mut items = Vec::new();
        for (index, step) in steps.into_iter().enumerate() {
            let id = format!("call_{index}");
            match step {
                // A third of the user messages are the same short one: duplicates must be
                // matched once each.
                Step::User(len) => {
                    let len = if len % 3 == 0 { 0 } else { len };
                    items.push(user(&format!("u{}", "x".repeat(len))));
                }
                Step::Contextual => {
                    items.push(user("<environment_context>cwd</environment_context>"));
                }
                Step::Summary => items.push(user(&summary_text("earlier work"))),
                Step::Assistant(len) => items.push(assistant(&"a".repeat(len))),
                Step::Developer(len) => items.push(developer(&"d".repeat(len))),
                Step::Reasoning(len) => items.push(reasoning(len)),
                Step::Pair { custom: false, size } => {
                    items.push(call(&id, "shell"));
                    items.push(output(&id, &"o".repeat(size)));
                }
                Step::Pair { custom: true, size } => {
                    items.push(custom_call(&id, "apply_patch"));
                    items.push(custom_output(&id, &"p".repeat(size)));
                }
            }
        }
        items
    })
}

/// The outcome counts a naive matching of `history` against `body` gives: equal items first,
/// then tool outputs by call id and messages by role and the start of their text, one body item
/// per input item; what is left is `rest`.
fn naive_counts(
    history: &[ResponseItem],
    body: &[ResponseItem],
    rest: ItemOutcome,
) -> Vec<(ItemOutcome, usize)> {
    let mut used = vec![false; body.len()];
    let mut outcome: Vec<Option<ItemOutcome>> = vec![None; history.len()];
    for (index, item) in history.iter().enumerate() {
        if let Some(at) = (0..body.len()).find(|&at| !used[at] && same_content(&body[at], item)) {
            used[at] = true;
            outcome[index] = Some(KeptVerbatim);
        }
    }
    for (index, item) in history.iter().enumerate() {
        if outcome[index].is_some() {
            continue;
        }
        let key = DerivedKey::of(item);
        if key.is_none() {
            continue;
        }
        if let Some(at) = (0..body.len()).find(|&at| !used[at] && DerivedKey::of(&body[at]) == key)
        {
            used[at] = true;
            outcome[index] = Some(KeptTruncated);
        }
    }
    let outcomes: Vec<ItemOutcome> = outcome.into_iter().map(|o| o.unwrap_or(rest)).collect();
    counts(&outcomes)
}

fn counts(outcomes: &[ItemOutcome]) -> Vec<(ItemOutcome, usize)> {
    ItemOutcome::ALL
        .iter()
        .map(|wanted| (*wanted, outcomes.iter().filter(|o| *o == wanted).count()))
        .collect()
}

/// What every receipt must satisfy, whatever the implementation.
fn check_invariants(
    history: &[ResponseItem],
    items: &[ItemReceipt],
    totals: &ReceiptTotals,
    before: i64,
) {
    assert_eq!(items.len(), history.len());
    for (item, original) in items.iter().zip(history) {
        assert_eq!(item.tokens, estimate_item_tokens(original));
        assert_eq!(item.item_type, original.item_type());
    }
    assert_eq!(totals.sum(), i128::from(before));
    let estimate = estimate_history("", history, &PassThroughList::default());
    assert_eq!(totals.attributed(), i128::from(estimate + TOKENS.instructions + TOKENS.tools));
    for outcome in ItemOutcome::ALL {
        let category = totals.category(outcome).unwrap();
        let of: Vec<_> = items.iter().filter(|item| item.outcome == outcome).collect();
        assert_eq!(category.items, of.len() as u64);
        assert_eq!(category.tokens, of.iter().map(|item| item.tokens).sum::<u64>());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn prune_receipts_add_up_and_match_the_pruned_history(
        history in history(),
        target in 0..20_000u64,
        protected in 0..3usize,
        before in -1_000..200_000i64,
    ) {
        let markers = ContextualMarkers::default();
        let pass_through = PassThroughList::default();
        let estimate = EstimateContext::new("", &pass_through);
        let config = PruneConfig { protected_user_turns: protected, target_tokens: target };
        let cached = HistoryCounts::new(&history, &estimate.item_counter());
        let pruned = prune(&history, &cached, &config, &estimate, &markers).history;
        let pruned =
            compacted_history(Compacted::Prune { history: pruned }, &Layout::new(&markers)).unwrap();
        let input = ReceiptInput {
            history: &history,
            pinned: &[],
            trimmed: None,
            sent: Sent::Nothing,
            new_history: &pruned,
            new_pin_slot: 0,
            produced: 0,
        };
        let tokens = ReceiptTokens { before, ..TOKENS };
        let (items, totals) = account_items(&input, &tokens);
        check_invariants(&history, &items, &totals, before);
        // Read from the cached counts, the receipt is the same; counts of another history are
        // not read.
        let counted = account_items_counted(&input, &tokens, Some(&cached));
        prop_assert_eq!(&counted, &(items.clone(), totals));
        let other = account_items_counted(&input, &tokens, Some(&HistoryCounts::default()));
        prop_assert_eq!(&other, &(items.clone(), totals));
        let outcomes: Vec<ItemOutcome> = items.iter().map(|item| item.outcome).collect();
        prop_assert_eq!(counts(&outcomes), naive_counts(&history, &pruned, Dropped));
        // Prune masks tool outputs and drops whole pairs; it never summarizes and never touches
        // a message.
        for (item, original) in items.iter().zip(&history) {
            prop_assert!(matches!(item.outcome, KeptVerbatim | KeptTruncated | Dropped));
            if item.outcome == KeptTruncated {
                prop_assert!(original.output_call_id().is_some(), "{original:?}");
            }
            if matches!(original, ResponseItem::Message { .. }) {
                prop_assert_eq!(item.outcome, KeptVerbatim);
            }
        }
        // Kept tokens never exceed what the pruned history holds.
        let kept = totals.kept_verbatim.tokens;
        let new_estimate = estimate_history("", &pruned, &pass_through);
        prop_assert!(kept <= new_estimate);
    }

    #[test]
    fn local_receipts_add_up_and_match_the_rebuilt_history(
        history in history(),
        overflow_drops in 0..4usize,
        before in -1_000..200_000i64,
    ) {
        let markers = ContextualMarkers::default();
        let mut sent = history.clone();
        for _ in 0..overflow_drops {
            drop_oldest(&mut sent);
        }
        let user_messages = collect_user_messages(&sent, &markers);
        let summary = summary_text("the summary");
        let local = Compacted::Local { user_messages: &user_messages, summary: &summary };
        let rebuilt = compacted_history(local, &Layout::new(&markers)).unwrap();
        let input = ReceiptInput {
            history: &history,
            pinned: &[],
            trimmed: None,
            sent: Sent::Only(&sent),
            new_history: &rebuilt,
            new_pin_slot: 0,
            produced: 1,
        };
        let tokens = ReceiptTokens { before, ..TOKENS };
        let (items, totals) = account_items(&input, &tokens);
        check_invariants(&history, &items, &totals, before);
        let body = &rebuilt[..rebuilt.len() - 1];
        let outcomes: Vec<ItemOutcome> = items.iter().map(|item| item.outcome).collect();
        // The naive oracle cannot tell summarized from dropped: compare what it can.
        let naive = naive_counts(&history, body, Summarized);
        let mine = counts(&outcomes);
        prop_assert_eq!(mine[0], naive[0]);
        prop_assert_eq!(mine[1], naive[1]);
        // Only real user messages stay, at most one of them cut; everything the model was sent
        // and does not keep is summarized, everything it was not sent is dropped.
        let dropped = history.len() - sent.len();
        prop_assert_eq!(totals.dropped.items as usize, dropped);
        prop_assert!(totals.kept_truncated.items <= 1);
        for (item, original) in items.iter().zip(&history) {
            if matches!(item.outcome, KeptVerbatim | KeptTruncated) {
                prop_assert!(is_real_user_message(original, &markers), "{original:?}");
            }
            prop_assert!(!matches!(item.outcome, Pinned | TrimmedBeforeSending));
        }
        let kept_or_summarized = totals.kept_verbatim.items + totals.kept_truncated.items + totals.summarized.items;
        prop_assert_eq!(kept_or_summarized as usize, sent.len());
        prop_assert_eq!(approx_token_count(""), 0);
    }
}
