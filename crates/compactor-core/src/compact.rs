//! Compaction turns and tasks: the manual `/compact` turn, inline auto compaction, and the
//! installation every implementation shares (DESIGN §2).

mod remote_v2;

use compactor_analytics::{
    AttemptOutcome, AttemptSpec, CompactionAnalyticsAttempt, CompactionContext,
};
use compactor_client::ModelClientSession;
use compactor_protocol::{
    CompactedItem, CompactionImplementation, CompactionPhase, CompactionReason, CompactionTrigger,
    CompactorError, ContextCompactionItem, EventMsg, InitialContextInjection, ResponseItem,
    RolloutItem, TurnItem,
};
use compactor_rollout_trace::CompactionTraceContext;

use crate::config::RemoteCompaction;
use crate::session::{Session, now_ms};
use crate::turn::{TurnContext, TurnFailure};

/// The prefix of the `error` event of a failed remote compaction (ref §2.3).
pub const REMOTE_COMPACT_ERROR_PREFIX: &str = "Error running remote compact task";

/// A compaction failure whose `error` event has been emitted already.
#[derive(Debug)]
pub(crate) struct CompactionFailure(pub(crate) CompactorError);

/// Auto compactions run so far in one turn.
#[derive(Debug, Default)]
pub(crate) struct AutoCompaction {
    pub(crate) count: u32,
}

/// What one compaction is asked to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompactionRequest<'a> {
    pub(crate) trigger: CompactionTrigger,
    pub(crate) reason: CompactionReason,
    pub(crate) phase: CompactionPhase,
    pub(crate) injection: InitialContextInjection,
    pub(crate) focus: Option<&'a str>,
}

/// A compacted history ready to install, and what the request that produced it returned.
pub(crate) struct Prepared {
    /// The history the request compacted (after trimming), for the trace.
    pub(crate) input_history: Vec<ResponseItem>,
    /// The new history.
    pub(crate) new_history: Vec<ResponseItem>,
    /// The completed response's id, for `response.processed`.
    pub(crate) response_id: Option<String>,
    /// Retries made.
    pub(crate) retries: u32,
    /// Request bytes sent over all attempts.
    pub(crate) bytes_sent: u64,
}

impl Session {
    /// Compacts the history now, as a turn of its own (`/compact`).
    ///
    /// # Errors
    ///
    /// The compaction's error, also emitted as an `error` event; the history is unchanged.
    pub async fn compact(&self) -> Result<(), CompactorError> {
        self.manual_compaction(None).await
    }

    /// Compacts the history now, asking the model to preserve what `focus` names (DESIGN §8.15).
    ///
    /// # Errors
    ///
    /// As [`Session::compact`].
    pub async fn compact_with_focus(&self, focus: &str) -> Result<(), CompactorError> {
        self.manual_compaction(Some(focus)).await
    }

