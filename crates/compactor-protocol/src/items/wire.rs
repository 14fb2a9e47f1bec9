//! How items are read and written: every item but a message in its tagged form, and a message in
//! whatever form it came (without `type`, with string content, with fields Compactor does not
//! model, in any key order), written back in that form (D110).
//!
//! The reading here is the general one: when `type` is the first key, a message is read into a
//! JSON object and then into its fields, any other item goes to the tagged reading with the key it
//! already read; an object whose `type` comes later, or that has none, is read into a JSON object
//! first. Items are read by the hand-written reader of `read.rs`, which takes the forms Compactor
//! and the API write straight into their fields and hands everything else to [`from_object`];
//! this reading stays as the reference it is checked against (D131).

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{
    ContentItem, LocalShellAction, MessagePhase, ReasoningContent, ReasoningSummary, ResponseItem,
    ToolOutput, Unmodelled, WebSearchAction,
};

/// What a message carried beyond its modelled fields (the inside of [`Unmodelled`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Leftovers {
    /// Message fields Compactor does not model, in order.
    pub(crate) fields: Map<String, Value>,
    /// The message's key order, when it was not the one Compactor writes.
    pub(crate) order: Option<Vec<String>>,
    /// The message had no `type`.
    pub(crate) typeless: bool,
    /// The message's `content` was a string.
    pub(crate) string_content: bool,
    /// Text and image parts with fields Compactor does not model, or in another key order.
    pub(crate) parts: Vec<PartLeftovers>,
}

/// The leftovers of one content part.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PartLeftovers {
    /// The part's position in the content.
    pub(crate) index: usize,
    /// The part's `type`; the leftovers apply while the part at `index` has it.
    pub(crate) kind: PartKind,
    /// Part fields Compactor does not model, in order.
    pub(crate) fields: Map<String, Value>,
    /// The part's key order, when it was not the one Compactor writes.
    pub(crate) order: Option<Vec<String>>,
}

/// The content parts Compactor models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartKind {
    InputText,
    OutputText,
    InputImage,
}

impl PartKind {
    fn of(part: &ContentItem) -> Option<Self> {
        match part {
            ContentItem::InputText { .. } => Some(Self::InputText),
            ContentItem::OutputText { .. } => Some(Self::OutputText),
            ContentItem::InputImage { .. } => Some(Self::InputImage),
            ContentItem::Unknown(_) => None,
        }
    }
}

impl Unmodelled {
    /// What is kept, when there is anything (for fingerprints, which follow `==`).
    pub(crate) fn leftovers(&self) -> Option<&Leftovers> {
        self.0.as_deref()
    }

    /// A message that came as `{"role":..., "content":"..."}`: no `type`, string content.
    pub(crate) fn easy_input() -> Self {
        Self(Some(Box::new(Leftovers {
            typeless: true,
            string_content: true,
            ..Leftovers::default()
        })))
    }

    fn from_leftovers(leftovers: Leftovers) -> Self {
        let empty = leftovers.fields.is_empty()
            && leftovers.order.is_none()
            && !leftovers.typeless
            && !leftovers.string_content
            && leftovers.parts.is_empty();
        Self((!empty).then(|| Box::new(leftovers)))
    }
}

// ---------------------------------------------------------------------------------------------
// The tagged form of every item but a message.

/// The derived wire form of [`ResponseItem`]; a message never goes through it.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ResponseItem", tag = "type", rename_all = "snake_case")]
enum Tagged {
    // Read and written by hand (`read_message`, `MessageRef`); the variant must exist.
    #[serde(skip)]
    Message {
        id: Option<String>,
        role: String,
        content: Vec<ContentItem>,
        phase: Option<MessagePhase>,
        extra: Unmodelled,
    },
    Reasoning {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        summary: Vec<ReasoningSummary>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Vec<ReasoningContent>>,
        #[serde(default)]
        encrypted_content: Option<String>,
    },
    LocalShellCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        call_id: Option<String>,
        status: String,
        action: Box<LocalShellAction>,
    },
    FunctionCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<String>,
        arguments: String,
        call_id: String,
    },
    ToolSearchCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default)]
        call_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        execution: String,
        arguments: Box<Value>,
    },
    FunctionCallOutput {
        call_id: String,
        output: ToolOutput,
    },
    CustomToolCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        call_id: String,
        name: String,
        input: String,
    },
    CustomToolCallOutput {
        call_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        output: ToolOutput,
    },
    ToolSearchOutput {
        #[serde(default)]
        call_id: Option<String>,
        status: String,
        execution: String,
        tools: Vec<Value>,
    },
    WebSearchCall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action: Option<WebSearchAction>,
    },
    ImageGenerationCall {
        id: String,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revised_prompt: Option<String>,
        result: String,
    },
    #[serde(alias = "compaction_summary")]
    Compaction {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        encrypted_content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
    },
    ContextCompaction {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    CompactionTrigger,
    #[serde(untagged)]
    Unknown(Value),
}

