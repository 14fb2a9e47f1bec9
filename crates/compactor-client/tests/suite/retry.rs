//! Retries of opening a stream (D10): what is retried, after how long, how the last
//! failure maps (D43), and what the observer hears.

use std::time::{Duration, Instant};

use compactor_client::{ClientNotice, RetryNotice};
use compactor_protocol::CompactorError;
use compactor_testkit::{ErrorReply, Fault, TestServer};
use pretty_assertions::assert_eq;

use crate::common::{
    Notices, client, fast_retries, http_config, open, prompt, reply, settings, turn, user,
};

#[tokio::test]
async fn rate_limit_429_is_retried_after_retry_after() {
    let server = TestServer::scripted().await.unwrap();
    // Only `Retry-After: 1`: no `retry-after-ms`, no "try again in" in the message.
    server.push_http_faults([Fault::Reject(
        ErrorReply::new(429, "rate_limit_exceeded", "Rate limit reached for requests.")
            .with_header("retry-after", "1"),
    )]);
    server.push_sse(reply("resp_1", "finally"));
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let started = Instant::now();
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    let elapsed = started.elapsed();
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1");
    assert!(elapsed >= Duration::from_millis(900), "retried after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "retried after {elapsed:?}");
    assert_eq!(server.requests().len(), 2);
    assert_eq!(
        notices.all(),
        [ClientNotice::Retry(RetryNotice {
            attempt: 1,
            max_retries: 2,
            delay: Duration::from_secs(1),
            error: CompactorError::RetryLimit {
                status: 429,
                message: "Rate limit reached for requests.".into(),
            },
        })]
    );
    assert_eq!(notices.messages(), ["Reconnecting... 1/2"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn rate_limit_429_after_the_retry_limit_is_retry_limit() {
    let server = TestServer::scripted().await.unwrap();
    for _ in 0..3 {
        server.push_http_faults([Fault::rate_limited(Duration::from_millis(10))]);
    }
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert!(matches!(err, CompactorError::RetryLimit { status: 429, .. }), "{err:?}");
    assert!(!err.is_retryable(), "final: nobody retries it again");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(notices.messages(), ["Reconnecting... 1/2", "Reconnecting... 2/2"]);
    for notice in notices.all() {
        let ClientNotice::Retry(retry) = notice else { panic!("{notice:?}") };
        assert_eq!(retry.delay, Duration::from_millis(10), "the requested delay is honoured");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn usage_limit_429_is_not_retried() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::Reject(ErrorReply::new(
        429,
        "usage_limit_reached",
        "You have hit your usage limit.",
    ))]);
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::UsageLimitReached("You have hit your usage limit.".into()));
    assert_eq!(server.requests().len(), 1);
    assert_eq!(notices.all(), []);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_request_400_is_not_retried() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::error(400, "invalid_value", "The input is not valid.")]);
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::InvalidRequest("The input is not valid.".into()));
    assert_eq!(server.requests().len(), 1, "exactly one request");
    assert_eq!(notices.all(), []);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn context_length_400_is_context_window_exceeded() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::error(400, "context_length_exceeded", "Too long.")]);
    let client = client(http_config(&server), &Notices::default());
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::ContextWindowExceeded);
    assert_eq!(server.requests().len(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn internal_error_500_after_the_retry_limit_is_internal_server_error() {
    let server = TestServer::scripted().await.unwrap();
    let max_retries = 3;
    for _ in 0..=max_retries {
        server.push_http_faults([Fault::internal_error()]);
    }
    let notices = Notices::default();
    let mut config = http_config(&server);
    config.retry = fast_retries(max_retries);
    let client = client(config, &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::InternalServerError);
    assert_eq!(server.requests().len(), max_retries as usize + 1);
    assert_eq!(
        notices.messages(),
        ["Reconnecting... 1/3", "Reconnecting... 2/3", "Reconnecting... 3/3"]
    );
    let attempts: Vec<(u32, u32)> = notices
        .all()
        .into_iter()
        .map(|notice| match notice {
            ClientNotice::Retry(retry) => {
                assert_eq!(retry.error, CompactorError::InternalServerError);
                (retry.attempt, retry.max_retries)
            }
            other @ ClientNotice::FallbackToHttp { .. } => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(attempts, [(1, 3), (2, 3), (3, 3)]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn overloaded_503_is_retried_then_server_overloaded() {
    let server = TestServer::scripted().await.unwrap();
    for _ in 0..3 {
        server.push_http_faults([Fault::overloaded()]);
    }
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert_eq!(err, CompactorError::ServerOverloaded);
    assert_eq!(server.requests().len(), 3);
    assert_eq!(notices.messages().len(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_retry_that_succeeds_streams_normally() {
    let server = TestServer::scripted().await.unwrap();
    server.push_http_faults([Fault::internal_error()]);
    server.push_sse(reply("resp_1", "second time lucky"));
    let notices = Notices::default();
    let client = client(http_config(&server), &notices);
    let collected = turn(&client, &prompt(vec![user("hi")])).await;
    assert_eq!(collected.error, None);
    assert_eq!(collected.response_id(), "resp_1");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the retry resends the same request");
    assert_eq!(notices.messages(), ["Reconnecting... 1/2"]);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connection_refused_is_retried_then_connection_failed() {
    // A port that was bound and released: nothing listens there.
    let server = TestServer::scripted().await.unwrap();
    let config = http_config(&server);
    server.shutdown().await.unwrap();
    let notices = Notices::default();
    let client = client(config, &notices);
    let mut session = client.new_session();
    let err = open(&mut session, &prompt(vec![user("hi")]), &settings()).await.unwrap_err();
    assert!(matches!(err, CompactorError::ConnectionFailed(_)), "{err:?}");
    assert_eq!(notices.messages(), ["Reconnecting... 1/2", "Reconnecting... 2/2"]);
}
