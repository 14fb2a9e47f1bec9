//! Items read straight from their text (D170): a reader for the one form nearly every request
//! body holds, with no tokenizer in between.
//!
//! Compactor's writer (and the Responses API) write an item compactly: no whitespace, `type`
//! first, the fields in their declared order, content parts the same way. [`read_item`] reads
//! that form by matching the punctuation and keys it expects byte for byte, reading each string
//! into the `String` its item keeps. At the first byte that is not in that form it gives up and
//! says so; its caller reads the item with `serde_json` instead. It accepts only what the
//! hand-written serde reader (`read.rs`) reads on its fast path, and builds the item with the same
//! code, so whatever it reads is the item `serde_json` would read from the same text.

use std::borrow::Cow;

use super::read::{FieldKind, Slot, build, fast_kind, fields};
use super::{
    ContentItem, MessagePhase, ReasoningContent, ReasoningSummary, ResponseItem, ToolOutput,
};

/// Reads the item whose text starts at `text[at]` when it is in the compact form Compactor
/// writes; returns the item and where its text ends (just after its `}`).
///
/// `None` means the text there is in another form (whitespace, another key order, a field or
/// type this reader does not take, an escape that is not valid, ...) or not JSON at all; read it
/// with `serde_json`, which gives the same item whenever this reader gives one.
///
/// # Examples
///
/// ```
/// use compactor_protocol::ResponseItem;
/// use compactor_protocol::items::direct::read_item;
///
/// let text = r#"[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi\n"}]}]"#;
/// let (item, end) = read_item(text, 1).unwrap();
/// assert_eq!(item, serde_json::from_str::<ResponseItem>(&text[1..end]).unwrap());
/// assert_eq!(&text[end..], "]");
/// assert!(read_item(r#"{ "type": "message" }"#, 0).is_none());
/// ```
pub fn read_item(text: &str, at: usize) -> Option<(ResponseItem, usize)> {
    let mut cursor = Cursor::new(text, at);
    let item = cursor.item()?;
    Some((item, cursor.at))
}

/// Reads the items of a JSON list from `at`, which is just after the list's `[` or where one of
/// its items starts, up to the list's `]`, or up to `stop` when it is given: the start of an item
/// further on. `depth` is how many arrays and objects are open where the items are, the list
/// itself included (2 for a request's `input`). Returns the items, in the form a request holds
/// them, and where reading ended (the `]`, or `stop`).
///
/// Each item in the compact form is read by [`read_item`], any other by `serde_json` by itself;
/// such an item nested deeper than `serde_json`'s limit (127 levels open at once) allows at
/// `depth` is refused, as reading the whole text would refuse it. `None` when anything does not
/// read, or when `stop` is not where an item of this list starts; read the whole text with
/// `serde_json` to learn why.
pub fn read_items(
    text: &str,
    at: usize,
    stop: Option<usize>,
    depth: usize,
) -> Option<(Vec<Cow<'static, ResponseItem>>, usize)> {
    let bytes = text.as_bytes();
    let at = skip_space(bytes, at);
    let mut items = Vec::new();
    if stop.is_none() && bytes.get(at) == Some(&b']') {
        return Some((items, at));
    }
    let levels = NESTING_LIMIT.checked_sub(depth)?;
    let mut cursor = Cursor::new(text, at);
    loop {
        let start = cursor.at;
        match stop {
            Some(stop) if start == stop => return Some((items, stop)),
            Some(stop) if start > stop => return None,
            _ => {}
        }
        match cursor.item() {
            Some(item) => items.push(Cow::Owned(item)),
            None => {
                let mut stream = serde_json::Deserializer::from_str(text.get(start..)?)
                    .into_iter::<ResponseItem>();
                items.push(Cow::Owned(stream.next()?.ok()?));
                cursor.at = start + stream.byte_offset();
                if nesting(bytes.get(start..cursor.at)?) > levels {
                    return None;
                }
            }
        }
        cursor.at = skip_space(bytes, cursor.at);
        match bytes.get(cursor.at)? {
            b',' => cursor.at = skip_space(bytes, cursor.at + 1),
            b']' if stop.is_none() => return Some((items, cursor.at)),
            _ => return None,
        }
    }
}

/// The arrays and objects `serde_json` lets a text have open at once.
const NESTING_LIMIT: usize = 127;

/// How deeply the arrays and objects of the JSON value `text` nest (0 for a string or a number).
fn nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Where the first byte at or after `at` that is not JSON whitespace is.
fn skip_space(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(|byte| matches!(byte, b' ' | b'\n' | b'\t' | b'\r')) {
        at += 1;
    }
    at
}