impl Serialize for ResponseItem {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ResponseItem::Message { id, role, content, phase, extra } => {
                let message = MessageRef { id: id.as_deref(), role, content, phase: *phase, extra };
                message.serialize(serializer)
            }
            ResponseItem::Reasoning { .. }
            | ResponseItem::LocalShellCall { .. }
            | ResponseItem::FunctionCall { .. }
            | ResponseItem::ToolSearchCall { .. }
            | ResponseItem::FunctionCallOutput { .. }
            | ResponseItem::CustomToolCall { .. }
            | ResponseItem::CustomToolCallOutput { .. }
            | ResponseItem::ToolSearchOutput { .. }
            | ResponseItem::WebSearchCall { .. }
            | ResponseItem::ImageGenerationCall { .. }
            | ResponseItem::Compaction { .. }
            | ResponseItem::ContextCompaction { .. }
            | ResponseItem::CompactionTrigger
            | ResponseItem::Unknown(_) => Tagged::serialize(self, serializer),
        }
    }
}

/// Reads an item the general way: a message by hand in any form, any other item through the
/// derived tagged reading. The hand-written reader (`read.rs`) takes the common forms itself and
/// hands the rest to [`from_object`]; this whole reading stays as its reference (D131).
pub(super) fn read_general<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<ResponseItem, D::Error> {
    deserializer.deserialize_any(ItemVisitor)
}

