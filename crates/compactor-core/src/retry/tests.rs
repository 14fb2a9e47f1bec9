//! Tests of the stream-retry loop with scripted attempts on tokio's paused clock: which failures
//! are retried, the notices, the waits the retry policy allows, the HTTP fallback, cancellation.

use std::collections::VecDeque;
use std::time::Duration;

use compactor_client::{ProviderConfig, RetryPolicy, WebsocketMode};
use pretty_assertions::assert_eq;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::config::{ModelInfo, SessionConfig};

const BASE: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_secs(2);

/// Plays back one outcome per attempt.
struct Scripted {
    outcomes: VecDeque<Result<&'static str, StreamFailure>>,
    calls: u32,
}

impl StreamAttempt for Scripted {
    type Output = &'static str;

    async fn run(
        &mut self,
        _client_session: &mut ModelClientSession,
    ) -> Result<&'static str, StreamFailure> {
        self.calls += 1;
        self.outcomes.pop_front().unwrap_or(Ok("answer"))
    }
}

fn early_end() -> StreamFailure {
    StreamFailure::Stream(CompactorError::stream("stream closed before response.completed"))
}

/// A mid-stream `response.failed` asking for an hour.
fn come_back_in_an_hour() -> StreamFailure {
    StreamFailure::Stream(CompactorError::ResponseStreamFailed {
        code: "rate_limit_exceeded".into(),
        message: "Please try again in 3600s.".into(),
        retry_after: Some(Duration::from_secs(3600)),
    })
}

async fn session(websocket: WebsocketMode) -> (Session, mpsc::Receiver<EventMsg>) {
    let mut provider = ProviderConfig::new("test", "http://127.0.0.1:9/v1");
    provider.websocket = websocket;
    provider.retry = RetryPolicy { max_retries: 0, base_delay: BASE, max_delay: MAX };
    let config = SessionConfig::new(provider, ModelInfo::new("m", 100_000));
    Session::builder(config).build().await.unwrap()
}

/// What one run of the loop did.
#[derive(Debug, PartialEq)]
struct Run {
    result: Result<&'static str, CompactorError>,
    calls: u32,
    retried: u32,
    notices: Vec<String>,
    still_websocket: bool,
}

async fn check(
    websocket: WebsocketMode,
    after_fallback: AfterFallback,
    outcomes: Vec<Result<&'static str, StreamFailure>>,
    expected: Run,
    waited: std::ops::RangeInclusive<Duration>,
) {
    let (session, mut events) = session(websocket).await;
    let mut client_session = session.client().new_session();
    let mut attempt = Scripted { outcomes: outcomes.into(), calls: 0 };
    let mut retried = 0;
    let retries = StreamRetries { max_retries: 2, after_fallback };
    let start = Instant::now();
    let result = session
        .retry_stream(
            &mut client_session,
            retries,
            &CancellationToken::new(),
            &mut retried,
            &mut attempt,
        )
        .await;
    let elapsed = start.elapsed();
    let mut notices = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            EventMsg::StreamError { message, .. } | EventMsg::Warning { message } => {
                notices.push(message);
            }
            _ => {}
        }
    }
    let run = Run {
        result,
        calls: attempt.calls,
        retried,
        notices,
        still_websocket: session.client().uses_websocket(),
    };
    assert_eq!(run, expected);
    assert!(waited.contains(&elapsed), "waited {elapsed:?}, expected {waited:?}");
}

fn notices(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_owned()).collect()
}

const FALLBACK: &str = "Falling back from WebSockets to HTTPS transport";

