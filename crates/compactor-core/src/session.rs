//! [`Session`]: one agent conversation, its services, and the events it emits.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use compactor_analytics::AnalyticsClient;
use compactor_client::{ClientNotice, ClientObserver, ModelClient};
use compactor_engine::{
    DefaultTools, EstimateContext, HistoryCounts, ItemCounter, Ledger, LedgerRules, ToolExtractor,
    rebuild_legacy_compacted,
};
use compactor_protocol::tokens::{TokenCalibration, json_len};
use compactor_protocol::{
    CompactorError, EventMsg, OpenItemsItem, ResponseItem, RolloutItem, RolloutLine, SessionMeta,
    TokenUsageInfo,
};
use compactor_rollout_trace::{
    DamagedLines, ReconstructedSession, RecorderOptions, Replay, RolloutContents, RolloutRecorder,
    ThreadTrace, TraceConfig, is_persisted_event, read_rollout,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{ModelInfo, ProgressLedger, SessionConfig};
use crate::hooks::CompactHooks;
use crate::state::{SessionState, UsageBasis};
use crate::tools::{NoTools, ToolHandler};

/// How many events may wait for the harness before a turn pauses for it to catch up.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;

/// How long `shutdown` waits for each service to flush.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// One agent conversation: history, token accounting, the model client, the rollout, traces and
/// analytics.
///
/// Cheap to clone; clones share the session. Turns and compactions are serialized: a manual
/// compaction asked for during a turn waits for the turn to finish (D28). Events arrive
/// on the receiver returned by [`SessionBuilder::build`]; the harness must keep reading it.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<SessionInner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("thread_id", &self.inner.thread_id).finish_non_exhaustive()
    }
}

pub(crate) struct SessionInner {
    pub(crate) thread_id: String,
    pub(crate) config: SessionConfig,
    /// The tokens of `config.tools`, which every request carries.
    pub(crate) tool_tokens: u64,
    pub(crate) client: ModelClient,
    pub(crate) state: Mutex<SessionState>,
    /// Serializes turns and manual compactions.
    pub(crate) turn_lock: tokio::sync::Mutex<()>,
    /// Serializes the changes of the pins with each other and with installs, so the rollout's
    /// newest pins record is always the session's pins (D141).
    pub(crate) pin_lock: tokio::sync::Mutex<()>,
    events: mpsc::Sender<EventMsg>,
    pub(crate) rollout: Option<RolloutRecorder>,
    pub(crate) trace: ThreadTrace,
    pub(crate) analytics: AnalyticsClient,
    pub(crate) tools: Arc<dyn ToolHandler>,
    /// Describes the harness's tools to the progress ledger.
    pub(crate) tool_extractor: Arc<dyn ToolExtractor>,
    pub(crate) hooks: Option<Arc<dyn CompactHooks>>,
    /// The session's root token; each turn gets a child.
    pub(crate) cancel: CancellationToken,
    /// The running turn's token, for [`Session::interrupt`].
    pub(crate) current_turn: Mutex<Option<CancellationToken>>,
}

/// Builds a [`Session`].
pub struct SessionBuilder {
    config: SessionConfig,
    thread_id: Option<String>,
    tools: Arc<dyn ToolHandler>,
    tool_extractor: Arc<dyn ToolExtractor>,
    hooks: Option<Arc<dyn CompactHooks>>,
    analytics: AnalyticsClient,
    damaged_lines: DamagedLines,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder").field("thread_id", &self.thread_id).finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// Uses this thread id (default: a new UUID).
    pub fn thread_id(mut self, thread_id: impl Into<String>) -> Self {
        self.thread_id = Some(thread_id.into());
        self
    }

    /// Runs the model's tool calls with `tools` (default: [`NoTools`]).
    pub fn tools(mut self, tools: impl ToolHandler) -> Self {
        self.tools = Arc::new(tools);
        self
    }

    /// Describes the harness's tools to the progress ledger with `extractor` (default:
    /// [`DefaultTools`], which knows the common shell, patch and file tools; D151).
    pub fn tool_extractor(mut self, extractor: impl ToolExtractor + 'static) -> Self {
        self.tool_extractor = Arc::new(extractor);
        self
    }

