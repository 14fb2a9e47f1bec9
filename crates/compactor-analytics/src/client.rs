//! The analytics client: a bounded, non-blocking queue in front of a worker that feeds sinks.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::event::{AnalyticsEvent, RuntimeInfo};
use crate::sink::AnalyticsSink;

mod worker;

use worker::{Command, Drain, Worker};

/// The largest queue a client accepts; larger capacities are clamped to it.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

/// Settings of an [`AnalyticsClient`].
#[derive(Debug, Clone)]
pub struct AnalyticsConfig {
    /// Events the queue holds before [`AnalyticsClient::track`] drops (default 256, D41;
    /// clamped to `1..=MAX_QUEUE_CAPACITY`).
    pub queue_capacity: usize,
    /// The bound of [`AnalyticsClient::flush`] (default 5 s).
    pub flush_timeout: Duration,
    /// The bound of the final drain on shutdown, cancellation or drop of the last handle
    /// (default 5 s).
    pub shutdown_timeout: Duration,
    /// The `runtime` stamped on every event (default: this build).
    pub runtime: RuntimeInfo,
    /// A parent token (for example the session's): cancelling it stops the worker after the
    /// same bounded final drain as [`AnalyticsClient::shutdown`]. The client cancels only a
    /// child of it.
    pub cancel: CancellationToken,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            queue_capacity: 256,
            flush_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            runtime: RuntimeInfo::default(),
            cancel: CancellationToken::new(),
        }
    }
}

/// Counters of a client since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalyticsStats {
    /// Events accepted by the queue.
    pub queued: u64,
    /// Events dropped because the queue was full or the client was shut down.
    pub dropped: u64,
    /// Failed sink calls (`send` or `flush`); their events are lost for that sink.
    pub sink_errors: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    queued: AtomicU64,
    dropped: AtomicU64,
    pub(crate) sink_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AnalyticsStats {
        AnalyticsStats {
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            sink_errors: self.sink_errors.load(Ordering::Relaxed),
        }
    }
}

/// Hands analytics events to sinks without ever making the caller wait.
///
/// [`track`](Self::track) is a plain function: it puts the event on a bounded queue with
/// `try_send` and returns; a full queue drops the event and counts it
/// ([`dropped_count`](Self::dropped_count)). A worker task, started by
/// [`start`](Self::start), drains the queue and fans events out to every sink concurrently.
///
/// Cloning is cheap (an `Arc`). The worker stops, after a final drain bounded by
/// [`AnalyticsConfig::shutdown_timeout`] (D31), on [`shutdown`](Self::shutdown), on
/// cancellation of [`AnalyticsConfig::cancel`], or when the last clone is dropped (including
/// the clones held by pending [`crate::CompactionAnalyticsAttempt`]s). It runs on the runtime
/// it was started on, so a drain after the runtime is gone cannot happen: call `shutdown` for
/// a guaranteed flush.
///
/// `AnalyticsClient::default()` is a disabled client: it records nothing and counts nothing.
#[derive(Clone, Default)]
pub struct AnalyticsClient {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    runtime: RuntimeInfo,
    /// A child of the configured token; cancelled on shutdown and on drop.
    cancel: CancellationToken,
    worker: Mutex<Option<JoinHandle<Drain>>>,
    flush_timeout: Duration,
    shutdown_timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: start the worker's bounded final drain.
        self.cancel.cancel();
    }
}

