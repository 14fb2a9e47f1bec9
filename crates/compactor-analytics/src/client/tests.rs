//! Tests of the client: non-blocking track, drops, batching, flush, shutdown and drop.

use std::sync::{Arc, Mutex};
use std::time::Instant as WallInstant;

use pretty_assertions::assert_eq;
use tokio::sync::Notify;

use super::*;
use crate::sink::{Batching, MemorySink, SinkFuture};
use crate::test_support::{CapturedLogs, sample_event};

/// Bound for waits that should end almost at once.
const WAIT: Duration = Duration::from_secs(5);

/// A sink whose `send` announces itself, then waits for a notification that never comes.
struct StalledSink {
    entered: Arc<Notify>,
    never: Arc<Notify>,
}

impl AnalyticsSink for StalledSink {
    fn name(&self) -> &str {
        "stalled"
    }

    fn send<'a>(&'a mut self, _events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            self.entered.notify_one();
            self.never.notified().await;
            Ok(())
        })
    }
}

/// Records the size of each batch it receives.
#[derive(Clone, Default)]
struct BatchSizes {
    sizes: Arc<Mutex<Vec<usize>>>,
    batching: Batching,
}

impl BatchSizes {
    fn sizes(&self) -> Vec<usize> {
        self.sizes.lock().unwrap().clone()
    }
}

impl AnalyticsSink for BatchSizes {
    fn name(&self) -> &str {
        "batch-sizes"
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        self.sizes.lock().unwrap().push(events.len());
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Fails every call.
struct FailingSink;

impl AnalyticsSink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }

    fn send<'a>(&'a mut self, _events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        Box::pin(std::future::ready(Err(Error::Sink("disk on fire".to_owned()))))
    }
}

fn memory_client(config: AnalyticsConfig) -> (AnalyticsClient, MemorySink) {
    let memory = MemorySink::default();
    let client = AnalyticsClient::start(config, vec![Box::new(memory.clone())]).unwrap();
    (client, memory)
}

#[tokio::test(start_paused = true)]
async fn track_returns_at_once_while_the_sink_is_stalled_and_drops_when_full() {
    let entered = Arc::new(Notify::new());
    let never = Arc::new(Notify::new());
    let sink = StalledSink { entered: Arc::clone(&entered), never: Arc::clone(&never) };
    let config = AnalyticsConfig {
        queue_capacity: 4,
        flush_timeout: Duration::from_millis(500),
        shutdown_timeout: Duration::from_secs(1),
        ..AnalyticsConfig::default()
    };
    let client = AnalyticsClient::start(config, vec![Box::new(sink)]).unwrap();

    // The worker takes the first event and stalls inside the sink.
    client.track(sample_event(1));
    tokio::time::timeout(WAIT, entered.notified()).await.unwrap();

    // The queue still takes 4 events; each later one is dropped and counted. No call waits.
    let started = WallInstant::now();
    let mut slowest = Duration::ZERO;
    let mut dropped = Vec::new();
    for attempt in 2..=1_005 {
        let call = WallInstant::now();
        client.track(sample_event(attempt));
        slowest = slowest.max(call.elapsed());
        dropped.push(client.dropped_count());
    }
    let total = started.elapsed();
    assert_eq!(&dropped[..6], [0, 0, 0, 0, 1, 2]);
    assert_eq!(client.stats(), AnalyticsStats { queued: 5, dropped: 1_000, sink_errors: 0 });
    assert!(slowest < Duration::from_millis(50), "slowest track call took {slowest:?}");
    assert!(total < Duration::from_millis(500), "1 004 track calls took {total:?}");

    // Flush and shutdown are bounded even though the sink never returns.
    assert!(matches!(client.flush().await, Err(Error::FlushTimedOut { .. })));
    assert!(matches!(client.shutdown().await, Err(Error::ShutdownTimedOut { .. })));
    client.track(sample_event(2_000));
    assert_eq!(client.dropped_count(), 1_001);
    assert!(matches!(client.flush().await, Err(Error::Closed)));
}