/// Reads items one after another, with one unescaping buffer for all of them.
struct Cursor<'t> {
    text: &'t str,
    bytes: &'t [u8],
    /// Where reading is.
    at: usize,
    /// A string with escapes is unescaped here, then copied into a `String` of its exact size.
    scratch: String,
}

impl<'t> Cursor<'t> {
    fn new(text: &'t str, at: usize) -> Self {
        Cursor { text, bytes: text.as_bytes(), at, scratch: String::new() }
    }

    /// Moves past `literal` when the text goes on with it.
    fn eat(&mut self, literal: &[u8]) -> bool {
        let found = self.bytes.get(self.at..self.at + literal.len()) == Some(literal);
        if found {
            self.at += literal.len();
        }
        found
    }

    /// Whether the text goes on with `"key":`.
    fn key_is(&self, key: &str) -> bool {
        let at = self.at;
        self.bytes.get(at) == Some(&b'"')
            && self.bytes.get(at + 1..at + 1 + key.len()) == Some(key.as_bytes())
            && self.bytes.get(at + 1 + key.len()..at + 3 + key.len()) == Some(b"\":".as_slice())
    }

    /// Reads an item in the compact form, leaving the cursor after it.
    fn item(&mut self) -> Option<ResponseItem> {
        if !self.eat(b"{\"type\":\"") {
            return None;
        }
        let start = self.at;
        // The longest type the fast path takes is 23 bytes; a longer name is another type.
        let len = self.bytes.get(start..)?.iter().take(32).position(|&byte| byte == b'"')?;
        let (_, kind) = fast_kind(self.text.get(start..start + len)?)?;
        self.at = start + len + 1;
        let spec = fields(kind);
        let mut slots: [Option<Slot>; 5] = [None, None, None, None, None];
        let mut next = 0;
        while self.eat(b",") {
            let position = next + spec.get(next..)?.iter().position(|(key, _)| self.key_is(key))?;
            let (key, field) = spec.get(position)?;
            self.at += key.len() + 3;
            *slots.get_mut(position)? = Some(self.field(*field)?);
            next = position + 1;
        }
        if !self.eat(b"}") {
            return None;
        }
        build(kind, &mut slots)
    }

    fn field(&mut self, kind: FieldKind) -> Option<Slot> {
        Some(match kind {
            FieldKind::Str => Slot::Str(self.string()?),
            FieldKind::OptStr if self.eat(b"null") => Slot::OptStr(None),
            FieldKind::OptStr | FieldKind::SomeStr => Slot::OptStr(Some(self.string()?)),
            FieldKind::Phase if self.eat(b"\"commentary\"") => {
                Slot::Phase(Some(MessagePhase::Commentary))
            }
            FieldKind::Phase if self.eat(b"\"final_answer\"") => {
                Slot::Phase(Some(MessagePhase::FinalAnswer))
            }
            FieldKind::Phase => return None,
            FieldKind::Parts => Slot::Parts(self.list(Self::content_part)?),
            FieldKind::Summary => Slot::Summary(self.list(Self::summary_part)?),
            FieldKind::ReasoningParts if self.eat(b"null") => Slot::ReasoningParts(None),
            FieldKind::ReasoningParts => {
                Slot::ReasoningParts(Some(self.list(Self::reasoning_part)?))
            }
            FieldKind::Output if self.bytes.get(self.at) == Some(&b'[') => {
                Slot::Output(ToolOutput::Content(self.list(Self::content_part)?))
            }
            FieldKind::Output => Slot::Output(ToolOutput::Text(self.string()?)),
        })
    }

