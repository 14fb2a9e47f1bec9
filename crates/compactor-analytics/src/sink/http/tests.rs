//! Tests of the HTTP batch sink against loopback servers: a recording one, a dead port and one
//! that never answers.

use std::net::SocketAddr;
use std::time::Instant as WallInstant;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::*;
use crate::client::{AnalyticsClient, AnalyticsConfig};
use crate::test_support::{CapturedLogs, sample_event};

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "sk-test-very-secret-token";

/// One request the recording server received.
#[derive(Debug)]
struct Received {
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// A loopback server that records `POST /v1/events` and answers `status`; stopped on drop.
struct Server {
    addr: SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Server {
    async fn start(status: StatusCode) -> Server {
        let (tx, received) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/v1/events",
            post(move |headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                async move {
                    let text =
                        |name| headers.get(name).map(|value| value.to_str().unwrap().to_owned());
                    tx.send(Received {
                        authorization: text(header::AUTHORIZATION),
                        content_type: text(header::CONTENT_TYPE),
                        body: serde_json::from_slice(&body).unwrap(),
                    })
                    .unwrap();
                    status
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Server { addr, received, task }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/events", self.addr)
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv()).await.unwrap().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body the sink must send for `events`.
fn body_of(events: &[AnalyticsEvent]) -> Value {
    json!({ "events": events })
}

fn batch(attempts: std::ops::RangeInclusive<u32>) -> Vec<AnalyticsEvent> {
    attempts.map(|attempt| sample_event(attempt).into()).collect()
}

fn http_client(config: HttpSinkConfig) -> AnalyticsClient {
    let sink = HttpBatchSink::new(config).unwrap();
    AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)]).unwrap()
}

#[tokio::test]
async fn posts_batches_by_size_then_the_rest_on_flush() {
    let mut server = Server::start(StatusCode::OK).await;
    let client = http_client(HttpSinkConfig {
        bearer_token: Some(BearerToken::new(TOKEN)),
        batching: Batching { max_events: 2, max_delay: Duration::from_secs(3_600) },
        ..HttpSinkConfig::new(server.url())
    });
    for attempt in 1..=5 {
        client.track(sample_event(attempt));
    }
    let first = server.next().await;
    assert_eq!(first.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.body, body_of(&batch(1..=2)));
    assert_eq!(server.next().await.body, body_of(&batch(3..=4)));
    // The fifth waits for its batch to fill or age; flush sends it.
    client.flush().await.unwrap();
    assert_eq!(server.next().await.body, body_of(&batch(5..=5)));
    client.shutdown().await.unwrap();
    assert_eq!(client.stats().sink_errors, 0);
    insta::assert_json_snapshot!(first.body);
}

#[tokio::test]
async fn posts_a_partial_batch_once_it_is_old_enough() {
    let mut server = Server::start(StatusCode::NO_CONTENT).await;
    let client = http_client(HttpSinkConfig {
        batching: Batching { max_events: 100, max_delay: Duration::from_millis(50) },
        ..HttpSinkConfig::new(server.url())
    });
    client.track(sample_event(1));
    let received = server.next().await;
    assert_eq!(received.authorization, None);
    assert_eq!(received.body, body_of(&batch(1..=1)));
    client.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_posts_what_is_buffered() {
    let mut server = Server::start(StatusCode::OK).await;
    let client = http_client(HttpSinkConfig::new(server.url()));
    for attempt in 1..=3 {
        client.track(sample_event(attempt));
    }
    client.shutdown().await.unwrap();
    assert_eq!(server.next().await.body, body_of(&batch(1..=3)));
}

/// An endpoint that fails in some way.
enum DeadEndpoint {
    /// A port nothing listens on.
    Refused,
    /// A server that accepts connections and never answers.
    Silent,
}

/// Tracks a burst towards `endpoint` and checks that no call waits, that a flush ends within
/// the sink's timeout, and that the failure is logged without the token.
async fn check_dead_endpoint(endpoint: DeadEndpoint) {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = match endpoint {
        DeadEndpoint::Refused => {
            drop(listener);
            None
        }
        DeadEndpoint::Silent => Some(tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                open.push(stream);
            }
        })),
    };
    let request_timeout = Duration::from_millis(300);
    let client = http_client(HttpSinkConfig {
        bearer_token: Some(BearerToken::new(TOKEN)),
        timeout: request_timeout,
        batching: Batching { max_events: 100, max_delay: Duration::from_millis(20) },
        ..HttpSinkConfig::new(format!("http://{addr}/v1/events"))
    });

    let started = WallInstant::now();
    let mut slowest = Duration::ZERO;
    for attempt in 1..=200 {
        let call = WallInstant::now();
        client.track(sample_event(attempt));
        slowest = slowest.max(call.elapsed());
    }
    let burst = started.elapsed();
    assert!(slowest < Duration::from_millis(50), "slowest track took {slowest:?}");
    assert!(burst < Duration::from_millis(500), "200 track calls took {burst:?}");

