//! Pins: content the session keeps through every compaction, placed verbatim in the compacted
//! history's pin slot (see D140 in docs/decisions.md).
//!
//! A pin is a copy held by the session, never a reference into the history: pinning an item
//! copies it (without its server-assigned `id`), and a pinned note is text. Pins are persisted in
//! the `compacted` payload of each compaction and, when they change between compactions, in a
//! `pins` rollout line of their own ([`PinsItem`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::items::ResponseItem;

/// The prefix of every pin id.
const PIN_ID_PREFIX: &str = "pin-";

/// A pin's id, assigned by the session: `pin-1`, `pin-2`, ...; never reused within a thread.
///
/// # Examples
///
/// ```
/// use compactor_protocol::PinId;
///
/// let id = PinId::from_number(3);
/// assert_eq!(id.to_string(), "pin-3");
/// assert_eq!("pin-3".parse::<PinId>(), Ok(id));
/// assert!("pin-0".parse::<PinId>().is_err());
/// assert!("3".parse::<PinId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PinId(u64);

impl PinId {
    /// The id with this number (`pin-<number>`); numbers start at 1.
    pub const fn from_number(number: u64) -> Self {
        Self(number)
    }

    /// The id's number.
    pub const fn number(self) -> u64 {
        self.0
    }
}

impl fmt::Display for PinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_ID_PREFIX}{}", self.0)
    }
}

/// A string that is not a pin id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a pin id (pin ids look like pin-1)")]
pub struct InvalidPinId(pub String);

impl FromStr for PinId {
    type Err = InvalidPinId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.strip_prefix(PIN_ID_PREFIX)
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
            .filter(|&number| number > 0)
            .map(PinId)
            .ok_or_else(|| InvalidPinId(text.to_owned()))
    }
}

impl Serialize for PinId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PinId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a pin holds.
#[derive(Debug, Clone, PartialEq)]
pub enum PinContent {
    /// A copy of a history item (a message), placed in the pin slot as it is.
    Item(ResponseItem),
    /// A note, placed in the pin slot as a developer message whose text is the note.
    Note(String),
}

/// One pin: its id and what it holds.
///
/// Its JSON is `{"id":"pin-1","kind":"item","item":{...}}` or
/// `{"id":"pin-2","kind":"note","text":"..."}`.
///
/// # Examples
///
/// ```
/// use compactor_protocol::{Pin, PinId, ResponseItem};
///
/// let note = Pin::note(PinId::from_number(2), "never touch vendor/");
/// assert_eq!(
///     serde_json::to_string(&note).unwrap(),
///     r#"{"id":"pin-2","kind":"note","text":"never touch vendor/"}"#
/// );
/// assert_eq!(note.history_item(), ResponseItem::developer_text("never touch vendor/"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Pin {
    /// The pin's id.
    pub id: PinId,
    /// What it holds.
    pub content: PinContent,
}

impl Pin {
    /// A pin of a copy of `item`.
    pub fn item(id: PinId, item: ResponseItem) -> Self {
        Self { id, content: PinContent::Item(item) }
    }

    /// A pinned note.
    pub fn note(id: PinId, text: impl Into<String>) -> Self {
        Self { id, content: PinContent::Note(text.into()) }
    }

    /// The item the pin puts in the pin slot: the pinned item as it is, or a developer message
    /// holding the note's text as it is.
    pub fn history_item(&self) -> ResponseItem {
        match &self.content {
            PinContent::Item(item) => item.clone(),
            PinContent::Note(text) => ResponseItem::developer_text(text.clone()),
        }
    }

    /// `item` or `note`.
    pub fn kind(&self) -> &'static str {
        match self.content {
            PinContent::Item(_) => "item",
            PinContent::Note(_) => "note",
        }
    }
}

/// The items `pins` put in the pin slot, in order.
pub fn pin_slot_items(pins: &[Pin]) -> Vec<ResponseItem> {
    pins.iter().map(Pin::history_item).collect()
}

/// The JSON shape of a pin, borrowed for writing.
#[derive(Serialize)]
struct PinOut<'a> {
    id: PinId,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    item: Option<&'a ResponseItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
}

/// The JSON shape of a pin, owned for reading.
#[derive(Deserialize)]
struct PinIn {
    id: PinId,
    kind: String,
    #[serde(default)]
    item: Option<ResponseItem>,
    #[serde(default)]
    text: Option<String>,
}

impl Serialize for Pin {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (item, text) = match &self.content {
            PinContent::Item(item) => (Some(item), None),
            PinContent::Note(text) => (None, Some(text.as_str())),
        };
        PinOut { id: self.id, kind: self.kind(), item, text }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let PinIn { id, kind, item, text } = PinIn::deserialize(deserializer)?;
        let content = match (kind.as_str(), item, text) {
            ("item", Some(item), _) => PinContent::Item(item),
            ("note", _, Some(text)) => PinContent::Note(text),
            ("item", None, _) => return Err(serde::de::Error::missing_field("item")),
            ("note", _, None) => return Err(serde::de::Error::missing_field("text")),
            (other, _, _) => {
                return Err(serde::de::Error::unknown_variant(other, &["item", "note"]));
            }
        };
        Ok(Pin { id, content })
    }
}

/// The payload of a `pins` rollout line: the session's pins after a change made between
/// compactions (a pin added or removed). The newest surviving record of the pins, this line or
/// a `compacted` payload's `pins`, is the session's pins on resume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PinsItem {
    /// Every pin of the session, in the order of the pin slot.
    #[serde(default)]
    pub pins: Vec<Pin>,
    /// Fields written by a newer version, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PinsItem {
    /// A record of `pins`.
    pub fn new(pins: Vec<Pin>) -> Self {
        Self { pins, extra: Map::new() }
    }
}

#[cfg(test)]
mod tests;
