//! Compaction turns and tasks: the manual `/compact` turn, inline auto compaction with its loop
//! guard, the fallback chain, hooks, and the installation every implementation shares
//! (D7, D8, D18, D104).

mod local;
mod prune;
mod remote_v1;
mod remote_v2;

pub(crate) use remote_v1::add_v1_focus;

use std::sync::Arc;

use bytes::Bytes;
use compactor_analytics::{
    AttemptOutcome, AttemptSpec, ChainPosition, CompactionAnalyticsAttempt, CompactionContext,
};
use compactor_client::{ModelClientSession, ResponseStream, SentRequest};
use compactor_engine::{
    Compacted, CompactionNeed, EstimateContext, HistoryCounts, Layout, ServerCompaction,
    WindowLimits, compacted_history, pinned_tokens,
};
use compactor_protocol::{
    CompactedItem, CompactionImplementation, CompactionPhase, CompactionReason, CompactionReceipt,
    CompactionTrigger, CompactorError, ContextCompactionItem, EventMsg, HookEventName,
    InitialContextInjection, PinsItem, Prompt, ReceiptStatus, ResponseItem, RolloutItem,
    TokenUsage, TurnItem, TurnSettings,
};
use compactor_rollout_trace::crash::{self, CrashPoint};
use compactor_rollout_trace::{CompactionTraceAttempt, CompactionTraceContext, SentRequestJson};

use crate::config::ProgressLedger;
use crate::hooks::{CompactHookInput, HookOutcome};
use crate::pins::PinsAtStart;
use crate::receipt::{ReceiptFacts, ReceiptHeader, ReceiptHistories, SentItems};
use crate::retry::{StreamAttempt, StreamFailure};
use crate::session::{Session, count_history, now_ms};
use crate::turn::{TurnContext, TurnFailure};

/// The prefix of the `error` event of a failed remote compaction.
pub const REMOTE_COMPACT_ERROR_PREFIX: &str = "Error running remote compact task";

/// The prefix of the `error` event of a failed local compaction or prune.
pub const LOCAL_COMPACT_ERROR_PREFIX: &str = "Error running local compact task";

/// The notice shown after a local compaction.
pub const LOCAL_COMPACTION_WARNING: &str = "Heads up: long threads and repeated compactions make the model less accurate. Start a new thread when possible to keep threads small and targeted.";

/// The chain of a provider that does not compact remotely (D114).
const LOCAL_CHAIN: [CompactionImplementation; 2] =
    [CompactionImplementation::Responses, CompactionImplementation::Prune];

/// What the warning and the analytics event say when a provider refuses the v2 trigger.
const V2_UNSUPPORTED: &str = "the provider does not support remote compaction v2";

/// Whether `error` is a provider refusing a v2 request's trigger item: a 400 that names the
/// trigger's type, or an input item's `type` parameter (D114).
fn refuses_trigger(error: &CompactorError) -> bool {
    let CompactorError::InvalidRequest(text) = error else { return false };
    text.contains("context_compaction")
        || text.contains("compaction_trigger")
        || (text.contains("input[") && text.contains("].type"))
}

/// A compaction failure whose events have been emitted already.
#[derive(Debug)]
pub(crate) struct CompactionFailure(pub(crate) CompactorError);

/// Auto compactions run so far in one turn (the loop guard's count).
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

/// A compacted history ready to install.
pub(crate) struct Prepared {
    /// The history the implementation compacted (after trimming), for the trace.
    pub(crate) input_history: Arc<Vec<ResponseItem>>,
    /// The new history.
    pub(crate) new_history: Vec<ResponseItem>,
    /// The `compacted` line's message: the summary of a local compaction, `""` otherwise.
    pub(crate) message: String,
    /// The completed response's id (v2), for `response.processed`.
    pub(crate) response_id: Option<String>,
    /// The usage the server reported for the compaction request.
    pub(crate) usage: Option<TokenUsage>,
    /// The turn's WebSocket baseline no longer matches (v1, local): drop it after install.
    pub(crate) reset_websocket: bool,
    /// The history keeps its initial context (prune): keep the settings baseline as it is.
    pub(crate) keep_reference: bool,
    /// What the receipt needs to know of the request (D143).
    pub(crate) facts: ReceiptFacts,
}

/// What every compaction starts with: its turn item (one per chain, whose id is the compaction
/// id), its analytics context, and the estimate before it.
struct CompactionStart {
    item: ContextCompactionItem,
    context: CompactionContext,
    tokens_before: i64,
}

/// What is left of a [`Prepared`] once its history is installed.
pub(crate) struct Installed {
    response_id: Option<String>,
    usage: Option<TokenUsage>,
    reset_websocket: bool,
    /// The receipt written with the history.
    receipt: CompactionReceipt,
}

/// What `install` needs besides the prepared history: the attempt's receipt header, the history
/// and pins the compaction started from, and the trace's request id.
pub(crate) struct Install<'a> {
    header: &'a ReceiptHeader<'a>,
    history: &'a [ResponseItem],
    /// The cached counts of `history`.
    counts: &'a HistoryCounts,
    pins: &'a PinsAtStart,
    request_id: Option<String>,
}

/// What a compaction request sent, kept while the client sends it: its wire size for analytics
/// and, when the trace is on, the logical request and wire message for the trace (see D80 in
/// docs/decisions.md). With the trace off nothing is copied or serialized.
pub(crate) struct SentCapture<'t> {
    trace: &'t CompactionTraceContext,
    json: Option<(Bytes, Option<Bytes>)>,
    wire_len: u64,
}

