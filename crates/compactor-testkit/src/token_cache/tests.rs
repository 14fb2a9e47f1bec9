//! Tests of the reused token counts: totals equal to counting from scratch, entries kept bounded.

use compactor_protocol::ResponseItem;
use compactor_protocol::tokens::TokenCounter;
use pretty_assertions::assert_eq;

use super::{ENTRIES, TWO_THREADS_FROM, TokenCache, fingerprints};
use crate::workload::realistic_history;

const INSTRUCTIONS: &str = "You are a coding agent.";

fn cache() -> TokenCache {
    TokenCache::new(TokenCounter::O200k)
}

fn scratch(items: &[ResponseItem]) -> u64 {
    TokenCounter::O200k.history_tokens(INSTRUCTIONS, items)
}

fn user(text: &str) -> ResponseItem {
    serde_json::from_value(serde_json::json!({
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]
    }))
    .unwrap()
}

fn entry_lengths(cache: &TokenCache) -> Vec<usize> {
    cache.entries.lock().unwrap().iter().map(Vec::len).collect()
}

#[test]
fn a_session_s_requests_count_as_counting_them_from_scratch_does() {
    let cache = cache();
    let history = realistic_history(300);
    // A session: each request repeats the one before and adds items.
    for end in [40, 41, 120, 300] {
        assert_eq!(cache.history_tokens(INSTRUCTIONS, &history[..end]), scratch(&history[..end]));
    }
    // Each request extended the one before: one conversation keeps one entry.
    assert_eq!(entry_lengths(&cache), vec![300]);

    // A compaction request: the same history and a trigger.
    let mut compaction = history.clone();
    compaction.push(ResponseItem::context_compaction_trigger());
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &compaction), scratch(&compaction));
    assert_eq!(entry_lengths(&cache), vec![301]);

    // The prefix's counts do come from the cache: a count changed in it shows in the total.
    cache.entries.lock().unwrap()[0][10].tokens += 1_000;
    compaction.push(user("one more"));
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &compaction), scratch(&compaction) + 1_000);
}

#[test]
fn an_edited_item_is_counted_again_and_so_is_everything_after_it() {
    let cache = cache();
    let history = realistic_history(200);
    cache.history_tokens(INSTRUCTIONS, &history);

    // A rollback or an edit: the same items but one, which is longer than it was.
    let mut edited = history.clone();
    edited[50] = user(&"a much longer message than the one it replaces ".repeat(40));
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &edited), scratch(&edited));
    // A history cut before the edit (as after a rollback), and one that drops the first item.
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &history[..30]), scratch(&history[..30]));
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &history[1..]), scratch(&history[1..]));
    // Neither the edited request nor the shorter ones replaced the entry they share a prefix
    // with: only a request that extends an entry does.
    assert_eq!(entry_lengths(&cache), vec![199, 30, 200, 200]);
    // Instructions are counted anew with every request.
    assert_eq!(
        cache.history_tokens("other instructions, longer than before", &history),
        TokenCounter::O200k.history_tokens("other instructions, longer than before", &history)
    );
}

#[test]
fn the_cache_keeps_a_bounded_number_of_requests() {
    let cache = cache();
    for index in 0..ENTRIES * 3 {
        let items = vec![user(&format!("conversation {index}")), user("the same second message")];
        assert_eq!(cache.history_tokens(INSTRUCTIONS, &items), scratch(&items));
    }
    assert_eq!(entry_lengths(&cache), vec![2; ENTRIES]);
    // An empty input keeps no entry and counts the instructions alone.
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &[]), scratch(&[]));
    assert_eq!(entry_lengths(&cache).len(), ENTRIES);
}

#[test]
fn a_long_request_s_fingerprints_taken_on_two_threads_are_the_ones_taken_in_turn() {
    let history = realistic_history(TWO_THREADS_FROM + 501);
    let key = compactor_protocol::FingerprintKey::new(7, 11);
    let in_turn: Vec<_> = history.iter().map(|item| item.fingerprint(key)).collect();
    assert_eq!(fingerprints(&history, key), in_turn);
    // And the totals are still a count from scratch, before and after an extension.
    let cache = cache();
    let end = history.len() - 1;
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &history[..end]), scratch(&history[..end]));
    assert_eq!(cache.history_tokens(INSTRUCTIONS, &history), scratch(&history));
}
