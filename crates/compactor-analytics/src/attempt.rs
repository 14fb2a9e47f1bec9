//! One compaction attempt, from `begin` (tokens before, start time) to `track` (the event).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use compactor_protocol::{
    CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
    CompactionStrategy, CompactionTrigger, CompactorError, ReceiptTotals, TokenUsage,
};
use tokio::time::Instant;

use crate::client::AnalyticsClient;
use crate::event::CompactionEvent;

/// The error text of an attempt dropped without [`CompactionAnalyticsAttempt::track`].
pub const DROPPED_ATTEMPT_ERROR: &str = "compaction attempt dropped before it was tracked";

/// What one compaction is about: the same for every attempt of its fallback chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionContext {
    /// The session's thread id.
    pub thread_id: String,
    /// The turn the compaction runs in.
    pub turn_id: String,
    /// The model the compaction runs with (its slug, as sent in requests).
    pub model: String,
    /// The provider's display name (`openai`, `azure`, ...).
    pub provider: String,
    /// The id of the chain's `ContextCompaction` turn item (D18).
    pub compaction_id: String,
    /// Who asked.
    pub trigger: CompactionTrigger,
    /// Why.
    pub reason: CompactionReason,
    /// When.
    pub phase: CompactionPhase,
}

/// Where an attempt sits in its fallback chain: a 1-based position and the chain's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainPosition {
    position: u32,
    length: u32,
}

impl ChainPosition {
    /// A compaction without a fallback chain: position 1 of 1.
    pub const SINGLE: ChainPosition = ChainPosition { position: 1, length: 1 };

    /// Position `position` (1-based) of a chain of `length`.
    ///
    /// Out-of-range values are a caller bug: debug builds assert; release builds clamp the
    /// position to at least 1 and the length to at least the position.
    pub fn new(position: u32, length: u32) -> Self {
        debug_assert!(
            (1..=length).contains(&position),
            "chain position {position} outside 1..={length}"
        );
        let position = position.max(1);
        ChainPosition { position, length: length.max(position) }
    }

    /// The position of the entry at 0-based `index` of a chain of `length` entries, as a loop
    /// over the configured chain sees it.
    pub fn from_index(index: usize, length: usize) -> Self {
        let position = u32::try_from(index).map_or(u32::MAX, |index| index.saturating_add(1));
        ChainPosition::new(position, u32::try_from(length).unwrap_or(u32::MAX))
    }

    /// The 1-based position.
    pub fn position(self) -> u32 {
        self.position
    }

    /// The chain's length.
    pub fn length(self) -> u32 {
        self.length
    }

    /// Whether no fallback follows this attempt.
    pub fn is_last(self) -> bool {
        self.position >= self.length
    }
}

impl Default for ChainPosition {
    fn default() -> Self {
        ChainPosition::SINGLE
    }
}

/// One attempt's own parameters: implementation, tokens before, strategy and chain fields.
///
/// # Examples
///
/// ```
/// use compactor_analytics::{AttemptSpec, ChainPosition};
/// use compactor_protocol::CompactionImplementation;
///
/// // The second entry of a `v2 -> local -> prune` chain, tried second.
/// let spec = AttemptSpec::new(CompactionImplementation::Responses, 120_000)
///     .with_attempt_number(2)
///     .with_chain(ChainPosition::new(2, 3));
/// assert_eq!(spec.chain().position(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptSpec {
    implementation: CompactionImplementation,
    active_context_tokens_before: i64,
    strategy: CompactionStrategy,
    attempt_number: u32,
    chain: ChainPosition,
}

impl AttemptSpec {
    /// A first attempt of `implementation` outside any chain, strategy `memento`.
    pub fn new(
        implementation: CompactionImplementation,
        active_context_tokens_before: i64,
    ) -> Self {
        AttemptSpec {
            implementation,
            active_context_tokens_before,
            strategy: CompactionStrategy::Memento,
            attempt_number: 1,
            chain: ChainPosition::SINGLE,
        }
    }

