//! Keyed 128-bit fingerprints of items, so that a client can remember what it sent without
//! keeping a copy of it (D130).
//!
//! Two items that compare equal (`==`) have the same [`Fingerprint`] under the same key. Two that
//! differ get different fingerprints except with a probability of about 2^-128 per pair, as long
//! as whoever writes the items does not know the key: the hash is SipHash-1-3 with 128-bit output,
//! keyed with a secret the caller draws ([`FingerprintKey::new`]).
//!
//! The fingerprint follows `PartialEq` exactly, not the JSON text: the variant and every field
//! count, in order, with the presence of optional fields; JSON objects inside items count as
//! unordered (as `serde_json::Map` compares them), and a JSON number counts as what it is (an
//! unsigned or negative integer, or a float, with `0.0 == -0.0`).

use std::hash::Hasher;

use serde_json::{Map, Value};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::items::{
    ContentItem, LocalShellAction, MessagePhase, PartKind, ReasoningContent, ReasoningSummary,
    ResponseItem, ToolOutput, Unmodelled, WebSearchAction,
};

/// The secret key of [`ResponseItem::fingerprint`]; draw it at random, once per baseline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FingerprintKey {
    k0: u64,
    k1: u64,
}

impl FingerprintKey {
    /// A key made of two 64-bit halves, which the caller draws from a random source.
    pub fn new(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    fn hasher(self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: its value is never printed.
        f.write_str("FingerprintKey(..)")
    }
}

/// What an item is, in 24 bytes: a keyed 128-bit hash of its fields, and how many bytes of text
/// went into it (a second, independent check that costs nothing to keep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    hash: [u64; 2],
    text_bytes: u64,
}

impl Fingerprint {
    /// The bytes of strings (texts, ids, keys) the item holds.
    pub fn text_bytes(&self) -> u64 {
        self.text_bytes
    }
}

impl ResponseItem {
    /// This item's fingerprint under `key`: equal items have equal fingerprints (D130).
    pub fn fingerprint(&self, key: FingerprintKey) -> Fingerprint {
        let mut feed = Feed::new(key);
        feed.item(self);
        feed.finish()
    }
}

/// A hasher and the count of text bytes fed to it.
struct Feed {
    key: FingerprintKey,
    hasher: SipHasher13,
    text_bytes: u64,
}

impl Feed {
    fn new(key: FingerprintKey) -> Self {
        Self { key, hasher: key.hasher(), text_bytes: 0 }
    }

    fn finish(&self) -> Fingerprint {
        let (h0, h1) = self.hasher.finish128().as_u64();
        Fingerprint { hash: [h0, h1], text_bytes: self.text_bytes }
    }

    fn tag(&mut self, tag: u8) {
        self.hasher.write_u8(tag);
    }

    fn len(&mut self, len: usize) {
        self.hasher.write_u64(len as u64);
    }

    /// A string, prefixed with its length so that consecutive strings cannot run together.
    fn str(&mut self, text: &str) {
        self.len(text.len());
        self.hasher.write(text.as_bytes());
        self.text_bytes += text.len() as u64;
    }

    fn opt_str(&mut self, text: Option<&str>) {
        match text {
            None => self.tag(0),
            Some(text) => {
                self.tag(1);
                self.str(text);
            }
        }
    }

    fn strs(&mut self, texts: &[String]) {
        self.len(texts.len());
        for text in texts {
            self.str(text);
        }
    }

