//! A large request read on two threads (D168): the items of its `input` list are read in two
//! halves at once, and the rest of the request (its *envelope*) by itself.
//!
//! The second half starts at an item boundary guessed from the text: the first `},{"type":"`
//! after three fifths of the list that names an item type. The first half is read up to that
//! point as a list cut short; it proves the guess right when it ends exactly between two items.
//! The second half is read item by item from the guess to the list's end. The envelope is the
//! body with `[]` in place of the list. Whenever anything does not fit (no guess, a wrong guess,
//! an error anywhere), the whole body is read again the usual way, so the result and the error
//! are always that reading's; the one difference is an item nested more than about 125 levels
//! deep, which reads here where the whole body would exceed `serde_json`'s nesting limit.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;

use compactor_protocol::{CompactRequest, ResponseItem, ResponsesApiRequest};
use serde::Deserialize;
use serde::de::{DeserializeOwned, DeserializeSeed, Deserializer, SeqAccess, Visitor};

/// Below this many bytes of items, a second thread costs more than it saves.
const SPLIT_FROM_BYTES: usize = 1 << 20;

/// The item types a boundary guess accepts: none is the type of a content part, so a guess
/// does not stop between two parts of one item.
const ITEM_TYPES: &[&str] = &[
    "message",
    "reasoning",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
    "local_shell_call",
    "web_search_call",
    "compaction",
    "context_compaction",
];

/// A request whose `input` items can be read apart from the rest.
pub(crate) trait SplitInput: DeserializeOwned {
    fn set_input(&mut self, items: Vec<Cow<'static, ResponseItem>>);
}

impl SplitInput for ResponsesApiRequest<'static> {
    fn set_input(&mut self, items: Vec<Cow<'static, ResponseItem>>) {
        self.input = Cow::Owned(items);
    }
}

impl SplitInput for CompactRequest<'static> {
    fn set_input(&mut self, items: Vec<Cow<'static, ResponseItem>>) {
        self.input = Cow::Owned(items);
    }
}

/// Reads `text` as a `T`: exactly as `serde_json::from_str` does, on two threads when its
/// `input` is large.
pub(crate) fn from_str<T: SplitInput>(text: &str) -> serde_json::Result<T> {
    read_with(text, SPLIT_FROM_BYTES)
}

fn read_with<T: SplitInput>(text: &str, split_from: usize) -> serde_json::Result<T> {
    match read_split(text, split_from) {
        Some(request) => Ok(request),
        None => serde_json::from_str(text),
    }
}

/// The request, read on two threads when its `input` list and what follows it hold at least
/// `split_from` bytes; `None` when it is not, or cannot be, read that way.
fn read_split<T: SplitInput>(text: &str, split_from: usize) -> Option<T> {
    let open = input_list_at(text)?;
    let rest = text.get(open..)?;
    if rest.len() < split_from {
        return None;
    }
    // The second half is read item by item, each by a reader of its own, which costs more per
    // item than the first half's one reader: it gets the smaller share.
    let guess = open + boundary_after(rest, rest.len() / 5 * 3)?;
    let (first, second) = std::thread::scope(|scope| {
        let second = scope.spawn(|| items_from(text, guess));
        let first = items_before(text.get(open..guess - 1)?);
        Some((first?, second.join().ok()??))
    })?;
    let (mut items, (second, close)) = (first, second);
    let envelope = [text.get(..open)?, "[]", text.get(close + 1..)?].concat();
    let mut request: T = serde_json::from_str(&envelope).ok()?;
    items.extend(second);
    request.set_input(items);
    Some(request)
}

/// Where the `[` of the top-level `input` list is, found by skipping the values of the keys
/// before it; `None` when the body does not start like an object whose plain `input` key holds
/// a list.
fn input_list_at(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = skip_space(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_space(bytes, at);
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = at + 1 + text.get(at + 1..)?.find('"')?;
        let key = text.get(at + 1..key_end)?;
        if key.contains('\\') {
            return None;
        }
        at = skip_space(bytes, key_end + 1);
        if bytes.get(at) != Some(&b':') {
            return None;
        }
        at = skip_space(bytes, at + 1);
        if key == "input" {
            return (bytes.get(at) == Some(&b'[')).then_some(at);
        }
        at = skip_space(bytes, skip_value(bytes, at)?);
        if bytes.get(at) != Some(&b',') {
            return None;
        }
        at += 1;
    }
}

fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|byte| matches!(byte, b' ' | b'\n' | b'\t' | b'\r')) {
        at += 1;
    }
    at
}

/// Where the value at `at` ends, found without reading it: a string's escapes are skipped
/// whole, brackets are counted outside strings, and anything else runs to the next delimiter.
fn skip_value(bytes: &[u8], start: usize) -> Option<usize> {
    match *bytes.get(start)? {
        b'"' => string_end(bytes, start + 1),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut at = start;
            loop {
                match *bytes.get(at)? {
                    b'"' => {
                        at = string_end(bytes, at + 1)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(at + 1);
                        }
                    }
                    _ => {}
                }
                at += 1;
            }
        }
        _ => {
            let mut at = start;
            while bytes.get(at).is_some_and(|byte| {
                !matches!(byte, b',' | b'}' | b']' | b' ' | b'\n' | b'\t' | b'\r')
            }) {
                at += 1;
            }
            Some(at)
        }
    }
}

/// Where a string whose text starts at `at` ends, after its closing quote.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += quote_or_backslash(bytes.get(at..)?)?;
        match bytes.get(at)? {
            b'\\' => at += 2,
            _ => return Some(at + 1),
        }
    }
}

/// Where the first `"` or `\` in `bytes` is.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&byte| byte == b'"' || byte == b'\\')
}

/// Where in `list` (the text from an `input` list's `[`) the first item after `from` bytes
/// starts whose text begins `{"type":"<an item type>"`, right after a `},`.
fn boundary_after(list: &str, from: usize) -> Option<usize> {
    const MARK: &str = "},{\"type\":\"";
    let mut at = from;
    loop {
        at += list.get(at..)?.find(MARK)?;
        let after = list.get(at + MARK.len()..)?;
        if ITEM_TYPES
            .iter()
            .any(|kind| after.strip_prefix(kind).is_some_and(|rest| rest.starts_with('"')))
        {
            return Some(at + 2);
        }
        at += MARK.len();
    }
}

/// The items of `cut`, an `input` list from its `[` up to just before the `,` of a boundary
/// guess; `None` unless the text ends right after a whole item of the list itself, which proves
/// the guess is where an item starts.
fn items_before(cut: &str) -> Option<Vec<Cow<'static, ResponseItem>>> {
    let inside = Cell::new(false);
    let mut items = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_str(cut);
    let ended = deserializer.deserialize_seq(Collect { items: &mut items, inside: &inside });
    match ended {
        Err(err) if err.is_eof() && !inside.get() && !items.is_empty() => Some(items),
        _ => None,
    }
}

/// The items from `start` (where an item starts) to the end of their list, each read by itself,
/// and where the list's `]` is.
fn items_from(text: &str, start: usize) -> Option<(Vec<Cow<'static, ResponseItem>>, usize)> {
    let bytes = text.as_bytes();
    let mut items = Vec::new();
    let mut at = start;
    loop {
        let mut stream =
            serde_json::Deserializer::from_str(text.get(at..)?).into_iter::<ResponseItem>();
        items.push(Cow::Owned(stream.next()?.ok()?));
        at = skip_space(bytes, at + stream.byte_offset());
        match bytes.get(at)? {
            b',' => at = skip_space(bytes, at + 1),
            b']' => return Some((items, at)),
            _ => return None,
        }
    }
}

/// A list's items collected as they are read; `inside` tells whether the reading stopped inside
/// an item.
struct Collect<'x> {
    items: &'x mut Vec<Cow<'static, ResponseItem>>,
    inside: &'x Cell<bool>,
}

impl<'de> Visitor<'de> for Collect<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of input items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element_seed(Tracked(self.inside))? {
            self.items.push(Cow::Owned(item));
        }
        Ok(())
    }
}

/// One item, noting while it is read.
struct Tracked<'x>(&'x Cell<bool>);

impl<'de> DeserializeSeed<'de> for Tracked<'_> {
    type Value = ResponseItem;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<ResponseItem, D::Error> {
        self.0.set(true);
        let item = ResponseItem::deserialize(deserializer)?;
        self.0.set(false);
        Ok(item)
    }
}

#[cfg(test)]
mod tests;