    /// Runs `hooks` around every compaction.
    pub fn hooks(mut self, hooks: impl CompactHooks) -> Self {
        self.hooks = Some(Arc::new(hooks));
        self
    }

    /// Tracks compaction attempts with `analytics` (default: disabled).
    pub fn analytics(mut self, analytics: AnalyticsClient) -> Self {
        self.analytics = analytics;
        self
    }

    /// What resuming does with a damaged rollout line (default: [`DamagedLines::Skip`], with a
    /// `warning` event per skipped line; [`DamagedLines::Fail`] refuses the rollout).
    pub fn damaged_lines(mut self, damaged_lines: DamagedLines) -> Self {
        self.damaged_lines = damaged_lines;
        self
    }

    /// A new session; its rollout (when configured) is created and starts with `session_meta`.
    ///
    /// # Errors
    ///
    /// Configuration errors, and rollout or trace files that cannot be created.
    pub async fn build(self) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        check_token_counter(&self.config)?;
        let thread_id = self.thread_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let rollout = match &self.config.rollout_path {
            Some(path) => Some(RolloutRecorder::create(path, RecorderOptions::default()).await?),
            None => None,
        };
        let meta = SessionMeta {
            id: thread_id.clone(),
            originator: Some("compactor".to_owned()),
            cli_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            model_provider: Some(self.config.provider.name.clone()),
            base_instructions: Some(self.config.base_instructions.clone()),
            cwd: self.config.cwd.clone(),
            ..SessionMeta::default()
        };
        if let Some(rollout) = &rollout {
            rollout.record(&[RolloutItem::SessionMeta(meta)]).await?;
        }
        let warnings: Vec<String> =
            rollout.iter().filter_map(RolloutRecorder::lock_takeover_warning).collect();
        let (session, events) = self.finish(thread_id, rollout, SessionState::default()).await?;
        session.warn_all(warnings).await;
        session.pin_configured_notes().await?;
        Ok((session, events))
    }

    /// Resumes the session saved in the rollout at `path`: the history, settings baseline, token
    /// accounting and window generation are those of the live session when it was written, and
    /// new lines are appended to the same file.
    ///
    /// The rollout's writer lock is taken first, so the file is read while no other writer can
    /// append to it. A damaged line is skipped (see [`SessionBuilder::damaged_lines`]); what was
    /// skipped or ignored, and a stale lock taken over, arrive as `warning` events before
    /// anything else.
    ///
    /// # Errors
    ///
    /// [`CompactorError::RolloutInUse`] when another writer holds the rollout; a rollout that
    /// cannot be read or opened for append; under [`DamagedLines::Fail`], a damaged line.
    pub async fn resume(
        self,
        path: &Path,
    ) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        // Opening for append would create a missing file; resuming one is an error.
        if let Err(err) = tokio::fs::metadata(path).await {
            return Err(CompactorError::Rollout(format!(
                "rollout i/o failed on {}: {err}",
                path.display()
            )));
        }
        let rollout = RolloutRecorder::open_append(path, RecorderOptions::default()).await?;
        let contents = read_rollout(path).await?;
        // Boxed: the builder's fields and the session state would make every caller's future
        // large.
        Box::pin(self.resume_with(contents, rollout)).await
    }

    /// Resumes the session whose rollout lines the caller has read already (with
    /// [`read_rollout`]), appending new lines to the rollout at `path`, as
    /// [`SessionBuilder::resume`] does.
    ///
    /// `path` is normally the file `contents` came from. Lines another writer appended to it
    /// after `contents` were read are not in the resumed session, so read `contents` while no
    /// other process writes the session.
    ///
    /// # Errors
    ///
    /// As [`SessionBuilder::resume`].
    pub async fn resume_from(
        self,
        contents: RolloutContents,
        path: &Path,
    ) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        let rollout = RolloutRecorder::open_append(path, RecorderOptions::default()).await?;
        Box::pin(self.resume_with(contents, rollout)).await
    }

    /// A session restored from rollout lines the caller has read (with [`read_rollout`]) that
    /// never writes anything: no rollout is opened (so no writer lock is taken and a torn last
    /// line stays as it is), and no trace bundle is written. `path` names the rollout in errors.
    /// What [`Session::preview_compaction`] and [`Session::pins`] need, and nothing that appends.
    ///
    /// Rollback and fork need a rollout and fail on this session; turns and compactions run in
    /// memory only.
    ///
    /// # Errors
    ///
    /// Under [`DamagedLines::Fail`], a damaged line; configuration errors.
    pub async fn read_only(
        mut self,
        contents: RolloutContents,
        path: &Path,
    ) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        check_token_counter(&self.config)?;
        contents.check(path, self.damaged_lines)?;
        self.config.rollout_path = None;
        self.config.trace = TraceConfig::disabled();
        let ledger = replay_ledger(&self.config, &*self.tool_extractor, &contents.lines);
        let resumed = Replay::new(&rebuild_legacy_compacted, &self.config.contextual_markers)
            .reconstruct_contents(contents);
        let thread_id = self.resumed_thread_id(&resumed);
        let window_generation = resumed.window_generation;
        let state = self.resumed_state(resumed, ledger).await?;
        let (session, events) = self.finish(thread_id, None, state).await?;
        session.inner.client.set_window_generation(window_generation);
        session.pin_configured_notes().await?;
        Ok((session, events))
    }

    /// The thread id of a resumed session: the rollout's, else the one the builder was given,
    /// else a new one.
    fn resumed_thread_id(&self, resumed: &ReconstructedSession) -> String {
        resumed
            .session_meta
            .as_ref()
            .map(|meta| meta.id.clone())
            .or_else(|| self.thread_id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }

    /// The state of a session resumed as `resumed` describes it, with `ledger` replayed from the
    /// same lines; its history moves in and is counted once (D124).
    async fn resumed_state(
        &self,
        resumed: ReconstructedSession,
        ledger: Ledger,
    ) -> Result<SessionState, CompactorError> {
        let previous_model = resumed.previous_turn_settings.as_ref().map(|settings| {
            if settings.model == self.config.model.slug {
                self.config.model.clone()
            } else {
                ModelInfo { slug: settings.model.clone(), ..self.config.model.clone() }
            }
        });
        let (history, counts) = count_history(
            resumed.history,
            &ItemCounter {
                counter: self.config.tokens.counter,
                pass_through: &self.config.provider.pass_through,
            },
        )
        .await?;
        Ok(SessionState {
            history: Arc::new(history),
            counts,
            // The last usage line does not say which items it covered.
            usage_basis: UsageBasis::Unknown,
            reference_context_item: resumed.reference_context_item,
            token_info: resumed.token_info.unwrap_or_default(),
            previous_model,
            pins: resumed.pins,
            pin_slot: resumed.pin_slot,
            next_pin_number: resumed.next_pin_number,
            ledger,
            ..SessionState::default()
        })
    }

    async fn resume_with(
        mut self,
        contents: RolloutContents,
        rollout: RolloutRecorder,
    ) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        check_token_counter(&self.config)?;
        let path = rollout.path().to_path_buf();
        contents.check(&path, self.damaged_lines)?;
        let ledger = replay_ledger(&self.config, &*self.tool_extractor, &contents.lines);
        let mut resumed = Replay::new(&rebuild_legacy_compacted, &self.config.contextual_markers)
            .reconstruct_contents(contents);
        for warning in &resumed.warnings {
            tracing::warn!(path = %path.display(), "{warning}");
        }
        let thread_id = self.resumed_thread_id(&resumed);
        self.config.rollout_path = Some(path);
        let mut warnings = std::mem::take(&mut resumed.warnings);
        warnings.extend(rollout.lock_takeover_warning());
        if rollout.truncated_tail_bytes() > 0 {
            warnings.push(format!(
                "rollout {} ended with an unterminated line of {} bytes, a write that never \
                 finished; it was cut off before appending",
                rollout.path().display(),
                rollout.truncated_tail_bytes()
            ));
        }
        let window_generation = resumed.window_generation;
        let state = self.resumed_state(resumed, ledger).await?;
        let (session, events) = self.finish(thread_id, Some(rollout), state).await?;
        session.inner.client.set_window_generation(window_generation);
        session.warn_all(warnings).await;
        session.pin_configured_notes().await?;
        Ok((session, events))
    }

    async fn finish(
        self,
        thread_id: String,
        rollout: Option<RolloutRecorder>,
        state: SessionState,
    ) -> Result<(Session, mpsc::Receiver<EventMsg>), CompactorError> {
        let tool_tokens = match &self.config.tools[..] {
            [] => 0,
            tools => self.config.tokens.counter.json_tokens(tools),
        };
        let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
        let notices = events_tx.clone();
        let observer = ClientObserver::new(move |notice: &ClientNotice| {
            let event = match notice {
                ClientNotice::Retry(retry) => EventMsg::StreamError {
                    message: retry.message(),
                    compactor_error_info: Some(retry.error.info()),
                    additional_details: Some(retry.error.to_string()),
                },
                ClientNotice::FallbackToHttp { .. } => {
                    EventMsg::Warning { message: notice.message() }
                }
            };
            // The observer runs inside the client and must not wait; a full channel means the
            // harness is not reading, and a notice is the least important event to lose.
            if notices.try_send(event).is_err() {
                tracing::warn!("event channel full: client notice dropped");
            }
        });
        let client = ModelClient::builder(self.config.provider.clone(), thread_id.clone())
            .observer(observer)
            .build()?;
        let trace = ThreadTrace::open(&self.config.trace, &thread_id, &thread_id).await?;
        let session = Session {
            inner: Arc::new(SessionInner {
                thread_id,
                config: self.config,
                tool_tokens,
                client,
                state: Mutex::new(state),
                turn_lock: tokio::sync::Mutex::new(()),
                pin_lock: tokio::sync::Mutex::new(()),
                events: events_tx,
                rollout,
                trace,
                analytics: self.analytics,
                tools: self.tools,
                tool_extractor: self.tool_extractor,
                hooks: self.hooks,
                cancel: CancellationToken::new(),
                current_turn: Mutex::new(None),
            }),
        };
        Ok((session, events_rx))
    }
}