impl<'t> SentCapture<'t> {
    pub(crate) fn new(trace: &'t CompactionTraceContext) -> Self {
        Self { trace, json: None, wire_len: 0 }
    }

    /// Keeps `sent`; the client calls this for every request it puts on the wire, so the last
    /// call describes the request that was answered.
    pub(crate) fn keep(&mut self, sent: &SentRequest<'_>) {
        self.wire_len = sent.wire_len();
        if !self.trace.is_enabled() {
            return;
        }
        self.json =
            match sent.request_json().and_then(|request| Ok((request, sent.wire_message()?))) {
                Ok(json) => Some(json),
                Err(error) => {
                    tracing::warn!(%error, "the request could not be serialized for the trace");
                    None
                }
            };
    }

    /// The size of what went out for the request, in bytes; 0 when nothing did.
    pub(crate) fn wire_len(&self) -> u64 {
        self.wire_len
    }

    /// Records the request in the trace (`compaction_request_started`); a request that never
    /// went out, or a trace that is off, records nothing.
    pub(crate) async fn start_attempt(&self) -> CompactionTraceAttempt {
        match &self.json {
            Some((request, wire_message)) => {
                let sent = SentRequestJson { request, wire_message: wire_message.as_deref() };
                self.trace.start_attempt(sent).await
            }
            None => CompactionTraceAttempt::default(),
        }
    }
}

/// The failed attempts of a chain, and which of them the chain reports when all fail (D164).
#[derive(Default)]
struct ChainFailures {
    /// The attempts in order, each with its rank (lower is reported first).
    failures: Vec<(u8, CompactionImplementation, CompactorError)>,
}

impl ChainFailures {
    /// Records a failed attempt; `latched` when it was v2's refusal that the chain went past.
    fn push(
        &mut self,
        implementation: CompactionImplementation,
        error: CompactorError,
        latched: bool,
    ) {
        let rank = match &error {
            // A rollout that cannot be written stopped the chain: that is the answer.
            CompactorError::RolloutWrite { .. } | CompactorError::RolloutInUse { .. } => 0,
            // An implementation with nothing to do explains nothing about the others.
            CompactorError::NothingToCompact { .. } => 3,
            // The provider's refusal of v2 was reported as a warning when the chain went past
            // it.
            _ if latched => 2,
            _ => 1,
        };
        self.failures.push((rank, implementation, error));
    }

    /// The failure to report: the first of the lowest rank.
    fn reported(self) -> Option<(CompactionImplementation, CompactorError)> {
        let best = self.failures.iter().map(|(rank, ..)| *rank).min()?;
        self.failures
            .into_iter()
            .find(|(rank, ..)| *rank == best)
            .map(|(_, implementation, error)| (implementation, error))
    }
}

/// How a compaction reads the answer to its stream request.
pub(crate) trait ReadAnswer {
    /// What it reads.
    type Answer: Send;

    /// Reads `stream` to the answer.
    fn read(
        &self,
        stream: ResponseStream,
    ) -> impl Future<Output = Result<Self::Answer, CompactorError>> + Send;

    /// The output items of `answer` that the trace records.
    fn output(answer: &Self::Answer) -> &[ResponseItem];
}

/// One stream request of a compaction (v2, local): sends the prompt, reads the answer, adds
/// what went out to `bytes_sent`, and traces the request as the client sent it, with the
/// answer's output items or the error.
pub(crate) struct TracedStream<'s, 'p, R> {
    pub(crate) prompt: &'s Prompt<'p>,
    pub(crate) settings: &'s TurnSettings,
    pub(crate) trace: &'s CompactionTraceContext,
    pub(crate) bytes_sent: &'s mut u64,
    pub(crate) request_id: &'s mut Option<String>,
    pub(crate) read: R,
}

impl<R: ReadAnswer + Send + Sync> StreamAttempt for TracedStream<'_, '_, R> {
    type Output = R::Answer;

    async fn run(
        &mut self,
        client_session: &mut ModelClientSession,
    ) -> Result<R::Answer, StreamFailure> {
        let mut sent = SentCapture::new(self.trace);
        let opened = client_session
            .stream_with_report(self.prompt, self.settings, &mut |report| sent.keep(report))
            .await;
        *self.bytes_sent = self.bytes_sent.saturating_add(sent.wire_len());
        let attempt = sent.start_attempt().await;
        if let Some(request_id) = attempt.request_id() {
            *self.request_id = Some(request_id.to_owned());
        }
        let stream = match opened {
            Ok(stream) => stream,
            Err(error) => {
                attempt.record_result(Err(&error)).await;
                return Err(StreamFailure::Open(error));
            }
        };
        match self.read.read(stream).await {
            Ok(answer) => {
                attempt.record_result(Ok(R::output(&answer))).await;
                Ok(answer)
            }
            Err(error) => {
                attempt.record_result(Err(&error)).await;
                Err(StreamFailure::Stream(error))
            }
        }
    }
}

/// Counters of one attempt, kept across its retries for analytics, and the trace's id of its
/// last request for the receipt.
#[derive(Debug, Default)]
pub(crate) struct AttemptStats {
    pub(crate) retries: u32,
    pub(crate) bytes_sent: u64,
    pub(crate) request_id: Option<String>,
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

    /// Compacts the history now, asking the model to preserve what `focus` names (D30).
    ///
    /// # Errors
    ///
    /// As [`Session::compact`].
    pub async fn compact_with_focus(&self, focus: &str) -> Result<(), CompactorError> {
        self.manual_compaction(Some(focus)).await
    }

