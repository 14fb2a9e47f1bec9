//! Pins (D140, D141): the session API that sets them, and what a compaction does with them.

use std::borrow::Borrow;

use compactor_engine::{pin_copy, pinned_tokens, same_content, without_pinned};
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{
    CompactorError, ContentItem, Pin, PinContent, PinId, PinsItem, ResponseItem, RolloutItem,
    pin_slot_items,
};

use crate::session::Session;

impl Session {
    /// Pins a copy of `item`, a message: every compaction from now on keeps it verbatim in the
    /// pin slot at the head of the compacted history (D140). The copy does not carry the
    /// original's `id`. Returns the new pin's id.
    ///
    /// The pin is recorded (a `pins` rollout line, synced) before this returns. It takes effect
    /// at the next compaction; until then the history is unchanged.
    ///
    /// # Errors
    ///
    /// [`CompactorError::NotPinnable`] for an item that is not a message; a rollout that cannot
    /// be written (nothing changes then).
    pub async fn pin_item(&self, item: &ResponseItem) -> Result<PinId, CompactorError> {
        let copy = pin_copy(item).ok_or_else(|| CompactorError::NotPinnable {
            item_type: item.item_type().to_owned(),
        })?;
        self.add_pin(PinContent::Item(copy)).await
    }

    /// Pins a note: every compaction from now on keeps `text` verbatim, as a developer message in
    /// the pin slot (D140). Returns the new pin's id.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Config`] for a note with no text; a rollout that cannot be written.
    pub async fn pin_note(&self, text: impl Into<String>) -> Result<PinId, CompactorError> {
        let text = text.into();
        if text.trim().is_empty() {
            return Err(CompactorError::Config("a pinned note needs some text".to_owned()));
        }
        self.add_pin(PinContent::Note(text)).await
    }

    /// Removes the pin `id`. The next compaction leaves it out of the pin slot.
    ///
    /// # Errors
    ///
    /// [`CompactorError::PinNotFound`] when the session has no such pin; a rollout that cannot
    /// be written.
    pub async fn unpin(&self, id: PinId) -> Result<(), CompactorError> {
        let _pins = self.inner.pin_lock.lock().await;
        let mut pins = self.state().pins.clone();
        let before = pins.len();
        pins.retain(|pin| pin.id != id);
        if pins.len() == before {
            return Err(CompactorError::PinNotFound { id: id.to_string() });
        }
        self.persist(&[RolloutItem::Pins(PinsItem::new(pins.clone()))]).await?;
        self.state().pins = pins;
        Ok(())
    }

    /// The session's pins, in the order of the pin slot.
    pub fn pins(&self) -> Vec<Pin> {
        self.state().pins.clone()
    }

    /// Adds a pin with the next id, recorded before the session's state changes.
    async fn add_pin(&self, content: PinContent) -> Result<PinId, CompactorError> {
        let _pins = self.inner.pin_lock.lock().await;
        let (mut pins, id) = {
            let state = self.state();
            (state.pins.clone(), PinId::from_number(state.next_pin_number.max(1)))
        };
        pins.push(Pin { id, content });
        self.persist(&[RolloutItem::Pins(PinsItem::new(pins.clone()))]).await?;
        let mut state = self.state();
        state.pins = pins;
        state.next_pin_number = id.number().saturating_add(1);
        Ok(id)
    }

    /// Pins the configured notes (`[compaction] pinned_notes`) that no pinned note holds yet.
    pub(crate) async fn pin_configured_notes(&self) -> Result<(), CompactorError> {
        for note in &self.inner.config.compaction.pinned_notes {
            let pinned = self
                .state()
                .pins
                .iter()
                .any(|pin| matches!(&pin.content, PinContent::Note(text) if text == note));
            if !pinned && !note.trim().is_empty() {
                self.add_pin(PinContent::Note(note.clone())).await?;
            }
        }
        Ok(())
    }

    /// The pins a compaction starting now works with.
    pub(crate) fn pins_at_start(&self) -> PinsAtStart {
        let state = self.state();
        let slot = state.pin_slot.min(state.history.len());
        PinsAtStart {
            items: pin_slot_items(&state.pins),
            pins: state.pins.clone(),
            old_slot: state.history[..slot].to_vec(),
        }
    }
}

/// The pins a compaction works with, taken when it starts: a pin made meanwhile waits for the
/// next compaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct PinsAtStart {
    /// The pins.
    pub(crate) pins: Vec<Pin>,
    /// Their pin slot items, in order.
    pub(crate) items: Vec<ResponseItem>,
    /// The pin slot the history starts with, which the previous compaction laid out.
    pub(crate) old_slot: Vec<ResponseItem>,
}

impl PinsAtStart {
    /// The pin slot items the history's own pin slot does not hold already: what a remote
    /// compaction sends before its trigger, so that the server sees every pin.
    pub(crate) fn missing_from_history(&self) -> impl Iterator<Item = &ResponseItem> {
        self.items.iter().filter(|item| !self.old_slot.iter().any(|old| same_content(old, item)))
    }

    /// What a compaction keeps of `items` besides the pin slot, which the layout puts first
    /// (D102): the previous slot's items leave (the first of each, which is the slot itself, so
    /// an original the slot copied stays), and so do the items the pins hold, originals
    /// included, so that nothing is in the new history twice.
    pub(crate) fn strip<T: Borrow<ResponseItem>>(&self, mut items: Vec<T>) -> Vec<T> {
        for old in &self.old_slot {
            if let Some(at) = items.iter().position(|item| same_content(item.borrow(), old)) {
                items.remove(at);
            }
        }
        without_pinned(items, &self.items)
    }

    /// [`PinsAtStart::strip`] for the user messages local compaction keeps, given by their
    /// content.
    pub(crate) fn strip_contents<'c>(
        &self,
        mut contents: Vec<&'c [ContentItem]>,
    ) -> Vec<&'c [ContentItem]> {
        let user_content = |item: &ResponseItem| match item {
            ResponseItem::Message { role, content, .. } if role == "user" => Some(content.clone()),
            _ => None,
        };
        for old in self.old_slot.iter().filter_map(user_content) {
            if let Some(at) = contents.iter().position(|content| *content == old.as_slice()) {
                contents.remove(at);
            }
        }
        let pinned: Vec<Vec<ContentItem>> = self.items.iter().filter_map(user_content).collect();
        contents.retain(|content| !pinned.iter().any(|pin| pin.as_slice() == *content));
        contents
    }

    /// The tokens of the pin slot, counted with the session's `counter` (D120).
    pub(crate) fn tokens(&self, counter: TokenCounter) -> u64 {
        pinned_tokens(&self.items, counter)
    }

    /// [`CompactorError::PinsOverBudget`] when the pin slot alone, counted with `counter` as the
    /// layout counts it, exceeds `budget_tokens` (D142); `None` without a budget.
    pub(crate) fn over_budget(
        &self,
        budget_tokens: Option<u64>,
        counter: TokenCounter,
    ) -> Option<CompactorError> {
        let budget_tokens = budget_tokens?;
        let pinned_tokens = self.tokens(counter);
        (pinned_tokens > budget_tokens)
            .then_some(CompactorError::PinsOverBudget { pinned_tokens, budget_tokens })
    }

    /// The `pins` field of the compaction's `compacted` line: `None` without pins.
    pub(crate) fn record(&self) -> Option<Vec<Pin>> {
        (!self.pins.is_empty()).then(|| self.pins.clone())
    }
}
