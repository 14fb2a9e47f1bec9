//! The worker task: drains the queue, batches per sink, delivers, and drains once more on stop.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::Counters;
use crate::event::AnalyticsEvent;
use crate::sink::{AnalyticsSink, Batching};

/// Commands received per wake-up at most.
const RECEIVE_BATCH: usize = 64;

/// What travels on the queue.
pub(crate) enum Command {
    /// One event for every sink.
    Event(Box<AnalyticsEvent>),
    /// Deliver everything buffered, flush the sinks, then answer.
    Flush(oneshot::Sender<()>),
}

/// How the worker's final drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Everything queued was delivered and the sinks were flushed.
    Complete,
    /// The shutdown bound elapsed first.
    TimedOut,
}

/// Which buffered events a delivery takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Full batches, and whole buffers whose oldest event waited `max_delay`.
    Due,
    /// Everything.
    All,
}

struct Slot {
    sink: Box<dyn AnalyticsSink>,
    batching: Batching,
    buffer: Vec<AnalyticsEvent>,
    /// When the oldest buffered event arrived.
    oldest: Option<Instant>,
}

impl Slot {
    fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|oldest| oldest + self.batching.max_delay)
    }

    fn is_due(&self, take: Take, now: Instant) -> bool {
        !self.buffer.is_empty()
            && match take {
                Take::All => true,
                Take::Due => {
                    self.buffer.len() >= self.batching.max_events()
                        || self.deadline().is_some_and(|deadline| deadline <= now)
                }
            }
    }

    async fn deliver(&mut self, take: Take, now: Instant, counters: &Counters) {
        let max_events = self.batching.max_events();
        let expired = self.deadline().is_some_and(|deadline| deadline <= now);
        let count = match take {
            Take::All => self.buffer.len(),
            Take::Due if expired => self.buffer.len(),
            Take::Due => self.buffer.len() - self.buffer.len() % max_events,
        };
        let batch: Vec<AnalyticsEvent> = self.buffer.drain(..count).collect();
        if self.buffer.is_empty() {
            self.oldest = None;
        }
        for chunk in batch.chunks(max_events) {
            self.sink.observe_stats(counters.snapshot());
            if let Err(err) = self.sink.send(chunk).await {
                counters.sink_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    sink = self.sink.name(),
                    events = chunk.len(),
                    error = %err.chain(),
                    "analytics sink failed; events dropped"
                );
            }
        }
    }

    async fn flush(&mut self, counters: &Counters) {
        self.sink.observe_stats(counters.snapshot());
        if let Err(err) = self.sink.flush().await {
            counters.sink_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(sink = self.sink.name(), error = %err.chain(), "analytics sink flush failed");
        }
    }
}

pub(crate) struct Worker {
    rx: mpsc::Receiver<Command>,
    slots: Vec<Slot>,
    counters: Arc<Counters>,
    cancel: CancellationToken,
    shutdown_timeout: Duration,
}

impl Worker {
    pub(crate) fn new(
        rx: mpsc::Receiver<Command>,
        sinks: Vec<Box<dyn AnalyticsSink>>,
        counters: Arc<Counters>,
        cancel: CancellationToken,
        shutdown_timeout: Duration,
    ) -> Self {
        let slots = sinks
            .into_iter()
            .map(|sink| Slot { batching: sink.batching(), sink, buffer: Vec::new(), oldest: None })
            .collect();
        Worker { rx, slots, counters, cancel, shutdown_timeout }
    }

    /// Runs until cancelled (shutdown, parent token, or drop of the last client handle), then
    /// drains; everything after the cancellation is bounded by `shutdown_timeout`.
    pub(crate) async fn run(mut self) -> Drain {
        let cancel = self.cancel.clone();
        let shutdown_timeout = self.shutdown_timeout;
        let bound = async move {
            cancel.cancelled().await;
            tokio::time::sleep(shutdown_timeout).await;
        };
        let work = async {
            self.serve().await;
            self.drain().await;
        };
        tokio::select! {
            () = work => Drain::Complete,
            () = bound => {
                tracing::warn!(
                    timeout = ?shutdown_timeout,
                    "analytics shutdown bound elapsed; undelivered events lost"
                );
                Drain::TimedOut
            }
        }
    }

    async fn serve(&mut self) {
        let mut commands = Vec::with_capacity(RECEIVE_BATCH);
        loop {
            let deadline = self
                .slots
                .iter()
                .filter(|slot| !slot.buffer.is_empty())
                .filter_map(Slot::deadline)
                .min();
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                received = self.rx.recv_many(&mut commands, RECEIVE_BATCH) => {
                    if received == 0 {
                        return;
                    }
                    for command in commands.drain(..) {
                        self.handle(command).await;
                    }
                    self.deliver(Take::Due).await;
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => self.deliver(Take::Due).await,
            }
        }
    }

    async fn drain(&mut self) {
        self.rx.close();
        while let Some(command) = self.rx.recv().await {
            self.handle(command).await;
        }
        self.deliver(Take::All).await;
        self.flush_sinks().await;
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Event(event) => self.buffer(*event),
            Command::Flush(ack) => {
                self.deliver(Take::All).await;
                self.flush_sinks().await;
                // The caller may have stopped waiting; that is fine.
                let _ = ack.send(());
            }
        }
    }

    fn buffer(&mut self, event: AnalyticsEvent) {
        let now = Instant::now();
        let Some((last, others)) = self.slots.split_last_mut() else {
            return;
        };
        for slot in others {
            slot.oldest.get_or_insert(now);
            slot.buffer.push(event.clone());
        }
        last.oldest.get_or_insert(now);
        last.buffer.push(event);
    }

    async fn deliver(&mut self, take: Take) {
        let now = Instant::now();
        let counters = &*self.counters;
        join_all(
            self.slots
                .iter_mut()
                .filter(|slot| slot.is_due(take, now))
                .map(|slot| slot.deliver(take, now, counters)),
        )
        .await;
    }

    async fn flush_sinks(&mut self) {
        let counters = &*self.counters;
        join_all(self.slots.iter_mut().map(|slot| slot.flush(counters))).await;
    }
}
