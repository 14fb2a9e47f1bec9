//! Persisted session records: rollout lines, compaction records and turn settings (D23, D25).

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::events::EventMsg;
use crate::items::ResponseItem;
use crate::pins::{Pin, PinsItem};
use crate::receipt::CompactionReceipt;

/// The record of one installed compaction.
///
/// `replacement_history` is the complete new history; a legacy record without it is rebuilt on
/// resume from the user messages and `message`.
///
/// `pins` and `receipt` are fields a reader that predates them keeps among its unknown fields
/// and ignores: the history never depends on them, since the pinned items are in
/// `replacement_history` already (D141 in docs/decisions.md). They are read tolerantly: a value
/// of a shape this version cannot read is left out rather than making the line unreadable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactedItem {
    /// The local summary text (prefix + summary); `""` for remote compactions.
    #[serde(default)]
    pub message: String,
    /// The complete history after the compaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement_history: Option<Vec<ResponseItem>>,
    /// The session's pins when the compaction was installed; absent when it had none.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "tolerant")]
    pub pins: Option<Vec<Pin>>,
    /// What the compaction did (D143 in docs/decisions.md).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "tolerant")]
    pub receipt: Option<Box<CompactionReceipt>>,
    /// Fields written by a newer version, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CompactedItem {
    /// A record of a compaction that installed `replacement_history`.
    pub fn new(message: impl Into<String>, replacement_history: Vec<ResponseItem>) -> Self {
        Self {
            message: message.into(),
            replacement_history: Some(replacement_history),
            pins: None,
            receipt: None,
            extra: Map::new(),
        }
    }
}

/// Reads an optional field, leaving it out when its value has a shape this version cannot read.
fn tolerant<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: for<'a> Deserialize<'a>,
{
    let value = Option::<Value>::deserialize(deserializer)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
}

/// The settings baseline of a turn, persisted so a resumed session can emit the same diffs.
///
/// Read tolerantly, like [`SessionMeta`]: a field whose value has another type than Compactor's
/// (another harness's `summary` object, a `null`) is kept in `extra` and written back.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TurnContextItem {
    /// The turn's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_id: Option<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The date the harness told the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_date: Option<String>,
    /// The time zone the harness told the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// The model slug.
    #[serde(default)]
    pub model: String,
    /// The personality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    /// Reasoning effort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    /// Reasoning summary setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// User instructions (AGENTS.md and similar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_instructions: Option<String>,
    /// Developer instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer_instructions: Option<String>,
    /// The final output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_output_json_schema: Option<Value>,
    /// Whether a realtime conversation is active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_active: Option<bool>,
    /// Fields written by a newer version or another harness, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The first line of a rollout: who wrote it and for which thread.
///
/// Read tolerantly (D113): only `id` must be a string. A field whose value has another type
/// than Compactor's is kept in `extra` as it came and written back, so Codex's
/// `base_instructions` object (`{"text": ..., "provenance": ...}`) survives; read the
/// instructions with [`SessionMeta::base_instructions_text`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionMeta {
    /// The thread id.
    pub id: String,
    /// When the session started (UTC, RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The program that wrote the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub originator: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cli_version: Option<String>,
    /// The model provider's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_provider: Option<String>,
    /// The base instructions of the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_instructions: Option<String>,
    /// The thread this one was forked from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from_id: Option<String>,
    /// Fields written by a newer version, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl SessionMeta {
    /// The base instructions: the string Compactor writes, or the `text` of the object Codex
    /// writes.
    pub fn base_instructions_text(&self) -> Option<&str> {
        self.base_instructions
            .as_deref()
            .or_else(|| self.extra.get("base_instructions")?.get("text")?.as_str())
    }
}

impl<'de> Deserialize<'de> for SessionMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Fields(Map::deserialize(deserializer)?);
        let id = fields.take("id").ok_or_else(|| de::Error::missing_field("id"))?;
        Ok(Self {
            id,
            timestamp: fields.take("timestamp"),
            cwd: fields.take("cwd"),
            originator: fields.take("originator"),
            cli_version: fields.take("cli_version"),
            model_provider: fields.take("model_provider"),
            base_instructions: fields.take("base_instructions"),
            forked_from_id: fields.take("forked_from_id"),
            extra: fields.0,
        })
    }
}

impl<'de> Deserialize<'de> for TurnContextItem {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Fields(Map::deserialize(deserializer)?);
        Ok(Self {
            turn_id: fields.take("turn_id"),
            cwd: fields.take("cwd"),
            current_date: fields.take("current_date"),
            timezone: fields.take("timezone"),
            model: fields.take("model").unwrap_or_default(),
            personality: fields.take("personality"),
            effort: fields.take("effort"),
            summary: fields.take("summary"),
            user_instructions: fields.take("user_instructions"),
            developer_instructions: fields.take("developer_instructions"),
            final_output_json_schema: fields.take("final_output_json_schema"),
            realtime_active: fields.take("realtime_active"),
            extra: fields.0,
        })
    }
}

