//! A value's compact JSON written as `serde_json::to_writer` writes it, byte for byte, only
//! faster where requests spend their time: in strings (see D167 in docs/decisions.md).
//!
//! `serde_json` looks up every byte of a string in a table to find what to escape. A request's
//! text is mostly long strings of bytes that need nothing, so [`write_json`] checks eight bytes
//! at once and copies each clean word whole; it gains nothing on values made of short strings.
//! Everything else (numbers, brackets, commas) is written as `serde_json` writes it; a shape
//! this writer does not model (a map key that is not a string, an integer or a boolean; bytes)
//! and any error are left to `serde_json`, which writes the value again from the start, so the
//! result is always what `serde_json` gives.
//!
//! The serializer writes into a sink: a buffer here, and a count of bytes for
//! `tokens::json_len`, so both follow `serde_json`'s grammar from one place.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `serde_json`'s marker struct names for values written raw.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// What `serde_json` writes for each byte that a string must escape (0 for the bytes written as
/// they are): the character after the backslash, or `u` for `\u00XX`.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = match byte {
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            _ => b'u',
        };
        byte += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `value`'s compact JSON to `out`: the bytes `serde_json::to_writer(out, value)` writes.
///
/// # Errors
///
/// The error `serde_json` gives for `value`; `out` then holds what `serde_json` wrote before it.
///
/// # Examples
///
/// ```
/// use compactor_protocol::json::write_json;
///
/// let value = serde_json::json!({ "text": "a \"quoted\"\nline\u{1}", "n": [1, -20, 3.5] });
/// let mut out = Vec::new();
/// write_json(&mut out, &value).unwrap();
/// assert_eq!(out, serde_json::to_vec(&value).unwrap());
/// ```
pub fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> serde_json::Result<()> {
    let start = out.len();
    match value.serialize(&mut Json(Buffer(&mut *out))) {
        Ok(()) => Ok(()),
        Err(Unsupported) => {
            out.truncate(start);
            serde_json::to_writer(out, value)
        }
    }
}

