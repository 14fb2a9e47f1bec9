//! The turn runner: record input, sample, run tools, loop while the model needs follow-up, and
//! compact when the context reaches the limit (D5).

use std::borrow::Cow;
use std::sync::Arc;

use compactor_client::{ModelClient, ModelClientSession};
use compactor_engine::{
    PromptOptions, ResponseOutput, prompt_input, split_server_compaction, truncate_tool_output,
};
use compactor_protocol::{
    CompactionPhase, CompactionReason, CompactorError, ContentItem, EventMsg,
    InitialContextInjection, Prompt, ResponseEvent, ResponseItem, RolloutItem, TokenUsage,
    TurnContextItem, TurnSettings,
};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::compact::{AutoCompaction, CompactionFailure};
use crate::config::{ModelInfo, ReactiveCompaction};
use crate::retry::{AfterFallback, StreamAttempt, StreamFailure, StreamRetries};
use crate::session::Session;
use crate::state::{SentEstimate, UsageBasis};
use crate::tools::ToolCall;

/// What a turn works with: its id, model and cancellation.
#[derive(Debug, Clone)]
pub struct TurnContext {
    /// The turn's id; compaction items of the turn carry it.
    pub turn_id: String,
    /// The model sampled in this turn.
    pub model: ModelInfo,
    /// Cancelled by [`Session::interrupt`] and shutdown.
    pub cancel: CancellationToken,
}

impl TurnContext {
    /// The settings sent with every request of the turn.
    pub(crate) fn settings(&self, session: &Session) -> TurnSettings {
        let config = &session.inner.config;
        TurnSettings {
            model: self.model.slug.clone(),
            reasoning: self.model.reasoning.clone(),
            service_tier: config.service_tier.clone(),
            verbosity: self.model.verbosity.clone(),
            context_management: config.context_management.clone(),
        }
    }

    /// The settings baseline persisted as `turn_context`.
    pub(crate) fn context_item(&self, session: &Session) -> TurnContextItem {
        let config = &session.inner.config;
        TurnContextItem {
            turn_id: Some(self.turn_id.clone()),
            cwd: config.cwd.clone(),
            model: self.model.slug.clone(),
            personality: config.personality.clone(),
            effort: self.model.reasoning.as_ref().and_then(|r| r.effort.clone()),
            summary: self.model.reasoning.as_ref().and_then(|r| r.summary.clone()),
            ..TurnContextItem::default()
        }
    }
}

/// Per-turn options.
#[derive(Debug, Clone, Default)]
pub struct TurnOptions {
    /// Sample this turn with another model than the session's (a smaller window triggers the
    /// model-downshift compaction first).
    pub model: Option<ModelInfo>,
}

/// How a turn ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnOutcome {
    /// The turn's id.
    pub turn_id: String,
    /// The last assistant message, when there was one.
    pub last_agent_message: Option<String>,
}

/// One completed sampling request.
pub(crate) struct Sampled {
    pub(crate) items: Vec<ResponseItem>,
    pub(crate) response_id: String,
    pub(crate) usage: Option<TokenUsage>,
    end_turn: Option<bool>,
    /// The session's estimate of the request, made before sending it (D123, D126); `None`
    /// where the caller did not make one.
    estimated_input: Option<SentEstimate>,
}

/// Why a turn stopped early. A reported failure already has its `error` event.
pub(crate) enum TurnFailure {
    Reported(CompactorError),
    Unreported(CompactorError),
}

impl From<CompactorError> for TurnFailure {
    fn from(error: CompactorError) -> Self {
        TurnFailure::Unreported(error)
    }
}

impl From<CompactionFailure> for TurnFailure {
    fn from(failure: CompactionFailure) -> Self {
        TurnFailure::Reported(failure.0)
    }
}

impl Session {
    /// Runs one user turn with the session's model.
    ///
    /// # Errors
    ///
    /// The error that ended the turn; it has also been emitted as an `error` event (or as
    /// `turn_aborted` for [`CompactorError::Cancelled`]).
    pub async fn run_turn(&self, input: Vec<ContentItem>) -> Result<TurnOutcome, CompactorError> {
        self.run_turn_with(input, TurnOptions::default()).await
    }