#[tokio::test(start_paused = true)]
async fn a_requested_delay_is_capped_at_the_maximum() {
    check(
        WebsocketMode::Disabled,
        AfterFallback::FreshRetries,
        vec![Err(come_back_in_an_hour())],
        Run {
            result: Ok("answer"),
            calls: 2,
            retried: 1,
            notices: notices(&["Reconnecting... 1/2"]),
            still_websocket: false,
        },
        MAX..=MAX,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_backoff_doubles_from_the_base_delay() {
    // 100 ms then 200 ms, each within ±10 %.
    check(
        WebsocketMode::Disabled,
        AfterFallback::FreshRetries,
        vec![Err(early_end()), Err(early_end())],
        Run {
            result: Ok("answer"),
            calls: 3,
            retried: 2,
            notices: notices(&["Reconnecting... 1/2", "Reconnecting... 2/2"]),
            still_websocket: false,
        },
        Duration::from_millis(270)..=Duration::from_millis(330),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn open_failures_and_final_errors_are_not_retried() {
    for failure in [
        StreamFailure::Open(CompactorError::InternalServerError),
        StreamFailure::Stream(CompactorError::ContextWindowExceeded),
    ] {
        let error = match &failure {
            StreamFailure::Open(error) | StreamFailure::Stream(error) => error.clone(),
        };
        check(
            WebsocketMode::Disabled,
            AfterFallback::FreshRetries,
            vec![Err(failure)],
            Run {
                result: Err(error),
                calls: 1,
                retried: 0,
                notices: Vec::new(),
                still_websocket: false,
            },
            Duration::ZERO..=Duration::ZERO,
        )
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn over_http_the_retries_run_out() {
    check(
        WebsocketMode::Disabled,
        AfterFallback::FreshRetries,
        vec![Err(early_end()), Err(early_end()), Err(early_end())],
        Run {
            result: Err(CompactorError::stream("stream closed before response.completed")),
            calls: 3,
            retried: 2,
            notices: notices(&["Reconnecting... 1/2", "Reconnecting... 2/2"]),
            still_websocket: false,
        },
        Duration::from_millis(270)..=Duration::from_millis(330),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn websocket_falls_back_to_http_for_one_more_attempt() {
    check(
        WebsocketMode::Enabled,
        AfterFallback::OneAttempt,
        vec![Err(early_end()), Err(early_end()), Err(early_end()), Err(early_end())],
        Run {
            result: Err(CompactorError::stream("stream closed before response.completed")),
            calls: 4,
            retried: 2,
            notices: notices(&["Reconnecting... 1/2", "Reconnecting... 2/2", FALLBACK]),
            still_websocket: false,
        },
        Duration::from_millis(270)..=Duration::from_millis(330),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn websocket_falls_back_to_http_with_fresh_retries() {
    check(
        WebsocketMode::Enabled,
        AfterFallback::FreshRetries,
        vec![Err(early_end()), Err(early_end()), Err(early_end()), Err(early_end())],
        Run {
            result: Ok("answer"),
            calls: 5,
            retried: 3,
            notices: notices(&[
                "Reconnecting... 1/2",
                "Reconnecting... 2/2",
                FALLBACK,
                "Reconnecting... 1/2",
            ]),
            still_websocket: false,
        },
        Duration::from_millis(360)..=Duration::from_millis(440),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn cancellation_ends_the_wait() {
    let (session, _events) = session(WebsocketMode::Disabled).await;
    let mut client_session = session.client().new_session();
    let mut attempt = Scripted { outcomes: vec![Err(come_back_in_an_hour())].into(), calls: 0 };
    let cancel = CancellationToken::new();
    let retries = StreamRetries { max_retries: 2, after_fallback: AfterFallback::FreshRetries };
    let cancel_soon = {
        let cancel = cancel.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cancel.cancel();
        }
    };
    let start = Instant::now();
    let mut retried = 0;
    let (result, ()) = tokio::join!(
        session.retry_stream(&mut client_session, retries, &cancel, &mut retried, &mut attempt),
        cancel_soon
    );
    assert_eq!(result, Err(CompactorError::Cancelled));
    assert_eq!(start.elapsed(), Duration::from_millis(500));
    assert_eq!(attempt.calls, 1);
}

/// Core holds one retry loop: no other file formats the retry notice or waits out a backoff.
#[test]
fn core_holds_one_retry_loop() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    let mut announcing = Vec::new();
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|ext| ext != "rs") || path.ends_with("retry/tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if text.contains("\"Reconnecting... {") || text.contains("time::sleep(") {
            announcing.push(path.strip_prefix(&src).unwrap().display().to_string());
        }
    }
    assert_eq!(announcing, ["retry.rs"]);
}
