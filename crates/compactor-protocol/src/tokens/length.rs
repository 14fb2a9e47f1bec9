//! The exact length of a value's compact JSON, as `serde_json::to_vec` would write it, counted
//! without writing it.
//!
//! Estimating a history (D35) measures every item's JSON, so this runs over every byte of a
//! history each time it is estimated. A `serde::Serializer` that only adds up lengths avoids the
//! writer calls of `serde_json`, and counts the characters JSON escapes in blocks the compiler
//! vectorizes, which makes it several times faster than serializing into a byte counter.
//!
//! Values `serde_json` would refuse (a map key that is not a string or a number) and shapes this
//! counter does not model are counted by serializing them with `serde_json` instead, so the
//! result is exact for every value.

use std::fmt;
use std::io;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `serde_json`'s marker struct names for values written raw.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

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
    let mut counter = Counter { len: 0, text: None };
    match value.serialize(&mut counter) {
        Ok(()) => counter.len,
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
    let mut counter = Counter { len: 0, text: Some(TextTokens { count: count_text, tokens: 0 }) };
    match value.serialize(&mut counter) {
        Ok(()) => StructureAndText {
            structure_bytes: counter.len,
            text_tokens: counter.text.map_or(0, |text| text.tokens),
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

/// A float as `serde_json` writes it (`null` when not finite).
fn float_len<T: Serialize>(value: T) -> u64 {
    serde_json_len(&value)
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

/// The counter met something it leaves to `serde_json`.
#[derive(Debug)]
struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

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

/// A sequence, map or struct being counted: commas go before every element but the first.
struct Compound<'a> {
    counter: &'a mut Counter,
    first: bool,
    /// Bytes written after the last element: `]`, `}` or `}}`.
    close: u64,
}

impl Compound<'_> {
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.counter.len += 1;
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(&mut *self.counter)
    }

    /// `"key":value`.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Unsupported> {
        self.comma();
        self.counter.len += escaped_str_len(key) + 1;
        value.serialize(&mut *self.counter)
    }

    fn finish(self) -> Result<(), Unsupported> {
        self.counter.len += self.close;
        Ok(())
    }
}

impl<'a> Counter {
    /// Opens an array (`[`, `]`) or an object (`{`, `}`) of `len` elements; `outer` closing bytes
    /// follow (a variant's `}`). Like `serde_json`, a declared length of 0 writes both brackets
    /// at once, and elements that still come follow them after a comma.
    fn compound(&'a mut self, len: Option<usize>, outer: u64) -> Compound<'a> {
        let empty = len == Some(0);
        self.len += if empty { 2 } else { 1 };
        Compound { counter: self, first: !empty, close: if empty { outer } else { 1 + outer } }
    }

    /// `{"variant":` before a variant's content.
    fn variant_prefix(&mut self, variant: &str) {
        self.len += 1 + escaped_str_len(variant) + 1;
    }
}