    /// Runs one user turn with `options`.
    ///
    /// # Errors
    ///
    /// As [`Session::run_turn`].
    pub async fn run_turn_with(
        &self,
        input: Vec<ContentItem>,
        options: TurnOptions,
    ) -> Result<TurnOutcome, CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        let turn =
            self.start_turn(options.model.unwrap_or_else(|| self.inner.config.model.clone()));
        self.emit(EventMsg::TurnStarted {
            turn_id: turn.turn_id.clone(),
            started_at: Some(crate::session::now_ms() / 1000),
            model_context_window: turn.model.model_context_window(),
        })
        .await;
        let result = self.turn_body(&turn, input).await;
        self.end_turn(&turn, result).await
    }

    pub(crate) fn start_turn(&self, model: ModelInfo) -> TurnContext {
        let cancel = self.inner.cancel.child_token();
        *self.inner.current_turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(cancel.clone());
        TurnContext { turn_id: uuid::Uuid::new_v4().to_string(), model, cancel }
    }

    /// Emits the end of a turn (`turn_complete`, or `turn_aborted` when cancelled) and the error
    /// event a failure still owes.
    pub(crate) async fn end_turn(
        &self,
        turn: &TurnContext,
        result: Result<Option<String>, TurnFailure>,
    ) -> Result<TurnOutcome, CompactorError> {
        *self.inner.current_turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let error = match result {
            Ok(last_agent_message) => {
                self.emit(EventMsg::TurnComplete {
                    turn_id: turn.turn_id.clone(),
                    last_agent_message: last_agent_message.clone(),
                })
                .await;
                return Ok(TurnOutcome { turn_id: turn.turn_id.clone(), last_agent_message });
            }
            Err(TurnFailure::Reported(error)) => error,
            Err(TurnFailure::Unreported(error)) => {
                if error != CompactorError::Cancelled {
                    self.emit(EventMsg::Error(error.to_unprefixed_error_event())).await;
                }
                error
            }
        };
        if error == CompactorError::Cancelled {
            self.emit(EventMsg::TurnAborted {
                turn_id: Some(turn.turn_id.clone()),
                reason: "interrupted".to_owned(),
            })
            .await;
        } else {
            self.emit(EventMsg::TurnComplete {
                turn_id: turn.turn_id.clone(),
                last_agent_message: None,
            })
            .await;
        }
        Err(error)
    }

    async fn turn_body(
        &self,
        turn: &TurnContext,
        input: Vec<ContentItem>,
    ) -> Result<Option<String>, TurnFailure> {
        let config = &self.inner.config;
        let mut client_session = self.inner.client.new_session();
        let mut auto = AutoCompaction::default();

        // Model downshift: the previous model compacts its own history (D5).
        let previous = self.state().previous_model.clone();
        if let Some(previous) = previous
            && let (Some(old), Some(new)) = (previous.context_window, turn.model.context_window)
            && previous.slug != turn.model.slug
            && old > new
            && self.total_token_usage() > turn.model.auto_compact_limit()
        {
            let previous_turn = TurnContext { model: previous, ..turn.clone() };
            self.run_auto_compaction(
                &previous_turn,
                &mut client_session,
                &mut auto,
                InitialContextInjection::DoNotInject,
                CompactionReason::ModelDownshift,
                CompactionPhase::PreTurn,
            )
            .await?;
        }
        // Pre-turn: compact before the new input is recorded (D5), when the request it makes
        // needs it (D104).
        let text = compactor_protocol::content_text(&input).unwrap_or_default();
        let message = ResponseItem::Message {
            id: None,
            role: "user".to_owned(),
            content: input,
            phase: None,
            extra: Default::default(),
        };
        self.guard_request(
            turn,
            &mut client_session,
            &mut auto,
            Some(&message),
            InitialContextInjection::DoNotInject,
            CompactionPhase::PreTurn,
        )
        .await?;
        self.record_context_if_needed(turn).await?;
        self.record_items(vec![message]).await?;
        self.emit(EventMsg::UserMessage { message: text }).await;
        self.emit_token_count(&turn.model).await;

        let mut last_agent_message = None;
        let mut samples = 0u32;
        loop {
            let sampled = self.sample(turn, &mut client_session, &mut auto).await?;
            let calls: Vec<ToolCall> =
                sampled.items.iter().filter_map(ToolCall::from_item).collect();
            for item in &sampled.items {
                if let ResponseItem::Message { role, .. } = item
                    && role == "assistant"
                    && let Some(text) = item.message_text()
                {
                    last_agent_message = Some(text.clone());
                    self.emit(EventMsg::AgentMessage { message: text }).await;
                }
            }
            if let Some(usage) = sampled.usage {
                let mut state = self.state();
                state.record_usage(&usage, sampled.estimated_input, config.tokens.calibration);
                state.token_info.model_context_window = turn.model.model_context_window();
            }
            // A `compaction` item in a normal response: the server compacted by itself
            // (`context_management`); it and what followed it replace the history.
            // The snapshot goes before the history changes, or changing it would copy it.
            let output = {
                let history = Arc::clone(&self.state().history);
                split_server_compaction(&history, sampled.items)
            };
            match output {
                ResponseOutput::Compacted(compaction) => {
                    // The reported usage, before the install replaces it with an estimate.
                    if sampled.usage.is_some() {
                        self.emit_token_count(&turn.model).await;
                    }
                    let phase = if samples == 0 {
                        CompactionPhase::PreTurn
                    } else {
                        CompactionPhase::MidTurn
                    };
                    let mut after = self.install_server_managed(turn, compaction, phase).await?;
                    self.truncate_on_record(turn, &mut after).await;
                    self.record_items(after).await?;
                }
                ResponseOutput::Plain(mut items) => {
                    self.truncate_on_record(turn, &mut items).await;
                    self.record_items(items).await?;
                    if sampled.usage.is_some() {
                        self.state().usage_covers_history();
                    }
                    // After the response's items: they are in the reported total (D126).
                    if sampled.usage.is_some() {
                        self.emit_token_count(&turn.model).await;
                    }
                }
            }
            samples += 1;
            if config.features.responses_websocket_response_processed {
                client_session.send_response_processed(&sampled.response_id).await;
            }
            let mut outputs = Vec::with_capacity(calls.len());
            for call in &calls {
                let output = tokio::select! {
                    () = turn.cancel.cancelled() => return Err(CompactorError::Cancelled.into()),
                    output = self.inner.tools.call(call) => output,
                };
                outputs.push(call.output_item(output));
            }
            self.truncate_on_record(turn, &mut outputs).await;
            let recorded_outputs = !outputs.is_empty();
            self.record_items(outputs).await?;
            let needs_follow_up = !calls.is_empty() || sampled.end_turn == Some(false);
            if !needs_follow_up {
                break;
            }
            if recorded_outputs {
                self.emit_token_count(&turn.model).await;
            }
            // Mid-turn: compact between requests, keeping the turn's connection (D5), under the
            // loop guard (D104).
            self.guard_request(
                turn,
                &mut client_session,
                &mut auto,
                None,
                InitialContextInjection::BeforeLastUserMessage,
                CompactionPhase::MidTurn,
            )
            .await?;
        }
        self.state().previous_model = Some(turn.model.clone());
        Ok(last_agent_message)
    }

    /// Cuts the tool outputs among `items` to the model's limit before they are recorded (D100),
    /// telling the harness about each cut.
    async fn truncate_on_record(&self, turn: &TurnContext, items: &mut [ResponseItem]) {
        for item in items {
            let counter = self.inner.config.tokens.counter;
            let Some(cut) = truncate_tool_output(item, turn.model.tool_output_limit, counter)
            else {
                continue;
            };
            let call_id = item.output_call_id().unwrap_or_default().to_owned();
            tracing::debug!(%call_id, cut.original_tokens, cut.kept_tokens, "tool output truncated");
            self.emit(EventMsg::ToolOutputTruncated {
                call_id,
                original_tokens: cut.original_tokens,
                kept_tokens: cut.kept_tokens,
            })
            .await;
        }
    }

    /// Injects the full initial context when there is no settings baseline (first turn, or after
    /// a compaction that cleared it), and records the turn's settings (D16).
    pub(crate) async fn record_context_if_needed(
        &self,
        turn: &TurnContext,
    ) -> Result<(), CompactorError> {
        let item = turn.context_item(self);
        let current = self.state().reference_context_item.clone();
        match current {
            None => {
                self.record_items(self.inner.config.initial_context.clone()).await?;
            }
            Some(reference) if reference.model == item.model && reference.cwd == item.cwd => {
                return Ok(());
            }
            Some(_) => {}
        }
        self.persist(&[RolloutItem::TurnContext(item.clone())]).await?;
        self.state().reference_context_item = Some(item);
        Ok(())
    }

    /// The prompt of a normal request for the current history.
    pub(crate) fn turn_prompt<'h>(
        &self,
        model: &ModelInfo,
        history: &'h [ResponseItem],
    ) -> Prompt<'h> {
        let config = &self.inner.config;
        let options = PromptOptions {
            input_modalities: model.input_modalities,
            pass_through: config.provider.pass_through.clone(),
        };
        Prompt {
            input: prompt_input(history, &options),
            input_json_lens: None,
            tools: config.tools.clone(),
            parallel_tool_calls: config.parallel_tool_calls,
            base_instructions: config.base_instructions.clone(),
            personality: config.personality.clone(),
            output_schema: None,
            output_schema_strict: true,
        }
    }

    /// The JSON length of each item of `input`, drawn from `history`, for a request `client`
    /// sends over HTTP, whose body declares its length (D169): an item of the session's history
    /// takes its length from the history's counts, any other is counted. `None` over WebSocket,
    /// which declares no length, and when `history` is not the session's history (a trimmed
    /// copy), whose items would all be counted anyway.
    pub(crate) fn input_json_lens(
        &self,
        client: &ModelClient,
        history: &Arc<Vec<ResponseItem>>,
        input: &[Cow<'_, ResponseItem>],
    ) -> Option<Vec<u64>> {
        if client.uses_websocket() {
            return None;
        }
        let state = self.state();
        Arc::ptr_eq(&state.history, history).then(|| state.counts.input_json_lens(history, input))
    }

    /// One sampling request, retried when the stream fails after opening (D11), then on
    /// HTTP once WebSocket retries run out (D81).
    ///
    /// A request that overflows the window compacts once (reason `context_limit`, mid-turn) and
    /// is rebuilt from the compacted history; a second overflow ends the turn (D17).
    async fn sample(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        auto: &mut AutoCompaction,
    ) -> Result<Sampled, TurnFailure> {
        let retries = StreamRetries {
            max_retries: self.inner.config.compaction.turn_max_retries,
            after_fallback: AfterFallback::FreshRetries,
        };
        let settings = turn.settings(self);
        let mut reacted = false;
        loop {
            // What the request will hold, as the session counts it: the figure reported usage is
            // compared with (D123).
            let (history, estimated_input) = {
                let state = self.state();
                let calibration = state.calibration(self.inner.config.tokens.calibration);
                let estimate = self.estimate_context_with(calibration);
                let sent = state.sent_estimate(&estimate, &self.inner.config.contextual_markers);
                (Arc::clone(&state.history), sent)
            };
            let mut prompt = self.turn_prompt(&turn.model, &history);
            prompt.input_json_lens =
                self.input_json_lens(client_session.client(), &history, &prompt.input);
            let mut attempt = SampleAttempt { session: self, prompt: &prompt, settings: &settings };
            let sampled = self
                .retry_stream(client_session, retries, &turn.cancel, &mut 0, &mut attempt)
                .await;
            let error = match sampled {
                Ok(sampled) => {
                    return Ok(Sampled { estimated_input: Some(estimated_input), ..sampled });
                }
                Err(error) if error == CompactorError::ContextWindowExceeded => error,
                Err(error) => return Err(error.into()),
            };
            if let Some(window) = turn.model.model_context_window() {
                {
                    let mut state = self.state();
                    state.token_info.fill_to_context_window(window);
                    state.usage_basis = UsageBasis::Unknown;
                }
                self.emit_token_count(&turn.model).await;
            }
            if reacted || self.inner.config.compaction.reactive == ReactiveCompaction::Off {
                return Err(error.into());
            }
            reacted = true;
            self.run_auto_compaction(
                turn,
                client_session,
                auto,
                InitialContextInjection::BeforeLastUserMessage,
                CompactionReason::ContextLimit,
                CompactionPhase::MidTurn,
            )
            .await?;
        }
    }

    /// Reads a response to its end, keeping its output items.
    pub(crate) async fn consume(
        &self,
        mut stream: compactor_client::ResponseStream,
    ) -> Result<Sampled, CompactorError> {
        let mut items = Vec::new();
        while let Some(event) = stream.next().await {
            match event? {
                ResponseEvent::OutputItemDone { item } => items.push(item),
                ResponseEvent::Completed { response_id, token_usage, end_turn } => {
                    return Ok(Sampled {
                        items,
                        response_id,
                        usage: token_usage,
                        end_turn,
                        estimated_input: None,
                    });
                }
                ResponseEvent::ServerReasoningIncluded { included } => {
                    self.state().reasoning = if included {
                        compactor_engine::ReasoningAccounting::IncludedByServer
                    } else {
                        compactor_engine::ReasoningAccounting::Estimated
                    };
                }
                ResponseEvent::RateLimits { snapshot } => self.state().rate_limits = Some(snapshot),
                _ => {}
            }
        }
        Err(CompactorError::stream("stream closed before response.completed"))
    }
}

/// One sampling request: the stream of the turn's prompt, read to its end.
struct SampleAttempt<'s, 'p> {
    session: &'s Session,
    prompt: &'s Prompt<'p>,
    settings: &'s TurnSettings,
}

impl StreamAttempt for SampleAttempt<'_, '_> {
    type Output = Sampled;

    async fn run(
        &mut self,
        client_session: &mut ModelClientSession,
    ) -> Result<Sampled, StreamFailure> {
        let stream =
            client_session.stream(self.prompt, self.settings).await.map_err(StreamFailure::Open)?;
        self.session.consume(stream).await.map_err(StreamFailure::Stream)
    }
}

#[cfg(test)]
mod tests;