impl Session {
    /// A builder for a session configured by `config`.
    pub fn builder(config: SessionConfig) -> SessionBuilder {
        SessionBuilder {
            config,
            thread_id: None,
            tools: Arc::new(NoTools),
            tool_extractor: Arc::new(DefaultTools),
            hooks: None,
            analytics: AnalyticsClient::default(),
            damaged_lines: DamagedLines::default(),
        }
    }

    /// The thread id.
    pub fn thread_id(&self) -> &str {
        &self.inner.thread_id
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The model client (for harnesses that stream on their own).
    pub fn client(&self) -> &ModelClient {
        &self.inner.client
    }

    /// A copy of the history.
    pub fn history(&self) -> Vec<ResponseItem> {
        self.state().history.to_vec()
    }

    /// The token accounting.
    pub fn token_usage_info(&self) -> TokenUsageInfo {
        self.state().token_info
    }

    /// The token count of every history item, in order, as the session counted each when it was
    /// recorded (D124); they are never part of the items themselves.
    pub fn item_token_counts(&self) -> Vec<u64> {
        self.state().counts.iter().collect()
    }

    /// The context size estimate that gates auto compaction (D36).
    pub fn total_token_usage(&self) -> i64 {
        let config = &self.inner.config;
        let state = self.state();
        let estimate = self.estimate_context_with(state.calibration(config.tokens.calibration));
        state.total_usage(&estimate, &config.contextual_markers)
    }

    /// The number of compactions installed in this thread.
    pub fn window_generation(&self) -> u64 {
        self.inner.client.window_generation()
    }

    /// The settings baseline of the next turn (`None`: it re-injects the full context).
    pub fn reference_context_item(&self) -> Option<compactor_protocol::TurnContextItem> {
        self.state().reference_context_item.clone()
    }

    /// The progress ledger (D150): what the session has read, run and changed so far. Empty
    /// when the ledger is off.
    pub fn ledger(&self) -> Ledger {
        self.state().ledger.clone()
    }

    /// Replaces the open items of the progress ledger (D150, D153): what the harness considers
    /// still to do, listed first in every ledger message. The list is also persisted (an
    /// `open_items` rollout line), so a resume restores it. It may be called at any time, during
    /// a turn too. Does nothing when the ledger is off.
    ///
    /// # Errors
    ///
    /// A rollout that cannot be written; the open items are then put back as they were.
    pub async fn set_open_items<I, S>(&self, items: I) -> Result<(), CompactorError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if self.inner.config.compaction.ledger == ProgressLedger::Off {
            return Ok(());
        }
        let items: Vec<String> = items.into_iter().map(Into::into).collect();
        // The live ledger changes first, so a compaction installed meanwhile snapshots the new
        // list, and the line written after it says the same.
        let (previous, open_items) = {
            let mut state = self.state();
            let previous = state.ledger.open_items().to_vec();
            state.ledger.set_open_items(&items);
            (previous, state.ledger.open_items().to_vec())
        };
        let line = RolloutItem::OpenItems(OpenItemsItem::new(open_items));
        if let Err(error) = self.persist(&[line]).await {
            self.state().ledger.set_open_items(&previous);
            return Err(error);
        }
        Ok(())
    }

