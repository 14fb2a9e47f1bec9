//! Property tests: `for_prompt` answers every call, and `prune` and trimming never split a pair,
//! never drop a real user message, and trimming fits the window whenever it can. The retained
//! budget is never exceeded, keeps the newest message, never splits a pair, and compacting twice
//! retains the same.

use std::collections::{HashMap, HashSet};

use compactor_protocol::{ContextualMarkers, PassThroughList, ResponseItem};
use proptest::prelude::*;

use crate::context::is_real_user_message;
use crate::counts::HistoryCounts;
use crate::images::IMAGE_PLACEHOLDER_PREFIX;
use crate::local::summary_text;
use crate::pairs::{call_key, output_key};
use crate::retained::retain_within_budget;
use crate::test_support::{
    assistant, call, context_compaction, custom_call, custom_output, developer, output, reasoning,
    tool_search_call, tool_search_output, unknown, user, user_with_image,
};
use crate::{
    Compacted, EstimateContext, Layout, MIN_RETAINED_BUDGET_TOKENS, PromptOptions, PruneConfig,
    compacted_history, estimate_history, for_prompt, prune,
    trim_function_call_history_to_fit_context_window, v2_request_messages,
};
use compactor_protocol::InitialContextInjection;
use compactor_protocol::tokens::estimate_item_tokens;

/// One step of a generated, well-formed conversation.
#[derive(Debug, Clone)]
enum Step {
    User(usize),
    /// A user message with multi-byte text and a screenshot.
    Screenshot(usize),
    Contextual,
    Summary,
    Assistant(usize),
    Developer(usize),
    Reasoning(usize),
    Unknown,
    /// `count` calls of one family, answered in order, either each call followed by its output
    /// or all calls first (parallel calls).
    Pairs {
        family: u8,
        count: usize,
        size: usize,
        parallel: bool,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..400usize).prop_map(Step::User),
        1 => (0..400usize).prop_map(Step::Screenshot),
        1 => Just(Step::Contextual),
        1 => Just(Step::Summary),
        2 => (0..400usize).prop_map(Step::Assistant),
        1 => (0..400usize).prop_map(Step::Developer),
        1 => (0..3_000usize).prop_map(Step::Reasoning),
        1 => Just(Step::Unknown),
        4 => (0..3u8, 1..4usize, 0..2_000usize, any::<bool>()).prop_map(
            |(family, count, size, parallel)| Step::Pairs { family, count, size, parallel }
        ),
    ]
}

fn make_call(family: u8, id: &str) -> ResponseItem {
    match family {
        0 => call(id, "shell"),
        1 => custom_call(id, "apply_patch"),
        _ => tool_search_call(id),
    }
}

fn make_output(family: u8, id: &str, size: usize) -> ResponseItem {
    match family {
        0 => output(id, &"o".repeat(size)),
        1 => custom_output(id, &"p".repeat(size)),
        _ => tool_search_output(id),
    }
}

/// A well-formed history (every call answered, ids unique), optionally ending with a call that
/// is still waiting for its output.
fn history() -> impl Strategy<Value = Vec<ResponseItem>> {
    (prop::collection::vec(step(), 0..40), any::<bool>()).prop_map(|(steps, pending)| {
        let mut items = Vec::new();
        let mut next_id = 0;
        for step in steps {
            match step {
                Step::User(len) => items.push(user(&format!("u{}", "x".repeat(len)))),
                Step::Screenshot(len) => items.push(user_with_image(&"é→".repeat(len))),
                Step::Contextual => {
                    items.push(user("<environment_context>cwd</environment_context>"));
                }
                Step::Summary => items.push(user(&summary_text("earlier work"))),
                Step::Assistant(len) => items.push(assistant(&"a".repeat(len))),
                Step::Developer(len) => items.push(developer(&"d".repeat(len))),
                Step::Reasoning(len) => items.push(reasoning(len)),
                Step::Unknown => items.push(unknown("configuration_update")),
                Step::Pairs { family, count, size, parallel } => {
                    let ids: Vec<String> = (0..count)
                        .map(|_| {
                            next_id += 1;
                            format!("call_{next_id}")
                        })
                        .collect();
                    if parallel {
                        items.extend(ids.iter().map(|id| make_call(family, id)));
                        items.extend(ids.iter().map(|id| make_output(family, id, size)));
                    } else {
                        for id in &ids {
                            items.push(make_call(family, id));
                            items.push(make_output(family, id, size));
                        }
                    }
                }
            }
        }
        if pending {
            items.push(call("call_pending", "shell"));
        }
        items
    })
}