    /// Sets the strategy (default `memento`).
    pub fn with_strategy(mut self, strategy: CompactionStrategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets the 1-based attempt number within the compaction (default 1; 0 counts as 1).
    pub fn with_attempt_number(mut self, attempt_number: u32) -> Self {
        self.attempt_number = attempt_number.max(1);
        self
    }

    /// Sets the position in the fallback chain (default [`ChainPosition::SINGLE`]).
    pub fn with_chain(mut self, chain: ChainPosition) -> Self {
        self.chain = chain;
        self
    }

    /// The implementation.
    pub fn implementation(&self) -> CompactionImplementation {
        self.implementation
    }

    /// The attempt number.
    pub fn attempt_number(&self) -> u32 {
        self.attempt_number
    }

    /// The chain position.
    pub fn chain(&self) -> ChainPosition {
        self.chain
    }
}

/// How an attempt ended, with what it measured.
///
/// # Examples
///
/// ```
/// use compactor_analytics::AttemptOutcome;
/// use compactor_protocol::{CompactionStatus, CompactorError};
///
/// let result: Result<(), CompactorError> = Err(CompactorError::Cancelled);
/// let outcome = AttemptOutcome::from_result(&result, 9_000).with_retries(1);
/// assert_eq!(outcome.status(), CompactionStatus::Interrupted);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    status: CompactionStatus,
    error: Option<String>,
    active_context_tokens_after: i64,
    bytes_sent: u64,
    retries: u32,
    completed_usage: Option<TokenUsage>,
    receipt: Option<ReceiptTotals>,
}

impl AttemptOutcome {
    fn new(status: CompactionStatus, tokens_after: i64) -> Self {
        AttemptOutcome {
            status,
            error: None,
            active_context_tokens_after: tokens_after,
            bytes_sent: 0,
            retries: 0,
            completed_usage: None,
            receipt: None,
        }
    }

    /// The compacted history was installed; `tokens_after` is measured after the install.
    pub fn completed(active_context_tokens_after: i64) -> Self {
        AttemptOutcome::new(CompactionStatus::Completed, active_context_tokens_after)
    }

    /// Nothing to compact (empty history); no request was made.
    pub fn skipped(active_context_tokens_after: i64) -> Self {
        AttemptOutcome::new(CompactionStatus::Skipped, active_context_tokens_after)
    }

    /// The attempt failed with `error` (its `Display` text, usually a [`CompactorError`]);
    /// the history is unchanged.
    pub fn failed(error: &(impl fmt::Display + ?Sized), active_context_tokens_after: i64) -> Self {
        AttemptOutcome {
            error: Some(error.to_string()),
            ..AttemptOutcome::new(CompactionStatus::Failed, active_context_tokens_after)
        }
    }

    /// The attempt was cancelled or stopped (by a hook, with its reason).
    pub fn interrupted(reason: impl Into<String>, active_context_tokens_after: i64) -> Self {
        AttemptOutcome {
            error: Some(reason.into()),
            ..AttemptOutcome::new(CompactionStatus::Interrupted, active_context_tokens_after)
        }
    }

    /// `completed` for `Ok`, `interrupted` for a cancellation or abort, `failed` otherwise;
    /// the error text is the error's `Display`.
    pub fn from_result<T>(
        result: &Result<T, CompactorError>,
        active_context_tokens_after: i64,
    ) -> Self {
        match result {
            Ok(_) => AttemptOutcome::completed(active_context_tokens_after),
            Err(err) if err.is_interruption() => {
                AttemptOutcome::interrupted(err.to_string(), active_context_tokens_after)
            }
            Err(err) => AttemptOutcome::failed(err, active_context_tokens_after),
        }
    }

    /// Sets the request bytes sent to the model.
    pub fn with_bytes_sent(mut self, bytes_sent: u64) -> Self {
        self.bytes_sent = bytes_sent;
        self
    }

    /// Sets the transport retries made inside the attempt.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the usage of the completed compaction response.
    pub fn with_completed_usage(mut self, usage: TokenUsage) -> Self {
        self.completed_usage = Some(usage);
        self
    }

    /// Sets the totals of the attempt's receipt.
    pub fn with_receipt(mut self, totals: ReceiptTotals) -> Self {
        self.receipt = Some(totals);
        self
    }

    /// The status.
    pub fn status(&self) -> CompactionStatus {
        self.status
    }

