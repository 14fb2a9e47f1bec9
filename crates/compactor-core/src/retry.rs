//! The one retry loop for a stream that fails after it opened, shared by sampling, remote
//! compaction v2 and local compaction (see D81 in docs/decisions.md).
//!
//! The client retries failures of *opening* a stream by itself; what fails once events flow
//! (an early end, a disconnect, a mid-stream `response.failed`) comes back to core, because
//! only the caller knows whether sending the request again is safe.

use compactor_client::ModelClientSession;
use compactor_protocol::{CompactorError, EventMsg};
use tokio_util::sync::CancellationToken;

use crate::session::Session;

/// How a stream is retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamRetries {
    /// Retries on one transport before giving up (or falling back to HTTP).
    pub(crate) max_retries: u32,
    /// What the HTTP fallback leaves to try.
    pub(crate) after_fallback: AfterFallback,
}

/// What is tried on HTTP once the WebSocket retries have run out and the client fell back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterFallback {
    /// One more attempt, no further retries (remote compaction v2).
    OneAttempt,
    /// The retries start over (sampling and local compaction, which are normal requests).
    FreshRetries,
}

/// One attempt of a request whose stream may fail after it opened: sends the request on the
/// client session it is given and reads the answer.
pub(crate) trait StreamAttempt {
    /// What a successful attempt gives.
    type Output;

    /// Sends the request and reads its answer.
    fn run<'a>(
        &'a mut self,
        client_session: &'a mut ModelClientSession,
    ) -> impl Future<Output = Result<Self::Output, StreamFailure>> + Send + 'a;
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum StreamFailure {
    /// Opening the stream failed. The client has retried that already, so it is final.
    Open(CompactorError),
    /// The stream failed after it opened: retried when the error is retryable.
    Stream(CompactorError),
}

impl Session {
    /// Runs `attempt` on `client_session` until it succeeds, fails for good, or the retries run
    /// out. Before each retry it emits `stream_error` `Reconnecting... n/max`, counts the retry
    /// in `retried` and waits the backoff of the client's retry policy: the configured base
    /// delay doubled per retry, or the delay the server asked for, either capped at the
    /// policy's maximum delay. When the retries run out on WebSocket, the client falls back to
    /// HTTP for the rest of the session and `retries.after_fallback` says what is left to try.
    ///
    /// # Errors
    ///
    /// The attempt's last error; [`CompactorError::Cancelled`] when `cancel` fires first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the attempt in flight, as the client's stream does.
    pub(crate) async fn retry_stream<A: StreamAttempt>(
        &self,
        client_session: &mut ModelClientSession,
        retries: StreamRetries,
        cancel: &CancellationToken,
        retried: &mut u32,
        attempt: &mut A,
    ) -> Result<A::Output, CompactorError> {
        let policy = self.inner.client.config().retry;
        let max_retries = retries.max_retries;
        let mut count = 0u32;
        loop {
            // Boxed: an attempt holds the client's stream future, several kilobytes that every
            // caller's future (a turn, a compaction) would otherwise carry.
            let run = Box::pin(attempt.run(client_session));
            let result = tokio::select! {
                () = cancel.cancelled() => return Err(CompactorError::Cancelled),
                result = run => result,
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(StreamFailure::Open(error)) => return Err(error),
                Err(StreamFailure::Stream(error)) if !error.is_retryable() => return Err(error),
                Err(StreamFailure::Stream(error)) => error,
            };
            if count >= max_retries {
                let reason = format!("stream retries exhausted: {error}");
                if !self.inner.client.fall_back_to_http(&reason) {
                    return Err(error);
                }
                client_session.reset_websocket_session();
                count = match retries.after_fallback {
                    AfterFallback::OneAttempt => max_retries,
                    AfterFallback::FreshRetries => 0,
                };
                continue;
            }
            count += 1;
            *retried += 1;
            let delay = policy.delay(count, error.retry_after());
            tracing::warn!(
                attempt = count,
                max = max_retries,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "retrying a stream that failed after it opened"
            );
            self.emit(EventMsg::StreamError {
                message: format!("Reconnecting... {count}/{max_retries}"),
                compactor_error_info: Some(error.info()),
                additional_details: Some(error.to_string()),
            })
            .await;
            tokio::select! {
                () = cancel.cancelled() => return Err(CompactorError::Cancelled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests;
