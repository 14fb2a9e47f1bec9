//! A request read with its `input` list apart (D170): the list's items by the direct item reader,
//! in two halves at once on two threads when the request is large (D168), and the rest of the
//! request (its *envelope*) by itself.
//!
//! The second half starts at an item boundary guessed from the text: the first `},{"type":"`
//! after the middle of the list that names an item type. The first half is read up to that
//! point; it proves the guess right when it reaches it exactly between two items. The envelope
//! is the body with `[]` in place of the list. Whenever anything does not fit (no `input` list,
//! no guess, a wrong guess, an error anywhere), the whole body is read again the usual way, so
//! the result and the error are always that reading's.

use std::borrow::Cow;

use compactor_protocol::items::direct::read_items;
use compactor_protocol::{CompactRequest, ResponseItem, ResponsesApiRequest};
use serde::de::DeserializeOwned;

/// The arrays and objects open where a request's items are: the body and its `input` list.
const INPUT_DEPTH: usize = 2;

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

pub(crate) fn read_with<T: SplitInput>(text: &str, split_from: usize) -> serde_json::Result<T> {
    match read_split(text, split_from) {
        Some(request) => Ok(request),
        None => serde_json::from_str(text),
    }
}

/// The request with its `input` list read apart from the rest: by the direct reader (D170), on
/// two threads when the list and what follows it hold at least `split_from` bytes; `None` when
/// the body cannot be read that way.
fn read_split<T: SplitInput>(text: &str, split_from: usize) -> Option<T> {
    let open = input_list_at(text)?;
    let rest = text.get(open..)?;
    let (items, close) = if rest.len() < split_from {
        read_items(text, open + 1, None, INPUT_DEPTH)?
    } else {
        // Both halves are read the same way, so they are cut at the middle.
        let guess = open + boundary_after(rest, rest.len() / 2)?;
        std::thread::scope(|scope| {
            let second = scope.spawn(|| read_items(text, guess, None, INPUT_DEPTH));
            let (mut items, _) = read_items(text, open + 1, Some(guess), INPUT_DEPTH)?;
            let (second, close) = second.join().ok()??;
            items.extend(second);
            Some((items, close))
        })?
    };
    let envelope = [text.get(..open)?, "[]", text.get(close + 1..)?].concat();
    let mut request: T = serde_json::from_str(&envelope).ok()?;
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
    // `from` may fall inside a character of a string's text: the search starts at the next
    // character, or the list would never be split.
    let mut at = (from..=list.len()).find(|&at| list.is_char_boundary(at))?;
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

#[cfg(test)]
mod tests;
