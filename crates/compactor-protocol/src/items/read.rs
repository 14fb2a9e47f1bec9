//! The hand-written reader of [`ResponseItem`] (D131): a visitor over the `type` field that reads
//! an item straight into its fields, with no intermediate buffer.
//!
//! Its fast path takes an item in the form Compactor and the Responses API write it: `type`
//! first, then the variant's fields in their declared order (any may be absent), each of the JSON
//! kind the field wants, and content parts in the same canonical form. That covers the items of
//! every hot variant (messages, reasoning, function and custom tool calls and outputs, compaction
//! items and triggers); an unknown `type` is kept as its raw JSON at once.
//!
//! Anything else leaves the fast path where it is noticed, without losing a byte: the fields read
//! so far are turned back into the JSON they came from (the fast path only accepts forms it can
//! write back exactly), the rest of the object is read as JSON, and the whole goes to the general
//! reading (`wire.rs`), which reads a message in any form the API accepts, keeping what it does
//! not model, and keeps a malformed known item as its raw JSON. So an item reads as the general
//! reading reads the JSON value of its text: the same item, except that an object with a
//! duplicate key reads as its JSON value does (the last value wins) instead of falling back to
//! raw JSON.

use std::borrow::Cow;
use std::fmt;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::wire::from_object;
use super::{
    ContentItem, MessagePhase, ReasoningContent, ReasoningSummary, ResponseItem, ToolOutput,
    Unmodelled,
};

impl<'de> Deserialize<'de> for ResponseItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemVisitor)
    }
}

/// What a value turned out to be: what the field wants, or the JSON it was.
enum Fit<T> {
    Typed(T),
    Raw(Value),
}

/// The variants the fast path reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Message,
    Reasoning,
    FunctionCall,
    FunctionCallOutput,
    CustomToolCall,
    CustomToolCallOutput,
    Compaction,
    ContextCompaction,
    CompactionTrigger,
}

/// What a field holds on the fast path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldKind {
    /// A string.
    Str,
    /// A string or `null`.
    OptStr,
    /// A string, for an optional field whose `null` is kept as it came (a message's `id`).
    SomeStr,
    /// `commentary` or `final_answer` (a `null` is kept as it came).
    Phase,
    /// Message content parts.
    Parts,
    /// Reasoning summary parts.
    Summary,
    /// Reasoning content parts or `null`.
    ReasoningParts,
    /// A string or content parts.
    Output,
}

/// The fields of a fast-path variant after `type`, in their declared (and written) order.
pub(super) fn fields(kind: Kind) -> &'static [(&'static str, FieldKind)] {
    use FieldKind::{OptStr, Output, Parts, Phase, ReasoningParts, SomeStr, Str, Summary};
    match kind {
        Kind::Message => &[("id", SomeStr), ("role", Str), ("content", Parts), ("phase", Phase)],
        Kind::Reasoning => &[
            ("id", OptStr),
            ("summary", Summary),
            ("content", ReasoningParts),
            ("encrypted_content", OptStr),
        ],
        Kind::FunctionCall => &[
            ("id", OptStr),
            ("name", Str),
            ("namespace", OptStr),
            ("arguments", Str),
            ("call_id", Str),
        ],
        Kind::FunctionCallOutput => &[("call_id", Str), ("output", Output)],
        Kind::CustomToolCall => {
            &[("id", OptStr), ("status", OptStr), ("call_id", Str), ("name", Str), ("input", Str)]
        }
        Kind::CustomToolCallOutput => &[("call_id", Str), ("name", OptStr), ("output", Output)],
        Kind::Compaction => &[("id", OptStr), ("encrypted_content", Str), ("created_by", OptStr)],
        Kind::ContextCompaction => &[("id", OptStr), ("encrypted_content", OptStr)],
        Kind::CompactionTrigger => &[],
    }
}

/// A field's value read on the fast path.
pub(super) enum Slot {
    Str(String),
    OptStr(Option<String>),
    Phase(Option<MessagePhase>),
    Parts(Vec<ContentItem>),
    Summary(Vec<ReasoningSummary>),
    ReasoningParts(Option<Vec<ReasoningContent>>),
    Output(ToolOutput),
}