/// Any sequence of calls and outputs over a few ids and families, plus other items: duplicated
/// ids, outputs before their calls, orphans and unanswered calls included.
fn messy_history() -> impl Strategy<Value = Vec<ResponseItem>> {
    let item = prop_oneof![
        3 => (0..3u8, 0..4u8).prop_map(|(family, id)| make_call(family, &format!("c{id}"))),
        3 => (0..3u8, 0..4u8).prop_map(|(family, id)| make_output(family, &format!("c{id}"), 3)),
        1 => Just(user("u")),
        1 => Just(assistant("a")),
        1 => Just(ResponseItem::context_compaction_trigger()),
        1 => Just(ResponseItem::CompactionTrigger),
        1 => Just(unknown("ghost_snapshot")),
    ];
    prop::collection::vec(item, 0..30)
}

/// Whether every output answers an earlier open call and every call is answered.
fn is_fully_paired(items: &[ResponseItem]) -> bool {
    let mut open: HashMap<_, usize> = HashMap::new();
    for item in items {
        if let Some(key) = call_key(item) {
            *open.entry(key).or_default() += 1;
        } else if let Some(key) = output_key(item) {
            match open.get_mut(&key) {
                Some(count) if *count > 0 => *count -= 1,
                _ => return false,
            }
        }
    }
    open.values().all(|count| *count == 0)
}

/// The ids of `items`' calls and of their outputs.
fn pair_ids(items: &[ResponseItem]) -> (HashSet<String>, HashSet<String>) {
    let calls = items.iter().filter_map(call_key).map(|(_, id)| id.to_owned()).collect();
    let outputs = items.iter().filter_map(output_key).map(|(_, id)| id.to_owned()).collect();
    (calls, outputs)
}

/// No pair of `before` is split in `after`, and `after` keeps every real user message.
fn assert_pairs_and_users_kept(before: &[ResponseItem], after: &[ResponseItem]) {
    let (calls_before, outputs_before) = pair_ids(before);
    let (calls_after, outputs_after) = pair_ids(after);
    for id in calls_before.intersection(&outputs_before) {
        assert_eq!(calls_after.contains(id), outputs_after.contains(id), "pair {id} split");
    }
    let markers = ContextualMarkers::default();
    let users = |items: &[ResponseItem]| -> Vec<ResponseItem> {
        items.iter().filter(|item| is_real_user_message(item, &markers)).cloned().collect()
    };
    assert_eq!(users(before), users(after), "a real user message was dropped");
}

/// The summed estimates of `items`.
fn tokens(items: &[ResponseItem]) -> u64 {
    items.iter().map(estimate_item_tokens).sum()
}

/// Whether `kept` is `original`, or `original` cut: a message of the same role whose text says
/// what was cut.
fn is_kept_or_cut(kept: &ResponseItem, original: &ResponseItem) -> bool {
    kept == original
        || (kept.role() == original.role()
            && kept.message_text().is_some_and(|text| {
                text.contains("tokens truncated…") || text.contains(IMAGE_PLACEHOLDER_PREFIX)
            }))
}

/// The retained items of a v2 compacted history: without its compaction item and the initial
/// context.
fn retained_part(installed: &[ResponseItem], context: &[ResponseItem]) -> Vec<ResponseItem> {
    installed[..installed.len() - 1]
        .iter()
        .filter(|item| !context.contains(item))
        .cloned()
        .collect()
}