    async fn manual_compaction(&self, focus: Option<&str>) -> Result<(), CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        // A compaction no implementation of the chain can fit is refused before it starts: no
        // turn, no event, no request, nothing appended (D63 in docs/decisions.md).
        if let Some(error) = self.cannot_fit(&self.inner.config.model) {
            tracing::warn!(error = %error, "manual compaction refused");
            return Err(error);
        }
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

    /// The loop guard before a request (D104): compacts when the request (the history plus
    /// `incoming`, the user's input about to be recorded, with the initial context the next turn
    /// would inject) reaches the auto-compact limit and has grown enough since the last
    /// compaction, or when it does not fit the usable window.
    ///
    /// Past the per-turn cap, a compaction for the limit is skipped: the request still fits, and
    /// the turn goes on. A request that does not fit, before or after a compaction, ends the turn
    /// with `CompactionMadeNoProgress`; the installed history stays.
    pub(crate) async fn guard_request(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        auto: &mut AutoCompaction,
        incoming: Option<&ResponseItem>,
        injection: InitialContextInjection,
        phase: CompactionPhase,
    ) -> Result<(), CompactionFailure> {
        let limits = turn.model.window_limits();
        let estimate = self.total_token_usage().saturating_add(self.pending_tokens(incoming));
        let after_last_compaction = self.state().after_last_compaction;
        let Some(need) = limits.compaction_need(estimate, after_last_compaction) else {
            return Ok(());
        };
        if auto.count >= self.inner.config.compaction.max_auto_compactions_per_turn {
            return match need {
                CompactionNeed::Limit => {
                    tracing::debug!(estimate, "auto compaction skipped: the turn's cap is reached");
                    Ok(())
                }
                CompactionNeed::Fit => Err(self.no_progress(estimate, &limits).await),
            };
        }
        self.run_auto_compaction(
            turn,
            client_session,
            auto,
            injection,
            CompactionReason::ContextLimit,
            phase,
        )
        .await?;
        let retained = self.total_token_usage().saturating_add(self.pending_tokens(incoming));
        if limits.fits(retained) {
            return Ok(());
        }
        Err(self.no_progress(retained, &limits).await)
    }

    /// An auto compaction inside a turn, on the turn's client session. Past the per-turn cap
    /// (D104) it ends the turn with `CompactionMadeNoProgress` instead.
    pub(crate) async fn run_auto_compaction(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        auto: &mut AutoCompaction,
        injection: InitialContextInjection,
        reason: CompactionReason,
        phase: CompactionPhase,
    ) -> Result<(), CompactionFailure> {
        if auto.count >= self.inner.config.compaction.max_auto_compactions_per_turn {
            let estimate = self.total_token_usage();
            return Err(self.no_progress(estimate, &turn.model.window_limits()).await);
        }
        auto.count += 1;
        let request = CompactionRequest {
            trigger: CompactionTrigger::Auto,
            reason,
            phase,
            injection,
            focus: None,
        };
        // Boxed: a compaction's state is large, and every turn's future would carry it.
        Box::pin(self.run_compaction(turn, client_session, request)).await
    }

    /// The history `compacted` installs, laid out as every compacted history is (D101, D102,
    /// D103): the `pinned` items first (D140); the progress ledger rendered within its budget and
    /// within what the pins leave of the implementation's budget (D152, D154), after which a
    /// previous ledger message is left out of the retained items; the harness's initial context
    /// placed by `injection`; the model's retained budget and the image cap.
    pub(crate) fn lay_out(
        &self,
        turn: &TurnContext,
        injection: InitialContextInjection,
        pinned: &[ResponseItem],
        compacted: Compacted<'_>,
    ) -> Result<Vec<ResponseItem>, CompactorError> {
        let config = &self.inner.config;
        let layout = Layout {
            pinned,
            initial_context: &config.initial_context,
            injection,
            retained_budget_tokens: config.compaction.retained_budget(&turn.model),
            max_retained_images: config.compaction.max_retained_images,
            counter: config.tokens.counter,
            ..Layout::new(&config.contextual_markers)
        };
        let ledger = match config.compaction.ledger {
            ProgressLedger::On => {
                // Pins that fit are never refused because of the ledger (D142): it gets what
                // they leave of the budget the layout checks them against.
                let budget = match &compacted {
                    Compacted::RemoteV2 { .. } | Compacted::RemoteV1 { .. } => {
                        Some(layout.retained_budget_tokens)
                    }
                    Compacted::Local { .. } => Some(layout.local_budget_tokens),
                    Compacted::Prune { .. } | Compacted::ServerManaged { .. } => None,
                };
                let pinned = pinned_tokens(pinned, layout.counter);
                let left = budget.map_or(u64::MAX, |budget| budget.saturating_sub(pinned));
                let budget = config.compaction.ledger_budget(&turn.model).min(left);
                self.state().ledger.render_with(budget, layout.counter)
            }
            ProgressLedger::Off => None,
        };
        let layout = Layout { ledger: ledger.as_slice(), ..layout };
        compacted_history(compacted, &layout).map_err(CompactorError::from)
    }