/// The fields of a payload read one by one: a field that reads as its type is taken out, one
/// that does not stays, to be kept as an unmodelled field and written back as it came.
struct Fields(Map<String, Value>);

impl Fields {
    fn take<T: for<'a> Deserialize<'a>>(&mut self, key: &str) -> Option<T> {
        let value = T::deserialize(self.0.get(key)?).ok()?;
        self.0.shift_remove(key);
        Some(value)
    }
}

/// What one rollout line records.
#[derive(Debug, Clone, PartialEq)]
pub enum RolloutItem {
    /// `session_meta`.
    SessionMeta(SessionMeta),
    /// `response_item`.
    ResponseItem(ResponseItem),
    /// `compacted`.
    Compacted(CompactedItem),
    /// `turn_context`.
    TurnContext(TurnContextItem),
    /// `event_msg`.
    EventMsg(EventMsg),
    /// `pins`: the session's pins after they changed between compactions.
    Pins(PinsItem),
    /// A line type this version does not know, kept as it was and ignored by reconstruction.
    Unknown {
        /// The line's `type`.
        kind: String,
        /// The line's `payload`, when it had one.
        payload: Option<Value>,
    },
}

impl RolloutItem {
    /// The line's `type`.
    pub fn kind(&self) -> &str {
        match self {
            RolloutItem::SessionMeta(_) => "session_meta",
            RolloutItem::ResponseItem(_) => "response_item",
            RolloutItem::Compacted(_) => "compacted",
            RolloutItem::TurnContext(_) => "turn_context",
            RolloutItem::EventMsg(_) => "event_msg",
            RolloutItem::Pins(_) => "pins",
            RolloutItem::Unknown { kind, .. } => kind,
        }
    }
}

/// One line of a rollout: `{"timestamp":...,"type":...,"payload":...}`.
///
/// The timestamp is UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`. Top-level fields other than these three are
/// kept in `extra` and written back after them.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutLine {
    /// When the line was written.
    pub timestamp: String,
    /// What it records.
    pub item: RolloutItem,
    /// Top-level fields written by a newer version.
    pub extra: Map<String, Value>,
}

impl RolloutLine {
    /// A line with no extra fields.
    pub fn new(timestamp: impl Into<String>, item: RolloutItem) -> Self {
        Self { timestamp: timestamp.into(), item, extra: Map::new() }
    }
}

impl Serialize for RolloutLine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("type", self.item.kind())?;
        match &self.item {
            RolloutItem::SessionMeta(meta) => map.serialize_entry("payload", meta)?,
            RolloutItem::ResponseItem(item) => map.serialize_entry("payload", item)?,
            RolloutItem::Compacted(compacted) => map.serialize_entry("payload", compacted)?,
            RolloutItem::TurnContext(ctx) => map.serialize_entry("payload", ctx)?,
            RolloutItem::EventMsg(event) => map.serialize_entry("payload", event)?,
            RolloutItem::Pins(pins) => map.serialize_entry("payload", pins)?,
            RolloutItem::Unknown { payload: Some(payload), .. } => {
                map.serialize_entry("payload", payload)?;
            }
            RolloutItem::Unknown { payload: None, .. } => {}
        }
        for (key, value) in &self.extra {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for RolloutLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let envelope = deserializer.deserialize_map(EnvelopeVisitor)?;
        envelope.into_line().map_err(|err| de::Error::custom(err.message))
    }
}

impl RolloutLine {
    /// Reads one complete line of a rollout (without its `\n`), saying why when it cannot.
    ///
    /// This is the one rule for a damaged line, whatever damaged it: the reader skips and reports
    /// every line this returns an error for (D50). A line of a known type whose payload lacks a field
    /// Compactor needs is [`LineDamage::UnreadablePayload`]; a line of an unknown type is never
    /// an error, it is kept as [`RolloutItem::Unknown`].
    ///
    /// # Errors
    ///
    /// A [`LineError`] naming the damage and, when it can be read or recognized, the line's
    /// `type`.
    ///
    /// # Examples
    ///
    /// ```
    /// use compactor_protocol::{LineDamage, RolloutLine};
    ///
    /// let line = br#"{"timestamp":"t","type":"compacted","payload":{"replacement_history":7}}"#;
    /// let err = RolloutLine::parse(line).unwrap_err();
    /// assert_eq!(err.damage, LineDamage::UnreadablePayload);
    /// assert_eq!(err.kind.as_deref(), Some("compacted"));
    ///
    /// let torn = br#"{"timestamp":"t","type":"compacted","payl{"timestamp":"u"}"#;
    /// let err = RolloutLine::parse(torn).unwrap_err();
    /// assert_eq!(err.damage, LineDamage::NotJson);
    /// assert_eq!(err.kind.as_deref(), Some("compacted"));
    /// ```
    pub fn parse(line: &[u8]) -> Result<Self, LineError> {
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        let envelope = deserializer
            .deserialize_map(EnvelopeVisitor)
            .and_then(|envelope| deserializer.end().map(|()| envelope))
            .map_err(|err| LineError {
                damage: match err.classify() {
                    serde_json::error::Category::Data => LineDamage::NotRolloutLine,
                    serde_json::error::Category::Io
                    | serde_json::error::Category::Syntax
                    | serde_json::error::Category::Eof => LineDamage::NotJson,
                },
                kind: recognize_kind(line),
                message: err.to_string(),
            })?;
        envelope.into_line()
    }
}