/// Appends `text` as a JSON string, quotes included.
///
/// Eight bytes at a time: a word with nothing to escape is copied whole, and one with something
/// is copied up to it, then the escape is written. Copying words of a known size compiles to
/// single stores, where copying each run between escapes called `memcpy` for a few bytes; the
/// same holds for the last bytes, which most strings of a receipt or a key consist of.
fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 10);
    out.push(b'"');
    let mut at = 0;
    while let Some(block) = bytes.get(at..at + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        out.extend_from_slice(&word);
        let flags = escape_flags(u64::from_le_bytes(word));
        if flags == 0 {
            at += 8;
            continue;
        }
        // The lowest flag is exact (only flags above a flagged byte can be false).
        let clean = (flags.trailing_zeros() / 8) as usize;
        out.truncate(out.len() - (8 - clean));
        let byte = word[clean];
        write_escape(out, byte, ESCAPE[usize::from(byte)]);
        at += clean + 1;
    }
    // The last few bytes (all of a short string, such as a key) are put together as one word:
    // when none needs an escape, they are written as one word cut to size.
    let rest = bytes.len() - at;
    if rest > 0 {
        let word = last_bytes(bytes, rest);
        // The zeros above the string's last byte are flagged, and a false flag is only ever
        // above a true one: the bytes below the mask are told exactly.
        let mask = (1u64 << (8 * rest)) - 1;
        if escape_flags(word) & mask == 0 {
            out.extend_from_slice(&word.to_le_bytes());
            out.truncate(out.len() - (8 - rest));
            out.push(b'"');
            return;
        }
    }
    // Last bytes with something to escape: looked up one by one, copied in runs.
    let mut run = at;
    for (index, &byte) in bytes.iter().enumerate().skip(at) {
        let escape = ESCAPE[usize::from(byte)];
        if escape != 0 {
            out.extend_from_slice(&bytes[run..index]);
            write_escape(out, byte, escape);
            run = index + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

/// The last `rest` bytes of `bytes` (1 to 7 of them) as the low bytes of a word, zero above.
///
/// No copy of a variable length: a longer string's last eight bytes are read as a word and
/// shifted; a shorter one is put together from two reads that may overlap, which `memcpy` would
/// otherwise be called for.
fn last_bytes(bytes: &[u8], rest: usize) -> u64 {
    let len = bytes.len();
    if let Some(block) = bytes.get(len.wrapping_sub(8)..) {
        let mut word = [0u8; 8];
        word.copy_from_slice(block);
        return u64::from_le_bytes(word) >> (8 * (8 - rest));
    }
    let byte = |at: usize| u64::from(bytes.get(at).copied().unwrap_or(0));
    if let (Some(low), Some(high)) = (bytes.get(..4), bytes.get(len.wrapping_sub(4)..)) {
        let (mut first, mut last) = ([0u8; 4], [0u8; 4]);
        first.copy_from_slice(low);
        last.copy_from_slice(high);
        // The reads overlap when there are fewer than eight bytes: the bytes they share are
        // the same in both, so or-ing them changes nothing.
        return u64::from(u32::from_le_bytes(first))
            | u64::from(u32::from_le_bytes(last)) << (8 * (len - 4));
    }
    byte(0) | byte(len / 2) << (8 * (len / 2)) | byte(len - 1) << (8 * (len - 1))
}

/// The high bit of each byte of `word` that may be a control character, `"` or `\`: zero when
/// none is, and the lowest set bit is always one that is.
fn escape_flags(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte below `n` (n <= 0x80) sets its high bit in `(x - n) & !x`; a byte equal to `c` is
    // a zero byte of `x ^ c`.
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = zero_in(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(word ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash) & HIGHS
}

fn write_escape(out: &mut Vec<u8>, byte: u8, escape: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if escape == b'u' {
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]);
    } else {
        out.extend_from_slice(&[b'\\', escape]);
    }
}

/// Appends the decimal digits of `value`, with its sign.
fn write_int(out: &mut Vec<u8>, value: i128) {
    if value < 0 {
        out.push(b'-');
    }
    write_uint(out, value.unsigned_abs());
}

/// Appends the decimal digits of `value`; in 64-bit arithmetic when it fits, which is far
/// cheaper than 128-bit division.
fn write_uint(out: &mut Vec<u8>, value: u128) {
    let mut digits = [0u8; 40];
    let mut start = digits.len();
    let mut push = |digit: u8| {
        start -= 1;
        digits[start] = b'0' + digit;
    };
    match u64::try_from(value) {
        Ok(mut value) => loop {
            // A remainder below ten always fits a byte.
            push(u8::try_from(value % 10).unwrap_or(0));
            value /= 10;
            if value == 0 {
                break;
            }
        },
        Err(_) => {
            let mut value = value;
            loop {
                push(u8::try_from(value % 10).unwrap_or(0));
                value /= 10;
                if value == 0 {
                    break;
                }
            }
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// The serializer met something it leaves to `serde_json`.
#[derive(Debug)]
pub(crate) struct Unsupported;

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

/// Where a [`Json`] serializer's compact JSON goes: a buffer ([`write_json`]), or a count of its
/// bytes (`tokens::json_len`). The serializer decides the grammar as `serde_json` does; a sink
/// only says what each piece costs.
pub(crate) trait Sink {
    /// One byte of structure: a bracket, a comma, a colon, a key's quote.
    fn push(&mut self, byte: u8);
    /// Bytes written as they are: literals, raw values.
    fn bytes(&mut self, bytes: &[u8]);
    /// A string value, quoted and escaped.
    fn value_str(&mut self, text: &str);
    /// A key or a variant name, quoted and escaped.
    fn key_str(&mut self, text: &str);
    fn int(&mut self, value: i128);
    fn uint(&mut self, value: u128);
    /// A float, as `serde_json` writes it (`null` when it is not finite).
    fn float<T: Serialize>(&mut self, value: T) -> Result<(), Unsupported>;
}

/// The buffer [`write_json`] appends to.
struct Buffer<'o>(&'o mut Vec<u8>);

impl Sink for Buffer<'_> {
    #[inline]
    fn push(&mut self, byte: u8) {
        self.0.push(byte);
    }

    #[inline]
    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    #[inline]
    fn value_str(&mut self, text: &str) {
        write_str(self.0, text);
    }

    #[inline]
    fn key_str(&mut self, text: &str) {
        write_str(self.0, text);
    }

    #[inline]
    fn int(&mut self, value: i128) {
        write_int(self.0, value);
    }

    #[inline]
    fn uint(&mut self, value: u128) {
        write_uint(self.0, value);
    }

    fn float<T: Serialize>(&mut self, value: T) -> Result<(), Unsupported> {
        // A number alone is written as it is written anywhere.
        serde_json::to_writer(&mut *self.0, &value).map_err(|_| Unsupported)
    }
}

/// A `serde::Serializer` of compact JSON into a [`Sink`].
pub(crate) struct Json<S>(pub(crate) S);

/// A sequence, map or struct being serialized: commas go before every element but the first.
pub(crate) struct Compound<'a, S> {
    json: &'a mut Json<S>,
    first: bool,
    /// Declared empty, its brackets written, and no element has come since.
    empty: bool,
    /// `]` or `}`.
    bracket: u8,
    /// Whether a variant's `}` follows.
    outer: bool,
}

impl<S: Sink> Compound<'_, S> {
    fn comma(&mut self) {
        self.empty = false;
        if self.first {
            self.first = false;
        } else {
            self.json.0.push(b',');
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(&mut *self.json)
    }

    /// `"key":value`.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Unsupported> {
        self.comma();
        self.json.0.key_str(key);
        self.json.0.push(b':');
        value.serialize(&mut *self.json)
    }

    fn finish(self) -> Result<(), Unsupported> {
        if !self.empty {
            self.json.0.push(self.bracket);
        }
        if self.outer {
            self.json.0.push(b'}');
        }
        Ok(())
    }
}