impl AnalyticsClient {
    /// Starts a client and its worker on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a tokio runtime.
    pub fn start(config: AnalyticsConfig, sinks: Vec<Box<dyn AnalyticsSink>>) -> Result<Self> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let (tx, rx) = mpsc::channel(config.queue_capacity.clamp(1, MAX_QUEUE_CAPACITY));
        let counters = Arc::new(Counters::default());
        let cancel = config.cancel.child_token();
        let worker =
            Worker::new(rx, sinks, Arc::clone(&counters), cancel.clone(), config.shutdown_timeout);
        let join = handle.spawn(worker.run());
        Ok(AnalyticsClient {
            inner: Some(Arc::new(Inner {
                tx,
                counters,
                runtime: config.runtime,
                cancel,
                worker: Mutex::new(Some(join)),
                flush_timeout: config.flush_timeout,
                shutdown_timeout: config.shutdown_timeout,
            })),
        })
    }

    /// Whether this client records events (it is not [`Default`]'s disabled client).
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Enqueues `event` and returns at once; drops and counts it when the queue is full or the
    /// client is shut down. Never waits on a sink.
    pub fn track(&self, event: impl Into<AnalyticsEvent>) {
        let Some(inner) = &self.inner else {
            return;
        };
        match inner.tx.try_send(Command::Event(Box::new(event.into()))) {
            Ok(()) => {
                inner.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                let dropped = inner.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Warn on the 1st, 2nd, 4th, 8th, ... drop so a stalled sink cannot flood logs.
                if dropped.is_power_of_two() {
                    tracing::warn!(dropped, "analytics queue full; event dropped");
                }
            }
            Err(TrySendError::Closed(_)) => {
                inner.counters.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("analytics client shut down; event dropped");
            }
        }
    }

    /// Events dropped so far (queue full or client shut down).
    pub fn dropped_count(&self) -> u64 {
        self.stats().dropped
    }

    /// The client's counters.
    pub fn stats(&self) -> AnalyticsStats {
        self.inner.as_ref().map_or_else(AnalyticsStats::default, |inner| inner.counters.snapshot())
    }

    /// The `runtime` stamped on events.
    pub fn runtime_info(&self) -> RuntimeInfo {
        self.inner.as_ref().map_or_else(RuntimeInfo::default, |inner| inner.runtime.clone())
    }

    /// Delivers every event tracked before this call to every sink (buffered batches included)
    /// and flushes the sinks, within [`AnalyticsConfig::flush_timeout`]. Sink failures are
    /// logged and counted, not returned.
    ///
    /// # Errors
    ///
    /// [`Error::FlushTimedOut`] when the bound elapses (events keep flowing afterwards);
    /// [`Error::Closed`] after shutdown.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future abandons the wait, not the flush.
    #[tracing::instrument(skip_all)]
    pub async fn flush(&self) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let timeout = inner.flush_timeout;
        let round_trip = async {
            let (ack, acked) = oneshot::channel();
            inner.tx.send(Command::Flush(ack)).await.map_err(|_| Error::Closed)?;
            acked.await.map_err(|_| Error::Closed)
        };
        tokio::time::timeout(timeout, round_trip)
            .await
            .map_err(|_| Error::FlushTimedOut { timeout })?
    }

    /// Stops the worker after delivering and flushing everything already queued, within
    /// [`AnalyticsConfig::shutdown_timeout`]; past the bound the worker is aborted. Events
    /// tracked afterwards are dropped and counted. Every clone shares the shutdown; a second
    /// call returns `Ok` at once.
    ///
    /// # Errors
    ///
    /// [`Error::ShutdownTimedOut`] when the bound elapsed before everything was delivered.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future leaves the worker to finish its bounded drain
    /// detached, and a later call returns `Ok` without waiting for it.
    #[tracing::instrument(skip_all)]
    pub async fn shutdown(&self) -> Result<()> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        inner.cancel.cancel();
        let worker = inner.worker.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some(mut worker) = worker else {
            return Ok(());
        };
        let timeout = inner.shutdown_timeout;
        match tokio::time::timeout(timeout, &mut worker).await {
            Ok(Ok(Drain::Complete)) => Ok(()),
            Ok(Ok(Drain::TimedOut)) => Err(Error::ShutdownTimedOut { timeout }),
            Ok(Err(join_error)) => {
                tracing::warn!(error = %join_error, "analytics worker ended abnormally");
                Err(Error::Closed)
            }
            Err(_) => {
                worker.abort();
                // An aborted task ends at its next poll; wait for it so that the queue is
                // closed when this returns.
                let _ = worker.await;
                Err(Error::ShutdownTimedOut { timeout })
            }
        }
    }
}

impl fmt::Debug for AnalyticsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnalyticsClient")
            .field("enabled", &self.is_enabled())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests;
