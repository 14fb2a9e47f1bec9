//! An in-memory sink for tests: keeps every event and lets a test wait for them.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::event::{AnalyticsEvent, CompactionEvent};
use crate::sink::{AnalyticsSink, SinkFuture};

/// Records events in memory. Clones share one store: keep a clone, give one to the client.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), compactor_analytics::Error> {
/// use compactor_analytics::{AnalyticsClient, AnalyticsConfig, MemorySink};
///
/// let memory = MemorySink::default();
/// let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(memory.clone())])?;
/// // ... track attempts ...
/// client.flush().await?;
/// assert!(memory.events().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<AnalyticsEvent>>>,
    count: Arc<watch::Sender<usize>>,
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink { events: Arc::default(), count: Arc::new(watch::Sender::new(0)) }
    }
}

impl MemorySink {
    fn lock(&self) -> MutexGuard<'_, Vec<AnalyticsEvent>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every event received so far, in order.
    pub fn events(&self) -> Vec<AnalyticsEvent> {
        self.lock().clone()
    }

    /// The compaction events received so far, in order.
    pub fn compaction_events(&self) -> Vec<CompactionEvent> {
        self.lock()
            .iter()
            .map(|event| match event {
                AnalyticsEvent::Compaction(compaction) => compaction.clone(),
            })
            .collect()
    }

    /// How many events were received.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event was received.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits until at least `count` events were received. Wrap it in a timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only observes.
    pub async fn wait_for(&self, count: usize) {
        let mut seen = self.count.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = seen.wait_for(|received| *received >= count).await;
    }
}

impl AnalyticsSink for MemorySink {
    fn name(&self) -> &str {
        "memory"
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        let received = {
            let mut stored = self.lock();
            stored.extend_from_slice(events);
            stored.len()
        };
        self.count.send_replace(received);
        Box::pin(std::future::ready(Ok(())))
    }
}
