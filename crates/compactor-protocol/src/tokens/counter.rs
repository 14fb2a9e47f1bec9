//! [`TokenCounter`], the one way every estimate counts tokens (D120), and the labels a
//! `token_count` event carries with its figures: [`TokenCountAccuracy`] and
//! [`TokenCalibration`] (D123).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::length::json_structure_and_text;
use super::{
    approx_token_count, approx_tokens_from_byte_count, encrypted_blob_bytes, encrypted_state,
    estimate_item_tokens, with_images_estimated,
};
use crate::items::ResponseItem;

/// How tokens are counted: for the history, each item, the auto-compaction gate, trimming, the
/// retained budgets and the figures of analytics (D120).
///
/// Both counters keep the same rules for what a tokenizer cannot see: an encrypted payload counts
/// its decoded size minus a fixed overhead, an inline image a fixed estimate (or its patches for
/// `detail: "original"`), and the JSON structure around the text four bytes per token. They
/// differ in the text itself.
///
/// # Examples
///
/// ```
/// use compactor_protocol::tokens::TokenCounter;
///
/// assert_eq!(TokenCounter::Bytes4.text_tokens("hello world"), 3);
/// assert_eq!("o200k".parse::<TokenCounter>().unwrap(), TokenCounter::O200k);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCounter {
    /// Four bytes of UTF-8 per token, rounded up: the reference's heuristic (D35). Costs
    /// nothing, and is off by up to a factor of two on code and non-English text; the session
    /// calibrates it with the usage each response reports (D123).
    #[default]
    Bytes4,
    /// OpenAI's `o200k_base` encoding, token for token, for the text of every string value.
    ///
    /// Needs the crate's `o200k` feature; without it, this counter counts like
    /// [`TokenCounter::Bytes4`] and [`TokenCounter::is_available`] says so.
    O200k,
}

impl TokenCounter {
    /// Every counter, in the order help texts list them.
    pub const ALL: [TokenCounter; 2] = [TokenCounter::Bytes4, TokenCounter::O200k];

    /// The name used in configuration files, flags and events.
    pub fn name(self) -> &'static str {
        match self {
            TokenCounter::Bytes4 => "bytes4",
            TokenCounter::O200k => "o200k",
        }
    }

    /// Whether this build can count with it: `O200k` needs the `o200k` feature.
    pub fn is_available(self) -> bool {
        match self {
            TokenCounter::Bytes4 => true,
            TokenCounter::O200k => cfg!(feature = "o200k"),
        }
    }

    /// The counter that actually counts: `self` when available, else [`TokenCounter::Bytes4`].
    pub fn effective(self) -> TokenCounter {
        if self.is_available() { self } else { TokenCounter::Bytes4 }
    }

    /// Whether its text counts are a tokenizer's, not a heuristic's.
    pub fn is_exact(self) -> bool {
        match self.effective() {
            TokenCounter::Bytes4 => false,
            TokenCounter::O200k => true,
        }
    }

    /// The tokens of plain text (instructions, a message's text).
    pub fn text_tokens(self, text: &str) -> u64 {
        match self.effective() {
            TokenCounter::Bytes4 => approx_token_count(text),
            TokenCounter::O200k => o200k_text_tokens(text),
        }
    }

    /// The tokens one item adds to a request.
    ///
    /// Encrypted state counts as [`encrypted_blob_bytes`] at four bytes per token with either
    /// counter (see [`super::estimate_item_bytes`]), and an unknown item counts its raw JSON like
    /// any other item (D67). Otherwise
    /// `Bytes4` counts the item's JSON four bytes per token, and `O200k` counts the text of its
    /// string values with the tokenizer and the rest of its JSON four bytes per token; with both,
    /// an inline image counts [`image_estimate_bytes`](super::image_estimate_bytes) instead of its base64 payload (D122).
    pub fn item_tokens(self, item: &ResponseItem) -> u64 {
        match self.effective() {
            TokenCounter::Bytes4 => estimate_item_tokens(item),
            TokenCounter::O200k => match encrypted_state(item) {
                Some(blob) => approx_tokens_from_byte_count(encrypted_blob_bytes(blob.len())),
                None => {
                    let measured = json_structure_and_text(item, o200k_text_tokens);
                    let bytes = with_images_estimated(item, measured.structure_bytes);
                    measured.text_tokens.saturating_add(approx_tokens_from_byte_count(bytes))
                }
            },
        }
    }

    /// [`item_tokens`](Self::item_tokens) of `item` and the length of its compact JSON
    /// ([`json_len`](super::json_len)), measured in one pass where the counter reads that length
    /// anyway (`Bytes4` on an item that is not encrypted state).
    pub fn item_tokens_and_json_len(self, item: &ResponseItem) -> (u64, u64) {
        match self.effective() {
            TokenCounter::Bytes4 if encrypted_state(item).is_none() => {
                let len = super::json_len(item);
                (approx_tokens_from_byte_count(with_images_estimated(item, len)), len)
            }
            TokenCounter::Bytes4 | TokenCounter::O200k => {
                (self.item_tokens(item), super::json_len(item))
            }
        }
    }

    /// The tokens of any serializable value counted as an item's JSON is (tool specs, an unknown
    /// item a provider receives): structure at four bytes per token, string contents by
    /// [`TokenCounter::text_tokens`].
    pub fn json_tokens<T: Serialize + ?Sized>(self, value: &T) -> u64 {
        match self.effective() {
            TokenCounter::Bytes4 => approx_tokens_from_byte_count(super::json_len(value)),
            TokenCounter::O200k => {
                let measured = json_structure_and_text(value, o200k_text_tokens);
                measured
                    .text_tokens
                    .saturating_add(approx_tokens_from_byte_count(measured.structure_bytes))
            }
        }
    }

    /// `text_tokens(instructions) + Σ item_tokens`, saturating.
    pub fn history_tokens(self, instructions: &str, items: &[ResponseItem]) -> u64 {
        items.iter().fold(self.text_tokens(instructions), |total, item| {
            total.saturating_add(self.item_tokens(item))
        })
    }
}