#[tokio::test(start_paused = true)]
async fn batches_by_size_and_by_delay() {
    async fn check(max_events: usize, tracked: u32, expected_at_once: &[usize], later: &[usize]) {
        let sink = BatchSizes {
            batching: Batching { max_events, max_delay: Duration::from_secs(1) },
            ..BatchSizes::default()
        };
        let client =
            AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink.clone())])
                .unwrap();
        for attempt in 1..=tracked {
            client.track(sample_event(attempt));
        }
        // Let the worker run without reaching the delay.
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sink.sizes(), expected_at_once, "max_events {max_events}, tracked {tracked}");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let all: Vec<usize> = expected_at_once.iter().chain(later).copied().collect();
        assert_eq!(sink.sizes(), all, "max_events {max_events}, tracked {tracked}");
        client.shutdown().await.unwrap();
        assert_eq!(sink.sizes(), all);
    }
    check(3, 7, &[3, 3], &[1]).await;
    check(3, 6, &[3, 3], &[]).await;
    check(3, 2, &[], &[2]).await;
    check(1, 3, &[1, 1, 1], &[]).await;
    check(0, 2, &[1, 1], &[]).await;
    check(100, 0, &[], &[]).await;
}

#[tokio::test(start_paused = true)]
async fn flush_delivers_buffered_batches() {
    let sink = BatchSizes {
        batching: Batching { max_events: 10, max_delay: Duration::from_secs(3_600) },
        ..BatchSizes::default()
    };
    let client =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink.clone())]).unwrap();
    for attempt in 1..=4 {
        client.track(sample_event(attempt));
    }
    client.flush().await.unwrap();
    assert_eq!(sink.sizes(), [4]);
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_sink_gets_every_event_in_order() {
    let first = MemorySink::default();
    let second = MemorySink::default();
    let client = AnalyticsClient::start(
        AnalyticsConfig::default(),
        vec![Box::new(first.clone()), Box::new(second.clone())],
    )
    .unwrap();
    for attempt in 1..=20 {
        client.track(sample_event(attempt));
    }
    client.flush().await.unwrap();
    let expected: Vec<AnalyticsEvent> = (1..=20).map(|n| sample_event(n).into()).collect();
    assert_eq!(first.events(), expected);
    assert_eq!(second.events(), expected);
    assert_eq!(client.stats(), AnalyticsStats { queued: 20, dropped: 0, sink_errors: 0 });
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_drains_the_queue_then_drops_later_events() {
    let (client, memory) = memory_client(AnalyticsConfig::default());
    for attempt in 1..=5 {
        client.track(sample_event(attempt));
    }
    client.shutdown().await.unwrap();
    assert_eq!(memory.len(), 5);
    client.track(sample_event(6));
    assert_eq!(client.stats(), AnalyticsStats { queued: 5, dropped: 1, sink_errors: 0 });
    // A second shutdown, from any clone, is a no-op.
    client.clone().shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_the_last_handle_flushes() {
    let (client, memory) = memory_client(AnalyticsConfig::default());
    for attempt in 1..=3 {
        client.track(sample_event(attempt));
    }
    drop(client);
    tokio::time::timeout(WAIT, memory.wait_for(3)).await.unwrap();
    assert_eq!(memory.len(), 3);
}

#[tokio::test]
async fn a_pending_attempt_keeps_the_client_alive() {
    use compactor_protocol::{
        CompactionImplementation, CompactionPhase, CompactionReason, CompactionStatus,
        CompactionTrigger,
    };

    use crate::attempt::{
        AttemptOutcome, AttemptSpec, CompactionAnalyticsAttempt, CompactionContext,
    };

    let (client, memory) = memory_client(AnalyticsConfig::default());
    let context = CompactionContext {
        thread_id: "t".to_owned(),
        turn_id: "u".to_owned(),
        model: "gpt-test".to_owned(),
        provider: "testkit".to_owned(),
        compaction_id: "c".to_owned(),
        trigger: CompactionTrigger::Manual,
        reason: CompactionReason::UserRequested,
        phase: CompactionPhase::StandaloneTurn,
    };
    let spec = AttemptSpec::new(CompactionImplementation::Responses, 10);
    let attempt = CompactionAnalyticsAttempt::begin(&client, &context, spec);
    drop(client);
    attempt.track(AttemptOutcome::completed(3));
    tokio::time::timeout(WAIT, memory.wait_for(1)).await.unwrap();
    assert_eq!(memory.compaction_events()[0].status, CompactionStatus::Completed);
}

#[tokio::test]
async fn cancelling_the_parent_token_drains_and_stops() {
    let parent = CancellationToken::new();
    let config = AnalyticsConfig { cancel: parent.clone(), ..AnalyticsConfig::default() };
    let (client, memory) = memory_client(config);
    client.track(sample_event(1));
    client.track(sample_event(2));
    parent.cancel();
    tokio::time::timeout(WAIT, memory.wait_for(2)).await.unwrap();
    client.shutdown().await.unwrap();
    client.track(sample_event(3));
    assert_eq!(client.dropped_count(), 1);
    assert_eq!(memory.len(), 2);
}

#[tokio::test]
async fn shutting_down_does_not_cancel_the_parent_token() {
    let parent = CancellationToken::new();
    let config = AnalyticsConfig { cancel: parent.clone(), ..AnalyticsConfig::default() };
    let (client, _memory) = memory_client(config);
    client.shutdown().await.unwrap();
    drop(client);
    assert!(!parent.is_cancelled());
}

#[tokio::test]
async fn sink_failures_are_logged_and_counted_never_returned() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let memory = MemorySink::default();
    let client = AnalyticsClient::start(
        AnalyticsConfig::default(),
        vec![Box::new(FailingSink), Box::new(memory.clone())],
    )
    .unwrap();
    client.track(sample_event(1));
    client.track(sample_event(2));
    client.flush().await.unwrap();
    client.shutdown().await.unwrap();
    // The healthy sink is unaffected.
    assert_eq!(memory.len(), 2);
    assert_eq!(client.stats().sink_errors, 2);
    let failures: Vec<String> =
        logs.lines().into_iter().filter(|line| line.contains("analytics sink failed")).collect();
    assert_eq!(
        failures,
        ["WARN compactor_analytics::client::worker analytics sink failed; events dropped \
             sink=failing events=1 error=analytics sink failed: disk on fire"; 2]
    );
}

#[tokio::test]
async fn queue_full_warnings_are_rate_limited() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let entered = Arc::new(Notify::new());
    let sink = StalledSink { entered: Arc::clone(&entered), never: Arc::new(Notify::new()) };
    let config = AnalyticsConfig {
        queue_capacity: 1,
        shutdown_timeout: Duration::from_millis(10),
        ..AnalyticsConfig::default()
    };
    let client = AnalyticsClient::start(config, vec![Box::new(sink)]).unwrap();
    client.track(sample_event(1));
    tokio::time::timeout(WAIT, entered.notified()).await.unwrap();
    for attempt in 0..101 {
        client.track(sample_event(attempt));
    }
    assert_eq!(client.dropped_count(), 100);
    let warnings = logs.lines().iter().filter(|line| line.contains("queue full")).count();
    // Drops 1, 2, 4, 8, 16, 32 and 64.
    assert_eq!(warnings, 7);
    assert!(client.shutdown().await.is_err());
}