impl Slot {
    /// The JSON this value was read from: the fast path accepts only forms it writes back as
    /// they came.
    fn into_json(self) -> Value {
        match self {
            Slot::Str(text) | Slot::OptStr(Some(text)) => Value::String(text),
            Slot::OptStr(None) | Slot::Phase(None) | Slot::ReasoningParts(None) => Value::Null,
            Slot::Phase(Some(phase)) => to_json(&phase),
            Slot::Parts(parts) => to_json(&parts),
            Slot::Summary(parts) => to_json(&parts),
            Slot::ReasoningParts(Some(parts)) => to_json(&parts),
            Slot::Output(ToolOutput::Text(text)) => Value::String(text),
            Slot::Output(ToolOutput::Content(parts)) => to_json(&parts),
        }
    }
}

/// The JSON of a value whose serialization cannot fail (no maps with non-string keys).
fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The item of `object` as the general reading makes it.
fn general<E: de::Error>(object: Map<String, Value>) -> Result<ResponseItem, E> {
    from_object(object).map_err(E::custom)
}

/// Reads the rest of `map` into `object`, a later duplicate key replacing the earlier value in
/// its place, as a JSON value reads.
fn drain<'de, A: MapAccess<'de>>(
    map: &mut A,
    object: &mut Map<String, Value>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<String>()? {
        let value = map.next_value::<Value>()?;
        object.insert(key, value);
    }
    Ok(())
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = ResponseItem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Responses API item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResponseItem, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return general(Map::new());
        };
        if first.0 != "type" {
            let mut object = Map::new();
            object.insert(first.0.into_owned(), map.next_value::<Value>()?);
            drain(&mut map, &mut object)?;
            return general(object);
        }
        let tag = map.next_value_seed(TagSeed)?;
        let (name, kind) = match tag {
            Tag::Fast(name, kind) => (name, kind),
            Tag::Other(value) => {
                // An unknown type keeps its raw JSON; a rare known one goes to the general
                // reading; both need the whole object.
                let mut object = Map::new();
                object.insert("type".to_owned(), value);
                drain(&mut map, &mut object)?;
                return general(object);
            }
        };
        read_fast(&mut map, name, kind)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ResponseItem, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(ResponseItem::Unknown)
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::from(value)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::String(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::String(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<ResponseItem, E> {
        Ok(ResponseItem::Unknown(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<ResponseItem, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Reads the fields of a fast-path item whose `type` was `name`, leaving for the general reading
/// at the first thing the fast path does not take.
fn read_fast<'de, A: MapAccess<'de>>(
    map: &mut A,
    name: &'static str,
    kind: Kind,
) -> Result<ResponseItem, A::Error> {
    let spec = fields(kind);
    let mut slots: [Option<Slot>; 5] = [None, None, None, None, None];
    let mut next = 0;
    while let Some(key) = map.next_key::<Key<'de>>()? {
        let position = spec[next..].iter().position(|(field, _)| *field == key.0);
        let Some(position) = position.map(|at| at + next) else {
            // Unknown, out of order or repeated: the rest is read as JSON.
            let value = map.next_value::<Value>()?;
            return leave(map, name, spec, slots, Some((key.0.into_owned(), value)));
        };
        match map.next_value_seed(FieldSeed(spec[position].1))? {
            Fit::Typed(slot) => slots[position] = Some(slot),
            Fit::Raw(value) => {
                return leave(map, name, spec, slots, Some((key.0.into_owned(), value)));
            }
        }
        next = position + 1;
    }
    match build(kind, &mut slots) {
        Some(item) => Ok(item),
        // A required field is missing: the general reading decides what that makes.
        None => leave(map, name, spec, slots, None),
    }
}

/// Leaves the fast path: the object as JSON (`type`, the fields read so far, then `pending` and
/// the rest of `map`), read the general way.
fn leave<'de, A: MapAccess<'de>>(
    map: &mut A,
    name: &'static str,
    spec: &[(&'static str, FieldKind)],
    slots: [Option<Slot>; 5],
    pending: Option<(String, Value)>,
) -> Result<ResponseItem, A::Error> {
    let mut object = Map::new();
    object.insert("type".to_owned(), Value::String(name.to_owned()));
    for ((field, _), slot) in spec.iter().zip(slots) {
        if let Some(slot) = slot {
            object.insert((*field).to_owned(), slot.into_json());
        }
    }
    if let Some((key, value)) = pending {
        object.insert(key, value);
    }
    drain(map, &mut object)?;
    general(object)
}

/// The item of a fast-path variant from its fields, or `None` when a required one is missing
/// (the slots are then left as they were).
pub(super) fn build(kind: Kind, slots: &mut [Option<Slot>; 5]) -> Option<ResponseItem> {
    let present = |index: usize| slots[index].is_some();
    let required: &[usize] = match kind {
        Kind::Message => &[1, 2],
        Kind::FunctionCall => &[1, 3, 4],
        Kind::FunctionCallOutput => &[0, 1],
        Kind::CustomToolCall => &[2, 3, 4],
        Kind::CustomToolCallOutput => &[0, 2],
        Kind::Compaction => &[1],
        Kind::Reasoning | Kind::ContextCompaction | Kind::CompactionTrigger => &[],
    };
    if !required.iter().all(|&index| present(index)) {
        return None;
    }
    let mut take = |index: usize| slots[index].take();
    let item = match kind {
        Kind::Message => ResponseItem::Message {
            id: opt_str(take(0)),
            role: str(take(1)),
            content: match take(2) {
                Some(Slot::Parts(parts)) => parts,
                _ => Vec::new(),
            },
            phase: match take(3) {
                Some(Slot::Phase(phase)) => phase,
                _ => None,
            },
            extra: Unmodelled::default(),
        },
        Kind::Reasoning => ResponseItem::Reasoning {
            id: opt_str(take(0)),
            summary: match take(1) {
                Some(Slot::Summary(parts)) => parts,
                _ => Vec::new(),
            },
            content: match take(2) {
                Some(Slot::ReasoningParts(parts)) => parts,
                _ => None,
            },
            encrypted_content: opt_str(take(3)),
        },
        Kind::FunctionCall => ResponseItem::FunctionCall {
            id: opt_str(take(0)),
            name: str(take(1)),
            namespace: opt_str(take(2)),
            arguments: str(take(3)),
            call_id: str(take(4)),
        },
        Kind::FunctionCallOutput => {
            ResponseItem::FunctionCallOutput { call_id: str(take(0)), output: output(take(1)) }
        }
        Kind::CustomToolCall => ResponseItem::CustomToolCall {
            id: opt_str(take(0)),
            status: opt_str(take(1)),
            call_id: str(take(2)),
            name: str(take(3)),
            input: str(take(4)),
        },
        Kind::CustomToolCallOutput => ResponseItem::CustomToolCallOutput {
            call_id: str(take(0)),
            name: opt_str(take(1)),
            output: output(take(2)),
        },
        Kind::Compaction => ResponseItem::Compaction {
            id: opt_str(take(0)),
            encrypted_content: str(take(1)),
            created_by: opt_str(take(2)),
        },
        Kind::ContextCompaction => ResponseItem::ContextCompaction {
            id: opt_str(take(0)),
            encrypted_content: opt_str(take(1)),
        },
        Kind::CompactionTrigger => ResponseItem::CompactionTrigger,
    };
    Some(item)
}

fn str(slot: Option<Slot>) -> String {
    match slot {
        Some(Slot::Str(text)) => text,
        _ => String::new(),
    }
}

fn opt_str(slot: Option<Slot>) -> Option<String> {
    match slot {
        Some(Slot::OptStr(text)) => text,
        _ => None,
    }
}

fn output(slot: Option<Slot>) -> ToolOutput {
    match slot {
        Some(Slot::Output(output)) => output,
        _ => ToolOutput::Text(String::new()),
    }
}

/// An object key, borrowed from the input when it can be.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E: de::Error>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The fast-path variant an item `type` names, and the name as it is written.
pub(super) fn fast_kind(name: &str) -> Option<(&'static str, Kind)> {
    const FAST: [(&str, Kind); 10] = [
        ("message", Kind::Message),
        ("reasoning", Kind::Reasoning),
        ("function_call", Kind::FunctionCall),
        ("function_call_output", Kind::FunctionCallOutput),
        ("custom_tool_call", Kind::CustomToolCall),
        ("custom_tool_call_output", Kind::CustomToolCallOutput),
        ("compaction", Kind::Compaction),
        ("compaction_summary", Kind::Compaction),
        ("context_compaction", Kind::ContextCompaction),
        ("compaction_trigger", Kind::CompactionTrigger),
    ];
    FAST.iter().find(|(known, _)| *known == name).copied()
}

/// The `type` of an item: a fast-path variant (with the name it came as), or any other value.
enum Tag {
    Fast(&'static str, Kind),
    Other(Value),
}

struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Tag;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tag, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TagSeed {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item type")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Tag, E> {
        Ok(match fast_kind(name) {
            Some((known, kind)) => Tag::Fast(known, kind),
            None => Tag::Other(Value::String(name.to_owned())),
        })
    }

    fn visit_string<E: de::Error>(self, name: String) -> Result<Tag, E> {
        match self.visit_str::<E>(&name)? {
            Tag::Fast(known, kind) => Ok(Tag::Fast(known, kind)),
            Tag::Other(_) => Ok(Tag::Other(Value::String(name))),
        }
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Tag, E> {
        Ok(Tag::Other(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Tag, E> {
        Ok(Tag::Other(Value::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Tag, E> {
        Ok(Tag::Other(Value::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Tag, E> {
        Ok(Tag::Other(Value::from(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tag, E> {
        Ok(Tag::Other(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Tag, E> {
        Ok(Tag::Other(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Tag, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Tag, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Tag::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Tag, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Tag::Other)
    }
}

/// Reads one field of kind `.0` on the fast path.
struct FieldSeed(FieldKind);

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Fit<Slot>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fit<Slot>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// The visit methods of a reader whose every JSON kind but the ones it takes becomes
/// [`Fit::Raw`]: scalars as they are, arrays and objects read whole as JSON.
macro_rules! raw_otherwise {
    ($($kind:ident),*) => {
        $(raw_otherwise!(@one $kind);)*
    };
    (@one bool) => {
        fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
            Ok(Fit::Raw(Value::Bool(value)))
        }
    };
    (@one number) => {
        fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
            Ok(Fit::Raw(Value::from(value)))
        }
        fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
            Ok(Fit::Raw(Value::from(value)))
        }
        fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
            Ok(Fit::Raw(Value::from(value)))
        }
    };
    (@one map) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Value::deserialize(MapAccessDeserializer::new(map)).map(Fit::Raw)
        }
    };
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Fit<Slot>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an item field")
    }

    raw_otherwise!(bool, number, map);

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Fit<Slot>, E> {
        self.text(Cow::Borrowed(text))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Fit<Slot>, E> {
        self.text(Cow::Owned(text))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Fit<Slot>, E> {
        Ok(match self.0 {
            FieldKind::OptStr => Fit::Typed(Slot::OptStr(None)),
            FieldKind::ReasoningParts => Fit::Typed(Slot::ReasoningParts(None)),
            FieldKind::Str
            | FieldKind::SomeStr
            | FieldKind::Phase
            | FieldKind::Parts
            | FieldKind::Summary
            | FieldKind::Output => Fit::Raw(Value::Null),
        })
    }

    fn visit_none<E: de::Error>(self) -> Result<Fit<Slot>, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fit<Slot>, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Fit<Slot>, A::Error> {
        let part = match self.0 {
            FieldKind::Parts | FieldKind::Output => PartKind::Content,
            FieldKind::Summary => PartKind::Summary,
            FieldKind::ReasoningParts => PartKind::Reasoning,
            FieldKind::Str | FieldKind::OptStr | FieldKind::SomeStr | FieldKind::Phase => {
                return Value::deserialize(SeqAccessDeserializer::new(seq)).map(Fit::Raw);
            }
        };
        Ok(match read_parts(seq, part)? {
            Fit::Raw(value) => Fit::Raw(value),
            Fit::Typed(Parts::Content(parts)) if self.0 == FieldKind::Output => {
                Fit::Typed(Slot::Output(ToolOutput::Content(parts)))
            }
            Fit::Typed(Parts::Content(parts)) => Fit::Typed(Slot::Parts(parts)),
            Fit::Typed(Parts::Summary(parts)) => Fit::Typed(Slot::Summary(parts)),
            Fit::Typed(Parts::Reasoning(parts)) => Fit::Typed(Slot::ReasoningParts(Some(parts))),
        })
    }
}

impl FieldSeed {
    fn text<E: de::Error>(&self, text: Cow<'_, str>) -> Result<Fit<Slot>, E> {
        Ok(match self.0 {
            FieldKind::Str => Fit::Typed(Slot::Str(text.into_owned())),
            FieldKind::OptStr | FieldKind::SomeStr => {
                Fit::Typed(Slot::OptStr(Some(text.into_owned())))
            }
            FieldKind::Output => Fit::Typed(Slot::Output(ToolOutput::Text(text.into_owned()))),
            FieldKind::Phase => match text.as_ref() {
                "commentary" => Fit::Typed(Slot::Phase(Some(MessagePhase::Commentary))),
                "final_answer" => Fit::Typed(Slot::Phase(Some(MessagePhase::FinalAnswer))),
                _ => Fit::Raw(Value::String(text.into_owned())),
            },
            FieldKind::Parts | FieldKind::Summary | FieldKind::ReasoningParts => {
                Fit::Raw(Value::String(text.into_owned()))
            }
        })
    }
}

/// Which parts a list holds.
#[derive(Clone, Copy)]
enum PartKind {
    Content,
    Summary,
    Reasoning,
}

/// A list of parts read on the fast path.
enum Parts {
    Content(Vec<ContentItem>),
    Summary(Vec<ReasoningSummary>),
    Reasoning(Vec<ReasoningContent>),
}

impl Parts {
    fn into_json(self) -> Vec<Value> {
        match self {
            Parts::Content(parts) => parts.iter().map(to_json).collect(),
            Parts::Summary(parts) => parts.iter().map(to_json).collect(),
            Parts::Reasoning(parts) => parts.iter().map(to_json).collect(),
        }
    }
}

/// A part read on the fast path.
enum Part {
    Content(ContentItem),
    Summary(ReasoningSummary),
    Reasoning(ReasoningContent),
}

/// Reads a list of parts; at the first part the fast path does not take, the whole list as JSON.
fn read_parts<'de, A: SeqAccess<'de>>(mut seq: A, kind: PartKind) -> Result<Fit<Parts>, A::Error> {
    let capacity = seq.size_hint().unwrap_or(0).min(64);
    let mut parts = match kind {
        PartKind::Content => Parts::Content(Vec::with_capacity(capacity)),
        PartKind::Summary => Parts::Summary(Vec::with_capacity(capacity)),
        PartKind::Reasoning => Parts::Reasoning(Vec::with_capacity(capacity)),
    };
    while let Some(part) = seq.next_element_seed(PartSeed(kind))? {
        match (part, &mut parts) {
            (Fit::Typed(Part::Content(part)), Parts::Content(list)) => list.push(part),
            (Fit::Typed(Part::Summary(part)), Parts::Summary(list)) => list.push(part),
            (Fit::Typed(Part::Reasoning(part)), Parts::Reasoning(list)) => list.push(part),
            (Fit::Raw(value), _) => {
                let mut values = parts.into_json();
                values.push(value);
                while let Some(value) = seq.next_element::<Value>()? {
                    values.push(value);
                }
                return Ok(Fit::Raw(Value::Array(values)));
            }
            // `PartSeed` reads the kind it was given.
            (Fit::Typed(part), _) => {
                let mut values = parts.into_json();
                values.push(match part {
                    Part::Content(part) => to_json(&part),
                    Part::Summary(part) => to_json(&part),
                    Part::Reasoning(part) => to_json(&part),
                });
                while let Some(value) = seq.next_element::<Value>()? {
                    values.push(value);
                }
                return Ok(Fit::Raw(Value::Array(values)));
            }
        }
    }
    Ok(Fit::Typed(parts))
}

/// Reads one part in its canonical form: `type` first, then its fields in order, nothing else.
struct PartSeed(PartKind);

impl<'de> DeserializeSeed<'de> for PartSeed {
    type Value = Fit<Part>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fit<Part>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for PartSeed {
    type Value = Fit<Part>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content part")
    }

    raw_otherwise!(bool, number);

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Fit<Part>, E> {
        Ok(Fit::Raw(Value::String(text.to_owned())))
    }

    fn visit_string<E: de::Error>(self, text: String) -> Result<Fit<Part>, E> {
        Ok(Fit::Raw(Value::String(text)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Fit<Part>, E> {
        Ok(Fit::Raw(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<Fit<Part>, E> {
        Ok(Fit::Raw(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Fit<Part>, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Fit<Part>, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(Fit::Raw)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fit<Part>, A::Error> {
        let Some(first) = map.next_key::<Key<'de>>()? else {
            return leave_part(map, Vec::new(), None);
        };
        let kind = map.next_value::<Value>()?;
        let name = match kind {
            Value::String(name) if first.0 == "type" => name,
            kind => return leave_part(map, Vec::new(), Some((first.0.into_owned(), kind))),
        };
        // The fields after `type`, in order, and whether each is required.
        let spec: &[(&'static str, bool)] = match (self.0, name.as_str()) {
            (PartKind::Content, "input_text" | "output_text")
            | (PartKind::Summary, "summary_text")
            | (PartKind::Reasoning, "reasoning_text" | "text") => &[("text", true)],
            (PartKind::Content, "input_image") => &[("image_url", true), ("detail", false)],
            (PartKind::Content, _) => {
                // A part of a type Compactor does not model keeps its raw JSON.
                let mut object = Map::new();
                object.insert("type".to_owned(), Value::String(name));
                drain(&mut map, &mut object)?;
                return Ok(Fit::Typed(Part::Content(ContentItem::Unknown(Value::Object(object)))));
            }
            (PartKind::Summary | PartKind::Reasoning, _) => {
                return leave_part(map, vec![("type", Value::String(name))], None);
            }
        };
        let mut texts: [Option<String>; 2] = [None, None];
        let mut next = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<Value>()?;
            let position = spec[next..].iter().position(|(field, _)| *field == key.0);
            match (position, value) {
                (Some(at), Value::String(text)) => {
                    texts[next + at] = Some(text);
                    next += at + 1;
                }
                (_, value) => {
                    let read = part_fields(name, spec, texts);
                    return leave_part(map, read, Some((key.0.into_owned(), value)));
                }
            }
        }
        if spec.iter().zip(&texts).any(|((_, required), text)| *required && text.is_none()) {
            return leave_part(map, part_fields(name, spec, texts), None);
        }
        let [first, second] = texts;
        let text = first.unwrap_or_default();
        Ok(Fit::Typed(match name.as_str() {
            "input_text" => Part::Content(ContentItem::InputText { text }),
            "output_text" => Part::Content(ContentItem::OutputText { text }),
            "input_image" => {
                Part::Content(ContentItem::InputImage { image_url: text, detail: second })
            }
            "summary_text" => Part::Summary(ReasoningSummary::SummaryText { text }),
            "reasoning_text" => Part::Reasoning(ReasoningContent::ReasoningText { text }),
            _ => Part::Reasoning(ReasoningContent::Text { text }),
        }))
    }
}

/// The fields of a part read so far, as JSON: `type`, then the texts read.
fn part_fields(
    name: String,
    spec: &[(&'static str, bool)],
    texts: [Option<String>; 2],
) -> Vec<(&'static str, Value)> {
    let mut read = vec![("type", Value::String(name))];
    for ((field, _), text) in spec.iter().zip(texts) {
        if let Some(text) = text {
            read.push((field, Value::String(text)));
        }
    }
    read
}

/// A part that leaves the fast path, as JSON: the fields `read`, then `pending` and the rest of
/// `map`.
fn leave_part<'de, A: MapAccess<'de>>(
    mut map: A,
    read: Vec<(&'static str, Value)>,
    pending: Option<(String, Value)>,
) -> Result<Fit<Part>, A::Error> {
    let mut object = Map::new();
    for (key, value) in read {
        object.insert(key.to_owned(), value);
    }
    if let Some((key, value)) = pending {
        object.insert(key, value);
    }
    drain(&mut map, &mut object)?;
    Ok(Fit::Raw(Value::Object(object)))
}

#[cfg(test)]
pub(super) mod tests;
