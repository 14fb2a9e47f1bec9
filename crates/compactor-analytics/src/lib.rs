//! Compaction analytics for Compactor (layer L1): one event per compaction attempt, handed to
//! pluggable sinks through a bounded queue that never blocks a turn.
//!
//! This crate depends on `compactor-protocol` (for the compaction vocabulary and
//! [`TokenUsage`](compactor_protocol::TokenUsage)) and on no other Compactor crate; core wires
//! it in. It never fails or stalls its caller: [`AnalyticsClient::track`] is a plain function
//! that enqueues with `try_send`, drops and counts when the queue is full, and sink failures
//! are logged, never returned.
//!
//! - [`CompactionAnalyticsAttempt`]: `begin` captures the tokens before and the start time;
//!   `track` builds the [`CompactionEvent`] (D41: the reference's fields plus `compaction_id`, attempt
//!   number, chain position, bytes sent, retries and completed usage) and enqueues it. Inputs:
//!   [`CompactionContext`] (shared by a fallback chain), [`AttemptSpec`], [`ChainPosition`],
//!   [`AttemptOutcome`].
//! - [`AnalyticsEvent`]: the serialized record,
//!   `{"event_type":"compactor_compaction_event","event_params":{...}}`.
//! - [`AnalyticsClient`] and [`AnalyticsConfig`]: the queue, the worker task that owns the sinks,
//!   [`AnalyticsClient::flush`] and [`AnalyticsClient::shutdown`] (bounded; D31).
//! - [`AnalyticsSink`]: the object-safe sink trait, with [`MemorySink`], [`JsonlFileSink`],
//!   [`TracingSink`] and [`HttpBatchSink`] (`POST {"events":[...]}`); with the cargo feature
//!   `otlp`, `OtlpSink` exports OpenTelemetry spans and metrics over OTLP/HTTP (see
//!   `docs/telemetry.md` for the attribute mapping).
//! - [`Error`]: this crate's failures; they convert into
//!   [`CompactorError`](compactor_protocol::CompactorError).
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), compactor_analytics::Error> {
//! use compactor_analytics::{
//!     AnalyticsClient, AnalyticsConfig, AttemptOutcome, AttemptSpec, ChainPosition,
//!     CompactionAnalyticsAttempt, CompactionContext, MemorySink,
//! };
//! use compactor_protocol::{
//!     CompactionImplementation, CompactionPhase, CompactionReason, CompactionTrigger,
//!     CompactorError,
//! };
//!
//! let memory = MemorySink::default();
//! let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(memory.clone())])?;
//! let context = CompactionContext {
//!     thread_id: "thread-1".into(),
//!     turn_id: "turn-3".into(),
//!     model: "gpt-5".into(),
//!     provider: "openai".into(),
//!     compaction_id: "compaction-item-1".into(),
//!     trigger: CompactionTrigger::Auto,
//!     reason: CompactionReason::ContextLimit,
//!     phase: CompactionPhase::PreTurn,
//! };
//! // A chain `responses_compaction_v2 -> prune`: the first attempt fails, the second succeeds.
//! let chain = [CompactionImplementation::ResponsesCompactionV2, CompactionImplementation::Prune];
//! for (index, implementation) in chain.into_iter().enumerate() {
//!     let spec = AttemptSpec::new(implementation, 200_000)
//!         .with_attempt_number(u32::try_from(index + 1).unwrap_or(u32::MAX))
//!         .with_chain(ChainPosition::from_index(index, chain.len()));
//!     let attempt = CompactionAnalyticsAttempt::begin(&client, &context, spec);
//!     if implementation == CompactionImplementation::Prune {
//!         attempt.track(AttemptOutcome::completed(90_000));
//!     } else {
//!         let err = CompactorError::stream("stream closed before response.completed");
//!         attempt.track(AttemptOutcome::failed(&err, 200_000).with_retries(2));
//!     }
//! }
//! client.shutdown().await?;
//! let events = memory.compaction_events();
//! assert_eq!(events.len(), 2);
//! assert_eq!((events[1].chain_position, events[1].chain_length), (2, 2));
//! # Ok(())
//! # }
//! ```

mod attempt;
mod client;
mod error;
mod event;
mod sink;

#[cfg(test)]
mod test_support;

pub use attempt::{
    AttemptOutcome, AttemptSpec, ChainPosition, CompactionAnalyticsAttempt, CompactionContext,
    DROPPED_ATTEMPT_ERROR,
};
pub use client::{AnalyticsClient, AnalyticsConfig, AnalyticsStats, MAX_QUEUE_CAPACITY};
pub use error::{Error, Result};
pub use event::{AnalyticsEvent, COMPACTION_EVENT_TYPE, CompactionEvent, RuntimeInfo};
pub use sink::{
    AnalyticsSink, Batching, BearerToken, HttpBatchSink, HttpSinkConfig, JsonlFileSink, MemorySink,
    SinkFuture, TracingSink,
};
#[cfg(feature = "otlp")]
pub use sink::{OtlpHeader, OtlpSink, OtlpSinkConfig};
