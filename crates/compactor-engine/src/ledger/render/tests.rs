//! Tests of rendering: the message's text, recognizing it, and the property that a render never
//! exceeds its budget and always holds the newest entries.

use std::collections::BTreeMap;

use compactor_protocol::tokens::{TokenCounter, estimate_item_tokens};
use compactor_protocol::{ContextualMarkers, ResponseItem};
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::ledger::tests::{function_call, function_output};
use crate::ledger::{DefaultTools, LedgerRules};

fn ledger_of(items: &[ResponseItem]) -> Ledger {
    let markers = ContextualMarkers::default();
    let rules = LedgerRules { tools: &DefaultTools, markers: &markers };
    let mut ledger = Ledger::default();
    for item in items {
        ledger.record(item, &rules);
    }
    ledger
}

fn sample() -> Ledger {
    let patch =
        "*** Begin Patch\n*** Update File: src/wal/log.rs\n-old\n+new\n+more\n*** End Patch";
    let mut ledger = ledger_of(&[
        ResponseItem::user_text("Find why the WAL tests fail"),
        function_call("c1", "read_file", json!({ "path": "src/wal/log.rs" })),
        function_output("c1", "pub fn flush() {}"),
        function_call("c2", "shell", json!({ "command": ["cargo", "test", "-p", "wal"] })),
        function_output("c2", r#"{"output":"1 failed","metadata":{"exit_code":101}}"#),
        ResponseItem::user_text("Fix it"),
        function_call("c3", "apply_patch", json!({ "input": patch })),
        function_output("c3", "Exit code: 0\nOutput:\nSuccess."),
        function_call("c4", "shell", json!({ "command": "cargo test -p wal" })),
        function_output("c4", "Exit code: 0"),
    ]);
    ledger.set_open_items(&["run the benchmarks before the release".into()]);
    ledger
}

#[test]
fn the_message_lists_every_kind_oldest_first() {
    let item = sample().render(2_000).unwrap();
    assert!(is_ledger_message(&item));
    insta::assert_snapshot!(item.message_text().unwrap());
}

#[test]
fn an_empty_ledger_renders_nothing() {
    assert_eq!(Ledger::default().render(2_000), None);
}

#[test]
fn user_requests_alone_render_nothing() {
    let ledger = ledger_of(&[
        ResponseItem::user_text("Find why the WAL tests fail"),
        ResponseItem::user_text("Fix it"),
    ]);
    assert!(!ledger.is_empty());
    assert_eq!(ledger.render(2_000), None);
    let mut with_open_item = ledger;
    with_open_item.set_open_items(&["ship it".into()]);
    let text = with_open_item.render(2_000).unwrap().message_text().unwrap();
    assert!(text.contains("- turn 2: Fix it"), "{text}");
}

#[test]
fn a_budget_below_the_frame_renders_nothing() {
    assert_eq!(sample().render(10), None);
}

#[test]
fn a_tight_budget_keeps_the_newest_and_counts_the_rest() {
    let ledger = sample();
    let full = estimate_item_tokens(&ledger.render(2_000).unwrap());
    let item = ledger.render(full - 1).unwrap();
    assert!(estimate_item_tokens(&item) < full);
    let text = item.message_text().unwrap();
    // The open item, the newest command and the newest patch stay; the oldest request goes, and
    // is counted.
    assert!(text.contains("- run the benchmarks before the release"), "{text}");
    assert!(text.contains("- turn 2: cargo test -p wal (exit 0)"), "{text}");
    assert!(text.contains("- turn 2: src/wal/log.rs (written); +2 -1 lines"), "{text}");
    assert!(!text.contains("Find why the WAL tests fail"), "{text}");
    assert!(text.contains("Older entries not shown: 1 user request"), "{text}");
}

#[test]
fn evicted_entries_are_counted() {
    let mut snapshot = sample().into_snapshot();
    snapshot.evicted.files = 12;
    let text = Ledger::from_snapshot(snapshot).render(2_000).unwrap().message_text().unwrap();
    assert!(text.ends_with("Older entries not shown: 12 files.\n</progress_ledger>"), "{text}");
}

#[test]
fn ledger_messages_are_recognized_by_their_tag() {
    let item = sample().render(2_000).unwrap();
    assert!(is_ledger_message(&item));
    assert!(!is_ledger_message(&ResponseItem::developer_text("<permissions>")));
    assert!(!is_ledger_message(&ResponseItem::user_text(format!("{LEDGER_TAG}\nx"))));
    assert!(!is_ledger_message(&ResponseItem::assistant_text(LEDGER_TAG)));
}

/// One thing that happens in a generated session.
#[derive(Debug, Clone)]
enum Event {
    User(String),
    Read(u8),
    Write(u8),
    Shell(String, i64),
    Patch(u8, u8),
    Open(Vec<String>),
}

fn event() -> impl Strategy<Value = Event> {
    let text = "[a-z ]{0,60}";
    prop_oneof![
        2 => text.prop_map(Event::User),
        4 => any::<u8>().prop_map(Event::Read),
        2 => any::<u8>().prop_map(Event::Write),
        3 => (text, -2i64..3).prop_map(|(command, code)| Event::Shell(command, code)),
        2 => (any::<u8>(), 0u8..20).prop_map(|(file, lines)| Event::Patch(file, lines)),
        1 => prop::collection::vec(text, 0..4).prop_map(Event::Open),
    ]
}

fn ledger_from(events: &[Event]) -> Ledger {
    let markers = ContextualMarkers::default();
    let rules = LedgerRules { tools: &DefaultTools, markers: &markers };
    let mut ledger = Ledger::default();
    for (n, event) in events.iter().enumerate() {
        let id = format!("c{n}");
        let items = match event {
            Event::User(text) => vec![ResponseItem::user_text(text.clone())],
            Event::Read(file) => vec![
                function_call(&id, "read_file", json!({ "path": format!("src/f{file}.rs") })),
                function_output(&id, "text"),
            ],
            Event::Write(file) => vec![
                function_call(&id, "write_file", json!({ "path": format!("src/f{file}.rs") })),
                function_output(&id, "ok"),
            ],
            Event::Shell(command, code) => vec![
                function_call(&id, "shell", json!({ "command": format!("run {command}") })),
                function_output(&id, &format!("Exit code: {code}")),
            ],
            Event::Patch(file, lines) => {
                let body = "+line\n".repeat(usize::from(*lines));
                let patch = format!(
                    "*** Begin Patch\n*** Update File: src/f{file}.rs\n{body}*** End Patch"
                );
                vec![
                    function_call(&id, "apply_patch", json!({ "input": patch })),
                    function_output(&id, "Done"),
                ]
            }
            Event::Open(items) => {
                ledger.set_open_items(items);
                Vec::new()
            }
        };
        for item in &items {
            ledger.record(item, &rules);
        }
    }
    ledger
}

/// How often each text occurs.
fn multiset<'a>(texts: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for text in texts {
        *counts.entry(text).or_default() += 1;
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A render never exceeds its budget, and what it shows is always the open items followed by
    /// the newest entries: a prefix of the entries by priority, never a newer one left out for an
    /// older one. A budget that holds everything shows everything.
    /// Measured with any counter, a render stays within its budget by that counter's count;
    /// with `Bytes4` it is [`Ledger::render`].
    #[test]
    fn rendering_with_a_counter_fits_as_that_counter_counts(
        events in prop::collection::vec(event(), 0..120),
        budget in 0u64..2_500,
    ) {
        let ledger = ledger_from(&events);
        prop_assert_eq!(ledger.render_with(budget, TokenCounter::Bytes4), ledger.render(budget));
        for counter in TokenCounter::ALL {
            if let Some(item) = ledger.render_with(budget, counter) {
                prop_assert!(counter.item_tokens(&item) <= budget, "{counter}");
            }
        }
    }

    #[test]
    fn rendering_fits_and_keeps_the_newest(
        events in prop::collection::vec(event(), 0..120),
        budget in 0u64..2_500,
    ) {
        let ledger = ledger_from(&events);
        let priority = ledger.lines_by_priority();
        let Some(item) = ledger.render(budget) else {
            // Nothing rendered: the ledger holds no progress, or not even the frame and footer
            // fit.
            let frame_only = ledger.text(&[]);
            prop_assert!(
                !ledger.has_progress()
                    || estimate_item_tokens(&ResponseItem::developer_text(frame_only)) > budget
            );
            return Ok(());
        };
        prop_assert!(estimate_item_tokens(&item) <= budget);
        let text = item.message_text().unwrap_or_default();
        let shown: Vec<&str> = text.lines().filter(|line| line.starts_with("- ")).collect();
        let prefix = priority[..shown.len()].iter().map(|line| line.text.as_str());
        prop_assert_eq!(multiset(shown.iter().copied()), multiset(prefix));
        let everything = ResponseItem::developer_text(ledger.text(&priority));
        if estimate_item_tokens(&everything) <= budget {
            prop_assert_eq!(shown.len(), priority.len());
        }
    }
}