    fn item(&mut self, item: &ResponseItem) {
        match item {
            ResponseItem::Message { id, role, content, phase, extra } => {
                self.tag(1);
                self.opt_str(id.as_deref());
                self.str(role);
                self.parts(content);
                match phase {
                    None => self.tag(0),
                    Some(MessagePhase::Commentary) => self.tag(1),
                    Some(MessagePhase::FinalAnswer) => self.tag(2),
                }
                self.unmodelled(extra);
            }
            ResponseItem::Reasoning { id, summary, content, encrypted_content } => {
                self.tag(2);
                self.opt_str(id.as_deref());
                self.len(summary.len());
                for ReasoningSummary::SummaryText { text } in summary {
                    self.str(text);
                }
                match content {
                    None => self.tag(0),
                    Some(parts) => {
                        self.tag(1);
                        self.len(parts.len());
                        for part in parts {
                            match part {
                                ReasoningContent::ReasoningText { text } => {
                                    self.tag(1);
                                    self.str(text);
                                }
                                ReasoningContent::Text { text } => {
                                    self.tag(2);
                                    self.str(text);
                                }
                            }
                        }
                    }
                }
                self.opt_str(encrypted_content.as_deref());
            }
            ResponseItem::LocalShellCall { id, call_id, status, action } => {
                self.tag(3);
                self.opt_str(id.as_deref());
                self.opt_str(call_id.as_deref());
                self.str(status);
                let LocalShellAction::Exec { command, timeout_ms, working_directory, env, user } =
                    action.as_ref();
                self.strs(command);
                match timeout_ms {
                    None => self.tag(0),
                    Some(ms) => {
                        self.tag(1);
                        self.hasher.write_u64(*ms);
                    }
                }
                self.opt_str(working_directory.as_deref());
                match env {
                    None => self.tag(0),
                    Some(env) => {
                        self.tag(1);
                        self.object(env);
                    }
                }
                self.opt_str(user.as_deref());
            }
            ResponseItem::FunctionCall { id, name, namespace, arguments, call_id } => {
                self.tag(4);
                self.opt_str(id.as_deref());
                self.str(name);
                self.opt_str(namespace.as_deref());
                self.str(arguments);
                self.str(call_id);
            }
            ResponseItem::ToolSearchCall { id, call_id, status, execution, arguments } => {
                self.tag(5);
                self.opt_str(id.as_deref());
                self.opt_str(call_id.as_deref());
                self.opt_str(status.as_deref());
                self.str(execution);
                self.value(arguments);
            }
            ResponseItem::FunctionCallOutput { call_id, output } => {
                self.tag(6);
                self.str(call_id);
                self.output(output);
            }
            ResponseItem::CustomToolCall { id, status, call_id, name, input } => {
                self.tag(7);
                self.opt_str(id.as_deref());
                self.opt_str(status.as_deref());
                self.str(call_id);
                self.str(name);
                self.str(input);
            }
            ResponseItem::CustomToolCallOutput { call_id, name, output } => {
                self.tag(8);
                self.str(call_id);
                self.opt_str(name.as_deref());
                self.output(output);
            }
            ResponseItem::ToolSearchOutput { call_id, status, execution, tools } => {
                self.tag(9);
                self.opt_str(call_id.as_deref());
                self.str(status);
                self.str(execution);
                self.len(tools.len());
                for tool in tools {
                    self.value(tool);
                }
            }
            ResponseItem::WebSearchCall { id, status, action } => {
                self.tag(10);
                self.opt_str(id.as_deref());
                self.opt_str(status.as_deref());
                match action {
                    None => self.tag(0),
                    Some(WebSearchAction::Search { query, queries }) => {
                        self.tag(1);
                        self.opt_str(query.as_deref());
                        match queries {
                            None => self.tag(0),
                            Some(queries) => {
                                self.tag(1);
                                self.strs(queries);
                            }
                        }
                    }
                    Some(WebSearchAction::OpenPage { url }) => {
                        self.tag(2);
                        self.opt_str(url.as_deref());
                    }
                    Some(WebSearchAction::FindInPage { url, pattern }) => {
                        self.tag(3);
                        self.opt_str(url.as_deref());
                        self.opt_str(pattern.as_deref());
                    }
                    Some(WebSearchAction::Unknown(raw)) => {
                        self.tag(4);
                        self.value(raw);
                    }
                }
            }
            ResponseItem::ImageGenerationCall { id, status, revised_prompt, result } => {
                self.tag(11);
                self.str(id);
                self.str(status);
                self.opt_str(revised_prompt.as_deref());
                self.str(result);
            }
            ResponseItem::Compaction { id, encrypted_content, created_by } => {
                self.tag(12);
                self.opt_str(id.as_deref());
                self.str(encrypted_content);
                self.opt_str(created_by.as_deref());
            }
            ResponseItem::ContextCompaction { id, encrypted_content } => {
                self.tag(13);
                self.opt_str(id.as_deref());
                self.opt_str(encrypted_content.as_deref());
            }
            ResponseItem::CompactionTrigger => self.tag(14),
            ResponseItem::Unknown(raw) => {
                self.tag(15);
                self.value(raw);
            }
        }
    }