impl<S: Sink> Json<S> {
    /// Opens an array or an object of `len` elements; `outer` closes a variant around it. Like
    /// `serde_json`, a declared length of 0 writes both brackets at once, and elements that
    /// still come follow them after a comma, closed by one more bracket.
    fn compound(&mut self, len: Option<usize>, brackets: [u8; 2], outer: bool) -> Compound<'_, S> {
        let empty = len == Some(0);
        if empty {
            self.0.bytes(&brackets);
        } else {
            self.0.push(brackets[0]);
        }
        Compound { json: self, first: !empty, empty, bracket: brackets[1], outer }
    }

    /// `{"variant":` before a variant's content.
    fn variant_prefix(&mut self, variant: &str) {
        self.0.push(b'{');
        self.0.key_str(variant);
        self.0.push(b':');
    }
}

/// The methods that hand their value on: integers to the 128-bit ones, a `char` and a unit
/// variant's name to `serialize_str`, a newtype struct's content to the same serializer.
macro_rules! widened {
    () => {
        widened! {
            serialize_i8(i8) => serialize_i128(i128),
            serialize_i16(i16) => serialize_i128(i128),
            serialize_i32(i32) => serialize_i128(i128),
            serialize_i64(i64) => serialize_i128(i128),
            serialize_u8(u8) => serialize_u128(u128),
            serialize_u16(u16) => serialize_u128(u128),
            serialize_u32(u32) => serialize_u128(u128),
            serialize_u64(u64) => serialize_u128(u128)
        }

        fn serialize_char(self, value: char) -> Result<(), Unsupported> {
            self.serialize_str(value.encode_utf8(&mut [0u8; 4]))
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
    };
    ($($method:ident($ty:ty) => $wide:ident($wide_ty:ty)),*) => {
        $(fn $method(self, value: $ty) -> Result<(), Unsupported> {
            self.$wide(<$wide_ty>::from(value))
        })*
    };
}

impl<'a, S: Sink> ser::Serializer for &'a mut Json<S> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = Compound<'a, S>;
    type SerializeStruct = StructJson<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.0.bytes(if value { b"true" } else { b"false" });
        Ok(())
    }

    widened!();

    fn serialize_i128(self, value: i128) -> Result<(), Unsupported> {
        self.0.int(value);
        Ok(())
    }

    fn serialize_u128(self, value: u128) -> Result<(), Unsupported> {
        self.0.uint(value);
        Ok(())
    }

    fn serialize_f32(self, value: f32) -> Result<(), Unsupported> {
        self.0.float(value)
    }

    fn serialize_f64(self, value: f64) -> Result<(), Unsupported> {
        self.0.float(value)
    }

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        self.0.value_str(value);
        Ok(())
    }

    fn serialize_bytes(self, _value: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.0.bytes(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
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
        self.0.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, S>, Unsupported> {
        Ok(self.compound(len, *b"[]", false))
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, S>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, Unsupported> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, Unsupported> {
        self.variant_prefix(variant);
        Ok(self.compound(Some(len), *b"[]", true))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, S>, Unsupported> {
        Ok(self.compound(len, *b"{}", false))
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<StructJson<'a, S>, Unsupported> {
        if name == RAW_VALUE_TOKEN || name == NUMBER_TOKEN {
            return Ok(StructJson::Raw(self));
        }
        Ok(StructJson::Object(self.compound(Some(len), *b"{}", false)))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, Unsupported> {
        self.variant_prefix(variant);
        Ok(self.compound(Some(len), *b"{}", true))
    }
}

/// The element methods of the compound serializers: each writes its value after a comma.
macro_rules! elements {
    ($($trait:ident :: $method:ident),*) => {
        $(impl<S: Sink> ser::$trait for Compound<'_, S> {
            type Ok = ();
            type Error = Unsupported;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.element(value)
            }

            fn end(self) -> Result<(), Unsupported> {
                self.finish()
            }
        })*
    };
}

elements!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl<S: Sink> ser::SerializeMap for Compound<'_, S> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.comma();
        key.serialize(KeyJson(&mut self.json.0))?;
        self.json.0.push(b':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(&mut *self.json)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeStructVariant for Compound<'_, S> {
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
pub(crate) enum StructJson<'a, S> {
    Object(Compound<'a, S>),
    Raw(&'a mut Json<S>),
}

impl<S: Sink> ser::SerializeStruct for StructJson<'_, S> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        match self {
            StructJson::Object(compound) => compound.field(key, value),
            StructJson::Raw(json) => value.serialize(RawJson(&mut json.0)),
        }
    }

    fn end(self) -> Result<(), Unsupported> {
        match self {
            StructJson::Object(compound) => compound.finish(),
            StructJson::Raw(_) => Ok(()),
        }
    }
}

/// The serializer methods that leave their shape to `serde_json`.
macro_rules! unsupported {
    ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result<$ret, Unsupported> {
            Err(Unsupported)
        })*
    };
}

