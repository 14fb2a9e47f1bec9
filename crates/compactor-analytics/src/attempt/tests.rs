//! Tests of attempts: timing, outcomes, chain fields, drop tracking.

use std::time::{Duration, UNIX_EPOCH};

use compactor_protocol::{CompactionStatus, CompactorError, TokenUsage};
use pretty_assertions::assert_eq;

use super::*;
use crate::client::AnalyticsConfig;
use crate::event::AnalyticsEvent;
use crate::sink::MemorySink;
use crate::test_support::fixed_runtime;

fn context() -> CompactionContext {
    CompactionContext {
        thread_id: "thread-1".to_owned(),
        turn_id: "turn-2".to_owned(),
        model: "gpt-test".to_owned(),
        provider: "testkit".to_owned(),
        compaction_id: "compaction-item-9".to_owned(),
        trigger: CompactionTrigger::Auto,
        reason: CompactionReason::ContextLimit,
        phase: CompactionPhase::MidTurn,
    }
}

fn recording_client() -> (AnalyticsClient, MemorySink) {
    let memory = MemorySink::default();
    let config = AnalyticsConfig { runtime: fixed_runtime(), ..AnalyticsConfig::default() };
    let client = AnalyticsClient::start(config, vec![Box::new(memory.clone())]).unwrap();
    (client, memory)
}

/// Times injected: a fixed wall-clock start and a paused monotonic clock.
#[tokio::test(start_paused = true)]
async fn tracked_event_with_fixed_times() {
    let (client, memory) = recording_client();
    let spec = AttemptSpec::new(CompactionImplementation::Responses, 250_000)
        .with_attempt_number(2)
        .with_chain(ChainPosition::new(2, 3));
    let mut attempt = CompactionAnalyticsAttempt::begin(&client, &context(), spec);
    attempt.started_at = UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    tokio::time::advance(Duration::from_millis(2_345)).await;
    attempt.track(
        AttemptOutcome::completed(18_000)
            .with_bytes_sent(4_096)
            .with_retries(1)
            .with_completed_usage(TokenUsage::with_total(244_000)),
    );
    client.shutdown().await.unwrap();
    let events = memory.events();
    assert_eq!(events.len(), 1);
    insta::assert_json_snapshot!(events[0]);
}

/// The live clock, with the times redacted.
#[tokio::test]
async fn tracked_event_with_live_clock() {
    let (client, memory) = recording_client();
    let attempt = CompactionAnalyticsAttempt::begin(
        &client,
        &context(),
        AttemptSpec::new(CompactionImplementation::ResponsesCompactionV2, 250_000),
    );
    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    attempt.track(AttemptOutcome::failed(&CompactorError::stream("closed early"), 250_000));
    client.shutdown().await.unwrap();
    let event = memory.compaction_events().remove(0);
    assert!(event.started_at.abs_diff(before) <= 1, "{} vs {before}", event.started_at);
    assert!(event.completed_at >= event.started_at);
    assert_eq!(event.started_at_ms / 1000, event.started_at);
    insta::assert_json_snapshot!(AnalyticsEvent::from(event), {
        ".event_params.started_at" => "[unix seconds]",
        ".event_params.started_at_ms" => "[unix ms]",
        ".event_params.completed_at" => "[unix seconds]",
        ".event_params.duration_ms" => "[ms]",
    });
}

#[tokio::test(start_paused = true)]
async fn duration_comes_from_the_monotonic_clock() {
    async fn check(elapsed_ms: u64, started_at: u64, expected_completed_at: u64) {
        let client = AnalyticsClient::default();
        let spec = AttemptSpec::new(CompactionImplementation::Prune, 10);
        let mut attempt = CompactionAnalyticsAttempt::begin(&client, &context(), spec);
        attempt.started_at = UNIX_EPOCH + Duration::from_secs(started_at);
        tokio::time::advance(Duration::from_millis(elapsed_ms)).await;
        let event = attempt.finish(AttemptOutcome::completed(5));
        assert_eq!(
            (event.started_at, event.completed_at, event.duration_ms),
            (started_at, expected_completed_at, elapsed_ms)
        );
    }
    check(0, 100, 100).await;
    check(999, 100, 100).await;
    check(1_000, 100, 101).await;
    check(61_500, 100, 161).await;
}