    /// The estimated tokens `incoming` adds to the next request, with the initial context the
    /// turn injects when the session has no settings baseline.
    fn pending_tokens(&self, incoming: Option<&ResponseItem>) -> i64 {
        let Some(incoming) = incoming else { return 0 };
        let config = &self.inner.config;
        let estimate =
            EstimateContext { base_instructions: "", tool_tokens: 0, ..self.estimate_context() };
        let mut tokens = estimate.estimate(std::slice::from_ref(incoming));
        if self.state().reference_context_item.is_none() {
            tokens = tokens.saturating_add(estimate.estimate(&config.initial_context));
        }
        i64::try_from(tokens).unwrap_or(i64::MAX)
    }

    /// Emits and returns `CompactionMadeNoProgress` for a request of `retained` tokens.
    async fn no_progress(&self, retained: i64, limits: &WindowLimits) -> CompactionFailure {
        let error = CompactorError::CompactionMadeNoProgress {
            retained_tokens: retained,
            limit: limits.auto_compact_limit,
            window: limits.usable_window.unwrap_or(i64::MAX),
        };
        self.emit(EventMsg::Error(error.to_unprefixed_error_event())).await;
        CompactionFailure(error)
    }

    /// The refusal of a compaction of the current history into `model`'s usable window when every
    /// implementation of the chain is known, before any request, to leave too much (D63).
    fn cannot_fit(&self, model: &crate::config::ModelInfo) -> Option<CompactorError> {
        let usable = model.model_context_window()?;
        let chain = self.compaction_chain();
        // The bound reads the history and its counts where they are: a few sums, no await.
        let state = self.state();
        if state.history.is_empty() {
            return None;
        }
        let mut smallest: Option<u64> = None;
        for implementation in chain {
            let floor =
                self.compacted_floor(implementation, &state.history, &state.counts, model)?;
            smallest = Some(smallest.map_or(floor, |smallest| smallest.min(floor)));
        }
        drop(state);
        let tokens = i64::try_from(smallest?).unwrap_or(i64::MAX);
        (tokens > usable)
            .then_some(CompactorError::CompactionDoesNotFit { tokens, usable_window: usable })
    }

    /// [`compactor_engine::compacted_floor`] with the session's instructions, markers and
    /// counter, and `model`'s retained budget. It stays uncorrected: a calibration above one
    /// would raise a lower bound past what the compaction may really install.
    pub(crate) fn compacted_floor(
        &self,
        implementation: CompactionImplementation,
        history: &[ResponseItem],
        counts: &HistoryCounts,
        model: &crate::config::ModelInfo,
    ) -> Option<u64> {
        let config = &self.inner.config;
        compactor_engine::compacted_floor(
            implementation,
            history,
            Some(counts),
            &config.base_instructions,
            &config.contextual_markers,
            config.compaction.retained_budget(model),
            config.tokens.counter,
        )
    }

    /// The implementations to try, in order (D8, D18, D114): the configured or default chain,
    /// without v2 once the provider refused its trigger.
    pub(crate) fn compaction_chain(&self) -> Vec<CompactionImplementation> {
        let mut chain = self.inner.config.compaction_chain();
        if self.state().lacks_remote_v2 {
            chain.retain(|implementation| {
                *implementation != CompactionImplementation::ResponsesCompactionV2
            });
            if chain.is_empty() {
                chain = LOCAL_CHAIN.to_vec();
            }
        }
        chain
    }

    /// After a failed v2 attempt: when `error` is the provider refusing the trigger item and
    /// neither its kind nor its setting says it compacts remotely, marks it as lacking v2 for the
    /// session and says so once (D114). Returns whether it did.
    async fn latch_missing_v2(&self, error: &CompactorError) -> bool {
        if !refuses_trigger(error) || self.inner.config.compacts_remotely() {
            return false;
        }
        let first = !std::mem::replace(&mut self.state().lacks_remote_v2, true);
        if first {
            let message = format!(
                "{V2_UNSUPPORTED} ({error}); compaction goes on locally, and v2 is not tried \
                 again in this session"
            );
            self.emit(EventMsg::Warning { message }).await;
        }
        true
    }