/// The serializer methods that take a value and leave it to `serde_json`.
macro_rules! unsupported_values {
    () => {
        fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Unsupported> {
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
    };
}

/// The compound types and methods of a serializer that takes no compound value.
macro_rules! no_compounds {
    () => {
        type SerializeSeq = Impossible<(), Unsupported>;
        type SerializeTuple = Impossible<(), Unsupported>;
        type SerializeTupleStruct = Impossible<(), Unsupported>;
        type SerializeTupleVariant = Impossible<(), Unsupported>;
        type SerializeMap = Impossible<(), Unsupported>;
        type SerializeStruct = Impossible<(), Unsupported>;
        type SerializeStructVariant = Impossible<(), Unsupported>;

        unsupported! {
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize)
                -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct(&'static str, usize) -> Self::SerializeStruct;
            serialize_struct_variant(&'static str, u32, &'static str, usize)
                -> Self::SerializeStructVariant;
        }
    };
}

/// A map key, as `serde_json` writes it: strings as strings; integers and booleans quoted; any
/// other key is left to `serde_json`.
struct KeyJson<'s, S>(&'s mut S);

impl<S: Sink> KeyJson<'_, S> {
    fn quoted(self, write: impl FnOnce(&mut S)) -> Result<(), Unsupported> {
        self.0.push(b'"');
        write(self.0);
        self.0.push(b'"');
        Ok(())
    }
}

impl<S: Sink> ser::Serializer for KeyJson<'_, S> {
    type Ok = ();
    type Error = Unsupported;
    no_compounds!();

    fn serialize_bool(self, value: bool) -> Result<(), Unsupported> {
        self.quoted(|sink| sink.bytes(if value { b"true" } else { b"false" }))
    }

    widened!();

    fn serialize_i128(self, value: i128) -> Result<(), Unsupported> {
        self.quoted(|sink| sink.int(value))
    }

    fn serialize_u128(self, value: u128) -> Result<(), Unsupported> {
        self.quoted(|sink| sink.uint(value))
    }

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        self.0.key_str(value);
        Ok(())
    }

    unsupported_values!();

    unsupported! {
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
    }
}

/// The text of one of `serde_json`'s raw markers (a raw value, an arbitrary-precision number),
/// written as it is.
struct RawJson<'s, S>(&'s mut S);

impl<S: Sink> ser::Serializer for RawJson<'_, S> {
    type Ok = ();
    type Error = Unsupported;
    no_compounds!();

    fn serialize_str(self, value: &str) -> Result<(), Unsupported> {
        self.0.bytes(value.as_bytes());
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _value: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    unsupported_values!();

    unsupported! {
        serialize_bool(bool) -> ();
        serialize_i8(i8) -> ();
        serialize_i16(i16) -> ();
        serialize_i32(i32) -> ();
        serialize_i64(i64) -> ();
        serialize_i128(i128) -> ();
        serialize_u8(u8) -> ();
        serialize_u16(u16) -> ();
        serialize_u32(u32) -> ();
        serialize_u64(u64) -> ();
        serialize_u128(u128) -> ();
        serialize_f32(f32) -> ();
        serialize_f64(f64) -> ();
        serialize_char(char) -> ();
        serialize_bytes(&[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(&'static str) -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
    }
}

#[cfg(test)]
pub(crate) mod tests;