proptest! {
    #[test]
    fn the_retained_budget_is_never_exceeded_never_splits_a_pair_and_keeps_the_newest_message(
        items in history(),
        budget in MIN_RETAINED_BUDGET_TOKENS..4_000,
    ) {
        let borrowed = items.iter().map(std::borrow::Cow::Borrowed).collect();
        let counter = compactor_protocol::tokens::TokenCounter::Bytes4;
        let kept = retain_within_budget(borrowed, budget, counter);
        // Only a cut message is made anew: every other item kept is still the caller's.
        let made_anew = |item: &std::borrow::Cow<'_, ResponseItem>| match item {
            std::borrow::Cow::Borrowed(_) => false,
            std::borrow::Cow::Owned(item) => !matches!(item, ResponseItem::Message { .. }),
        };
        prop_assert!(!kept.iter().any(made_anew), "an item other than a message was copied");
        let kept: Vec<ResponseItem> = kept.into_iter().map(std::borrow::Cow::into_owned).collect();
        prop_assert!(tokens(&kept) <= budget, "{} > {budget}", tokens(&kept));
        let newest = |items: &[ResponseItem]| {
            items.iter().rev().find(|item| matches!(item, ResponseItem::Message { .. })).cloned()
        };
        if let Some(newest_before) = newest(&items) {
            let newest_after = newest(&kept);
            prop_assert!(
                newest_after.as_ref().is_some_and(|after| is_kept_or_cut(after, &newest_before)),
                "{newest_after:?} for {newest_before:?}"
            );
        }
        let (calls_before, outputs_before) = pair_ids(&items);
        let (calls_after, outputs_after) = pair_ids(&kept);
        for id in calls_before.intersection(&outputs_before) {
            prop_assert_eq!(calls_after.contains(id), outputs_after.contains(id), "pair {} split", id);
        }
        // Kept items keep their order, and only messages change (when cut).
        let mut rest = items.iter();
        prop_assert!(kept.iter().all(|item| rest.any(|candidate| is_kept_or_cut(item, candidate))));
    }

    #[test]
    fn v2_compacting_twice_retains_the_same(
        items in history(),
        budget in MIN_RETAINED_BUDGET_TOKENS..4_000,
        max_images in 0..4usize,
        mid_turn in any::<bool>(),
    ) {
        let markers = ContextualMarkers::default();
        let context = [developer("<permissions>"), user("<environment_context>cwd</environment_context>")];
        let injection = if mid_turn {
            InitialContextInjection::BeforeLastUserMessage
        } else {
            InitialContextInjection::DoNotInject
        };
        let layout = Layout {
            initial_context: &context,
            injection,
            retained_budget_tokens: budget,
            max_retained_images: max_images,
            ..Layout::new(&markers)
        };
        let compact = |history: &[ResponseItem], payload: &str| {
            let prompt = for_prompt(history, &PromptOptions::default());
            let compacted = Compacted::RemoteV2 {
                messages: v2_request_messages(&prompt),
                item: context_compaction(payload),
            };
            compacted_history(compacted, &layout).unwrap()
        };
        let once = compact(&items, "FIRST");
        let twice = compact(&once, "SECOND");
        prop_assert_eq!(once.last(), Some(&context_compaction("FIRST")));
        prop_assert_eq!(twice.last(), Some(&context_compaction("SECOND")));
        let retained = retained_part(&once, &context);
        prop_assert!(tokens(&retained) <= budget, "{} > {budget}", tokens(&retained));
        prop_assert_eq!(retained_part(&twice, &context), retained);
        prop_assert_eq!(&twice[..twice.len() - 1], &once[..once.len() - 1]);
    }

    #[test]
    fn for_prompt_answers_every_call_and_drops_every_orphan(items in messy_history()) {
        let prompt = for_prompt(&items, &PromptOptions::default());
        prop_assert!(is_fully_paired(&prompt), "{prompt:#?}");
        prop_assert!(!prompt.iter().any(ResponseItem::is_compaction_trigger));
        // Normalizing twice changes nothing.
        prop_assert_eq!(for_prompt(&prompt, &PromptOptions::default()), prompt);
    }

    #[test]
    fn for_prompt_keeps_well_formed_histories(items in history()) {
        let prompt = for_prompt(&items, &PromptOptions::default());
        let pending = usize::from(items.last().is_some_and(|item| call_key(item).is_some_and(|(_, id)| id == "call_pending")));
        prop_assert_eq!(prompt.len(), items.len() + pending);
        prop_assert!(is_fully_paired(&prompt));
    }

    #[test]
    fn trimming_never_splits_a_pair_or_drops_a_user_message(
        items in history(),
        window_fraction in 0.0..1.2f64,
    ) {
        let pass_through = PassThroughList::default();
        let context = EstimateContext::new("base instructions", &pass_through);
        let full = estimate_history("base instructions", &items, &pass_through);
        let window = (full as f64 * window_fraction) as u64;
        let mut trimmed = items.clone();
        let removed = trim_function_call_history_to_fit_context_window(&mut trimmed, &HistoryCounts::default(), window, &context);
        prop_assert_eq!(removed, items.len() - trimmed.len());
        assert_pairs_and_users_kept(&items, &trimmed);
        // Trimming only removes: what is left keeps its order.
        let mut rest = items.iter();
        prop_assert!(trimmed.iter().all(|item| rest.any(|candidate| candidate == item)));
    }

    #[test]
    fn trimming_fits_whenever_trimming_alone_can(
        items in history(),
        window_fraction in 0.0..1.2f64,
    ) {
        let pass_through = PassThroughList::default();
        let context = EstimateContext::new("base", &pass_through);
        let window = (estimate_history("base", &items, &pass_through) as f64 * window_fraction) as u64;
        let mut smallest = items.clone();
        trim_function_call_history_to_fit_context_window(&mut smallest, &HistoryCounts::default(), 0, &context);
        let mut trimmed = items.clone();
        trim_function_call_history_to_fit_context_window(&mut trimmed, &HistoryCounts::default(), window, &context);
        let after = estimate_history("base", &trimmed, &pass_through);
        if estimate_history("base", &smallest, &pass_through) <= window {
            prop_assert!(after <= window, "{after} > {window}");
        } else {
            prop_assert_eq!(trimmed, smallest);
        }
    }

    #[test]
    fn pruning_never_splits_a_pair_or_drops_a_user_message(
        items in history(),
        protected_user_turns in 0..4usize,
        target_fraction in 0.0..1.2f64,
    ) {
        let pass_through = PassThroughList::default();
        let context = EstimateContext::new("base", &pass_through);
        let markers = ContextualMarkers::default();
        let before = estimate_history("base", &items, &pass_through);
        let config = PruneConfig {
            protected_user_turns,
            target_tokens: (before as f64 * target_fraction) as u64,
        };
        let outcome = prune(&items, &HistoryCounts::new(&items, &context.item_counter()), &config, &context, &markers);
        assert_pairs_and_users_kept(&items, &outcome.history);
        prop_assert!(is_fully_paired(&for_prompt(&outcome.history, &PromptOptions::default())));
        prop_assert_eq!(outcome.report.tokens_before, before);
        prop_assert_eq!(
            outcome.report.tokens_after,
            estimate_history("base", &outcome.history, &pass_through)
        );
        prop_assert!(outcome.report.tokens_after <= before);
        prop_assert_eq!(outcome.report.dropped_items, items.len() - outcome.history.len());
        // Pruning what was pruned with the same target changes nothing more.
        let again = prune(&outcome.history, &HistoryCounts::new(&outcome.history, &context.item_counter()), &config, &context, &markers);
        prop_assert_eq!(again.report.masked_outputs, 0);
    }
}
