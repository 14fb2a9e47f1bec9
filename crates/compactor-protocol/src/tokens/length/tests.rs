//! `json_len` agrees with `serde_json::to_vec(..).len()` on every shape serde can produce.

use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::json_len;
use crate::json::tests::arbitrary_json;
use crate::{RolloutLine, StreamEventPayload};

#[track_caller]
fn check<T: Serialize + ?Sized>(value: &T) {
    let expected = serde_json::to_vec(value).map_or(0, |json| json.len() as u64);
    assert_eq!(json_len(value), expected, "{}", serde_json::to_string(value).unwrap_or_default());
}

#[test]
fn json_values() {
    let every_ascii: String = (0u8..0x80).map(char::from).collect();
    let cases = [
        json!(null),
        json!(true),
        json!(false),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!(-0.0),
        json!(1e300),
        json!(0.1),
        json!(""),
        json!("plain"),
        json!(every_ascii),
        json!("é → 日本語 🦀"),
        json!([]),
        json!({}),
        json!([[], {}, [[]], {"a": {}}]),
        json!({"k\"ey\n": "v", "": [1, 2.25, null], "nested": {"deep": [true, {"x": "\u{1}"}]}}),
    ];
    for value in &cases {
        check(value);
    }
}

#[test]
fn escapes_at_every_block_position() {
    // The counter works in 64-byte blocks: put each escapable byte before, on and after block
    // edges, alone and in runs.
    for escaped in ['"', '\\', '\n', '\t', '\r', '\u{8}', '\u{c}', '\u{0}', '\u{1f}', '\u{7f}'] {
        for len in [0usize, 1, 62, 63, 64, 65, 127, 128, 129, 300] {
            for at in [0, len / 2, len.saturating_sub(1)] {
                let mut text: Vec<char> = "abcdefgh".chars().cycle().take(len).collect();
                if len > 0 {
                    text[at] = escaped;
                }
                check(&text.iter().collect::<String>());
                check(&std::iter::repeat_n(escaped, len).collect::<String>());
            }
        }
    }
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(u8);

#[derive(Serialize)]
struct Tuple(i32, &'static str);

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
struct Fields {
    a: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    c: Vec<Option<f32>>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Serialize)]
enum External {
    Unit,
    Newtype(i64),
    Tuple(u8, u8),
    EmptyTuple(),
    Struct { x: char },
    EmptyStruct {},
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Internal {
    A { n: u32 },
    B(Fields),
    C,
}

#[derive(Serialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    A(String),
}

/// Bytes through `serialize_bytes`, as `serde_bytes` would.
struct Bytes(&'static [u8]);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

#[test]
fn rust_shapes() {
    check(&Unit);
    check(&Newtype(7));
    check(&Tuple(-3, "x"));
    check(&Empty {});
    let fields = Fields {
        a: 1,
        b: None,
        c: vec![Some(1.25), None, Some(f32::NAN)],
        rest: [("z".to_owned(), json!([1]))].into(),
    };
    check(&fields);
    for value in [
        External::Unit,
        External::Newtype(-9),
        External::Tuple(1, 2),
        External::EmptyTuple(),
        External::Struct { x: '"' },
        External::EmptyStruct {},
    ] {
        check(&value);
    }
    check(&Internal::A { n: 5 });
    check(&Internal::B(fields));
    check(&Internal::C);
    check(&Adjacent::A("a".into()));
    check(&Bytes(&[]));
    check(&Bytes(&[0, 9, 10, 255]));
    check(&(1u128 << 100, -(1i128 << 100), 'c', (), Some(()), None::<u8>));
    check(&[f64::INFINITY, f64::MIN_POSITIVE, 123_456_789.0]);
}

/// A map of any keys, in order.
struct Pairs<K, V>(Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Pairs<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
    }
}

#[test]
fn map_keys_as_serde_json_writes_them() {
    check(&Pairs(vec![(1u8, "a"), (200, "b")]));
    check(&Pairs(vec![(-5i64, 1), (7, 2)]));
    check(&Pairs(vec![(1u128 << 90, 1)]));
    check(&Pairs(vec![(true, 1), (false, 2)]));
    check(&Pairs(vec![('k', 1), ('"', 2)]));
    check(&Pairs(vec![(Newtype(3), 1)]));
    check(&Pairs(vec![(Some("k"), 1)]));
    check(&Pairs(vec![(External::Unit, 1)]));
    // Float keys go to serde_json; keys it refuses count 0, as serializing them fails.
    check(&Pairs(vec![(1.5f64, 1), (-0.25, 2)]));
    check(&Pairs(vec![(f64::NAN, 1)]));
    check(&Pairs(vec![(Tuple(1, "a"), 1)]));
    assert_eq!(json_len(&Pairs(vec![(Tuple(1, "a"), 1)])), 0);
    check(&Pairs(vec![((), 1)]));
    check(&Pairs::<u8, u8>(vec![]));
}

#[test]
fn raw_values_count_as_written() {
    let raw = RawValue::from_string(r#"{ "spaced" : [1, 2] }"#.to_owned()).unwrap();
    check(&raw);
    check(&json!({"raw": raw.get()}));
    #[derive(Serialize)]
    struct WithRaw<'a> {
        payload: &'a RawValue,
    }
    check(&WithRaw { payload: &raw });
}

#[test]
fn protocol_fixtures() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protocol");
    let items = std::fs::read_to_string(format!("{fixtures}/items.jsonl")).unwrap();
    for line in items.lines().filter(|line| !line.trim().is_empty()) {
        let item: crate::ResponseItem = serde_json::from_str(line).unwrap();
        check(&item);
    }
    let rollout = std::fs::read_to_string(format!("{fixtures}/rollout.jsonl")).unwrap();
    for line in rollout.lines().filter(|line| !line.trim().is_empty()) {
        let line: RolloutLine = serde_json::from_str(line).unwrap();
        check(&line);
    }
    let event: StreamEventPayload = serde_json::from_value(json!({
        "type": "response.output_item.done",
        "sequence_number": 3,
        "item": {"type": "message", "role": "assistant", "content": []},
    }))
    .unwrap();
    check(&event);
}

proptest! {
    #[test]
    fn any_json_value(value in arbitrary_json()) {
        let expected = serde_json::to_vec(&value).unwrap().len() as u64;
        prop_assert_eq!(json_len(&value), expected);
    }
}
