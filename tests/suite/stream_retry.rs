//! Core's one stream-retry loop (D81) waits what the client's retry policy allows: a server that
//! asks for an hour in the middle of a stream is retried after the policy's maximum delay, in
//! sampling, in remote compaction v2 and in local compaction. The clock is tokio's paused one,
//! so the waits are measured exactly and cost no real time.

use std::time::Duration;

use compactor_client::RetryPolicy;
use compactor_core::{RemoteCompaction, SessionConfig};
use compactor_protocol::{CompactionStatus, EventMsg};
use compactor_testkit::TestServer;
use compactor_testkit::events::{
    ev_assistant_message, ev_completed, ev_context_compaction, ev_failed, ev_response_created,
};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tokio::time::Instant;

use crate::common::{Harness, Options, Transport, session_config};

/// The policy's maximum delay in these tests.
const MAX_DELAY: Duration = Duration::from_secs(2);

fn reply(id: &str, text: &str) -> Vec<Value> {
    vec![ev_response_created(id), ev_assistant_message(&format!("m-{id}"), text), ev_completed(id)]
}

/// A response that opens and then fails: the server asks to come back in an hour.
fn rate_limited_mid_stream(id: &str) -> Vec<Value> {
    vec![
        ev_response_created(id),
        ev_failed(
            id,
            "rate_limit_exceeded",
            "Rate limit reached for requests. Please try again in 3600s.",
        ),
    ]
}

async fn harness(server: TestServer, edit: impl FnOnce(&mut SessionConfig)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, ..Options::default() };
    let mut config = session_config(&server, dir.path(), &options);
    config.provider.retry =
        RetryPolicy { max_retries: 2, base_delay: Duration::from_millis(1), max_delay: MAX_DELAY };
    // Far beyond every wait of the test, so the paused clock never trips it.
    config.provider.stream_idle_timeout = Duration::from_secs(24 * 3600);
    edit(&mut config);
    Harness::with_config(server, config, dir).await
}

/// The `stream_error` notices seen so far.
fn retry_notices(h: &Harness) -> Vec<String> {
    h.seen
        .iter()
        .filter_map(|event| match event {
            EventMsg::StreamError { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// Asserts that `elapsed`, the paused clock's time across one retry, is the policy's maximum
/// delay and not the hour the server asked for.
fn assert_capped(elapsed: Duration) {
    assert!(
        elapsed >= MAX_DELAY && elapsed < MAX_DELAY + Duration::from_secs(1),
        "waited {elapsed:?}; the server asked for 3600s and the policy allows at most {MAX_DELAY:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn sampling_waits_at_most_the_maximum_delay() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(rate_limited_mid_stream("resp-1"));
    server.push_sse(reply("resp-2", "fixed"));
    let mut h = harness(server, |_| {}).await;

    let start = Instant::now();
    h.turn("fix the bug").await.unwrap();
    assert_capped(start.elapsed());
    assert_eq!(retry_notices(&h), ["Reconnecting... 1/5"]);
    assert_eq!(h.server.responses_requests().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn v2_compaction_waits_at_most_the_maximum_delay() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_sse(rate_limited_mid_stream("resp-compact-1"));
    server.push_sse(vec![
        ev_response_created("resp-compact-2"),
        ev_context_compaction("cc-1", "ENC"),
        ev_completed("resp-compact-2"),
    ]);
    let mut h = harness(server, |_| {}).await;
    h.turn("fix the bug").await.unwrap();

    let start = Instant::now();
    h.compact().await.unwrap();
    assert_capped(start.elapsed());
    assert_eq!(retry_notices(&h), ["Reconnecting... 1/2"]);
    let analytics = h.analytics_events(1).await;
    assert_eq!((analytics[0].status, analytics[0].retries), (CompactionStatus::Completed, 1));
}

#[tokio::test(start_paused = true)]
async fn local_compaction_waits_at_most_the_maximum_delay() {
    let server = TestServer::scripted().await.unwrap();
    server.push_sse(reply("resp-1", "first reply"));
    server.push_sse(rate_limited_mid_stream("resp-summary-1"));
    server.push_sse(reply("resp-summary-2", "The bug is in the parser."));
    let mut h = harness(server, |config| {
        config.remote_compaction = RemoteCompaction::Unsupported;
    })
    .await;
    h.turn("fix the bug").await.unwrap();

    let start = Instant::now();
    h.compact().await.unwrap();
    assert_capped(start.elapsed());
    assert_eq!(retry_notices(&h), ["Reconnecting... 1/5"]);
    let analytics = h.analytics_events(1).await;
    assert_eq!((analytics[0].status, analytics[0].retries), (CompactionStatus::Completed, 1));
}