    // Flush is not slowed past the request timeout per batch, and reports no error.
    let flushing = WallInstant::now();
    client.flush().await.unwrap();
    let flush = flushing.elapsed();
    // A few batches of up to 100, each bounded by the request timeout.
    assert!(flush < request_timeout * 8, "flush took {flush:?}");
    let stats = client.stats();
    assert_eq!((stats.queued, stats.dropped), (200, 0));
    assert!(stats.sink_errors >= 1, "{stats:?}");
    client.shutdown().await.unwrap();
    if let Some(silent) = silent {
        silent.abort();
    }

    let lines = logs.lines();
    assert!(
        lines
            .iter()
            .any(|line| line.contains("analytics sink failed") && line.contains("sink=http")),
        "{lines:#?}"
    );
    assert!(lines.iter().all(|line| !line.contains(TOKEN)), "{lines:#?}");
    assert!(lines.iter().all(|line| !line.contains("Bearer")), "{lines:#?}");
}

#[tokio::test]
async fn a_refused_connection_does_not_slow_track() {
    check_dead_endpoint(DeadEndpoint::Refused).await;
}

#[tokio::test]
async fn a_server_that_never_answers_does_not_slow_track() {
    check_dead_endpoint(DeadEndpoint::Silent).await;
}

#[tokio::test]
async fn error_statuses_are_logged_without_the_token() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let mut server = Server::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let client = http_client(HttpSinkConfig {
        bearer_token: Some(BearerToken::new(TOKEN)),
        ..HttpSinkConfig::new(server.url())
    });
    client.track(sample_event(1));
    client.flush().await.unwrap();
    assert_eq!(server.next().await.body, body_of(&batch(1..=1)));
    client.shutdown().await.unwrap();
    assert_eq!(client.stats().sink_errors, 1);
    let lines = logs.lines();
    let failure: Vec<&String> =
        lines.iter().filter(|line| line.contains("analytics sink failed")).collect();
    assert_eq!(failure.len(), 1, "{lines:#?}");
    assert!(failure[0].contains("error=analytics endpoint answered http 500"), "{failure:?}");
    assert!(lines.iter().all(|line| !line.contains(TOKEN)), "{lines:#?}");
}

#[test]
fn the_token_never_shows_in_debug() {
    let config = HttpSinkConfig {
        bearer_token: Some(BearerToken::new(TOKEN)),
        ..HttpSinkConfig::new("http://127.0.0.1:9/v1/events")
    };
    let config_debug = format!("{config:?}");
    let sink_debug = format!("{:?}", HttpBatchSink::new(config).unwrap());
    for debug in [config_debug, sink_debug] {
        assert!(!debug.contains(TOKEN), "{debug}");
        assert!(debug.contains("BearerToken(<redacted>)"), "{debug}");
    }
}

#[test]
fn defaults() {
    let config = HttpSinkConfig::new("http://127.0.0.1/");
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.batching, Batching { max_events: 100, max_delay: Duration::from_secs(5) });
    assert!(config.bearer_token.is_none());
}

#[test]
fn invalid_urls_are_rejected() {
    fn check(url: &str, expected: &str) {
        let err = HttpBatchSink::new(HttpSinkConfig::new(url)).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
    check(
        "not a url",
        "invalid analytics configuration: invalid analytics url: relative URL without a base",
    );
    check(
        "ftp://127.0.0.1/events",
        "invalid analytics configuration: analytics url scheme must be http or https, not ftp",
    );
    assert!(HttpBatchSink::new(HttpSinkConfig::new("https://analytics.example/v1/events")).is_ok());
}

#[test]
fn a_missing_token_variable_is_a_config_error() {
    let err = BearerToken::from_env("COMPACTOR_ANALYTICS_TEST_UNSET_VARIABLE").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid analytics configuration: environment variable \
         COMPACTOR_ANALYTICS_TEST_UNSET_VARIABLE holds no bearer token"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    // The second server must never see the batch the first one redirects.
    let mut elsewhere = Server::start(StatusCode::OK).await;
    let location = elsewhere.url();
    let app = Router::new().route(
        "/v1/events",
        post(move || {
            let location = location.clone();
            async move { (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)]) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = http_client(HttpSinkConfig::new(format!("http://{addr}/v1/events")));
    client.track(sample_event(1));
    client.shutdown().await.unwrap();
    assert_eq!(client.stats().sink_errors, 1, "the redirect is an error");
    let nothing = tokio::time::timeout(Duration::from_millis(300), elsewhere.received.recv()).await;
    assert!(nothing.is_err(), "the batch went to the redirect target: {nothing:?}");
    task.abort();
}