impl<'a> ser::Serializer for &'a mut Counter {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = StructCounter<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.len += if value { 4 } else { 5 };
        Ok(())
    }

    fn serialize_i8(self, value: i8) -> Result<(), Unsupported> {
        self.serialize_i128(i128::from(value))
    }

    fn serialize_i16(self, value: i16) -> Result<(), Unsupported> {
        self.serialize_i128(i128::from(value))
    }

    fn serialize_i32(self, value: i32) -> Result<(), Unsupported> {
        self.serialize_i128(i128::from(value))
    }

    fn serialize_i64(self, value: i64) -> Result<(), Unsupported> {
        self.serialize_i128(i128::from(value))
    }

    fn serialize_i128(self, value: i128) -> Result<(), Unsupported> {
        self.len += signed_len(value);
        Ok(())
    }

    fn serialize_u8(self, value: u8) -> Result<(), Unsupported> {
        self.serialize_u128(u128::from(value))
    }

    fn serialize_u16(self, value: u16) -> Result<(), Unsupported> {
        self.serialize_u128(u128::from(value))
    }

    fn serialize_u32(self, value: u32) -> Result<(), Unsupported> {
        self.serialize_u128(u128::from(value))
    }

    fn serialize_u64(self, value: u64) -> Result<(), Unsupported> {
        self.serialize_u128(u128::from(value))
    }

    fn serialize_u128(self, value: u128) -> Result<(), Unsupported> {
        self.len += digits(value);
        Ok(())
    }

    fn serialize_f32(self, value: f32) -> Result<(), Unsupported> {
        self.len += float_len(value);
        Ok(())
    }

    fn serialize_f64(self, value: f64) -> Result<(), Unsupported> {
        self.len += float_len(value);
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), Unsupported> {
        self.serialize_str(value.encode_utf8(&mut [0u8; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        match &mut self.text {
            Some(text) if !value.starts_with("data:image/") => {
                self.len += 2;
                text.tokens = text.tokens.saturating_add((text.count)(value));
            }
            _ => self.len += escaped_str_len(value),
        }
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Unsupported> {
        // An array of numbers.
        let numbers: u64 = value.iter().map(|byte| digits(u128::from(*byte))).sum();
        self.len += 2 + numbers + (value.len() as u64).saturating_sub(1);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.len += 4;
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.variant_prefix(variant);
        value.serialize(&mut *self)?;
        self.len += 1;
        Ok(())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        Ok(self.compound(len, 0))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.variant_prefix(variant);
        Ok(self.compound(Some(len), 1))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a>, Unsupported> {
        Ok(self.compound(len, 0))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<StructCounter<'a>, Unsupported> {
        if name == RAW_VALUE_TOKEN || name == NUMBER_TOKEN {
            return Ok(StructCounter::Raw(self));
        }
        Ok(StructCounter::Object(self.compound(Some(len), 0)))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a>, Unsupported> {
        self.variant_prefix(variant);
        Ok(self.compound(Some(len), 1))
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.element(value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.comma();
        key.serialize(KeyCounter(&mut *self.counter))?;
        self.counter.len += 1;
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.counter)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

/// A struct: an object, or one of `serde_json`'s raw-text markers.
enum StructCounter<'a> {
    Object(Compound<'a>),
    Raw(&'a mut Counter),
}

impl ser::SerializeStruct for StructCounter<'_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        match self {
            StructCounter::Object(compound) => compound.field(key, value),
            StructCounter::Raw(counter) => value.serialize(RawCounter(counter)),
        }
    }

    fn end(self) -> Result<(), Unsupported> {
        match self {
            StructCounter::Object(compound) => compound.finish(),
            StructCounter::Raw(_) => Ok(()),
        }
    }
}

/// Counts a map key as `serde_json` writes it: strings as strings; numbers and booleans quoted.
struct KeyCounter<'a>(&'a mut Counter);

impl KeyCounter<'_> {
    fn quoted(self, len: u64) -> Result<(), Unsupported> {
        self.0.len += 2 + len;
        Ok(())
    }
}

impl ser::Serializer for KeyCounter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.quoted(if value { 4 } else { 5 })
    }

    fn serialize_i8(self, value: i8) -> Result<(), Unsupported> {
        self.quoted(signed_len(i128::from(value)))
    }

    fn serialize_i16(self, value: i16) -> Result<(), Unsupported> {
        self.quoted(signed_len(i128::from(value)))
    }

    fn serialize_i32(self, value: i32) -> Result<(), Unsupported> {
        self.quoted(signed_len(i128::from(value)))
    }

    fn serialize_i64(self, value: i64) -> Result<(), Unsupported> {
        self.quoted(signed_len(i128::from(value)))
    }

    fn serialize_i128(self, value: i128) -> Result<(), Unsupported> {
        self.quoted(signed_len(value))
    }

    fn serialize_u8(self, value: u8) -> Result<(), Unsupported> {
        self.quoted(digits(u128::from(value)))
    }

    fn serialize_u16(self, value: u16) -> Result<(), Unsupported> {
        self.quoted(digits(u128::from(value)))
    }

    fn serialize_u32(self, value: u32) -> Result<(), Unsupported> {
        self.quoted(digits(u128::from(value)))
    }

    fn serialize_u64(self, value: u64) -> Result<(), Unsupported> {
        self.quoted(digits(u128::from(value)))
    }

    fn serialize_u128(self, value: u128) -> Result<(), Unsupported> {
        self.quoted(digits(value))
    }

    fn serialize_f32(self, _value: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_f64(self, _value: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_char(self, value: char) -> Result<(), Unsupported> {
        self.serialize_str(value.encode_utf8(&mut [0u8; 4]))
    }

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        self.0.len += escaped_str_len(value);
        Ok(())
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

/// Counts the text `serde_json` writes as it is (a raw value or an arbitrary-precision number).
struct RawCounter<'a>(&'a mut Counter);

impl ser::Serializer for RawCounter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        self.0.len += value.len() as u64;
        Ok(())
    }

    fn serialize_bool(self, _value: bool) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_i8(self, _value: i8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_i16(self, _value: i16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_i32(self, _value: i32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_i64(self, _value: i64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_u8(self, _value: u8) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_u16(self, _value: u16) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_u32(self, _value: u32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_u64(self, _value: u64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_f32(self, _value: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_f64(self, _value: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_char(self, _value: char) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests;