// ---------------------------------------------------------------------------------------------
// Reading.

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = ResponseItem;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Responses API item")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResponseItem, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(ResponseItem::Unknown(Value::Object(Map::new())));
        };
        let first_value: Value = map.next_value()?;
        if first == "type"
            && let Value::String(kind) = first_value
        {
            if kind != "message" {
                let rest = TypeFirst { kind: Some(kind), rest: map };
                return Tagged::deserialize(MapAccessDeserializer::new(rest));
            }
            let mut object = Map::new();
            object.insert(first, Value::String(kind));
            while let Some((key, value)) = map.next_entry::<String, Value>()? {
                object.insert(key, value);
            }
            return Ok(read_message(object));
        }
        let mut object = Map::new();
        object.insert(first, first_value);
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            object.insert(key, value);
        }
        from_object(object).map_err(de::Error::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResponseItem, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element::<Value>()? {
            values.push(value);
        }
        Ok(ResponseItem::Unknown(Value::Array(values)))
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
        Ok(ResponseItem::Unknown(Value::from(value)))
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

/// A map whose `type` entry was already read: it yields that entry again, then the rest.
struct TypeFirst<A> {
    kind: Option<String>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for TypeFirst<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if self.kind.is_some() {
            return seed.deserialize("type".into_deserializer()).map(Some);
        }
        self.rest.next_key_seed(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match self.kind.take() {
            Some(kind) => seed.deserialize(kind.into_deserializer()),
            None => self.rest.next_value_seed(seed),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        self.rest.size_hint().map(|rest| rest + usize::from(self.kind.is_some()))
    }
}

/// An item from a whole JSON object.
pub(super) fn from_object(object: Map<String, Value>) -> Result<ResponseItem, serde_json::Error> {
    match object.get("type") {
        Some(Value::String(kind)) if kind == "message" => Ok(read_message(object)),
        None if is_easy_message(&object) => Ok(read_message(object)),
        Some(_) | None => Tagged::deserialize(Value::Object(object)),
    }
}

/// Whether a typeless object is a message: a string `role` and a string or list `content`.
fn is_easy_message(object: &Map<String, Value>) -> bool {
    matches!(object.get("role"), Some(Value::String(_)))
        && matches!(object.get("content"), Some(Value::String(_) | Value::Array(_)))
}

/// The message of `object` (which has `"type":"message"` or none), or [`ResponseItem::Unknown`]
/// when its `role` or `content` cannot be read.
fn read_message(mut object: Map<String, Value>) -> ResponseItem {
    if !is_easy_message(&object) {
        return ResponseItem::Unknown(Value::Object(object));
    }
    let original_order: Vec<String> = object.keys().cloned().collect();
    let typeless = object.shift_remove("type").is_none();
    let id = match object.get("id") {
        Some(Value::String(_)) => object.shift_remove("id").and_then(into_string),
        Some(_) | None => None,
    };
    let role = object.shift_remove("role").and_then(into_string).unwrap_or_default();
    let phase = match object.get("phase").map(MessagePhase::deserialize) {
        Some(Ok(phase)) => {
            object.shift_remove("phase");
            Some(phase)
        }
        Some(Err(_)) | None => None,
    };
    let mut parts = Vec::new();
    let (content, string_content) = match object.shift_remove("content") {
        Some(Value::String(text)) => {
            let part = if role == "assistant" {
                ContentItem::OutputText { text }
            } else {
                ContentItem::InputText { text }
            };
            (vec![part], true)
        }
        Some(Value::Array(values)) => {
            let content = values
                .into_iter()
                .enumerate()
                .map(|(index, value)| {
                    let (part, leftovers) = read_part(index, value);
                    parts.extend(leftovers);
                    part
                })
                .collect();
            (content, false)
        }
        // `is_easy_message` checked that the content is one of those.
        Some(_) | None => (Vec::new(), false),
    };
    let known: [(&str, bool); 5] = [
        ("type", !typeless),
        ("id", id.is_some()),
        ("role", true),
        ("content", true),
        ("phase", phase.is_some()),
    ];
    let order = unusual_order(original_order, &known, &object);
    let leftovers = Leftovers { fields: object, order, typeless, string_content, parts };
    ResponseItem::Message { id, role, content, phase, extra: Unmodelled::from_leftovers(leftovers) }
}

/// A content part, and its leftovers when it is a text or image part with fields Compactor does
/// not model or in another key order.
fn read_part(index: usize, value: Value) -> (ContentItem, Option<PartLeftovers>) {
    let Value::Object(mut object) = value else {
        return (ContentItem::Unknown(value), None);
    };
    let kind = match object.get("type").and_then(Value::as_str) {
        Some("input_text") if matches!(object.get("text"), Some(Value::String(_))) => {
            PartKind::InputText
        }
        Some("output_text") if matches!(object.get("text"), Some(Value::String(_))) => {
            PartKind::OutputText
        }
        Some("input_image") if matches!(object.get("image_url"), Some(Value::String(_))) => {
            PartKind::InputImage
        }
        _ => return (ContentItem::Unknown(Value::Object(object)), None),
    };
    let original_order: Vec<String> = object.keys().cloned().collect();
    object.shift_remove("type");
    let (part, known) = match kind {
        PartKind::InputText | PartKind::OutputText => {
            let text = object.shift_remove("text").and_then(into_string).unwrap_or_default();
            let part = if kind == PartKind::InputText {
                ContentItem::InputText { text }
            } else {
                ContentItem::OutputText { text }
            };
            (part, vec![("type", true), ("text", true)])
        }
        PartKind::InputImage => {
            let image_url =
                object.shift_remove("image_url").and_then(into_string).unwrap_or_default();
            let detail = match object.get("detail") {
                Some(Value::String(_)) => object.shift_remove("detail").and_then(into_string),
                Some(_) | None => None,
            };
            let has_detail = detail.is_some();
            let part = ContentItem::InputImage { image_url, detail };
            (part, vec![("type", true), ("image_url", true), ("detail", has_detail)])
        }
    };
    let order = unusual_order(original_order, &known, &object);
    if object.is_empty() && order.is_none() {
        return (part, None);
    }
    (part, Some(PartLeftovers { index, kind, fields: object, order }))
}

/// `original` when it is not the order Compactor writes: the present `known` keys in their
/// order, then the `leftovers` in theirs.
fn unusual_order(
    original: Vec<String>,
    known: &[(&str, bool)],
    leftovers: &Map<String, Value>,
) -> Option<Vec<String>> {
    let written = known
        .iter()
        .filter(|(_, present)| *present)
        .map(|(key, _)| *key)
        .chain(leftovers.keys().map(String::as_str));
    let same = original.len()
        == known.iter().filter(|(_, present)| *present).count() + leftovers.len()
        && original.iter().map(String::as_str).eq(written);
    (!same).then_some(original)
}

fn into_string(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

/// A message to write.
struct MessageRef<'a> {
    id: Option<&'a str>,
    role: &'a str,
    content: &'a [ContentItem],
    phase: Option<MessagePhase>,
    extra: &'a Unmodelled,
}

/// The value of a modelled field.
enum Field<'a> {
    Str(&'a str),
    Phase(MessagePhase),
    Content(ContentRef<'a>),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Str(text) => serializer.serialize_str(text),
            Field::Phase(phase) => phase.serialize(serializer),
            Field::Content(content) => content.serialize(serializer),
        }
    }
}

impl Serialize for MessageRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let leftovers = self.extra.0.as_deref();
        let typeless = leftovers.is_some_and(|leftovers| leftovers.typeless);
        let parts = leftovers.map_or(&[][..], |leftovers| leftovers.parts.as_slice());
        let as_string = match self.content {
            [ContentItem::InputText { text } | ContentItem::OutputText { text }]
                if leftovers.is_some_and(|leftovers| leftovers.string_content)
                    && parts.iter().all(|part| part.index != 0) =>
            {
                Some(text.as_str())
            }
            _ => None,
        };
        let content = ContentRef { parts: self.content, as_string, leftovers: parts };
        let known = [
            ("type", (!typeless).then_some(Field::Str("message"))),
            ("id", self.id.map(Field::Str)),
            ("role", Some(Field::Str(self.role))),
            ("content", Some(Field::Content(content))),
            ("phase", self.phase.map(Field::Phase)),
        ];
        let empty = Map::new();
        let fields = leftovers.map_or(&empty, |leftovers| &leftovers.fields);
        let order = leftovers.and_then(|leftovers| leftovers.order.as_deref());
        let mut map = serializer.serialize_map(None)?;
        write_entries(&mut map, &known, fields, order)?;
        map.end()
    }
}

