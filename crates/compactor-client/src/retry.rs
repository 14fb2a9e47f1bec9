//! The retry loop for opening streams and unary calls (D10).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use compactor_protocol::CompactorError;

use crate::config::RetryPolicy;

/// One retry the client is about to make, for the caller to show (`Reconnecting... n/max`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryNotice {
    /// This retry's number, from 1.
    pub attempt: u32,
    /// The most retries that will be made.
    pub max_retries: u32,
    /// How long the client waits first.
    pub delay: Duration,
    /// The failure being retried.
    pub error: CompactorError,
}

impl RetryNotice {
    /// `Reconnecting... n/max`.
    pub fn message(&self) -> String {
        format!("Reconnecting... {}/{}", self.attempt, self.max_retries)
    }
}

/// Something the client did on its own that the harness should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNotice {
    /// A retry is about to happen; core shows it as a `stream_error` event.
    Retry(RetryNotice),
    /// WebSocket retries ran out (or the server refused the upgrade) and the client switched to
    /// HTTP for good; core shows it as a `warning` event.
    FallbackToHttp {
        /// Why.
        reason: String,
    },
}

impl ClientNotice {
    /// The text to show.
    pub fn message(&self) -> String {
        match self {
            ClientNotice::Retry(retry) => retry.message(),
            ClientNotice::FallbackToHttp { .. } => {
                "Falling back from WebSockets to HTTPS transport".to_owned()
            }
        }
    }
}

/// Receives [`ClientNotice`]s; called synchronously, so it must be quick (e.g. a channel send).
#[derive(Clone)]
pub struct ClientObserver(Arc<dyn Fn(&ClientNotice) + Send + Sync>);

impl ClientObserver {
    /// Wraps a callback.
    pub fn new(callback: impl Fn(&ClientNotice) + Send + Sync + 'static) -> Self {
        Self(Arc::new(callback))
    }

    pub(crate) fn notify(&self, notice: &ClientNotice) {
        (self.0)(notice);
    }
}

impl fmt::Debug for ClientObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientObserver")
    }
}

/// A failed attempt: the error to return if no retry follows, and whether one may.
#[derive(Debug)]
pub(crate) struct AttemptError {
    pub(crate) error: CompactorError,
    pub(crate) retry: Retry,
}

/// Whether a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Yes, after the backoff or the delay the server asked for.
    After(Option<Duration>),
    /// No: the error is final.
    Never,
}

impl AttemptError {
    pub(crate) fn final_error(error: CompactorError) -> Self {
        Self { error, retry: Retry::Never }
    }

    /// Retry when the error's class says a retry can help (D43).
    pub(crate) fn by_class(error: CompactorError) -> Self {
        let retry =
            if error.is_retryable() { Retry::After(error.retry_after()) } else { Retry::Never };
        Self { error, retry }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the retries run out; the last failure
/// is returned as it is (already mapped to its final error by the attempt).
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    observer: Option<&ClientObserver>,
    mut attempt: F,
) -> Result<T, CompactorError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let mut retries = 0u32;
    loop {
        let failure = match attempt().await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        match next_retry(policy, observer, &mut retries, failure) {
            Ok(delay) => tokio::time::sleep(delay).await,
            Err(error) => return Err(error),
        }
    }
}

/// Decides on the retry after `failure`: the delay to wait (after notifying the observer), or
/// the final error when the failure is final or the retries ran out.
pub(crate) fn next_retry(
    policy: &RetryPolicy,
    observer: Option<&ClientObserver>,
    retries: &mut u32,
    failure: AttemptError,
) -> Result<Duration, CompactorError> {
    let requested = match failure.retry {
        Retry::After(requested) if *retries < policy.max_retries => requested,
        Retry::After(_) | Retry::Never => return Err(failure.error),
    };
    *retries += 1;
    let delay = policy.delay(*retries, requested);
    let notice = RetryNotice {
        attempt: *retries,
        max_retries: policy.max_retries,
        delay,
        error: failure.error,
    };
    tracing::warn!(
        attempt = *retries,
        max = policy.max_retries,
        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        error = %notice.error,
        "retrying model request"
    );
    if let Some(observer) = observer {
        observer.notify(&ClientNotice::Retry(notice));
    }
    Ok(delay)
}
