//! Tests of the JSON writer: the bytes `serde_json` writes, for any value.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;
use serde::ser::SerializeSeq;
use serde_json::{Value, json};

use super::write_json;

fn written<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = b"prefix".to_vec();
    write_json(&mut out, value).unwrap();
    out.split_off(6)
}

#[test]
fn every_escape_is_the_one_serde_json_writes() {
    let every_byte: String = (0u8..=0x7f).map(char::from).collect();
    for text in [
        every_byte.as_str(),
        "",
        "plain",
        "exactly8",
        "\"\\\"\\",
        "a\u{1}b\u{1f}c\u{7f}d",
        "non-ASCII: é ü 日本 🦀 \u{2028}",
        "seven b\nseven b\tseven b\"",
    ] {
        assert_eq!(written(text), serde_json::to_vec(text).unwrap(), "{text:?}");
    }
}

/// Strings of every length up to three words with an escape (or a non-ASCII character) at every
/// position, alone and twice: the last bytes of a string are checked as one word put together
/// from overlapping reads, and each length and position takes a different path through it.
#[test]
fn an_escape_anywhere_in_a_string_of_any_short_length_is_written_as_serde_json_writes_it() {
    for len in 0..=24usize {
        for special in ["\"", "\\", "\n", "\u{0}", "\u{1f}", " ", "\u{7f}", "é", "🦀"] {
            for at in 0..=len {
                for second in [None, Some(len.saturating_sub(1)), Some(at + 3)] {
                    let mut text: Vec<String> = (0..len)
                        .map(|i| char::from(b'a' + u8::try_from(i).unwrap()).to_string())
                        .collect();
                    if at < len {
                        text[at] = special.to_owned();
                    }
                    if let Some(second) = second.filter(|&second| second < len) {
                        text[second] = special.to_owned();
                    }
                    let text = text.concat();
                    assert_eq!(written(&text), serde_json::to_vec(&text).unwrap(), "{text:?}");
                }
            }
        }
    }
}

#[derive(Serialize)]
enum Shapes {
    Unit,
    Newtype(u8),
    Tuple(i8, String),
    Struct { a: Option<u32>, b: Vec<()> },
    EmptyTuple(),
    EmptyStruct {},
}

/// A sequence that declares no elements and then has one, which `serde_json` writes anyway.
struct Lying;

impl Serialize for Lying {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(0))?;
        seq.serialize_element(&1)?;
        seq.end()
    }
}

/// Bytes, which this writer leaves to `serde_json`.
struct Bytes;

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&[1, 2, 255])
    }
}

#[test]
fn every_shape_is_written_as_serde_json_writes_it() {
    let raw = serde_json::value::RawValue::from_string("{ \"raw\" : [1, 2] }".to_owned()).unwrap();
    let shapes = (
        [Shapes::Unit, Shapes::Newtype(7), Shapes::Tuple(-3, "x".into())],
        Shapes::Struct { a: None, b: vec![(), ()] },
        (Shapes::EmptyTuple(), Shapes::EmptyStruct {}),
        (i128::MIN, u128::MAX, i64::MIN, 0u8, -0.0f64, 1.5e300f64, f64::NAN, 'c'),
        BTreeMap::from([(3u16, "three"), (10, "ten")]),
        BTreeMap::from([(true, 1)]),
        raw,
        json!({"number": 12_345_678_901_234_567_890u64, "neg": -1, "float": 0.1}),
        Lying,
        Bytes,
    );
    assert_eq!(written(&shapes), serde_json::to_vec(&shapes).unwrap());
    // A float key is written by `serde_json` its own way.
    let floats = BTreeMap::from([(1u8, BTreeMap::from([("k", 2.5f64)]))]);
    assert_eq!(written(&floats), serde_json::to_vec(&floats).unwrap());
}

#[test]
fn an_error_is_serde_json_s() {
    let refused = BTreeMap::from([(vec![1u8], 1)]);
    let mut out = Vec::new();
    let error = write_json(&mut out, &refused).unwrap_err();
    assert_eq!(error.to_string(), serde_json::to_vec(&refused).unwrap_err().to_string());
}

/// Any JSON value: strings of any characters, and of ASCII with its control characters, which
/// need escapes.
pub(crate) fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".*".prop_map(Value::from),
        "[\\x00-\\x7f]{0,40}".prop_map(Value::from),
        proptest::collection::vec(any::<char>(), 0..200)
            .prop_map(|chars| Value::from(chars.into_iter().collect::<String>())),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            proptest::collection::btree_map(".*", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_value_is_written_as_serde_json_writes_it(value in arbitrary_json()) {
        prop_assert_eq!(written(&value), serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn any_text_is_escaped_as_serde_json_escapes_it(
        text in any::<String>(),
        ascii in "[\\x00-\\x7f]{0,80}",
    ) {
        prop_assert_eq!(written(&text), serde_json::to_vec(&text).unwrap());
        prop_assert_eq!(written(&ascii), serde_json::to_vec(&ascii).unwrap());
    }
}