    /// The error text.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// A running compaction attempt (D41).
///
/// [`begin`](Self::begin) records the tokens before and the start time;
/// [`track`](Self::track) builds the [`CompactionEvent`] and enqueues it without waiting.
/// An attempt dropped without being tracked (its future was cancelled) is tracked as
/// `interrupted` with [`DROPPED_ATTEMPT_ERROR`] and the tokens before as tokens after, so
/// every `begin` yields exactly one event.
///
/// # Examples
///
/// ```
/// use compactor_analytics::{
///     AnalyticsClient, AttemptOutcome, AttemptSpec, CompactionAnalyticsAttempt,
///     CompactionContext,
/// };
/// use compactor_protocol::{
///     CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
///     CompactionTrigger,
/// };
///
/// let context = CompactionContext {
///     thread_id: "thread-1".into(),
///     turn_id: "turn-1".into(),
///     model: "gpt-5".into(),
///     provider: "openai".into(),
///     compaction_id: "item-7".into(),
///     trigger: CompactionTrigger::Auto,
///     reason: CompactionReason::ContextLimit,
///     phase: CompactionPhase::MidTurn,
/// };
/// // A disabled client: nothing is recorded, but the event is still built.
/// let client = AnalyticsClient::default();
/// let spec = AttemptSpec::new(CompactionImplementation::ResponsesCompactionV2, 180_000);
/// let attempt = CompactionAnalyticsAttempt::begin(&client, &context, spec);
/// let event = attempt.finish(AttemptOutcome::completed(12_000));
/// assert_eq!(event.status, CompactionStatus::Completed);
/// assert_eq!(event.compaction_id, "item-7");
/// ```
#[derive(Debug)]
pub struct CompactionAnalyticsAttempt {
    client: AnalyticsClient,
    context: CompactionContext,
    spec: AttemptSpec,
    started_at: SystemTime,
    started: Instant,
    /// Cleared by `finish`, so that `Drop` tracks only attempts nobody finished.
    pending: bool,
}

impl CompactionAnalyticsAttempt {
    /// Starts an attempt: captures the start time now.
    pub fn begin(client: &AnalyticsClient, context: &CompactionContext, spec: AttemptSpec) -> Self {
        CompactionAnalyticsAttempt {
            client: client.clone(),
            context: context.clone(),
            spec,
            started_at: SystemTime::now(),
            started: Instant::now(),
            pending: true,
        }
    }

    /// The attempt's compaction context.
    pub fn context(&self) -> &CompactionContext {
        &self.context
    }

    /// The attempt's own parameters.
    pub fn spec(&self) -> &AttemptSpec {
        &self.spec
    }

    /// Time since [`begin`](Self::begin) (monotonic).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the attempt and enqueues its event on the client. Never waits.
    pub fn track(mut self, outcome: AttemptOutcome) {
        self.pending = false;
        let event = self.build(outcome);
        self.client.track(event);
    }

    /// Ends the attempt and returns its event without enqueueing it.
    pub fn finish(mut self, outcome: AttemptOutcome) -> CompactionEvent {
        self.pending = false;
        self.build(outcome)
    }

    fn build(&mut self, outcome: AttemptOutcome) -> CompactionEvent {
        let elapsed = self.started.elapsed();
        let completed_at = self.started_at.checked_add(elapsed).unwrap_or(self.started_at);
        let AttemptOutcome {
            status,
            error,
            active_context_tokens_after,
            bytes_sent,
            retries,
            completed_usage,
            receipt,
        } = outcome;
        CompactionEvent {
            thread_id: std::mem::take(&mut self.context.thread_id),
            turn_id: std::mem::take(&mut self.context.turn_id),
            runtime: self.client.runtime_info(),
            model: self.context.model.clone(),
            provider: self.context.provider.clone(),
            trigger: self.context.trigger,
            reason: self.context.reason,
            implementation: self.spec.implementation,
            phase: self.context.phase,
            strategy: self.spec.strategy,
            status,
            error,
            active_context_tokens_before: self.spec.active_context_tokens_before,
            active_context_tokens_after,
            started_at: unix_seconds(self.started_at),
            started_at_ms: unix_millis(self.started_at),
            completed_at: unix_seconds(completed_at),
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            compaction_id: std::mem::take(&mut self.context.compaction_id),
            attempt_number: self.spec.attempt_number,
            chain_position: self.spec.chain.position,
            chain_length: self.spec.chain.length,
            bytes_sent,
            retries,
            completed_usage,
            receipt,
        }
    }
}

impl Drop for CompactionAnalyticsAttempt {
    fn drop(&mut self) {
        if !self.pending {
            return;
        }
        self.pending = false;
        tracing::debug!(
            compaction_id = %self.context.compaction_id,
            "compaction attempt dropped before it was tracked; tracking it as interrupted"
        );
        let tokens_before = self.spec.active_context_tokens_before;
        let event = self.build(AttemptOutcome::interrupted(DROPPED_ATTEMPT_ERROR, tokens_before));
        self.client.track(event);
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