    /// Cancels the running turn or compaction, if any. Nothing half-done is installed.
    pub fn interrupt(&self) {
        if let Some(token) =
            self.inner.current_turn.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
        {
            token.cancel();
        }
    }

    /// Waits until everything recorded so far is in the rollout and trace files.
    ///
    /// # Errors
    ///
    /// A rollout that could not be flushed.
    pub async fn flush(&self) -> Result<(), CompactorError> {
        self.inner.trace.flush().await;
        match &self.inner.rollout {
            Some(rollout) => rollout.flush().await.map_err(CompactorError::from),
            None => Ok(()),
        }
    }

    /// Rolls back the last `num_turns` user turns (D24): a `thread_rolled_back` line is
    /// appended and the state is rebuilt from the rollout, exactly as a resume would; pins made
    /// in the rolled-back turns are removed with them.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Config`] without a rollout; rollout I/O errors.
    pub async fn rollback(&self, num_turns: u32) -> Result<(), CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        let _pins = self.inner.pin_lock.lock().await;
        let Some(rollout) = &self.inner.rollout else {
            return Err(CompactorError::Config("rollback needs a rollout".to_owned()));
        };
        self.emit(EventMsg::ThreadRolledBack { num_turns }).await;
        rollout.flush().await?;
        let contents = read_rollout(rollout.path()).await?;
        let ledger =
            replay_ledger(&self.inner.config, &*self.inner.tool_extractor, &contents.lines);
        let resumed = self.replay().reconstruct_owned(contents.lines);
        let (history, counts) = count_history(resumed.history, &self.item_counter()).await?;
        let replaced = {
            let mut state = self.state();
            state.reference_context_item = resumed.reference_context_item;
            state.token_info = resumed.token_info.unwrap_or_default();
            state.usage_basis = UsageBasis::Unknown;
            state.ledger = ledger;
            // Pins made in the rolled-back turns go with them; ids are never given again (D141).
            state.pins = resumed.pins;
            state.pin_slot = resumed.pin_slot;
            state.next_pin_number = resumed.next_pin_number;
            state.replace_history(Arc::new(history), counts)
        };
        crate::compact::drop_in_background(replaced);
        Ok(())
    }

    /// Writes a fork of this session to a new rollout at `path`: the reconstructed session minus
    /// its last `drop_last_user_turns` user turns, with its pins, under a new thread id (window
    /// generation 0).
    /// Resume it with [`SessionBuilder::resume`]. Returns the new thread id.
    ///
    /// # Errors
    ///
    /// [`CompactorError::Config`] without a rollout; rollout I/O errors.
    pub async fn fork(
        &self,
        path: &Path,
        drop_last_user_turns: u32,
    ) -> Result<String, CompactorError> {
        let _turn = self.inner.turn_lock.lock().await;
        let Some(rollout) = &self.inner.rollout else {
            return Err(CompactorError::Config("fork needs a rollout".to_owned()));
        };
        rollout.flush().await?;
        let contents = read_rollout(rollout.path()).await?;
        let mut items = self.replay().fork(&contents.lines, drop_last_user_turns);
        let thread_id = uuid::Uuid::new_v4().to_string();
        let meta = SessionMeta {
            id: thread_id.clone(),
            originator: Some("compactor".to_owned()),
            forked_from_id: Some(self.inner.thread_id.clone()),
            model_provider: Some(self.inner.config.provider.name.clone()),
            base_instructions: Some(self.inner.config.base_instructions.clone()),
            cwd: self.inner.config.cwd.clone(),
            ..SessionMeta::default()
        };
        items.insert(0, RolloutItem::SessionMeta(meta));
        let fork = RolloutRecorder::create(path, RecorderOptions::default()).await?;
        fork.record(&items).await?;
        fork.shutdown().await?;
        Ok(thread_id)
    }

    /// Cancels everything and flushes the rollout, traces and analytics, each bounded by a
    /// timeout (D31).
    ///
    /// # Errors
    ///
    /// A rollout that could not be flushed.
    pub async fn shutdown(&self) -> Result<(), CompactorError> {
        self.inner.cancel.cancel();
        // Wait for a running turn to notice the cancellation and let go.
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, self.inner.turn_lock.lock()).await;
        let rollout = match &self.inner.rollout {
            Some(rollout) => match tokio::time::timeout(SHUTDOWN_TIMEOUT, rollout.shutdown()).await
            {
                Ok(result) => result.map_err(CompactorError::from),
                Err(_) => Err(CompactorError::Rollout("timed out flushing the rollout".into())),
            },
            None => Ok(()),
        };
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, self.inner.trace.shutdown()).await;
        if let Err(err) = self.inner.analytics.shutdown().await {
            tracing::warn!(error = %err, "analytics did not shut down cleanly");
        }
        rollout
    }

    /// Replays this session's rollout with its own contextual markers, which the legacy rebuild
    /// gets too (D72).
    fn replay(&self) -> Replay<'_> {
        Replay::new(&rebuild_legacy_compacted, &self.inner.config.contextual_markers)
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, SessionState> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How this session estimates, with the calibration it has learned so far.
    pub(crate) fn estimate_context(&self) -> EstimateContext<'_> {
        let calibration = self.state().calibration(self.inner.config.tokens.calibration);
        self.estimate_context_with(calibration)
    }

    /// [`Session::estimate_context`] for a caller that already holds the state.
    pub(crate) fn estimate_context_with(
        &self,
        calibration: Option<TokenCalibration>,
    ) -> EstimateContext<'_> {
        let config = &self.inner.config;
        EstimateContext {
            base_instructions: &config.base_instructions,
            pass_through: &config.provider.pass_through,
            counter: config.tokens.counter,
            tool_tokens: self.inner.tool_tokens,
            calibration,
        }
    }

    /// Sends one `warning` event per message to the harness, without recording them: they
    /// describe the rollout itself (what resuming skipped, a stale lock taken over).
    async fn warn_all(&self, warnings: Vec<String>) {
        for message in warnings {
            if self.inner.events.send(EventMsg::Warning { message }).await.is_err() {
                tracing::debug!("event receiver dropped");
            }
        }
    }

    /// How this session counts each item.
    pub(crate) fn item_counter(&self) -> ItemCounter<'_> {
        let config = &self.inner.config;
        ItemCounter { counter: config.tokens.counter, pass_through: &config.provider.pass_through }
    }

    /// Sends `event` to the harness and records it in the rollout when the policy keeps it.
    pub(crate) async fn emit(&self, event: EventMsg) {
        // Checked first: most events are not written, and a receipt's is as long as the history.
        if let Some(rollout) = &self.inner.rollout
            && is_persisted_event(&event)
            && let Err(err) = rollout.record(&[RolloutItem::EventMsg(event.clone())]).await
        {
            tracing::warn!(error = %err, "failed to record an event in the rollout");
        }
        if self.inner.events.send(event).await.is_err() {
            tracing::debug!("event receiver dropped");
        }
    }

    /// Persists `items` and appends them to the history, in that order, so the rollout never
    /// lags the memory.
    pub(crate) async fn record_items(
        &self,
        items: Vec<ResponseItem>,
    ) -> Result<(), CompactorError> {
        if items.is_empty() {
            return Ok(());
        }
        // Each item is counted once, here (D124).
        let (items, counts) = count_history(items, &self.item_counter()).await?;
        if let Some(rollout) = &self.inner.rollout {
            let lines: Vec<RolloutItem> =
                items.iter().cloned().map(RolloutItem::ResponseItem).collect();
            rollout.record(&lines).await?;
        }
        let config = &self.inner.config;
        let mut state = self.state();
        if config.compaction.ledger == ProgressLedger::On {
            let rules = LedgerRules {
                tools: &*self.inner.tool_extractor,
                markers: &config.contextual_markers,
            };
            for item in &items {
                state.ledger.record(item, &rules);
            }
        }
        state.append(items, &counts);
        Ok(())
    }

    /// Persists rollout items that are not history (turn contexts, compactions).
    pub(crate) async fn persist(&self, items: &[RolloutItem]) -> Result<(), CompactorError> {
        match &self.inner.rollout {
            Some(rollout) => rollout.record(items).await.map_err(CompactorError::from),
            None => Ok(()),
        }
    }

    /// Emits `token_count` with the current accounting.
    /// Emits `token_count` with the current accounting and the distance to `model`'s
    /// auto-compact limit (D126).
    pub(crate) async fn emit_token_count(&self, model: &ModelInfo) {
        let (info, rate_limits) = {
            let state = self.state();
            let estimate =
                self.estimate_context_with(state.calibration(self.inner.config.tokens.calibration));
            let markers = &self.inner.config.contextual_markers;
            (state.budget_info(&estimate, markers, model), state.rate_limits.clone())
        };
        self.emit(EventMsg::TokenCount { info: Some(info), rate_limits }).await;
    }
}

