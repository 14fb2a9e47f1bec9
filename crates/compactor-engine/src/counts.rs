//! Token counts kept beside a history (D124): every item is counted once, when it is recorded,
//! and every later estimate adds up cached numbers instead of serializing items again.

use std::borrow::Cow;
use std::ops::Range;

use compactor_protocol::tokens::{TokenCounter, json_len};
use compactor_protocol::{PassThroughList, ResponseItem};

/// How the items of a history are counted: the session's [`TokenCounter`], and the provider's
/// pass-through list.
///
/// An item of unknown type counts its raw JSON whether or not the list lets it reach the model
/// (D67), so the list does not change a count; it stays beside the counter so that a count
/// could depend on what is sent.
#[derive(Debug, Clone, Copy)]
pub struct ItemCounter<'a> {
    /// The counter.
    pub counter: TokenCounter,
    /// The unknown item types the provider receives.
    pub pass_through: &'a PassThroughList,
}

impl ItemCounter<'_> {
    /// The tokens `item` adds to a request: [`TokenCounter::item_tokens`].
    pub fn count(&self, item: &ResponseItem) -> u64 {
        self.counter.item_tokens(item)
    }

    /// [`count`](Self::count) and the length of `item`'s compact JSON, measured together:
    /// [`TokenCounter::item_tokens_and_json_len`].
    pub fn measure(&self, item: &ResponseItem) -> (u64, u64) {
        self.counter.item_tokens_and_json_len(item)
    }
}

/// The token counts of a history's items, in the history's order (D124), with the length of each
/// item's compact JSON, which an HTTP request declares without counting it again (D169).
///
/// It is a parallel vector: it never lives on a [`ResponseItem`], so what is sent, persisted and
/// resumed is exactly what it was without it. Running sums make the total of any range of items
/// a subtraction, so the per-turn estimate costs nothing per item already counted. Whoever owns
/// the history keeps the two the same length: every item appended is pushed here, and a history
/// replaced (an install, a rollback, a resume) gets its counts rebuilt with
/// [`HistoryCounts::new`].
///
/// # Examples
///
/// ```
/// use compactor_engine::{HistoryCounts, ItemCounter};
/// use compactor_protocol::tokens::TokenCounter;
/// use compactor_protocol::{PassThroughList, ResponseItem};
///
/// let pass_through = PassThroughList::default();
/// let counter = ItemCounter { counter: TokenCounter::Bytes4, pass_through: &pass_through };
/// let mut counts = HistoryCounts::new(&[ResponseItem::user_text("hi")], &counter);
/// counts.push(&ResponseItem::assistant_text("hello"), &counter);
/// assert_eq!(counts.len(), 2);
/// assert_eq!(counts.total(), counts.item(0) + counts.item(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCounts {
    /// `cumulative[i]` is the sum of the counts of items `..i`; one entry more than items.
    cumulative: Vec<u64>,
    /// The same sums over encrypted reasoning items only, which the usage gate adds apart.
    reasoning: Vec<u64>,
    /// Each item's compact JSON length (`tokens::json_len`), in order.
    json_lens: Vec<u64>,
}

impl Default for HistoryCounts {
    fn default() -> Self {
        Self { cumulative: vec![0], reasoning: vec![0], json_lens: Vec::new() }
    }
}

impl HistoryCounts {
    /// Counts every item of `items`: the only pass over a history that counts it from scratch.
    pub fn new(items: &[ResponseItem], counter: &ItemCounter<'_>) -> Self {
        let mut counts = Self {
            cumulative: Vec::with_capacity(items.len() + 1),
            reasoning: Vec::with_capacity(items.len() + 1),
            json_lens: Vec::with_capacity(items.len()),
        };
        counts.cumulative.push(0);
        counts.reasoning.push(0);
        counts.extend(items, counter);
        counts
    }

    /// Counts `item` and appends its count.
    pub fn push(&mut self, item: &ResponseItem, counter: &ItemCounter<'_>) {
        let (tokens, json_len) = counter.measure(item);
        self.push_count(tokens, is_encrypted_reasoning(item), json_len);
    }

    /// Counts and appends every item of `items`.
    pub fn extend(&mut self, items: &[ResponseItem], counter: &ItemCounter<'_>) {
        self.cumulative.reserve(items.len());
        self.reasoning.reserve(items.len());
        self.json_lens.reserve(items.len());
        for item in items {
            self.push(item, counter);
        }
    }

