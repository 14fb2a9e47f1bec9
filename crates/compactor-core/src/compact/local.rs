//! Local compaction (D38): the model summarizes through a normal stream, and the history is
//! rebuilt from the user messages and the summary.

use std::sync::Arc;

use compactor_client::ResponseStream;
use compactor_engine::{
    Compacted, SUMMARIZATION_PROMPT, collect_user_messages, drop_oldest, last_assistant_text,
    summarization_prompt_with_focus, summary_text,
};
use compactor_protocol::{CompactorError, ResponseItem};
use compactor_rollout_trace::CompactionTraceContext;

use super::{AttemptStats, CompactionRequest, Prepared, ReadAnswer, TracedStream};
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, SentItems};
use crate::retry::{AfterFallback, StreamRetries};
use crate::session::Session;
use crate::turn::{Sampled, TurnContext};

impl Session {
    /// Summarizes on a fresh client session. An overflow drops the oldest item (with its pair)
    /// and sends again; other failures after the stream opened are retried with
    /// `Reconnecting... n/max` (see D81 in docs/decisions.md). Each request is traced as the
    /// client sent it, with the summarization's output items as its result.
    pub(super) async fn prepare_local(
        &self,
        turn: &TurnContext,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
        pins: &PinsAtStart,
    ) -> Result<Prepared, CompactorError> {
        let config = &self.inner.config;
        let base =
            config.compaction.summarization_prompt.as_deref().unwrap_or(SUMMARIZATION_PROMPT);
        let prompt_text = summarization_prompt_with_focus(base, request.focus.unwrap_or_default());
        let mut history = self.state().history.to_vec();
        let mut client_session = self.inner.client.new_session();
        let settings = turn.settings(self);
        let retries = StreamRetries {
            max_retries: config.compaction.local_max_retries,
            after_fallback: AfterFallback::FreshRetries,
        };
        loop {
            let mut input = history.clone();
            input.push(ResponseItem::user_text(prompt_text.clone()));
            let mut prompt = self.turn_prompt(&turn.model, &input);
            prompt.tools = Vec::new();
            prompt.parallel_tool_calls = false;
            let mut attempt = TracedStream {
                prompt: &prompt,
                settings: &settings,
                trace,
                bytes_sent: &mut stats.bytes_sent,
                request_id: &mut stats.request_id,
                read: Summary(self),
            };
            let summarized = self
                .retry_stream(
                    &mut client_session,
                    retries,
                    &turn.cancel,
                    &mut stats.retries,
                    &mut attempt,
                )
                .await;
            let Sampled { items, usage, response_id, .. } = match summarized {
                Ok(sampled) => sampled,
                Err(CompactorError::ContextWindowExceeded) if history.len() > 1 => {
                    drop_oldest(&mut history);
                    tracing::info!(
                        remaining = history.len(),
                        "local compaction overflowed: dropped the oldest item"
                    );
                    continue;
                }
                Err(error) => return Err(error),
            };
            let summary = summary_text(&last_assistant_text(&items).unwrap_or_default());
            let user_messages =
                pins.strip_contents(collect_user_messages(&history, &config.contextual_markers));
            let compacted = Compacted::Local { user_messages: &user_messages, summary: &summary };
            let new_history = self.lay_out(turn, request.injection, &pins.items, compacted)?;
            return Ok(Prepared {
                input_history: Arc::new(history),
                new_history,
                message: summary,
                response_id: None,
                usage,
                reset_websocket: true,
                keep_reference: false,
                facts: ReceiptFacts {
                    sent: Some(SentItems::Input),
                    trimmed: false,
                    produced: 1,
                    response_id: Some(response_id),
                    trimmed_history: None,
                },
            });
        }
    }
}

/// Reads a summarization answer: a normal response, whose last assistant text is the summary.
struct Summary<'s>(&'s Session);

impl ReadAnswer for Summary<'_> {
    type Answer = Sampled;

    async fn read(&self, stream: ResponseStream) -> Result<Sampled, CompactorError> {
        self.0.consume(stream).await
    }

    fn output(answer: &Sampled) -> &[ResponseItem] {
        &answer.items
    }
}
