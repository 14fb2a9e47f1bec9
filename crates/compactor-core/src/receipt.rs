//! Compaction receipts (D143): what an attempt did with every item of the history it started
//! from, built from the facts its implementation reports.

use std::sync::Arc;

use compactor_analytics::ChainPosition;
use compactor_engine::{
    HistoryCounts, ReceiptInput, ReceiptTokens, Sent, account_items_counted, unchanged_items,
};
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionReceipt,
    CompactionTrigger, CompactorError, PinPlacement, PinReceipt, ReceiptStatus, ResponseItem,
};

use crate::pins::PinsAtStart;
use crate::session::Session;

/// Which history items a compaction request carried, as an implementation reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentItems {
    /// No model was asked (`prune`).
    Nothing,
    /// Every item of the (trimmed) history (v2, v1, server-managed).
    All,
    /// The prepared input history (local: the history less what an overflow dropped).
    Input,
}

/// What an implementation reports for its receipt, besides the histories.
#[derive(Debug, Clone, Default)]
pub(crate) struct ReceiptFacts {
    /// What a model was sent.
    pub(crate) sent: Option<SentItems>,
    /// Whether the input history is the session's history trimmed to fit the window.
    pub(crate) trimmed: bool,
    /// The trimmed history, when what was sent is less than it (v2 after the server refused
    /// its request as over the window): the receipt tells what trimming took from what the
    /// overflow dropped.
    pub(crate) trimmed_history: Option<Arc<Vec<ResponseItem>>>,
    /// How many trailing items of the new history the compaction produced.
    pub(crate) produced: usize,
    /// The id of the response that answered the compaction request.
    pub(crate) response_id: Option<String>,
}

/// What one compaction attempt is, for its receipt.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiptHeader<'a> {
    pub(crate) compaction_id: &'a str,
    pub(crate) implementation: CompactionImplementation,
    pub(crate) chain: ChainPosition,
    pub(crate) trigger: CompactionTrigger,
    pub(crate) reason: CompactionReason,
    pub(crate) phase: CompactionPhase,
    pub(crate) tokens_before: i64,
}

/// The histories a receipt compares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReceiptHistories<'a> {
    /// The session's history when the compaction started.
    pub(crate) history: &'a [ResponseItem],
    /// Its cached counts, when the caller has them (D124).
    pub(crate) counts: Option<&'a HistoryCounts>,
    /// The history the implementation worked on (trimmed, or less what an overflow dropped).
    pub(crate) input: &'a [ResponseItem],
    /// The new history, pin slot included.
    pub(crate) new_history: &'a [ResponseItem],
}

impl ReceiptHeader<'_> {
    fn receipt(&self, status: ReceiptStatus) -> CompactionReceipt {
        CompactionReceipt {
            compaction_id: self.compaction_id.to_owned(),
            implementation: self.implementation,
            chain_position: self.chain.position(),
            chain_length: self.chain.length(),
            trigger: self.trigger,
            reason: self.reason,
            phase: self.phase,
            status,
            error: None,
            request_id: None,
            response_id: None,
            tokens_before: self.tokens_before,
            tokens_after: None,
            items: Vec::new(),
            totals: Default::default(),
            pins: Vec::new(),
        }
    }
}

impl Session {
    /// The figures a receipt's totals add up to: `tokens_before`, with the session's
    /// instructions and tool definitions, all counted with the session's counter (D120).
    fn receipt_tokens(&self, tokens_before: i64) -> ReceiptTokens {
        let counter = self.inner.config.tokens.counter;
        ReceiptTokens {
            counter,
            before: tokens_before,
            instructions: counter.text_tokens(&self.inner.config.base_instructions),
            tools: self.inner.tool_tokens,
        }
    }

    /// The receipt of a compaction that made (or, for a preview, would make) `histories`.
    pub(crate) fn compaction_receipt(
        &self,
        header: &ReceiptHeader<'_>,
        status: ReceiptStatus,
        histories: &ReceiptHistories<'_>,
        facts: &ReceiptFacts,
        pins: &PinsAtStart,
    ) -> CompactionReceipt {
        let server_managed = header.implementation == CompactionImplementation::ServerManaged;
        let pinned: &[ResponseItem] = if server_managed { &[] } else { &pins.items };
        let sent = match facts.sent {
            None | Some(SentItems::Nothing) => Sent::Nothing,
            Some(SentItems::All) => Sent::All,
            Some(SentItems::Input) => Sent::Only(histories.input),
        };
        let input = ReceiptInput {
            history: histories.history,
            pinned,
            trimmed: match &facts.trimmed_history {
                Some(trimmed) => Some(trimmed.as_slice()),
                None => facts.trimmed.then_some(histories.input),
            },
            sent,
            new_history: histories.new_history,
            new_pin_slot: pinned.len(),
            produced: facts.produced,
        };
        let tokens = self.receipt_tokens(header.tokens_before);
        let (items, totals) = account_items_counted(&input, &tokens, histories.counts);
        let pins = pins
            .pins
            .iter()
            .zip(&pins.items)
            .map(|(pin, item)| PinReceipt {
                id: pin.id,
                tokens: tokens.counter.item_tokens(item),
                placement: if !server_managed {
                    PinPlacement::PinSlot
                } else if histories.history.iter().any(|old| old == item) {
                    PinPlacement::SentAsInput
                } else {
                    PinPlacement::NotSent
                },
            })
            .collect();
        CompactionReceipt {
            response_id: facts.response_id.clone(),
            items,
            totals,
            pins,
            ..header.receipt(status)
        }
    }

    /// The receipt of a failed attempt: nothing changed, so every item is kept verbatim.
    pub(crate) fn failed_receipt(
        &self,
        header: &ReceiptHeader<'_>,
        history: &[ResponseItem],
        counts: &HistoryCounts,
        error: &CompactorError,
    ) -> CompactionReceipt {
        let tokens = self.receipt_tokens(header.tokens_before);
        let (items, totals) = unchanged_items(history, &tokens, Some(counts));
        CompactionReceipt {
            error: Some(error.to_string()),
            tokens_after: Some(header.tokens_before),
            items,
            totals,
            ..header.receipt(ReceiptStatus::Failed)
        }
    }
}