/// Why a complete rollout line cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineDamage {
    /// The line is not JSON: bit rot, a hand edit, or two writers interleaving.
    NotJson,
    /// The line is JSON but not a rollout line: not an object, or without `timestamp` or `type`.
    NotRolloutLine,
    /// A line of a known type whose payload is missing, or lacks a field Compactor needs in a
    /// shape it can read.
    UnreadablePayload,
}

/// A complete rollout line that cannot be read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LineError {
    /// What is wrong with it.
    pub damage: LineDamage,
    /// The line's `type`: read from the line when it is JSON, otherwise recognized from its
    /// first bytes (a writer puts `type` right after `timestamp`), when it can be.
    pub kind: Option<String>,
    /// The parser's message; it quotes no content of the line.
    pub message: String,
}

/// The three fields of a rollout line, its payload still raw.
struct Envelope {
    timestamp: String,
    kind: String,
    payload: Option<Box<RawValue>>,
    extra: Map<String, Value>,
}

impl Envelope {
    fn into_line(self) -> Result<RolloutLine, LineError> {
        let Envelope { timestamp, kind, payload, extra } = self;
        let item = parse_item(kind, payload.as_deref())?;
        Ok(RolloutLine { timestamp, item, extra })
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rollout line object with `timestamp`, `type` and `payload`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Envelope, A::Error> {
        let mut timestamp: Option<String> = None;
        let mut kind: Option<String> = None;
        // The payload is kept raw until the type is known, so it is parsed once, straight into
        // its typed form, whatever the key order.
        let mut payload: Option<Box<RawValue>> = None;
        let mut extra = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match key.as_str() {
                "timestamp" => timestamp = Some(access.next_value()?),
                "type" => kind = Some(access.next_value()?),
                "payload" => payload = Some(access.next_value()?),
                _ => {
                    let value: Value = access.next_value()?;
                    extra.insert(key, value);
                }
            }
        }
        let timestamp = timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?;
        let kind = kind.ok_or_else(|| de::Error::missing_field("type"))?;
        Ok(Envelope { timestamp, kind, payload, extra })
    }
}

fn parse_item(kind: String, payload: Option<&RawValue>) -> Result<RolloutItem, LineError> {
    fn typed<T: for<'a> Deserialize<'a>>(
        kind: &str,
        payload: Option<&RawValue>,
    ) -> Result<T, LineError> {
        let unreadable = |message: String| LineError {
            damage: LineDamage::UnreadablePayload,
            kind: Some(kind.to_owned()),
            message,
        };
        let raw = payload.ok_or_else(|| unreadable(format!("`{kind}` line without payload")))?;
        serde_json::from_str(raw.get())
            .map_err(|err| unreadable(format!("invalid `{kind}` payload: {err}")))
    }
    Ok(match kind.as_str() {
        "session_meta" => RolloutItem::SessionMeta(typed(&kind, payload)?),
        "response_item" => RolloutItem::ResponseItem(typed(&kind, payload)?),
        "compacted" => RolloutItem::Compacted(typed(&kind, payload)?),
        "turn_context" => RolloutItem::TurnContext(typed(&kind, payload)?),
        "event_msg" => RolloutItem::EventMsg(typed(&kind, payload)?),
        "pins" => RolloutItem::Pins(typed(&kind, payload)?),
        _ => {
            let payload = match payload.map(|raw| serde_json::from_str(raw.get())).transpose() {
                Ok(payload) => payload,
                Err(err) => {
                    return Err(LineError {
                        damage: LineDamage::UnreadablePayload,
                        kind: Some(kind),
                        message: err.to_string(),
                    });
                }
            };
            RolloutItem::Unknown { kind, payload }
        }
    })
}

/// How far into a line that is not JSON its `type` is looked for.
const RECOGNIZE_WINDOW: usize = 160;

/// The `type` of a line that cannot be parsed, when its first bytes still show it: the first
/// `"type":"<name>"` whose name is a plain identifier.
fn recognize_kind(line: &[u8]) -> Option<String> {
    const KEY: &[u8] = b"\"type\":\"";
    let window = &line[..line.len().min(RECOGNIZE_WINDOW)];
    let start = window.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &line[start..];
    let len = rest.iter().position(|&b| b == b'"')?;
    let name = &rest[..len];
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    plain.then(|| String::from_utf8_lossy(name).into_owned())
}

#[cfg(test)]
mod tests;
