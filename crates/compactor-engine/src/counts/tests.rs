//! Tests of the cached counts: they equal counting from scratch, however they were built.

use pretty_assertions::assert_eq;
use proptest::prelude::*;

use super::*;
use crate::test_support::{assistant, call, output, reasoning, unknown, user, user_with_image};

fn sample() -> Vec<ResponseItem> {
    vec![
        user("list the files"),
        reasoning(2_000),
        call("call_1", "shell"),
        output("call_1", "src/lib.rs\nsrc/main.rs\n"),
        unknown("configuration_update"),
        unknown("ghost_snapshot"),
        reasoning(400),
        assistant("Two files."),
        user_with_image("and this?"),
    ]
}

#[track_caller]
fn check(items: &[ResponseItem], counter: &ItemCounter<'_>) {
    let from_scratch: Vec<u64> = items.iter().map(|item| counter.count(item)).collect();
    let counts = HistoryCounts::new(items, counter);
    assert_eq!(counts.iter().collect::<Vec<_>>(), from_scratch);
    assert_eq!(counts.len(), items.len());
    assert_eq!(counts.total(), from_scratch.iter().sum::<u64>());
    // One at a time, as a session records them, gives the same counts.
    let mut pushed = HistoryCounts::default();
    for item in items {
        pushed.push(item, counter);
    }
    assert_eq!(pushed, counts);
    // Counted in two parts and joined, as a session appends a batch counted elsewhere.
    for split in 0..=items.len() {
        let mut joined = HistoryCounts::new(&items[..split], counter);
        joined.extend_counted(&HistoryCounts::new(&items[split..], counter));
        assert_eq!(joined, counts, "split at {split}");
    }
    for start in 0..=items.len() {
        for end in start..=items.len() {
            assert_eq!(counts.range(start..end), from_scratch[start..end].iter().sum::<u64>());
        }
        let reasoning: u64 = items[..start]
            .iter()
            .zip(&from_scratch)
            .filter(|(item, _)| is_encrypted_reasoning(item))
            .map(|(_, tokens)| tokens)
            .sum();
        assert_eq!(counts.encrypted_reasoning_before(start), reasoning);
    }
}

#[test]
fn cached_counts_equal_counting_from_scratch_with_both_counters() {
    let pass_through = PassThroughList::default();
    for counter in TokenCounter::ALL {
        check(&sample(), &ItemCounter { counter, pass_through: &pass_through });
    }
}

#[test]
fn unknown_items_count_their_json_whether_sent_or_not() {
    let item = unknown("configuration_update");
    let json = serde_json::to_string(&item).unwrap().len() as u64;
    let allowed = PassThroughList::default();
    let refused = PassThroughList::new(Vec::<String>::new());
    let counter = |pass_through| ItemCounter { counter: TokenCounter::Bytes4, pass_through };
    assert_eq!(counter(&allowed).count(&item), json.div_ceil(4));
    assert_eq!(counter(&refused).count(&item), json.div_ceil(4));
}

#[test]
fn out_of_range_queries_clamp_and_truncate_keeps_a_prefix() {
    let pass_through = PassThroughList::default();
    let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    let items = sample();
    let mut counts = HistoryCounts::new(&items, &counter);
    assert_eq!(counts.item(items.len()), 0);
    assert_eq!(counts.range(3..100), counts.range(3..items.len()));
    assert_eq!(counts.encrypted_reasoning_before(100), counts.encrypted_reasoning_before(9));
    counts.truncate(4);
    assert_eq!(counts, HistoryCounts::new(&items[..4], &counter));
    assert!(HistoryCounts::default().is_empty());
    assert_eq!(HistoryCounts::default().total(), 0);
}

fn any_item() -> impl Strategy<Value = ResponseItem> {
    prop_oneof![
        "\\PC{0,300}".prop_map(|text| user(&text)),
        "\\PC{0,300}".prop_map(|text| assistant(&text)),
        (0..3_000usize).prop_map(reasoning),
        "[a-z ]{0,50}".prop_map(|text| output("call_1", &text)),
        Just(unknown("configuration_update")),
        Just(user_with_image("look")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_history_counts_as_from_scratch(items in prop::collection::vec(any_item(), 0..12)) {
        let pass_through = PassThroughList::default();
        for counter in TokenCounter::ALL {
            check(&items, &ItemCounter { counter, pass_through: &pass_through });
        }
    }
}
