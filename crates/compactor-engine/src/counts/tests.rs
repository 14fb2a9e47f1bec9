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
    for (index, item) in items.iter().enumerate() {
        let json = serde_json::to_vec(item).unwrap().len() as u64;
        assert_eq!(counts.json_len(index), Some(json), "item {index}");
    }
    assert_eq!(counts.json_len(items.len()), None);
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

fn json_lens(input: &[Cow<'_, ResponseItem>]) -> Vec<u64> {
    input.iter().map(|item| serde_json::to_vec(item).unwrap().len() as u64).collect()
}

#[test]
fn a_requests_json_lengths_come_from_the_counts_or_are_counted() {
    let pass_through = PassThroughList::default();
    let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
    let history = sample();
    let counts = HistoryCounts::new(&history, &counter);
    let copy = history[7].clone();
    let made = user("a focus message made for the request");
    // History items out of order and with gaps, an item made for the request, and an equal
    // copy of a history item that is not in it.
    let input: Vec<Cow<'_, ResponseItem>> = vec![
        Cow::Borrowed(&history[0]),
        Cow::Borrowed(&history[2]),
        Cow::Borrowed(&history[1]),
        Cow::Owned(made.clone()),
        Cow::Borrowed(&copy),
        Cow::Borrowed(&history[8]),
        Cow::Owned(history[3].clone()),
        Cow::Borrowed(&made),
    ];
    assert_eq!(counts.input_json_lens(&history, &input), json_lens(&input));
    // Counts of a longer or shorter history are not this one's: everything is counted.
    let mut longer = counts.clone();
    longer.push(&user("later"), &counter);
    assert_eq!(longer.input_json_lens(&history, &input), json_lens(&input));
    let mut shorter = counts.clone();
    shorter.truncate(3);
    assert_eq!(shorter.input_json_lens(&history, &input), json_lens(&input));
    assert_eq!(counts.input_json_lens(&history, &[]), Vec::<u64>::new());

    // An item of the history takes its length from the counts without counting it: counts of
    // another history of the same length show through.
    let other: Vec<ResponseItem> = (0..history.len()).map(|n| user(&"x".repeat(n))).collect();
    let others = HistoryCounts::new(&other, &counter);
    let borrowed: Vec<Cow<'_, ResponseItem>> = history.iter().map(Cow::Borrowed).collect();
    let taken: Vec<u64> = (0..other.len()).filter_map(|index| others.json_len(index)).collect();
    assert_eq!(others.input_json_lens(&history, &borrowed), taken);
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