#[test]
fn outcomes() {
    fn check(outcome: AttemptOutcome, status: CompactionStatus, error: Option<&str>) {
        assert_eq!((outcome.status, outcome.error), (status, error.map(str::to_owned)));
    }
    let ok: Result<(), CompactorError> = Ok(());
    check(AttemptOutcome::from_result(&ok, 1), CompactionStatus::Completed, None);
    let cancelled: Result<(), _> = Err(CompactorError::Cancelled);
    check(
        AttemptOutcome::from_result(&cancelled, 1),
        CompactionStatus::Interrupted,
        Some("cancelled"),
    );
    let aborted: Result<(), _> = Err(CompactorError::TurnAborted { reason: "hook".to_owned() });
    check(
        AttemptOutcome::from_result(&aborted, 1),
        CompactionStatus::Interrupted,
        Some("turn aborted: hook"),
    );
    let failed: Result<(), _> = Err(CompactorError::stream("closed early"));
    check(
        AttemptOutcome::from_result(&failed, 1),
        CompactionStatus::Failed,
        Some("stream error: closed early"),
    );
    check(AttemptOutcome::completed(1), CompactionStatus::Completed, None);
    check(AttemptOutcome::skipped(1), CompactionStatus::Skipped, None);
    check(
        AttemptOutcome::interrupted("stopped by PreCompact hook", 1),
        CompactionStatus::Interrupted,
        Some("stopped by PreCompact hook"),
    );
    check(
        AttemptOutcome::failed("no compaction item in the output", 1),
        CompactionStatus::Failed,
        Some("no compaction item in the output"),
    );
    check(
        AttemptOutcome::failed(&CompactorError::ServerOverloaded, 1),
        CompactionStatus::Failed,
        Some("the server is overloaded; try again later"),
    );
}

#[test]
fn chain_fields_reach_the_event() {
    fn check(spec: AttemptSpec, expected: (u32, u32, u32)) {
        let attempt =
            CompactionAnalyticsAttempt::begin(&AnalyticsClient::default(), &context(), spec);
        let event = attempt.finish(AttemptOutcome::completed(1));
        assert_eq!(event.compaction_id, "compaction-item-9");
        assert_eq!((event.attempt_number, event.chain_position, event.chain_length), expected);
    }
    let spec = AttemptSpec::new(CompactionImplementation::Prune, 1);
    check(spec, (1, 1, 1));
    check(spec.with_attempt_number(3).with_chain(ChainPosition::new(3, 3)), (3, 3, 3));
    check(spec.with_attempt_number(0), (1, 1, 1));
    check(spec.with_attempt_number(2).with_chain(ChainPosition::from_index(2, 4)), (2, 3, 4));
}

#[test]
fn chain_positions() {
    fn check(position: ChainPosition, expected: (u32, u32, bool)) {
        assert_eq!((position.position(), position.length(), position.is_last()), expected);
    }
    check(ChainPosition::SINGLE, (1, 1, true));
    check(ChainPosition::default(), (1, 1, true));
    check(ChainPosition::new(1, 3), (1, 3, false));
    check(ChainPosition::new(3, 3), (3, 3, true));
    check(ChainPosition::from_index(0, 2), (1, 2, false));
    check(ChainPosition::from_index(1, 2), (2, 2, true));
}

#[tokio::test]
async fn a_dropped_attempt_is_tracked_as_interrupted() {
    let (client, memory) = recording_client();
    let spec = AttemptSpec::new(CompactionImplementation::ResponsesCompactionV2, 77_000);
    let attempt = CompactionAnalyticsAttempt::begin(&client, &context(), spec);
    drop(attempt);
    // A finished attempt is not tracked again when dropped.
    let finished = CompactionAnalyticsAttempt::begin(&client, &context(), spec);
    let _event = finished.finish(AttemptOutcome::completed(1));
    client.shutdown().await.unwrap();
    let events = memory.compaction_events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(
        (event.status, event.error.as_deref(), event.active_context_tokens_after),
        (CompactionStatus::Interrupted, Some(DROPPED_ATTEMPT_ERROR), 77_000)
    );
}

#[tokio::test]
async fn a_cancelled_compaction_future_tracks_its_attempt() {
    let (client, memory) = recording_client();
    let compaction = {
        let client = client.clone();
        async move {
            let spec = AttemptSpec::new(CompactionImplementation::ResponsesCompactionV2, 5);
            let attempt = CompactionAnalyticsAttempt::begin(&client, &context(), spec);
            std::future::pending::<()>().await;
            attempt.track(AttemptOutcome::completed(1));
        }
    };
    let cancelled = tokio::time::timeout(Duration::from_millis(10), compaction).await;
    assert!(cancelled.is_err());
    client.shutdown().await.unwrap();
    let statuses: Vec<_> = memory.compaction_events().iter().map(|event| event.status).collect();
    assert_eq!(statuses, [CompactionStatus::Interrupted]);
}