/// A message's content: a string, or parts with their leftovers.
struct ContentRef<'a> {
    parts: &'a [ContentItem],
    as_string: Option<&'a str>,
    leftovers: &'a [PartLeftovers],
}

impl Serialize for ContentRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(text) = self.as_string {
            return serializer.serialize_str(text);
        }
        let mut seq = serializer.serialize_seq(Some(self.parts.len()))?;
        for (index, part) in self.parts.iter().enumerate() {
            let leftovers = self.leftovers.iter().find(|leftovers| {
                leftovers.index == index && PartKind::of(part) == Some(leftovers.kind)
            });
            match leftovers {
                Some(leftovers) => seq.serialize_element(&PartRef { part, leftovers })?,
                None => seq.serialize_element(part)?,
            }
        }
        seq.end()
    }
}

/// A text or image part written with its leftovers.
struct PartRef<'a> {
    part: &'a ContentItem,
    leftovers: &'a PartLeftovers,
}

impl Serialize for PartRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let fields = &self.leftovers.fields;
        let order = self.leftovers.order.as_deref();
        match self.part {
            ContentItem::InputText { text } => {
                let known =
                    [("type", Some(Field::Str("input_text"))), ("text", Some(Field::Str(text)))];
                write_entries(&mut map, &known, fields, order)?;
            }
            ContentItem::OutputText { text } => {
                let known =
                    [("type", Some(Field::Str("output_text"))), ("text", Some(Field::Str(text)))];
                write_entries(&mut map, &known, fields, order)?;
            }
            ContentItem::InputImage { image_url, detail } => {
                let known = [
                    ("type", Some(Field::Str("input_image"))),
                    ("image_url", Some(Field::Str(image_url))),
                    ("detail", detail.as_deref().map(Field::Str)),
                ];
                write_entries(&mut map, &known, fields, order)?;
            }
            // `ContentRef` pairs leftovers only with the part kind they were read from.
            ContentItem::Unknown(raw) => {
                if let Value::Object(object) = raw {
                    for (key, value) in object {
                        map.serialize_entry(key, value)?;
                    }
                }
            }
        }
        map.end()
    }
}

/// Writes the `known` fields that are present and the `leftovers`, in `order` when there is one
/// (fields that are new since come after it, known ones first), else known fields first. A
/// leftover with the name of a present known field is not written twice.
fn write_entries<M: SerializeMap>(
    map: &mut M,
    known: &[(&str, Option<Field<'_>>)],
    leftovers: &Map<String, Value>,
    order: Option<&[String]>,
) -> Result<(), M::Error> {
    let present = |key: &str| known.iter().any(|(name, value)| *name == key && value.is_some());
    let ordered = |key: &str| order.is_some_and(|order| order.iter().any(|name| name == key));
    if let Some(order) = order {
        for key in order {
            match known.iter().find(|(name, _)| name == key) {
                Some((name, Some(value))) => map.serialize_entry(name, value)?,
                Some((_, None)) | None => {
                    if let Some(value) = leftovers.get(key) {
                        map.serialize_entry(key, value)?;
                    }
                }
            }
        }
    }
    for (name, value) in known {
        if let Some(value) = value
            && !ordered(name)
        {
            map.serialize_entry(name, value)?;
        }
    }
    for (key, value) in leftovers {
        if !present(key) && !ordered(key) {
            map.serialize_entry(key, value)?;
        }
    }
    Ok(())
}
