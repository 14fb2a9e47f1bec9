//! The exact length of a value's compact JSON, as `serde_json::to_vec` would write it, counted
//! without writing it.
//!
//! Estimating a history (D35) measures every item's JSON, so this runs over every byte of a
//! history each time it is estimated. The serializer of `crate::json`, over a sink that only adds
//! up lengths, avoids the writer calls of `serde_json`, and counts the characters JSON escapes in
//! blocks the compiler vectorizes, which makes it several times faster than serializing into a
//! byte counter.
//!
//! Values `serde_json` would refuse (a map key that is not a string or a number) and shapes this
//! counter does not model are counted by serializing them with `serde_json` instead, so the
//! result is exact for every value.

use std::io;

use serde::Serialize;

use crate::json::{Json, Sink, Unsupported};

/// Bytes an escaped byte adds to a JSON string: 1 for `\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`;
/// 5 for the other control characters (`\u00XX`); 0 otherwise.
const ESCAPE_EXTRA: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = match byte {
            0x08 | 0x09 | 0x0a | 0x0c | 0x0d => 1,
            _ => 5,
        };
        byte += 1;
    }
    table[b'"' as usize] = 1;
    table[b'\\' as usize] = 1;
    table
};

/// The length of `value`'s compact JSON (`serde_json::to_vec(value)?.len()`), or 0 when
/// `serde_json` cannot serialize it.
///
/// # Examples
///
/// ```
/// use compactor_protocol::tokens::json_len;
///
/// let value = serde_json::json!({ "text": "a \"quoted\"\nline", "n": [1, -20, 3.5] });
/// assert_eq!(json_len(&value), serde_json::to_vec(&value).unwrap().len() as u64);
/// ```
pub fn json_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut counter = Json(Counter { len: 0, text: None });
    match value.serialize(&mut counter) {
        Ok(()) => counter.0.len,
        Err(Unsupported) => serde_json_len(value),
    }
}

/// A value's JSON split in two: the bytes of its structure, and the tokens `count_text` gives
/// the contents of its string values.
///
/// Keys, punctuation, numbers, literals and the quotes around strings count as bytes. Each
/// string value's contents go to `count_text`, unescaped, except inline `data:image/` URLs,
/// which stay bytes so the image rule can replace them (D122). A value this counter does not
/// model is counted as bytes only.
pub(crate) fn json_structure_and_text<T: Serialize + ?Sized>(
    value: &T,
    count_text: fn(&str) -> u64,
) -> StructureAndText {
    let text = Some(TextTokens { count: count_text, tokens: 0 });
    let mut counter = Json(Counter { len: 0, text });
    match value.serialize(&mut counter) {
        Ok(()) => StructureAndText {
            structure_bytes: counter.0.len,
            text_tokens: counter.0.text.map_or(0, |text| text.tokens),
        },
        Err(Unsupported) => {
            StructureAndText { structure_bytes: serde_json_len(value), text_tokens: 0 }
        }
    }
}

/// What [`json_structure_and_text`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StructureAndText {
    /// JSON bytes that are not the contents of a string value.
    pub(crate) structure_bytes: u64,
    /// Tokens of the string values' contents.
    pub(crate) text_tokens: u64,
}

/// The length as `serde_json` writes it, into a writer that only counts.
fn serde_json_len<T: Serialize + ?Sized>(value: &T) -> u64 {
    let mut writer = CountingWriter(0);
    match serde_json::to_writer(&mut writer, value) {
        Ok(()) => writer.0,
        // Serializing an in-memory value rarely fails; count nothing rather than guess.
        Err(_) => 0,
    }
}

/// The JSON length of a string, quotes included.
pub(crate) fn escaped_str_len(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let mut extra = 0u64;
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        // Branch-free, so the compiler vectorizes it: every escaped byte adds 1, and a control
        // character without a short escape adds 4 more (`\u00XX`).
        let mut escaped = 0u8;
        let mut long = 0u8;
        for &byte in block {
            let control = byte < 0x20;
            escaped += u8::from(control | (byte == b'"') | (byte == b'\\'));
            let short = (byte == 0x08) | (byte == 0x09) | (byte == 0x0a) | (byte == 0x0c);
            long += u8::from(control & !(short | (byte == 0x0d)));
        }
        extra += u64::from(escaped) + 4 * u64::from(long);
    }
    for &byte in blocks.remainder() {
        extra += u64::from(ESCAPE_EXTRA[usize::from(byte)]);
    }
    bytes.len() as u64 + 2 + extra
}

/// Decimal digits of `value`.
fn digits(mut value: u128) -> u64 {
    let mut count = 1;
    while value >= 10 {
        value /= 10;
        count += 1;
    }
    count
}

fn signed_len(value: i128) -> u64 {
    u64::from(value < 0) + digits(value.unsigned_abs())
}

struct CountingWriter(u64);

impl io::Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Counts the bytes of the JSON a [`Json`] serializer writes, or, in text mode, the structure
/// as bytes and the string values as tokens.
struct Counter {
    len: u64,
    /// When set, string values are counted as tokens here instead of as bytes.
    text: Option<TextTokens>,
}

/// The tokens of the string values a [`Counter`] met.
struct TextTokens {
    count: fn(&str) -> u64,
    tokens: u64,
}

impl Sink for Counter {
    fn push(&mut self, _byte: u8) {
        self.len += 1;
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
    }

    fn value_str(&mut self, text: &str) {
        match &mut self.text {
            Some(tokens) if !text.starts_with("data:image/") => {
                self.len += 2;
                tokens.tokens = tokens.tokens.saturating_add((tokens.count)(text));
            }
            _ => self.len += escaped_str_len(text),
        }
    }

    fn key_str(&mut self, text: &str) {
        self.len += escaped_str_len(text);
    }

    fn int(&mut self, value: i128) {
        self.len += signed_len(value);
    }

    fn uint(&mut self, value: u128) {
        self.len += digits(value);
    }

    fn float<T: Serialize>(&mut self, value: T) -> Result<(), Unsupported> {
        self.len += serde_json_len(&value);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