impl fmt::Display for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`TokenCounter`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown token counter `{0}` (expected bytes4 or o200k)")]
pub struct UnknownTokenCounter(pub String);

impl FromStr for TokenCounter {
    type Err = UnknownTokenCounter;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TokenCounter::ALL
            .into_iter()
            .find(|counter| counter.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| UnknownTokenCounter(name.to_owned()))
    }
}

/// How far a `token_count` event's figures can be trusted (D123).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenCountAccuracy {
    /// Counted with a tokenizer ([`TokenCounter::O200k`]), with no correction applied.
    Exact,
    /// A heuristic ([`TokenCounter::Bytes4`]) not yet corrected by any reported usage.
    Estimated,
    /// Corrected by the ratio of the input tokens the server reported to the session's estimate.
    Calibrated,
}

/// The correction learned from reported usage: the ratio of the input tokens servers reported to
/// the input tokens the session estimated for the same content (D123).
///
/// Both figures are sums over the observations seen, each observation added to three quarters of
/// the past: a larger observation weighs more, and an old one fades. They are integers so the
/// rollout's `token_count` line restores the same ratio on resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCalibration {
    /// Reported input tokens, smoothed.
    pub reported_input_tokens: i64,
    /// The session's estimate of those requests' input, smoothed.
    pub estimated_input_tokens: i64,
}

impl TokenCalibration {
    /// The smallest ratio applied.
    pub const MIN_RATIO: f64 = 0.5;
    /// The largest ratio applied.
    pub const MAX_RATIO: f64 = 2.0;

    /// `previous` updated with one observation: content the session estimated at `estimated`
    /// tokens that the server reported at `reported`. An observation with no tokens on either
    /// side teaches nothing and leaves `previous` as it was.
    pub fn observe(previous: Option<Self>, reported: i64, estimated: i64) -> Option<Self> {
        if reported <= 0 || estimated <= 0 {
            return previous;
        }
        Some(match previous {
            None => Self { reported_input_tokens: reported, estimated_input_tokens: estimated },
            Some(previous) => Self {
                reported_input_tokens: decayed(previous.reported_input_tokens, reported),
                estimated_input_tokens: decayed(previous.estimated_input_tokens, estimated),
            },
        })
    }

    /// Reported over estimated, bounded to [`Self::MIN_RATIO`]..=[`Self::MAX_RATIO`].
    pub fn ratio(&self) -> f64 {
        if self.estimated_input_tokens <= 0 || self.reported_input_tokens <= 0 {
            return 1.0;
        }
        (self.reported_input_tokens as f64 / self.estimated_input_tokens as f64)
            .clamp(Self::MIN_RATIO, Self::MAX_RATIO)
    }

    /// `tokens` corrected by [`Self::ratio`], rounded to the nearest token.
    pub fn apply(&self, tokens: u64) -> u64 {
        let ratio = self.ratio();
        if ratio == 1.0 {
            return tokens;
        }
        // f64 holds every count below 2^53 exactly; beyond that the rounding is immaterial.
        (tokens as f64 * ratio).round() as u64
    }
}

/// How much of the past a new observation keeps: `past - past / DECAY + new`.
const DECAY: i64 = 4;

/// `past` faded by a quarter, plus `new`, saturating.
fn decayed(past: i64, new: i64) -> i64 {
    (past - past / DECAY).saturating_add(new)
}

#[cfg(feature = "o200k")]
fn o200k_text_tokens(text: &str) -> u64 {
    super::o200k::count(text)
}

/// Without the tokenizer, `O200k` counts as `Bytes4` does ([`TokenCounter::effective`]); this
/// is never reached, and stays correct if it were.
#[cfg(not(feature = "o200k"))]
fn o200k_text_tokens(text: &str) -> u64 {
    approx_token_count(text)
}

#[cfg(test)]
mod tests;