    /// Runs the chain: one `ContextCompaction` item and compaction id for all attempts, one
    /// analytics event per attempt, one `compaction_receipt` event per attempt that installed or
    /// failed (D143), and one `error` event only when every attempt failed.
    async fn run_compaction(
        &self,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        request: CompactionRequest<'_>,
    ) -> Result<(), CompactionFailure> {
        let config = &self.inner.config;
        let chain = self.compaction_chain();
        let CompactionStart { item, context, tokens_before } =
            self.start_compaction(turn, request.trigger, request.reason, request.phase);
        let begin = |index: usize, implementation: CompactionImplementation, length: usize| {
            let spec = AttemptSpec::new(implementation, tokens_before)
                .with_attempt_number(u32::try_from(index + 1).unwrap_or(u32::MAX))
                .with_chain(ChainPosition::from_index(index, length));
            CompactionAnalyticsAttempt::begin(&self.inner.analytics, &context, spec)
        };
        let header =
            |index: usize, implementation: CompactionImplementation, length: usize| ReceiptHeader {
                compaction_id: &item.id,
                implementation,
                chain: ChainPosition::from_index(index, length),
                trigger: request.trigger,
                reason: request.reason,
                phase: request.phase,
                tokens_before,
            };
        let first = chain.first().copied().unwrap_or(CompactionImplementation::Prune);
        if self.state().history.is_empty() {
            // Nothing to compact: no request, no change (D9).
            begin(0, first, chain.len()).track(AttemptOutcome::skipped(tokens_before));
            return Ok(());
        }
        if let HookOutcome::Stop { reason } =
            self.run_hook(turn, request.trigger, HookEventName::PreCompact).await
        {
            let error = CompactorError::TurnAborted { reason };
            begin(0, first, chain.len())
                .track(AttemptOutcome::interrupted(error.to_string(), tokens_before));
            return Err(CompactionFailure(error));
        }
        let trace = self.announce_compaction(turn, &item).await;
        // What every attempt starts from: the history and the pins as they are now.
        // The counts come with it, so receipts need not count the history again (D124).
        let (history, counts) = {
            let state = self.state();
            (HeldHistory(Some(Arc::clone(&state.history))), state.counts.clone())
        };
        let pins = self.pins_at_start();
        let mut failures = ChainFailures::default();
        let usable = turn.model.model_context_window();
        let mut chain = chain;
        let mut index = 0;
        while let Some(implementation) = chain.get(index).copied() {
            index += 1;
            let attempt = begin(index - 1, implementation, chain.len());
            let header = header(index - 1, implementation, chain.len());
            let mut stats = AttemptStats::default();
            // An implementation whose result cannot fit is not asked (D63), nor one whose pins
            // alone exceed its budget (D142).
            let refused = pins
                .over_budget(
                    self.pins_budget(implementation, &turn.model),
                    self.inner.config.tokens.counter,
                )
                .or_else(|| {
                    let usable = usable?;
                    let floor =
                        self.compacted_floor(implementation, &history, &counts, &turn.model)?;
                    let tokens = i64::try_from(floor).unwrap_or(i64::MAX);
                    (tokens > usable).then_some(CompactorError::CompactionDoesNotFit {
                        tokens,
                        usable_window: usable,
                    })
                });
            if let Some(error) = refused {
                let receipt = self.failed_receipt(&header, &history, &counts, &error);
                attempt.track(
                    AttemptOutcome::failed(&error, tokens_before).with_receipt(receipt.totals),
                );
                self.emit_receipt(receipt).await;
                tracing::warn!(%implementation, error = %error, "compaction attempt skipped");
                failures.push(implementation, error, false);
                continue;
            }
            let prepared = {
                let work = self.prepare(
                    implementation,
                    turn,
                    client_session,
                    request,
                    &trace,
                    &mut stats,
                    &pins,
                );
                tokio::select! {
                    () = turn.cancel.cancelled() => Err(CompactorError::Cancelled),
                    prepared = work => prepared,
                }
            };
            let installed = match prepared {
                Ok(prepared) => {
                    crash::hit(CrashPoint::AfterCompactionResponse);
                    let install = Install {
                        header: &header,
                        history: &history,
                        counts: &counts,
                        pins: &pins,
                        request_id: stats.request_id.take(),
                    };
                    self.install(turn, &item, prepared, request.injection, &trace, install).await
                }
                Err(error) => Err(error),
            };
            let installed = match installed {
                Ok(installed) => installed,
                Err(error) => {
                    let latched = implementation == CompactionImplementation::ResponsesCompactionV2
                        && self.latch_missing_v2(&error).await;
                    let tracked = if latched {
                        // The analytics event says why v2 will not be tried again.
                        CompactorError::InvalidRequest(format!("{V2_UNSUPPORTED}: {error}"))
                    } else {
                        error.clone()
                    };
                    let mut outcome =
                        AttemptOutcome::from_result(&Err::<(), _>(tracked), tokens_before)
                            .with_retries(stats.retries)
                            .with_bytes_sent(stats.bytes_sent);
                    tracing::warn!(%implementation, error = %error, "compaction attempt failed");
                    if error.is_interruption() {
                        attempt.track(outcome);
                        return Err(CompactionFailure(error));
                    }
                    let receipt = self.failed_receipt(&header, &history, &counts, &error);
                    outcome = outcome.with_receipt(receipt.totals);
                    attempt.track(outcome);
                    self.emit_receipt(receipt).await;
                    // A rollout that cannot be written fails every implementation alike: the
                    // chain stops at once (see D53 in docs/decisions.md).
                    let rollout_failed = matches!(
                        error,
                        CompactorError::RolloutWrite { .. } | CompactorError::RolloutInUse { .. }
                    );
                    if latched {
                        // The chain goes on without v2; with nothing left, it goes on as it
                        // would for a provider without remote compaction.
                        chain.retain(|next| {
                            *next != CompactionImplementation::ResponsesCompactionV2
                        });
                        index -= 1;
                        if index == chain.len() {
                            let missing: Vec<CompactionImplementation> = LOCAL_CHAIN
                                .into_iter()
                                .filter(|local| !chain.contains(local))
                                .collect();
                            chain.extend(missing);
                        }
                    }
                    failures.push(implementation, error, latched);
                    if rollout_failed {
                        break;
                    }
                    continue;
                }
            };
            // Installed means done: a cancellation now only skips the acknowledgement
            // (D32).
            if let Some(response_id) = &installed.response_id
                && config.features.responses_websocket_response_processed
                && !turn.cancel.is_cancelled()
            {
                client_session.send_response_processed(response_id).await;
                crash::hit(CrashPoint::AfterResponseProcessed);
            }
            if installed.reset_websocket {
                client_session.reset_websocket_session();
            }
            let mut outcome = AttemptOutcome::completed(self.total_token_usage())
                .with_retries(stats.retries)
                .with_bytes_sent(stats.bytes_sent)
                .with_receipt(installed.receipt.totals);
            if let Some(usage) = installed.usage {
                outcome = outcome.with_completed_usage(usage);
            }
            attempt.track(outcome);
            self.emit_receipt(installed.receipt).await;
            if implementation == CompactionImplementation::Responses {
                self.emit(EventMsg::Warning { message: LOCAL_COMPACTION_WARNING.to_owned() }).await;
            }
            if let HookOutcome::Stop { reason } =
                self.run_hook(turn, request.trigger, HookEventName::PostCompact).await
            {
                return Err(CompactionFailure(CompactorError::TurnAborted { reason }));
            }
            return Ok(());
        }
        let (implementation, error) = failures
            .reported()
            .unwrap_or((first, CompactorError::Config("the compaction chain is empty".to_owned())));
        let prefix = match implementation {
            CompactionImplementation::ResponsesCompact
            | CompactionImplementation::ResponsesCompactionV2
            | CompactionImplementation::ServerManaged => REMOTE_COMPACT_ERROR_PREFIX,
            CompactionImplementation::Responses | CompactionImplementation::Prune => {
                LOCAL_COMPACT_ERROR_PREFIX
            }
        };
        self.emit(EventMsg::Error(error.to_error_event(prefix))).await;
        Err(CompactionFailure(error))
    }

