//! `prune` (D20): mask old tool outputs and drop the oldest tool pairs, no model call.

use std::sync::Arc;

use compactor_engine::{Compacted, PruneConfig, prune, prune_target_tokens};
use compactor_protocol::{CompactionImplementation, CompactorError, InitialContextInjection};

use super::Prepared;
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, SentItems};
use crate::session::Session;
use crate::turn::TurnContext;

impl Session {
    /// Prunes the history towards the target share of the auto-compact limit. User messages and
    /// the initial context stay, so the settings baseline is kept.
    pub(crate) fn prepare_prune(
        &self,
        turn: &TurnContext,
        pins: &PinsAtStart,
    ) -> Result<Prepared, CompactorError> {
        let config = &self.inner.config;
        let settings = config.compaction.prune;
        let prune_config = PruneConfig {
            protected_user_turns: settings.protected_user_turns,
            target_tokens: prune_target_tokens(
                turn.model.auto_compact_limit(),
                turn.model.model_context_window(),
                settings.target_percent,
            ),
        };
        let estimate = self.estimate_context();
        let (history, counts) = {
            let state = self.state();
            (Arc::clone(&state.history), state.counts.clone())
        };
        let outcome =
            prune(&history, &counts, &prune_config, &estimate, &config.contextual_markers);
        let report = outcome.report;
        if report.masked_outputs == 0 && report.dropped_items == 0 {
            return Err(CompactorError::NothingToCompact {
                implementation: CompactionImplementation::Prune.to_string(),
            });
        }
        tracing::info!(
            masked = report.masked_outputs,
            dropped = report.dropped_items,
            before = report.tokens_before,
            after = report.tokens_after,
            "pruned the history"
        );
        // The pruned history keeps its initial context: the layout injects nothing.
        let compacted = Compacted::Prune { history: pins.strip(outcome.history) };
        let new_history =
            self.lay_out(turn, InitialContextInjection::DoNotInject, &pins.items, compacted)?;
        Ok(Prepared {
            input_history: history,
            new_history,
            message: String::new(),
            response_id: None,
            usage: None,
            reset_websocket: true,
            keep_reference: true,
            facts: ReceiptFacts { sent: Some(SentItems::Nothing), ..ReceiptFacts::default() },
        })
    }
}
