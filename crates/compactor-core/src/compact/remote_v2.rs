//! Remote compaction v2 (D39, D7, D12): the normal turn request ending
//! with a trigger item, on the turn's own client session.

use std::borrow::Cow;
use std::sync::Arc;

use compactor_client::{ModelClientSession, ResponseStream};
use compactor_engine::{
    CollectedCompaction, Compacted, HistoryCounts, V2PromptOptions, append_v2_trigger,
    collect_context_compaction_output, drop_oldest_tokens, v2_request_messages,
};
use compactor_protocol::{CompactorError, ResponseItem, V2TriggerForm};
use compactor_rollout_trace::CompactionTraceContext;

use super::{AttemptStats, CompactionRequest, Prepared, ReadAnswer, TracedStream};
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, SentItems};
use crate::retry::{AfterFallback, StreamRetries};
use crate::session::Session;
use crate::turn::TurnContext;

impl Session {
    /// Sends the v2 request and builds the history to install; nothing is installed here.
    ///
    /// A stream that fails after opening with a retryable error (an early end above all) is
    /// retried up to `v2_max_retries` times with `Reconnecting... n/max`; when the WebSocket
    /// retries run out, the client falls back to HTTP for good and one more attempt goes there
    /// (see D81 in docs/decisions.md). Errors from opening the stream were already retried by
    /// the client and are final. Each attempt is traced as the client sent it.
    ///
    /// The pins the history's pin slot does not hold yet go in as ordinary input right before
    /// the focus and the trigger, so the server sees every pin (D146).
    pub(super) async fn prepare_v2(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
        pins: &PinsAtStart,
    ) -> Result<Prepared, CompactorError> {
        let config = &self.inner.config;
        let history_len = self.state().history.len();
        let mut input_history = self.compaction_history(turn);
        let trimmed = input_history.len() < history_len;
        // After an overflow the items sent are fewer than the trimmed history: the receipt
        // needs both. Holding it costs nothing until the overflow copies the history anyway.
        let trimmed_history = trimmed.then(|| Arc::clone(&input_history));
        let options =
            V2PromptOptions { trigger_form: config.compaction.v2_trigger, focus: request.focus };
        let settings = turn.settings(self);
        let retries = StreamRetries {
            max_retries: config.compaction.v2_max_retries,
            after_fallback: AfterFallback::OneAttempt,
        };
        // What one retry after the server refused the request as over its window drops from
        // the front: a tenth of the history first sent, so at most ten retries (D160).
        let mut overflow_step = None;
        let (prompt, prompt_len, collected) = loop {
            let mut prompt = self.turn_prompt(&turn.model, &input_history);
            // Room for the pins, the focus and the trigger at once: the input has an entry per
            // item of the history, and growing it by doubling would cost twice that.
            prompt.input.reserve_exact(pins.missing_from_history().count() + 2);
            let prompt_len = append_v2_trigger(&mut prompt.input, &options);
            prompt
                .input
                .splice(prompt_len..prompt_len, pins.missing_from_history().map(Cow::Borrowed));
            prompt.input_json_lens =
                self.input_json_lens(client_session.client(), &input_history, &prompt.input);
            let mut attempt = TracedStream {
                prompt: &prompt,
                settings: &settings,
                trace,
                bytes_sent: &mut stats.bytes_sent,
                request_id: &mut stats.request_id,
                read: CompactionOutput(options.trigger_form),
            };
            let outcome = self
                .retry_stream(
                    client_session,
                    retries,
                    &turn.cancel,
                    &mut stats.retries,
                    &mut attempt,
                )
                .await;
            match outcome {
                Ok(collected) => break (prompt, prompt_len, collected),
                // The pin slot leads the history and stays: the server must see every pin.
                Err(CompactorError::ContextWindowExceeded)
                    if input_history.len() > pins.old_slot.len() + 1 =>
                {
                    drop(prompt);
                    let counter = self.estimate_context().item_counter();
                    let step = *overflow_step.get_or_insert_with(|| {
                        HistoryCounts::new(&input_history, &counter).total() / 10
                    });
                    let history = Arc::make_mut(&mut input_history);
                    let mut rest = history.split_off(pins.old_slot.len());
                    let removed = drop_oldest_tokens(&mut rest, step, &counter);
                    history.append(&mut rest);
                    tracing::info!(
                        removed,
                        remaining = input_history.len(),
                        "the v2 compaction request was over the window: dropped the oldest items"
                    );
                }
                Err(error) => return Err(error),
            }
        };
        let compacted = Compacted::RemoteV2 {
            messages: pins.strip(v2_request_messages(&prompt.input[..prompt_len])),
            item: collected.item,
        };
        let new_history = self.lay_out(turn, request.injection, &pins.items, compacted)?;
        // After an overflow the items sent are the trimmed history less its oldest items.
        let dropped = overflow_step.is_some();
        let facts = ReceiptFacts {
            sent: Some(if dropped { SentItems::Input } else { SentItems::All }),
            trimmed: !dropped && trimmed,
            trimmed_history: trimmed_history.filter(|_| dropped),
            produced: 1,
            response_id: Some(collected.response_id.clone()),
        };
        Ok(Prepared {
            input_history,
            new_history,
            message: String::new(),
            response_id: Some(collected.response_id),
            usage: collected.token_usage,
            reset_websocket: false,
            keep_reference: false,
            facts,
        })
    }
}

/// Reads a v2 answer: its one compaction item.
struct CompactionOutput(V2TriggerForm);

impl ReadAnswer for CompactionOutput {
    type Answer = CollectedCompaction;

    async fn read(&self, stream: ResponseStream) -> Result<CollectedCompaction, CompactorError> {
        collect_context_compaction_output(stream, self.0).await
    }

    fn output(answer: &CollectedCompaction) -> &[ResponseItem] {
        std::slice::from_ref(&answer.item)
    }
}
