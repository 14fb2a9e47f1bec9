//! A sink that posts batches as `{"events":[...]}` to an HTTP endpoint (D41).

use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde::Serialize;
use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::event::AnalyticsEvent;
use crate::sink::{AnalyticsSink, Batching, SinkFuture};

/// A bearer token for the analytics endpoint. Its `Debug` never shows the value, and it has no
/// `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// A token given in code.
    pub fn new(token: impl Into<String>) -> Self {
        BearerToken(token.into())
    }

    /// A token read from the environment variable `name`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the variable is unset, empty or not Unicode (the message names
    /// the variable, never its value).
    pub fn from_env(name: &str) -> Result<Self> {
        match std::env::var(name) {
            Ok(token) if !token.is_empty() => Ok(BearerToken(token)),
            Ok(_) | Err(_) => {
                Err(Error::Config(format!("environment variable {name} holds no bearer token")))
            }
        }
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// Settings of an [`HttpBatchSink`].
#[derive(Debug, Clone)]
pub struct HttpSinkConfig {
    /// The endpoint; events are `POST`ed to it as is.
    pub url: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub bearer_token: Option<BearerToken>,
    /// The bound of one request, connect to end of response (default 10 s, D41).
    pub timeout: Duration,
    /// How events are grouped into requests (default: 100 events or 5 s).
    pub batching: Batching,
}

impl HttpSinkConfig {
    /// The default request timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default batching.
    pub const DEFAULT_BATCHING: Batching =
        Batching { max_events: 100, max_delay: Duration::from_secs(5) };

    /// Defaults for `url`, without a token.
    pub fn new(url: impl Into<String>) -> Self {
        HttpSinkConfig {
            url: url.into(),
            bearer_token: None,
            timeout: HttpSinkConfig::DEFAULT_TIMEOUT,
            batching: HttpSinkConfig::DEFAULT_BATCHING,
        }
    }
}

/// Posts batches of events as `{"events":[...]}` with `Content-Type: application/json`.
///
/// A batch that fails (connect error, timeout, status other than 2xx) is logged by the worker
/// and dropped; nothing reaches the turn that tracked it. The URL is left out of error text,
/// and the token never appears in logs, errors or `Debug`.
///
/// Transport: reqwest with plain HTTP/1.1 only (no TLS feature is enabled by this crate), so an
/// `https` endpoint works only in a build where another crate enables reqwest's TLS (as
/// `compactor-client` does); otherwise each batch fails and is logged.
#[derive(Debug)]
pub struct HttpBatchSink {
    client: reqwest::Client,
    url: Url,
    bearer_token: Option<BearerToken>,
    batching: Batching,
}

#[derive(Serialize)]
struct BatchBody<'a> {
    events: &'a [AnalyticsEvent],
}

impl HttpBatchSink {
    /// Builds the sink.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a URL that does not parse or is not `http`/`https`;
    /// [`Error::Http`] when the HTTP client cannot be built.
    pub fn new(config: HttpSinkConfig) -> Result<Self> {
        let url = Url::parse(&config.url)
            .map_err(|err| Error::Config(format!("invalid analytics url: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config(format!(
                "analytics url scheme must be http or https, not {}",
                url.scheme()
            )));
        }
        // No redirects: a batch is never re-sent to another origin (D62 in docs/decisions.md).
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("compactor-analytics/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Http(err.without_url()))?;
        Ok(HttpBatchSink {
            client,
            url,
            bearer_token: config.bearer_token,
            batching: config.batching,
        })
    }

    async fn post(&self, events: &[AnalyticsEvent]) -> Result<()> {
        let mut request = self.client.post(self.url.clone()).json(&BatchBody { events });
        if let Some(token) = &self.bearer_token {
            request = request.bearer_auth(&token.0);
        }
        let response = request.send().await.map_err(|err| Error::Http(err.without_url()))?;
        let status = response.status();
        // Read the body so the connection can be reused; its content is not used.
        let _ = response.bytes().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::HttpStatus { status: status.as_u16() })
        }
    }
}

impl AnalyticsSink for HttpBatchSink {
    fn name(&self) -> &str {
        "http"
    }

    fn batching(&self) -> Batching {
        self.batching
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        let span = tracing::debug_span!("analytics_http_post", events = events.len());
        Box::pin(self.post(events).instrument(span))
    }
}

#[cfg(test)]
mod tests;