    async fn manual_compaction(&self, focus: Option<&str>) -> Result<(), CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        let turn = self.start_turn(self.inner.config.model.clone());
        self.emit(EventMsg::TurnStarted {
            turn_id: turn.turn_id.clone(),
            started_at: Some(now_ms() / 1000),
            model_context_window: turn.model.model_context_window(),
        })
        .await;
        let mut client_session = self.inner.client.new_session();
        let request = CompactionRequest {
            trigger: CompactionTrigger::Manual,
            reason: CompactionReason::UserRequested,
            phase: CompactionPhase::StandaloneTurn,
            injection: InitialContextInjection::DoNotInject,
            focus,
        };
        let result = self
            .run_compaction(&turn, &mut client_session, request)
            .await
            .map(|()| None)
            .map_err(TurnFailure::from);
        self.end_turn(&turn, result).await.map(drop)
    }

    /// An auto compaction inside a turn, on the turn's client session.
    pub(crate) async fn run_auto_compaction(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        auto: &mut AutoCompaction,
        injection: InitialContextInjection,
        reason: CompactionReason,
        phase: CompactionPhase,
    ) -> Result<(), CompactionFailure> {
        auto.count += 1;
        let request = CompactionRequest {
            trigger: CompactionTrigger::Auto,
            reason,
            phase,
            injection,
            focus: None,
        };
        self.run_compaction(turn, client_session, request).await
    }

    /// Runs the implementation the provider and features select.
    async fn run_compaction(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        request: CompactionRequest<'_>,
    ) -> Result<(), CompactionFailure> {
        let config = &self.inner.config;
        let implementation = match config.remote_compaction {
            RemoteCompaction::Supported if config.features.remote_compaction_v2 => {
                CompactionImplementation::ResponsesCompactionV2
            }
            RemoteCompaction::Supported | RemoteCompaction::Unsupported => {
                let error = CompactorError::Config(
                    "no compaction implementation is available: enable remote_compaction_v2 on a provider that supports remote compaction".to_owned(),
                );
                self.emit(EventMsg::Error(error.to_error_event(REMOTE_COMPACT_ERROR_PREFIX))).await;
                return Err(CompactionFailure(error));
            }
        };
        let tokens_before = self.total_token_usage();
        let item = ContextCompactionItem::new(uuid::Uuid::new_v4().to_string());
        let context = CompactionContext {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            compaction_id: item.id.clone(),
            trigger: request.trigger,
            reason: request.reason,
            phase: request.phase,
        };
        let attempt = CompactionAnalyticsAttempt::begin(
            &self.inner.analytics,
            &context,
            AttemptSpec::new(implementation, tokens_before),
        );
        if self.state().history.is_empty() {
            // Nothing to compact: no request, no change (DESIGN §3).
            attempt.track(AttemptOutcome::skipped(tokens_before));
            return Ok(());
        }
        let trace = self.inner.trace.compaction_trace_context(
            &turn.turn_id,
            &item.id,
            &turn.model.slug,
            &config.provider.name,
        );
        self.emit(EventMsg::ItemStarted {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            item: TurnItem::ContextCompaction(item.clone()),
            started_at_ms: now_ms(),
        })
        .await;
        let mut retries = 0u32;
        let prepared = {
            let work = self.prepare_v2(turn, client_session, request, &trace, &mut retries);
            tokio::select! {
                () = turn.cancel.cancelled() => Err(CompactorError::Cancelled),
                prepared = work => prepared,
            }
        };
        let installed = match prepared {
            Ok(prepared) => self
                .install(turn, &item, &prepared, request.injection, "", &trace)
                .await
                .map(|()| prepared),
            Err(error) => Err(error),
        };
        match installed {
            Ok(prepared) => {
                // Installed means done: a cancellation now only skips the acknowledgement
                // (DESIGN §8.17).
                if config.features.responses_websocket_response_processed
                    && !turn.cancel.is_cancelled()
                    && let Some(response_id) = &prepared.response_id
                {
                    client_session.send_response_processed(response_id).await;
                }
                attempt.track(
                    AttemptOutcome::completed(self.total_token_usage())
                        .with_retries(prepared.retries)
                        .with_bytes_sent(prepared.bytes_sent),
                );
                Ok(())
            }
            Err(error) => {
                let outcome =
                    AttemptOutcome::from_result(&Err::<(), _>(error.clone()), tokens_before)
                        .with_retries(retries);
                attempt.track(outcome);
                if !error.is_interruption() {
                    self.emit(EventMsg::Error(error.to_error_event(REMOTE_COMPACT_ERROR_PREFIX)))
                        .await;
                }
                Err(CompactionFailure(error))
            }
        }
    }

    /// Installs a compacted history (DESIGN §2 step 7): trace checkpoint, rollout `compacted`
    /// line (plus `turn_context` when mid-turn), then memory, window generation, token usage and
    /// `item_completed`. The rollout is written first: if that fails, nothing changes.
    async fn install(
        &self,
        turn: &TurnContext,
        item: &ContextCompactionItem,
        prepared: &Prepared,
        injection: InitialContextInjection,
        message: &str,
        trace: &CompactionTraceContext,
    ) -> Result<(), CompactorError> {
        trace.record_installed(&prepared.input_history, &prepared.new_history).await;
        let reference = match injection {
            InitialContextInjection::DoNotInject => None,
            InitialContextInjection::BeforeLastUserMessage => Some(turn.context_item(self)),
        };
        let mut lines =
            vec![RolloutItem::Compacted(CompactedItem::new(message, prepared.new_history.clone()))];
        if let Some(reference) = &reference {
            lines.push(RolloutItem::TurnContext(reference.clone()));
        }
        self.persist(&lines).await?;
        {
            let estimate = self.estimate_context();
            let mut state = self.state();
            state.history = prepared.new_history.clone();
            state.reference_context_item = reference;
            state.recompute_token_usage(&estimate, turn.model.model_context_window());
        }
        self.inner.client.advance_window_generation();
        self.emit_token_count().await;
        self.emit(EventMsg::ItemCompleted {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            item: TurnItem::ContextCompaction(item.clone()),
            completed_at_ms: now_ms(),
        })
        .await;
        self.emit(EventMsg::ContextCompacted {}).await;
        Ok(())
    }
}