    /// The budget the pins of a compaction by `implementation` must fit (D142): the retained
    /// budget for remote compaction and `prune`, local compaction's user-message budget; `None`
    /// for server-managed compaction, which re-inserts no pins.
    pub(crate) fn pins_budget(
        &self,
        implementation: CompactionImplementation,
        model: &crate::config::ModelInfo,
    ) -> Option<u64> {
        let config = &self.inner.config;
        match implementation {
            CompactionImplementation::ServerManaged => None,
            CompactionImplementation::Responses => {
                Some(Layout::new(&config.contextual_markers).local_budget_tokens)
            }
            CompactionImplementation::ResponsesCompactionV2
            | CompactionImplementation::ResponsesCompact
            | CompactionImplementation::Prune => Some(config.compaction.retained_budget(model)),
        }
    }

    /// Emits a receipt as a `compaction_receipt` event (never persisted: an installed
    /// compaction's receipt is in its `compacted` line already).
    pub(crate) async fn emit_receipt(&self, receipt: CompactionReceipt) {
        self.emit(EventMsg::CompactionReceipt { receipt: Box::new(receipt) }).await;
    }

    /// Installs a compaction the server made by itself (`server_managed`, D46): the engine's
    /// split of the response goes through the same start, events, analytics, trace and rollout
    /// line as any compaction. The installed history is the compaction item laid out as every
    /// compacted history is (D102); the output items after it are returned, for the turn to
    /// record after it.
    pub(crate) async fn install_server_managed(
        &self,
        turn: &TurnContext,
        compaction: ServerCompaction,
        phase: CompactionPhase,
    ) -> Result<Vec<ResponseItem>, CompactionFailure> {
        let CompactionStart { item, context, tokens_before } = self.start_compaction(
            turn,
            CompactionTrigger::Auto,
            CompactionReason::ContextLimit,
            phase,
        );
        let attempt = CompactionAnalyticsAttempt::begin(
            &self.inner.analytics,
            &context,
            AttemptSpec::new(CompactionImplementation::ServerManaged, tokens_before),
        );
        let trace = self.announce_compaction(turn, &item).await;
        let (history, counts) = {
            let state = self.state();
            (Arc::clone(&state.history), state.counts.clone())
        };
        // The server decides what it keeps: pins are not re-inserted, and the receipt says
        // which of them it was sent (D146).
        let pins = self.pins_at_start();
        let header = ReceiptHeader {
            compaction_id: &item.id,
            implementation: CompactionImplementation::ServerManaged,
            chain: ChainPosition::SINGLE,
            trigger: CompactionTrigger::Auto,
            reason: CompactionReason::ContextLimit,
            phase,
            tokens_before,
        };
        let mut compacted = compaction.new_history;
        let after = compacted.split_off(compacted.len().min(1));
        let laid_out = match compacted.pop() {
            Some(item) => self.lay_out(
                turn,
                InitialContextInjection::DoNotInject,
                &[],
                Compacted::ServerManaged { item },
            ),
            None => Err(CompactorError::Fatal("the server's compaction has no item".to_owned())),
        };
        let installed = match laid_out {
            Ok(new_history) => {
                let produced = new_history.len();
                let prepared = Prepared {
                    input_history: Arc::new(compaction.input_history),
                    new_history,
                    message: String::new(),
                    response_id: None,
                    usage: None,
                    reset_websocket: false,
                    keep_reference: true,
                    facts: ReceiptFacts {
                        sent: Some(SentItems::All),
                        trimmed: false,
                        produced,
                        response_id: None,
                        trimmed_history: None,
                    },
                };
                let install = Install {
                    header: &header,
                    history: &history,
                    counts: &counts,
                    pins: &pins,
                    request_id: None,
                };
                self.install(
                    turn,
                    &item,
                    prepared,
                    InitialContextInjection::DoNotInject,
                    &trace,
                    install,
                )
                .await
            }
            Err(error) => Err(error),
        };
        match installed {
            Ok(installed) => {
                attempt.track(
                    AttemptOutcome::completed(self.total_token_usage())
                        .with_receipt(installed.receipt.totals),
                );
                self.emit_receipt(installed.receipt).await;
                Ok(after)
            }
            Err(error) => {
                let receipt = self.failed_receipt(&header, &history, &counts, &error);
                attempt.track(
                    AttemptOutcome::failed(&error, tokens_before).with_receipt(receipt.totals),
                );
                self.emit_receipt(receipt).await;
                self.emit(EventMsg::Error(error.to_error_event(REMOTE_COMPACT_ERROR_PREFIX))).await;
                Err(CompactionFailure(error))
            }
        }
    }

