//! Local compaction (D38): the model summarizes through a normal stream, and the history is
//! rebuilt from the user messages and the summary.

use std::sync::Arc;

use compactor_engine::{
    SUMMARIZATION_PROMPT, build_compacted_history, collect_user_messages, insert_initial_context,
    last_assistant_text, summary_text,
};
use compactor_protocol::{
    CompactorError, EventMsg, InitialContextInjection, ResponseItem, ResponsesApiRequest,
};

use compactor_protocol::tokens::json_len;

use super::{AttemptStats, CompactionRequest, Prepared};
use crate::session::Session;
use crate::turn::{Sampled, TurnContext, backoff};

impl Session {
    /// Summarizes on a fresh client session. An overflow drops the oldest item (with its pair)
    /// and retries; other failures after the stream opened are retried with
    /// `Reconnecting... n/max`.
    pub(super) async fn prepare_local(
        &self,
        turn: &TurnContext,
        request: CompactionRequest<'_>,
        stats: &mut AttemptStats,
    ) -> Result<Prepared, CompactorError> {
        let config = &self.inner.config;
        let base =
            config.compaction.summarization_prompt.as_deref().unwrap_or(SUMMARIZATION_PROMPT);
        let prompt_text = match request.focus.map(str::trim).filter(|focus| !focus.is_empty()) {
            Some(focus) => {
                format!("{base}\n\nGive particular attention to the following:\n{focus}")
            }
            None => base.to_owned(),
        };
        let mut history = self.state().history.to_vec();
        let mut client_session = self.inner.client.new_session();
        let settings = turn.settings(self);
        let max_retries = config.compaction.local_max_retries;
        let mut retries = 0u32;
        loop {
            let mut input = history.clone();
            input.push(ResponseItem::user_text(prompt_text.clone()));
            let mut prompt = self.turn_prompt(&turn.model, &input);
            prompt.tools = Vec::new();
            prompt.parallel_tool_calls = false;
            let body = ResponsesApiRequest::from_prompt(&prompt, &settings);
            stats.bytes_sent = stats.bytes_sent.saturating_add(json_len(&body));
            let (error, opened) = match client_session.stream(&prompt, &settings).await {
                Ok(stream) => match self.consume(stream).await {
                    Ok(Sampled { items, usage, .. }) => {
                        let summary =
                            summary_text(&last_assistant_text(&items).unwrap_or_default());
                        let user_messages =
                            collect_user_messages(&history, &config.contextual_markers);
                        let mut new_history =
                            build_compacted_history(&[], &user_messages, &summary);
                        if request.injection == InitialContextInjection::BeforeLastUserMessage {
                            insert_initial_context(
                                &mut new_history,
                                &config.initial_context,
                                &config.contextual_markers,
                            );
                        }
                        return Ok(Prepared {
                            input_history: Arc::new(history),
                            new_history,
                            message: summary,
                            response_id: None,
                            usage,
                            reset_websocket: true,
                            keep_reference: false,
                        });
                    }
                    Err(error) => (error, true),
                },
                Err(error) => (error, false),
            };
            if error == CompactorError::ContextWindowExceeded && history.len() > 1 {
                drop_oldest(&mut history);
                tracing::info!(
                    remaining = history.len(),
                    "local compaction overflowed: dropped the oldest item"
                );
                retries = 0;
                continue;
            }
            // An error from opening the stream was retried by the client already (D10).
            if !opened || !error.is_retryable() || retries >= max_retries {
                return Err(error);
            }
            retries += 1;
            stats.retries += 1;
            self.emit(EventMsg::StreamError {
                message: format!("Reconnecting... {retries}/{max_retries}"),
                compactor_error_info: Some(error.info()),
                additional_details: Some(error.to_string()),
            })
            .await;
            tokio::time::sleep(backoff(retries, error.retry_after())).await;
        }
    }
}

/// Drops the oldest item and, when it is a call, its outputs: the front goes first so the
/// prompt-cache prefix of the newer items stays stable.
fn drop_oldest(history: &mut Vec<ResponseItem>) {
    if history.is_empty() {
        return;
    }
    let first = history.remove(0);
    if let Some(call_id) = first.call_id() {
        history.retain(|item| item.output_call_id() != Some(call_id));
    }
}