/// The progress ledger the surviving lines of `lines` describe, when the ledger is on (D153).
fn replay_ledger(
    config: &SessionConfig,
    tools: &dyn ToolExtractor,
    lines: &[RolloutLine],
) -> Ledger {
    match config.compaction.ledger {
        ProgressLedger::Off => Ledger::default(),
        ProgressLedger::On => {
            let markers = &config.contextual_markers;
            let replay = Replay::new(&rebuild_legacy_compacted, markers);
            let rules = LedgerRules { tools, markers };
            Ledger::from_rollout(replay.surviving(lines).map(|line| &line.item), &rules)
        }
    }
}

/// Above this much JSON, items are counted on the blocking pool, not on an async thread.
const COUNT_INLINE_MAX_BYTES: u64 = 256 * 1024;

/// `items` with their counts (D124). A tokenizer reads tens of megabytes a second, so a large
/// batch (a resumed history, a huge tool output) is counted on the blocking pool.
pub(crate) async fn count_history(
    items: Vec<ResponseItem>,
    counter: &ItemCounter<'_>,
) -> Result<(Vec<ResponseItem>, HistoryCounts), CompactorError> {
    let bytes = items.iter().fold(0u64, |bytes, item| bytes.saturating_add(json_len(item)));
    if bytes <= COUNT_INLINE_MAX_BYTES {
        let counts = HistoryCounts::new(&items, counter);
        return Ok((items, counts));
    }
    let (token_counter, pass_through) = (counter.counter, counter.pass_through.clone());
    tokio::task::spawn_blocking(move || {
        let counter = ItemCounter { counter: token_counter, pass_through: &pass_through };
        let counts = HistoryCounts::new(&items, &counter);
        (items, counts)
    })
    .await
    .map_err(|err| CompactorError::Fatal(format!("counting tokens failed: {err}")))
}

/// Fails when the configured counter is not compiled in (D120): a session never counts with
/// another counter than the one it names.
fn check_token_counter(config: &SessionConfig) -> Result<(), CompactorError> {
    let counter = config.tokens.counter;
    if counter.is_available() {
        return Ok(());
    }
    Err(CompactorError::Config(format!(
        "the token counter `{counter}` is not in this build: enable the `o200k` feature of \
         compactor-core"
    )))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
