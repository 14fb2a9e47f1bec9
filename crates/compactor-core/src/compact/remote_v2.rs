//! Remote compaction v2 (D39, D7, D12): the normal turn request ending
//! with a trigger item, on the turn's own client session.

use compactor_client::ModelClientSession;
use compactor_engine::{
    V2PromptOptions, append_v2_trigger, build_v2_compacted_history,
    collect_context_compaction_output, process_compacted_history,
};
use compactor_protocol::{CompactorError, EventMsg, ResponsesApiRequest};
use compactor_rollout_trace::CompactionTraceContext;

use super::{AttemptStats, CompactionRequest, Prepared};
use crate::session::Session;
use crate::turn::{TurnContext, backoff};

impl Session {
    /// Sends the v2 request and builds the history to install; nothing is installed here.
    ///
    /// A stream that fails after opening with a retryable error (an early end above all) is
    /// retried up to `v2_max_retries` times with `Reconnecting... n/max`; when the WebSocket
    /// retries run out, the client falls back to HTTP for good and one more attempt goes there.
    /// Errors from opening the stream were already retried by the client and are final.
    pub(super) async fn prepare_v2(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
    ) -> Result<Prepared, CompactorError> {
        let config = &self.inner.config;
        let input_history = self.compaction_history(turn);
        let mut prompt = self.turn_prompt(&turn.model, &input_history);
        let options =
            V2PromptOptions { trigger_form: config.compaction.v2_trigger, focus: request.focus };
        let prompt_len = append_v2_trigger(&mut prompt.input, &options);
        let settings = turn.settings(self);
        let max_retries = config.compaction.v2_max_retries;
        let mut transport_retries = 0u32;
        let mut on_fallback = false;
        loop {
            let body = ResponsesApiRequest::from_prompt(&prompt, &settings);
            let attempt = trace.start_attempt(&body).await;
            let opened = client_session.stream(&prompt, &settings).await;
            // Counted as the client sent it, without serializing the request again.
            stats.bytes_sent = stats.bytes_sent.saturating_add(client_session.last_request_bytes());
            let result = match opened {
                Ok(stream) => collect_context_compaction_output(stream, options.trigger_form).await,
                Err(error) => {
                    attempt.record_result(Err(&error)).await;
                    return Err(error);
                }
            };
            match result {
                Ok(collected) => {
                    attempt.record_result(Ok(std::slice::from_ref(&collected.item))).await;
                    let retained =
                        build_v2_compacted_history(&prompt.input[..prompt_len], collected.item);
                    let new_history = process_compacted_history(
                        retained,
                        request.injection,
                        &config.initial_context,
                        &config.contextual_markers,
                    );
                    return Ok(Prepared {
                        input_history,
                        new_history,
                        message: String::new(),
                        response_id: Some(collected.response_id),
                        usage: collected.token_usage,
                        reset_websocket: false,
                        keep_reference: false,
                    });
                }
                Err(error) => {
                    attempt.record_result(Err(&error)).await;
                    if !error.is_retryable() || on_fallback {
                        return Err(error);
                    }
                    if transport_retries >= max_retries {
                        let reason = format!("remote compaction retries exhausted: {error}");
                        if !self.inner.client.fall_back_to_http(&reason) {
                            return Err(error);
                        }
                        client_session.reset_websocket_session();
                        on_fallback = true;
                        continue;
                    }
                    transport_retries += 1;
                    stats.retries += 1;
                    self.emit(EventMsg::StreamError {
                        message: format!("Reconnecting... {transport_retries}/{max_retries}"),
                        compactor_error_info: Some(error.info()),
                        additional_details: Some(error.to_string()),
                    })
                    .await;
                    tokio::time::sleep(backoff(transport_retries, error.retry_after())).await;
                }
            }
        }
    }
}