    /// A new compaction's turn item, analytics context and estimate before.
    fn start_compaction(
        &self,
        turn: &TurnContext,
        trigger: CompactionTrigger,
        reason: CompactionReason,
        phase: CompactionPhase,
    ) -> CompactionStart {
        let tokens_before = self.total_token_usage();
        let item = ContextCompactionItem::new(uuid::Uuid::new_v4().to_string());
        let context = CompactionContext {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            model: turn.model.slug.clone(),
            provider: self.inner.config.provider.name.clone(),
            compaction_id: item.id.clone(),
            trigger,
            reason,
            phase,
        };
        CompactionStart { item, context, tokens_before }
    }

    /// Opens the compaction's trace context and emits `item_started` for its item.
    async fn announce_compaction(
        &self,
        turn: &TurnContext,
        item: &ContextCompactionItem,
    ) -> CompactionTraceContext {
        let trace = self.inner.trace.compaction_trace_context(
            &turn.turn_id,
            &item.id,
            &turn.model.slug,
            &self.inner.config.provider.name,
        );
        self.emit(EventMsg::ItemStarted {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            item: TurnItem::ContextCompaction(item.clone()),
            started_at_ms: now_ms(),
        })
        .await;
        trace
    }

    #[expect(clippy::too_many_arguments, reason = "one call site, each argument distinct")]
    async fn prepare(
        &self,
        implementation: CompactionImplementation,
        turn: &TurnContext,
        client_session: &mut ModelClientSession,
        request: CompactionRequest<'_>,
        trace: &CompactionTraceContext,
        stats: &mut AttemptStats,
        pins: &PinsAtStart,
    ) -> Result<Prepared, CompactorError> {
        match implementation {
            CompactionImplementation::ResponsesCompactionV2 => {
                self.prepare_v2(turn, client_session, request, trace, stats, pins).await
            }
            CompactionImplementation::ResponsesCompact => {
                self.prepare_v1(turn, request, trace, stats, pins).await
            }
            CompactionImplementation::Responses => {
                self.prepare_local(turn, request, trace, stats, pins).await
            }
            CompactionImplementation::Prune => self.prepare_prune(turn, pins),
            CompactionImplementation::ServerManaged => Err(CompactorError::Config(
                "server_managed compaction happens on the server and cannot be requested"
                    .to_owned(),
            )),
        }
    }

    /// Runs a hook, with `hook_started` / `hook_completed` around it.
    async fn run_hook(
        &self,
        turn: &TurnContext,
        trigger: CompactionTrigger,
        hook_event_name: HookEventName,
    ) -> HookOutcome {
        let Some(hooks) = &self.inner.hooks else { return HookOutcome::Continue };
        let config = &self.inner.config;
        let input = CompactHookInput {
            session_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            cwd: config.cwd.clone(),
            transcript_path: config.rollout_path.clone(),
            model: turn.model.slug.clone(),
            trigger,
            hook_event_name,
        };
        self.emit(EventMsg::HookStarted {
            turn_id: turn.turn_id.clone(),
            hook_event_name,
            trigger,
        })
        .await;
        let outcome = match hook_event_name {
            HookEventName::PreCompact => hooks.pre_compact(&input).await,
            HookEventName::PostCompact => hooks.post_compact(&input).await,
        };
        let (stopped, reason) = match &outcome {
            HookOutcome::Continue => (false, None),
            HookOutcome::Stop { reason } => (true, Some(reason.clone())),
        };
        self.emit(EventMsg::HookCompleted {
            turn_id: turn.turn_id.clone(),
            hook_event_name,
            stopped,
            reason,
        })
        .await;
        outcome
    }

