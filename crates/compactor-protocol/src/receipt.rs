//! Compaction receipts: what a compaction did with every item of the history it started from,
//! and where the tokens it reported went (see D143 in docs/decisions.md).
//!
//! A successful compaction writes its receipt in its `compacted` payload, so the receipt is
//! installed atomically with the history it describes. A failed attempt's receipt is only an
//! event and analytics. A preview's receipt is marked [`ReceiptStatus::Preview`].

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::compaction::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionTrigger,
};
use crate::items::ResponseItem;
use crate::pins::PinId;

/// What a compaction did with one item of the history it started from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemOutcome {
    /// The item is in the new history as it was.
    KeptVerbatim,
    /// The item is in the new history, cut: a message cut to the retained budget, a tool output
    /// masked by `prune`, images replaced by placeholders.
    KeptTruncated,
    /// The item was trimmed from the history before the compaction request, to fit the window;
    /// the model never saw it.
    TrimmedBeforeSending,
    /// The model saw the item and it is not kept: the new compaction item or summary stands for
    /// it.
    Summarized,
    /// The item is gone, and no model saw it for this compaction (`prune` drops tool pairs; a
    /// summarization that overflowed dropped the oldest items).
    Dropped,
    /// The item is a pin, or the original of one: the pin slot keeps it.
    Pinned,
    /// An outcome written by a newer version.
    #[serde(other)]
    Other,
}

impl ItemOutcome {
    /// Every outcome a receipt counts, in the order of [`ReceiptTotals`].
    pub const ALL: [Self; 6] = [
        Self::KeptVerbatim,
        Self::KeptTruncated,
        Self::TrimmedBeforeSending,
        Self::Summarized,
        Self::Dropped,
        Self::Pinned,
    ];

    /// The snake_case name, as in JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Self::KeptVerbatim => "kept_verbatim",
            Self::KeptTruncated => "kept_truncated",
            Self::TrimmedBeforeSending => "trimmed_before_sending",
            Self::Summarized => "summarized",
            Self::Dropped => "dropped",
            Self::Pinned => "pinned",
            Self::Other => "other",
        }
    }
}

/// The receipt line of one input item.
///
/// The type and role of a modelled item, and the usual roles, are static strings: a receipt has
/// a line per item of the history, and copying the same few words into each cost more than the
/// rest of the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReceipt {
    /// The item's `type`.
    #[serde(rename = "type")]
    pub item_type: Cow<'static, str>,
    /// A message's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Cow<'static, str>>,
    /// What the compaction did with it.
    pub outcome: ItemOutcome,
    /// The item's estimated tokens.
    pub tokens: u64,
}

impl ItemReceipt {
    /// The line of `item`, which met `outcome` and counted `tokens`.
    pub fn of(item: &ResponseItem, outcome: ItemOutcome, tokens: u64) -> Self {
        let item_type = match item.modelled_type() {
            Some(name) => Cow::Borrowed(name),
            None => Cow::Owned(item.item_type().to_owned()),
        };
        let role = item.role().map(|role| match role {
            "user" => Cow::Borrowed("user"),
            "assistant" => Cow::Borrowed("assistant"),
            "developer" => Cow::Borrowed("developer"),
            "system" => Cow::Borrowed("system"),
            other => Cow::Owned(other.to_owned()),
        });
        Self { item_type, role, outcome, tokens }
    }
}

/// How many input items went one way, and their estimated tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryTotal {
    /// Input items.
    pub items: u64,
    /// Their estimated tokens.
    pub tokens: u64,
}

impl CategoryTotal {
    /// Adds one item of `tokens`.
    pub fn add(&mut self, tokens: u64) {
        self.items = self.items.saturating_add(1);
        self.tokens = self.tokens.saturating_add(tokens);
    }
}

/// Where the tokens a compaction reported as "before" went: one total per item outcome, the
/// instructions and the tool definitions sent with every request, and what is left
/// (`unattributed`), so that [`ReceiptTotals::sum`] equals the reported figure exactly.
///
/// `unattributed` is the difference between the reported figure (which starts from the token
/// count the server last reported) and the estimates of the rest; it is negative when the
/// server counted fewer tokens than the estimates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptTotals {
    /// Items kept as they were.
    pub kept_verbatim: CategoryTotal,
    /// Items kept cut.
    pub kept_truncated: CategoryTotal,
    /// Items trimmed before the request.
    pub trimmed_before_sending: CategoryTotal,
    /// Items the new compaction item or summary stands for.
    pub summarized: CategoryTotal,
    /// Items gone without a model seeing them.
    pub dropped: CategoryTotal,
    /// Pinned items.
    pub pinned: CategoryTotal,
    /// The estimated tokens of the base instructions.
    pub instructions: u64,
    /// The estimated tokens of the tool definitions.
    pub tools: u64,
    /// The reported figure less everything above; may be negative.
    pub unattributed: i64,
}