    /// What a message keeps beyond its modelled fields, as `==` compares it: the unmodelled
    /// fields as an unordered set, the original key orders, the two flags, and the parts' leftovers
    /// in order.
    fn unmodelled(&mut self, extra: &Unmodelled) {
        let Some(leftovers) = extra.leftovers() else {
            self.tag(0);
            return;
        };
        self.tag(1);
        self.object(&leftovers.fields);
        self.order(leftovers.order.as_deref());
        self.tag(u8::from(leftovers.typeless));
        self.tag(u8::from(leftovers.string_content));
        self.len(leftovers.parts.len());
        for part in &leftovers.parts {
            self.len(part.index);
            self.tag(match part.kind {
                PartKind::InputText => 1,
                PartKind::OutputText => 2,
                PartKind::InputImage => 3,
            });
            self.object(&part.fields);
            self.order(part.order.as_deref());
        }
    }

    fn order(&mut self, order: Option<&[String]>) {
        match order {
            None => self.tag(0),
            Some(keys) => {
                self.tag(1);
                self.strs(keys);
            }
        }
    }

    fn parts(&mut self, parts: &[ContentItem]) {
        self.len(parts.len());
        for part in parts {
            match part {
                ContentItem::InputText { text } => {
                    self.tag(1);
                    self.str(text);
                }
                ContentItem::InputImage { image_url, detail } => {
                    self.tag(2);
                    self.str(image_url);
                    self.opt_str(detail.as_deref());
                }
                ContentItem::OutputText { text } => {
                    self.tag(3);
                    self.str(text);
                }
                ContentItem::Unknown(raw) => {
                    self.tag(4);
                    self.value(raw);
                }
            }
        }
    }

    fn output(&mut self, output: &ToolOutput) {
        match output {
            ToolOutput::Text(text) => {
                self.tag(1);
                self.str(text);
            }
            ToolOutput::Content(parts) => {
                self.tag(2);
                self.parts(parts);
            }
        }
    }

    fn value(&mut self, value: &Value) {
        match value {
            Value::Null => self.tag(0),
            Value::Bool(flag) => {
                self.tag(1);
                self.hasher.write_u8(u8::from(*flag));
            }
            Value::Number(number) => {
                // serde_json keeps a number as exactly one of these three, and compares numbers
                // of different kinds as unequal.
                if let Some(n) = number.as_u64() {
                    self.tag(2);
                    self.hasher.write_u64(n);
                } else if let Some(n) = number.as_i64() {
                    self.tag(3);
                    self.hasher.write_i64(n);
                } else {
                    self.tag(4);
                    let float = number.as_f64().unwrap_or_default();
                    // `0.0 == -0.0`: both hash as `0.0`.
                    let float = if float == 0.0 { 0.0f64 } else { float };
                    self.hasher.write_u64(float.to_bits());
                }
            }
            Value::String(text) => {
                self.tag(5);
                self.str(text);
            }
            Value::Array(values) => {
                self.tag(6);
                self.len(values.len());
                for value in values {
                    self.value(value);
                }
            }
            Value::Object(object) => {
                self.tag(7);
                self.object(object);
            }
        }
    }

    /// An object as an unordered set of entries: each entry is hashed on its own with the same
    /// key, and the entry hashes are added up, so the order of the keys does not count.
    fn object(&mut self, object: &Map<String, Value>) {
        let mut sum = 0u128;
        for (key, value) in object {
            let mut entry = Feed::new(self.key);
            entry.str(key);
            entry.value(value);
            let print = entry.finish();
            let hash = (u128::from(print.hash[0]) << 64) | u128::from(print.hash[1]);
            sum = sum.wrapping_add(hash);
            self.text_bytes += print.text_bytes;
        }
        self.len(object.len());
        self.hasher.write_u128(sum);
    }
}

#[cfg(test)]
mod tests;
