//! The sink trait and the sinks this crate ships: in-memory, JSONL file, `tracing`, HTTP batch.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::client::AnalyticsStats;
use crate::error::Result;
use crate::event::AnalyticsEvent;

mod http;
mod jsonl;
mod memory;
#[cfg(feature = "otlp")]
mod otlp;
mod tracing_sink;

pub use http::{BearerToken, HttpBatchSink, HttpSinkConfig};
pub use jsonl::JsonlFileSink;
pub use memory::MemorySink;
#[cfg(feature = "otlp")]
pub use otlp::{OtlpHeader, OtlpSink, OtlpSinkConfig};
pub use tracing_sink::TracingSink;

/// The future a sink returns; boxed so that sinks can be trait objects.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

/// When the worker hands buffered events to a sink.
///
/// A batch goes out as soon as it holds `max_events` events, or when its oldest event has
/// waited `max_delay`, or on [`crate::AnalyticsClient::flush`] and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// The most events per [`AnalyticsSink::send`] call (0 counts as 1).
    pub max_events: usize,
    /// The longest an event waits in the buffer.
    pub max_delay: Duration,
}

impl Batching {
    /// Every event is sent as soon as the worker sees it.
    pub const IMMEDIATE: Batching = Batching { max_events: 1, max_delay: Duration::ZERO };

    pub(crate) fn max_events(self) -> usize {
        self.max_events.max(1)
    }
}

impl Default for Batching {
    fn default() -> Self {
        Batching::IMMEDIATE
    }
}

/// A destination for analytics events.
///
/// The client's worker task owns every sink and calls it from that task only, so methods take
/// `&mut self`. Calls for different sinks run concurrently; calls for one sink never overlap
/// and keep the order events were tracked in. An error is logged by the worker (with
/// [`AnalyticsSink::name`]) and counted in [`crate::AnalyticsStats::sink_errors`]; the events
/// of a failed `send` are not retried. A sink should bound its own calls in time (the HTTP sink
/// has a request timeout): while one call is pending, that sink's events wait in the queue.
///
/// # Examples
///
/// ```
/// use compactor_analytics::{AnalyticsEvent, AnalyticsSink, SinkFuture};
///
/// /// Counts events.
/// #[derive(Default)]
/// struct Counter(usize);
///
/// impl AnalyticsSink for Counter {
///     fn name(&self) -> &str {
///         "counter"
///     }
///
///     fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
///         self.0 += events.len();
///         Box::pin(std::future::ready(Ok(())))
///     }
/// }
/// ```
pub trait AnalyticsSink: Send + 'static {
    /// A short name for logs.
    fn name(&self) -> &str;

    /// How events are batched for this sink (default: [`Batching::IMMEDIATE`]).
    fn batching(&self) -> Batching {
        Batching::IMMEDIATE
    }

    /// Delivers `events` (never empty, in tracking order).
    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a>;

    /// Makes everything sent so far durable (called on flush and shutdown). Default: nothing.
    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Hears the client's counters (events queued and dropped, failed sink calls) right before
    /// each [`send`](Self::send) and [`flush`](Self::flush), so that a sink can report them (the
    /// OTLP sink exports the drops as a metric). Default: ignores them.
    fn observe_stats(&mut self, stats: AnalyticsStats) {
        let _ = stats;
    }
}

#[cfg(test)]
mod tests;