impl ReceiptTotals {
    /// The total of `outcome`, or `None` for [`ItemOutcome::Other`].
    pub fn category(&self, outcome: ItemOutcome) -> Option<&CategoryTotal> {
        match outcome {
            ItemOutcome::KeptVerbatim => Some(&self.kept_verbatim),
            ItemOutcome::KeptTruncated => Some(&self.kept_truncated),
            ItemOutcome::TrimmedBeforeSending => Some(&self.trimmed_before_sending),
            ItemOutcome::Summarized => Some(&self.summarized),
            ItemOutcome::Dropped => Some(&self.dropped),
            ItemOutcome::Pinned => Some(&self.pinned),
            ItemOutcome::Other => None,
        }
    }

    /// The total of `outcome`, mutably, or `None` for [`ItemOutcome::Other`].
    pub fn category_mut(&mut self, outcome: ItemOutcome) -> Option<&mut CategoryTotal> {
        match outcome {
            ItemOutcome::KeptVerbatim => Some(&mut self.kept_verbatim),
            ItemOutcome::KeptTruncated => Some(&mut self.kept_truncated),
            ItemOutcome::TrimmedBeforeSending => Some(&mut self.trimmed_before_sending),
            ItemOutcome::Summarized => Some(&mut self.summarized),
            ItemOutcome::Dropped => Some(&mut self.dropped),
            ItemOutcome::Pinned => Some(&mut self.pinned),
            ItemOutcome::Other => None,
        }
    }

    /// The estimated tokens of every item category, the instructions and the tools, without
    /// `unattributed`.
    pub fn attributed(&self) -> i128 {
        let items: i128 = ItemOutcome::ALL
            .iter()
            .filter_map(|outcome| self.category(*outcome))
            .map(|total| i128::from(total.tokens))
            .sum();
        items + i128::from(self.instructions) + i128::from(self.tools)
    }

    /// Every category plus `unattributed`: the "before" figure the receipt was made for.
    pub fn sum(&self) -> i128 {
        self.attributed() + i128::from(self.unattributed)
    }

    /// How many input items the totals count.
    pub fn items(&self) -> u64 {
        ItemOutcome::ALL
            .iter()
            .filter_map(|outcome| self.category(*outcome))
            .fold(0u64, |total, category| total.saturating_add(category.items))
    }
}

/// Whether a receipt describes an installed compaction, a failed attempt or a preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// The compaction was installed; the receipt is in its `compacted` payload.
    Completed,
    /// The attempt failed: nothing changed, and every item is kept verbatim.
    Failed,
    /// What the compaction would do; nothing was sent, installed or persisted.
    Preview,
    /// A status written by a newer version.
    #[serde(other)]
    Other,
}

/// Where a pin went in a compaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinPlacement {
    /// In the new history's pin slot, verbatim.
    PinSlot,
    /// Server-managed compaction: the pin was in the input the server compacted, and the server
    /// decided what to keep; it is not re-inserted.
    SentAsInput,
    /// Server-managed compaction: the pin was not in the input the server compacted (it was
    /// pinned after the last compaction), so it is not in the new history either.
    NotSent,
    /// A placement written by a newer version.
    #[serde(other)]
    Other,
}

/// One pin in a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinReceipt {
    /// The pin.
    pub id: PinId,
    /// Its estimated tokens in the pin slot.
    pub tokens: u64,
    /// Where it went.
    pub placement: PinPlacement,
}

/// What one compaction did: for each item of the history it started from, its outcome and
/// estimated tokens, the totals per category that add up to `tokens_before`, and where the pins
/// went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionReceipt {
    /// The compaction id (the `ContextCompaction` item's id, shared by a chain's attempts).
    pub compaction_id: String,
    /// The implementation that made (or would make, or failed to make) the compaction.
    pub implementation: CompactionImplementation,
    /// The 1-based position of `implementation` in the fallback chain.
    pub chain_position: u32,
    /// The length of the fallback chain (1 without one).
    pub chain_length: u32,
    /// Who asked.
    pub trigger: CompactionTrigger,
    /// Why.
    pub reason: CompactionReason,
    /// When.
    pub phase: CompactionPhase,
    /// Installed, failed or a preview.
    pub status: ReceiptStatus,
    /// A failed attempt's error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The id of the compaction request in the compaction's trace bundle, when traces are on.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The id of the response that answered the compaction request, when there was one.
    #[serde(default)]
    pub response_id: Option<String>,
    /// The context estimate the compaction reported before it ran.
    pub tokens_before: i64,
    /// The context estimate after it was installed (for a preview of `prune`, what it would be).
    #[serde(default)]
    pub tokens_after: Option<i64>,
    /// One entry per item of the history the compaction started from, in order.
    pub items: Vec<ItemReceipt>,
    /// Totals per category; they add up to `tokens_before`.
    pub totals: ReceiptTotals,
    /// The session's pins and where each went.
    #[serde(default)]
    pub pins: Vec<PinReceipt>,
}

impl CompactionReceipt {
    /// Whether the totals add up exactly to `tokens_before`.
    pub fn adds_up(&self) -> bool {
        self.totals.sum() == i128::from(self.tokens_before)
    }
}

#[cfg(test)]
mod tests;