    /// Installs a compacted history (D7): trace checkpoint, rollout `compacted`
    /// line with the pins and the receipt (plus `turn_context` when mid-turn, and a `pins` line
    /// when the pins changed while the compaction ran), then memory, window generation, token
    /// usage and `item_completed`. The rollout is written and synced first: if either fails,
    /// nothing changes.
    async fn install(
        &self,
        turn: &TurnContext,
        item: &ContextCompactionItem,
        prepared: Prepared,
        injection: InitialContextInjection,
        trace: &CompactionTraceContext,
        install: Install<'_>,
    ) -> Result<Installed, CompactorError> {
        let Prepared {
            input_history,
            new_history,
            message,
            response_id,
            usage,
            reset_websocket,
            keep_reference,
            mut facts,
        } = prepared;
        // The new history is counted once (D124): the fit check, the receipt and the session's
        // estimates after the install all use these counts.
        let (new_history, counts) = count_history(new_history, &self.item_counter()).await?;
        // Nothing that does not fit the usable window is installed (D63): the chain goes on.
        // A compacted history is estimated uncorrected, as it is once installed (D123).
        if let Some(usable) = turn.model.model_context_window() {
            let estimate = EstimateContext { calibration: None, ..self.estimate_context() };
            let tokens = i64::try_from(estimate.estimate_counted(&counts)).unwrap_or(i64::MAX);
            if tokens > usable {
                drop_in_background((new_history, input_history));
                return Err(CompactorError::CompactionDoesNotFit { tokens, usable_window: usable });
            }
        }
        trace.record_installed(&input_history, &new_history).await;
        let reference = match injection {
            _ if keep_reference => self.state().reference_context_item.clone(),
            InitialContextInjection::DoNotInject => None,
            InitialContextInjection::BeforeLastUserMessage => Some(turn.context_item(self)),
        };
        let server_managed =
            install.header.implementation == CompactionImplementation::ServerManaged;
        let mut receipt = {
            let facts = ReceiptFacts { response_id: facts.response_id.take(), ..facts };
            let histories = ReceiptHistories {
                history: install.history,
                counts: Some(install.counts),
                input: &input_history,
                new_history: &new_history,
            };
            self.compaction_receipt(
                install.header,
                ReceiptStatus::Completed,
                &histories,
                &facts,
                install.pins,
            )
        };
        receipt.request_id = install.request_id;
        let estimate = self.estimate_context();
        receipt.tokens_after = Some(self.state().total_usage_after_install(
            &new_history,
            &counts,
            &estimate,
            &self.inner.config.contextual_markers,
        ));
        let mut compacted = CompactedItem::new(message, new_history);
        compacted.pins = install.pins.record();
        compacted.receipt = Some(Box::new(receipt));
        // The ledger as it is now goes with the compaction: resume replays what follows it
        // (D153).
        if self.inner.config.compaction.ledger == ProgressLedger::On {
            compacted.ledger = Some(Box::new(self.state().ledger.snapshot().clone()));
        }
        let mut lines = vec![RolloutItem::Compacted(compacted)];
        // The baseline is persisted after the compaction so a resume restores it (D23).
        if let Some(reference) = &reference {
            lines.push(RolloutItem::TurnContext(reference.clone()));
        }
        // A pin changed while the compaction ran: the newest pins record must stay the session's
        // pins, so they follow the compaction (D141).
        let pins_guard = self.inner.pin_lock.lock().await;
        let current_pins = self.state().pins.clone();
        if current_pins != install.pins.pins {
            lines.push(RolloutItem::Pins(PinsItem::new(current_pins)));
        }
        self.persist(&lines).await?;
        // The history moves from the rollout line into the session, and the receipt back out of
        // it: neither is copied.
        let RolloutItem::Compacted(CompactedItem {
            replacement_history: Some(new_history),
            receipt: Some(receipt),
            ..
        }) = lines.swap_remove(0)
        else {
            return Err(CompactorError::Fatal(
                "the compacted line lost its history or its receipt".to_owned(),
            ));
        };
        let replaced = {
            let estimate = self.estimate_context();
            let mut state = self.state();
            let replaced = state.replace_history(Arc::new(new_history), counts);
            state.pin_slot = if server_managed { 0 } else { install.pins.items.len() };
            state.reference_context_item = reference;
            state.recompute_token_usage(&estimate, turn.model.model_context_window());
            state.after_last_compaction =
                Some(state.total_usage(&estimate, &self.inner.config.contextual_markers));
            replaced
        };
        drop(pins_guard);
        crash::hit(CrashPoint::AfterMemorySwap);
        // Freeing a large history takes milliseconds: it happens off the compaction's path.
        drop_in_background((replaced, input_history));
        self.inner.client.advance_window_generation();
        self.emit_token_count(&turn.model).await;
        self.emit(EventMsg::ItemCompleted {
            thread_id: self.inner.thread_id.clone(),
            turn_id: turn.turn_id.clone(),
            item: TurnItem::ContextCompaction(item.clone()),
            completed_at_ms: now_ms(),
        })
        .await;
        self.emit(EventMsg::ContextCompacted {}).await;
        Ok(Installed { response_id, usage, reset_websocket, receipt: *receipt })
    }

    /// The history a compaction request is built from: the session's history, trimmed of
    /// trailing tool traffic until it fits the window (D37). It is a snapshot of the
    /// session's history, copied only when it must be trimmed.
    pub(crate) fn compaction_history(&self, turn: &TurnContext) -> Arc<Vec<ResponseItem>> {
        let estimate = self.estimate_context();
        let (history, fits) = {
            let state = self.state();
            (Arc::clone(&state.history), estimate.estimate_counted(&state.counts))
        };
        let window = turn.model.model_context_window().map(|w| u64::try_from(w).unwrap_or(0));
        match window {
            Some(window) if fits > window => {
                let mut trimmed = history.to_vec();
                drop(history);
                let counts = self.state().counts.clone();
                let removed = compactor_engine::trim_function_call_history_to_fit_context_window(
                    &mut trimmed,
                    &counts,
                    window,
                    &estimate,
                );
                tracing::info!(removed, "trimmed trailing tool traffic before compaction");
                Arc::new(trimmed)
            }
            Some(_) | None => history,
        }
    }
}

/// The history a compaction started from. Once a new history is installed, this is often the
/// last reference to the old one (the session's and the attempt's went to the blocking pool), and
/// freeing ten thousand items took a millisecond or two of the compaction's own time: it is
/// freed off the compaction's path as well.
struct HeldHistory(Option<Arc<Vec<ResponseItem>>>);

impl std::ops::Deref for HeldHistory {
    type Target = [ResponseItem];

    fn deref(&self) -> &[ResponseItem] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl Drop for HeldHistory {
    fn drop(&mut self) {
        if let Some(history) = self.0.take() {
            drop_in_background(history);
        }
    }
}

/// Drops `value` on the blocking pool when there is a runtime to take it, here otherwise.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(move || drop(value));
        }
        Err(_) => drop(value),
    }
}

#[cfg(test)]
mod tests;