#[tokio::test]
async fn a_disabled_client_records_nothing() {
    let client = AnalyticsClient::default();
    client.track(sample_event(1));
    client.flush().await.unwrap();
    client.shutdown().await.unwrap();
    assert!(!client.is_enabled());
    assert_eq!(client.stats(), AnalyticsStats::default());
    assert_eq!(client.runtime_info(), RuntimeInfo::default());
}

#[tokio::test]
async fn a_zero_capacity_is_clamped_to_one() {
    let config = AnalyticsConfig { queue_capacity: 0, ..AnalyticsConfig::default() };
    let (client, memory) = memory_client(config);
    client.track(sample_event(1));
    client.shutdown().await.unwrap();
    assert_eq!(memory.len(), 1);
}

#[test]
fn start_needs_a_runtime() {
    let started = AnalyticsClient::start(AnalyticsConfig::default(), Vec::new());
    assert!(matches!(started, Err(Error::NoRuntime)), "{started:?}");
}

#[test]
fn errors_convert_into_compactor_errors() {
    use compactor_protocol::CompactorError;

    fn check(err: Error, expected: &CompactorError) {
        assert_eq!(&CompactorError::from(err), expected);
    }
    check(Error::NoRuntime, &CompactorError::Config(Error::NoRuntime.to_string()));
    check(
        Error::FlushTimedOut { timeout: Duration::from_secs(5) },
        &CompactorError::Timeout("analytics flush did not finish within 5s".to_owned()),
    );
    check(
        Error::HttpStatus { status: 503 },
        &CompactorError::UnexpectedStatus { status: 503, body: String::new() },
    );
    check(
        Error::Write {
            path: "/tmp/a.jsonl".into(),
            source: std::io::Error::other("no space left"),
        },
        &CompactorError::Io("cannot write analytics file /tmp/a.jsonl: no space left".to_owned()),
    );
    check(Error::Closed, &CompactorError::Fatal("the analytics client is shut down".to_owned()));
}

#[tokio::test]
async fn debug_shows_state_not_internals() {
    let (client, _memory) = memory_client(AnalyticsConfig::default());
    assert_eq!(
        format!("{client:?}"),
        "AnalyticsClient { enabled: true, stats: AnalyticsStats { queued: 0, dropped: 0, sink_errors: 0 } }"
    );
    client.shutdown().await.unwrap();
}