    /// Appends the counts of items counted elsewhere (say, off the async threads), in order.
    pub fn extend_counted(&mut self, counted: &HistoryCounts) {
        self.cumulative.reserve(counted.len());
        self.reasoning.reserve(counted.len());
        self.json_lens.reserve(counted.len());
        let each = counted.iter().zip(counted.reasoning.windows(2)).zip(&counted.json_lens);
        for ((tokens, reasoning), &json_len) in each {
            let reasoning_tokens = reasoning[1] - reasoning[0];
            self.push_count(tokens, reasoning_tokens > 0, json_len);
        }
    }

    fn push_count(&mut self, tokens: u64, encrypted_reasoning: bool, json_len: u64) {
        self.json_lens.push(json_len);
        let total = self.total();
        let reasoning = self.reasoning.last().copied().unwrap_or(0);
        self.cumulative.push(total.saturating_add(tokens));
        self.reasoning.push(if encrypted_reasoning {
            reasoning.saturating_add(tokens)
        } else {
            reasoning
        });
    }

    /// The number of items counted.
    pub fn len(&self) -> usize {
        self.cumulative.len().saturating_sub(1)
    }

    /// Whether no item is counted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The count of item `index` (0 past the end).
    pub fn item(&self, index: usize) -> u64 {
        self.range(index..index.saturating_add(1))
    }

    /// The sum of every count.
    pub fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The sum of the counts of the items in `range`, clamped to the items counted.
    pub fn range(&self, range: Range<usize>) -> u64 {
        let end = range.end.min(self.len());
        let start = range.start.min(end);
        self.cumulative[end] - self.cumulative[start]
    }

    /// The sum of the counts of the encrypted reasoning items before `end`.
    pub fn encrypted_reasoning_before(&self, end: usize) -> u64 {
        self.reasoning[end.min(self.len())]
    }

    /// Every item's count, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.cumulative.windows(2).map(|pair| pair[1] - pair[0])
    }

    /// These counts when they are `items`' (the same length), else `items` counted now. The
    /// owner of a history keeps its counts in step, so the second case is a fallback for a
    /// caller that passes another history, never a normal path.
    pub fn for_items(&self, items: &[ResponseItem], counter: &ItemCounter<'_>) -> Cow<'_, Self> {
        if self.len() == items.len() {
            Cow::Borrowed(self)
        } else {
            Cow::Owned(Self::new(items, counter))
        }
    }

    /// Keeps the counts of the first `len` items.
    pub fn truncate(&mut self, len: usize) {
        self.cumulative.truncate(len.saturating_add(1));
        self.reasoning.truncate(len.saturating_add(1));
        self.json_lens.truncate(len);
    }

    /// The length of item `index`'s compact JSON (`None` past the end).
    pub fn json_len(&self, index: usize) -> Option<u64> {
        self.json_lens.get(index).copied()
    }

    /// The compact JSON length of each entry of `input`, a request's input drawn from `history`,
    /// the items these counts are of (D169): an entry that is one of `history`'s items (the very
    /// item, not an equal copy) takes its length from here, and any other entry (an item made
    /// for the request, or a copy) is counted now. Counts of another length than `history` are
    /// not `history`'s, so every entry is then counted.
    pub fn input_json_lens(
        &self,
        history: &[ResponseItem],
        input: &[Cow<'_, ResponseItem>],
    ) -> Vec<u64> {
        let known = (self.json_lens.len() == history.len()).then_some(&self.json_lens[..]);
        let size = size_of::<ResponseItem>().max(1);
        let start = history.as_ptr() as usize;
        input
            .iter()
            .map(|entry| {
                let item: &ResponseItem = entry;
                // Where `item` lies in `history`, if it is one of its items: the address says
                // which, and `ptr::eq` confirms it.
                let index = (item as *const ResponseItem as usize).wrapping_sub(start) / size;
                match (entry, known, history.get(index)) {
                    (Cow::Borrowed(item), Some(lens), Some(at)) if std::ptr::eq(*item, at) => {
                        lens[index]
                    }
                    _ => json_len(item),
                }
            })
            .collect()
    }
}

/// Reasoning whose content is encrypted: what the usage gate estimates apart (D36).
pub(crate) fn is_encrypted_reasoning(item: &ResponseItem) -> bool {
    matches!(item, ResponseItem::Reasoning { encrypted_content: Some(_), .. })
}

#[cfg(test)]
mod tests;
