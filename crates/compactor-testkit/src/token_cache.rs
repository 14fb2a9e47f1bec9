//! The token counts of items the server has already counted (D162).
//!
//! A provider does not tokenize again the prefix of a prompt it has just processed: a session's
//! requests repeat the history of the one before and add a few items. The server keeps, for its
//! last few requests, each item's fingerprint (D130) and token count; a new request reuses the
//! counts of its longest prefix that matches one of them and counts only the rest. The totals are
//! exactly what counting every item gives; only the time differs (counting a 10 000-item history
//! with `o200k` takes tens of milliseconds, fingerprinting it a few).

use std::collections::VecDeque;
use std::hash::BuildHasher as _;
use std::sync::{Mutex, PoisonError};

use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{Fingerprint, FingerprintKey, ResponseItem};

/// How many requests' counts the server keeps.
const ENTRIES: usize = 8;

/// Per-item token counts of recent requests, under one secret fingerprint key.
#[derive(Debug)]
pub(crate) struct TokenCache {
    counter: TokenCounter,
    key: FingerprintKey,
    /// The newest first.
    entries: Mutex<VecDeque<Vec<Counted>>>,
}

/// An item of a counted request.
#[derive(Debug, Clone, Copy)]
struct Counted {
    print: Fingerprint,
    tokens: u64,
}

impl TokenCache {
    /// An empty cache counting with `counter`, under a key drawn from the operating system (the
    /// standard library's randomly keyed hasher), so crafted inputs cannot aim at a collision.
    pub(crate) fn new(counter: TokenCounter) -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let key = FingerprintKey::new(state.hash_one(0u8), state.hash_one(1u8));
        Self { counter, key, entries: Mutex::new(VecDeque::with_capacity(ENTRIES)) }
    }

    /// The tokens of `instructions` and `items`, as [`TokenCounter::history_tokens`] counts them.
    pub(crate) fn history_tokens(&self, instructions: &str, items: &[ResponseItem]) -> u64 {
        let prints = fingerprints(items, self.key);
        let mut counted: Vec<Counted> = Vec::with_capacity(items.len());
        let replaced = {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let best = entries
                .iter()
                .enumerate()
                .map(|(index, entry)| (index, common_prefix(entry, &prints)))
                .max_by_key(|&(index, prefix)| (prefix, std::cmp::Reverse(index)));
            match best {
                Some((index, prefix)) if prefix > 0 => {
                    counted.extend_from_slice(&entries[index][..prefix]);
                    // A request that extends an entry supersedes it: one conversation keeps one
                    // entry, not one per turn.
                    (prefix == entries[index].len()).then_some(index)
                }
                _ => None,
            }
        };
        let reused = counted.len();
        counted.extend(
            items[reused..]
                .iter()
                .zip(&prints[reused..])
                .map(|(item, &print)| Counted { print, tokens: self.counter.item_tokens(item) }),
        );
        let total = counted.iter().fold(self.counter.text_tokens(instructions), |sum, item| {
            sum.saturating_add(item.tokens)
        });
        if !counted.is_empty() {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            // The entry found may have moved while the lock was released; it is only dropped if
            // it is still the prefix it was.
            if let Some(index) = replaced
                && entries
                    .get(index)
                    .is_some_and(|entry| common_prefix(entry, &prints) == entry.len())
            {
                entries.remove(index);
            }
            entries.push_front(counted);
            entries.truncate(ENTRIES);
        }
        total
    }
}

/// From how many items a request's fingerprints are taken on two threads.
const TWO_THREADS_FROM: usize = 2_000;

/// The fingerprints of `items`, in order. A long history's are taken half on another thread: the
/// fingerprints are on the path of every answer, and a server does nothing else meanwhile (the
/// halves cost about a millisecond each at 10 000 items, the thread tens of microseconds).
fn fingerprints(items: &[ResponseItem], key: FingerprintKey) -> Vec<Fingerprint> {
    if items.len() < TWO_THREADS_FROM {
        return items.iter().map(|item| item.fingerprint(key)).collect();
    }
    let (first, second) = items.split_at(items.len() / 2);
    let print_all = |half: &[ResponseItem]| -> Vec<Fingerprint> {
        half.iter().map(|item| item.fingerprint(key)).collect()
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(|| print_all(second));
        let mut prints = Vec::with_capacity(items.len());
        prints.extend(first.iter().map(|item| item.fingerprint(key)));
        // Taking a fingerprint cannot panic; were the thread lost, the half is taken here.
        prints.extend(other.join().unwrap_or_else(|_| print_all(second)));
        prints
    })
}

/// How many leading items of `entry` have the fingerprints `prints` start with.
fn common_prefix(entry: &[Counted], prints: &[Fingerprint]) -> usize {
    entry.iter().zip(prints).take_while(|(counted, print)| counted.print == **print).count()
}

#[cfg(test)]
mod tests;