    /// A list of parts, each read by `part`.
    fn list<T>(&mut self, part: fn(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        if !self.eat(b"[") {
            return None;
        }
        let mut parts = Vec::new();
        if self.eat(b"]") {
            return Some(parts);
        }
        loop {
            parts.push(part(self)?);
            if self.eat(b"]") {
                return Some(parts);
            }
            if !self.eat(b",") {
                return None;
            }
        }
    }

    /// The text of a part whose `type` and `"text":` were just read, and the part's `}`.
    fn part_text(&mut self) -> Option<String> {
        let text = self.string()?;
        self.eat(b"}").then_some(text)
    }

    fn content_part(&mut self) -> Option<ContentItem> {
        if self.eat(b"{\"type\":\"input_text\",\"text\":") {
            return Some(ContentItem::InputText { text: self.part_text()? });
        }
        if self.eat(b"{\"type\":\"output_text\",\"text\":") {
            return Some(ContentItem::OutputText { text: self.part_text()? });
        }
        if self.eat(b"{\"type\":\"input_image\",\"image_url\":") {
            let image_url = self.string()?;
            let detail = if self.eat(b",\"detail\":") { Some(self.string()?) } else { None };
            return self.eat(b"}").then_some(ContentItem::InputImage { image_url, detail });
        }
        None
    }

    fn summary_part(&mut self) -> Option<ReasoningSummary> {
        if self.eat(b"{\"type\":\"summary_text\",\"text\":") {
            return Some(ReasoningSummary::SummaryText { text: self.part_text()? });
        }
        None
    }

    fn reasoning_part(&mut self) -> Option<ReasoningContent> {
        if self.eat(b"{\"type\":\"reasoning_text\",\"text\":") {
            return Some(ReasoningContent::ReasoningText { text: self.part_text()? });
        }
        if self.eat(b"{\"type\":\"text\",\"text\":") {
            return Some(ReasoningContent::Text { text: self.part_text()? });
        }
        None
    }

    /// A JSON string, unescaped, leaving the cursor after its closing quote; `None` for
    /// anything `serde_json` would refuse (a control character, an unknown escape, a surrogate
    /// without its pair) as well as for anything that is not a string.
    fn string(&mut self) -> Option<String> {
        if !self.eat(b"\"") {
            return None;
        }
        let start = self.at;
        let end = special(self.bytes, start)?;
        if self.bytes.get(end) == Some(&b'"') {
            self.at = end + 1;
            return Some(self.text.get(start..end)?.to_owned());
        }
        self.scratch.clear();
        self.scratch.push_str(self.text.get(start..end)?);
        let mut at = end;
        loop {
            // `at` is where a `\` or something refused is.
            at = unescape(self.bytes, at, &mut self.scratch)?;
            let end = special(self.bytes, at)?;
            self.scratch.push_str(self.text.get(at..end)?);
            if self.bytes.get(end) == Some(&b'"') {
                self.at = end + 1;
                return Some(self.scratch.as_str().to_owned());
            }
            at = end;
        }
    }
}

/// Where the first `"`, `\` or control character at or after `at` is, looking at eight bytes at
/// a time.
fn special(bytes: &[u8], mut at: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // A byte's high bit is set where it became zero (or is below 0x20); a borrow running
        // upwards may set it in bytes above the first such byte, never below it, so only the
        // lowest flag counts.
        let flags = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word);
        let flags = flags & (ONES << 7);
        if flags != 0 {
            return Some(at + flags.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes.get(at..)?;
    let found = rest.iter().position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
    Some(at + found)
}

/// Decodes the escape at `bytes[at]` (which must be a `\`) into `out`; returns where the text
/// goes on after it.
fn unescape(bytes: &[u8], at: usize, out: &mut String) -> Option<usize> {
    if bytes.get(at) != Some(&b'\\') {
        return None;
    }
    let escaped = *bytes.get(at + 1)?;
    // A table, not a match: which escape comes next is as good as random, and a jump through a
    // table of targets mispredicts where a load does not.
    let decoded = UNESCAPED[usize::from(escaped)];
    if decoded != 0 {
        out.push(char::from(decoded));
        return Some(at + 2);
    }
    match escaped {
        b'u' => {
            let first = hex4(bytes.get(at + 2..at + 6)?)?;
            let (code, next) = match first {
                0xD800..=0xDBFF => {
                    if bytes.get(at + 6..at + 8)? != b"\\u" {
                        return None;
                    }
                    let second = hex4(bytes.get(at + 8..at + 12)?)?;
                    if !(0xDC00..=0xDFFF).contains(&second) {
                        return None;
                    }
                    (0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00), at + 12)
                }
                0xDC00..=0xDFFF => return None,
                _ => (first, at + 6),
            };
            out.push(char::from_u32(code)?);
            Some(next)
        }
        _ => None,
    }
}

/// What each one-letter escape stands for, by the letter; 0 for the others.
const UNESCAPED: [u8; 256] = {
    let mut table = [0; 256];
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'/' as usize] = b'/';
    table[b'b' as usize] = 0x08;
    table[b'f' as usize] = 0x0c;
    table[b'n' as usize] = b'\n';
    table[b'r' as usize] = b'\r';
    table[b't' as usize] = b'\t';
    table
};

/// Four hex digits.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0, |code, &digit| Some(code * 16 + char::from(digit).to_digit(16)?))
}

#[cfg(test)]
mod tests;
