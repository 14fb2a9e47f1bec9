//! The one error taxonomy that crosses crates (D43).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::events::ErrorEvent;

/// Every failure a Compactor crate hands to another.
///
/// Messages are lowercase, carry no secret (no key, no auth header), and name what failed.
/// [`CompactorError::is_retryable`] decides whether a retry can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactorError {
    /// The operation was cancelled (interrupt, shutdown, dropped stream).
    #[error("cancelled")]
    Cancelled,
    /// A hook or the harness stopped the turn.
    #[error("turn aborted: {reason}")]
    TurnAborted {
        /// Why.
        reason: String,
    },
    /// A transient stream failure; `retry_after` is a delay the server asked for.
    #[error("stream error: {message}")]
    Stream {
        /// What happened.
        message: String,
        /// The delay the server requested, if any.
        retry_after: Option<Duration>,
    },
    /// The request does not fit the model's context window.
    #[error(
        "the request exceeds the model's context window; compact the history or start a new session"
    )]
    ContextWindowExceeded,
    /// An HTTP status with no more specific mapping.
    #[error("unexpected status {status}: {body}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The response body (truncated by the client).
        body: String,
    },
    /// The server rejected the request (HTTP 400, `invalid_prompt`).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request was refused under the cyber-safety policy.
    #[error("request refused by policy: {0}")]
    CyberPolicy(String),
    /// The account's usage limit was reached.
    #[error("usage limit reached: {0}")]
    UsageLimitReached(String),
    /// The server is overloaded (`server_is_overloaded`, `slow_down`).
    #[error("the server is overloaded; try again later")]
    ServerOverloaded,
    /// The account has no quota left.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// The plan does not include this usage.
    #[error("usage not included in the plan: {0}")]
    UsageNotIncluded(String),
    /// The server failed (HTTP 500).
    #[error("internal server error")]
    InternalServerError,
    /// Retries ran out (a 429 after the client's retries).
    #[error("retry limit reached (last status {status}): {message}")]
    RetryLimit {
        /// The last HTTP status.
        status: u16,
        /// The last failure's text.
        message: String,
    },
    /// A timeout (connect or idle before the first event).
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection could not be opened.
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// The server reported `response.failed` with a code Compactor retries.
    #[error("response failed ({code}): {message}")]
    ResponseStreamFailed {
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
        /// The delay the server requested, if any.
        retry_after: Option<Duration>,
    },
    /// A failure no retry can fix (e.g. a malformed compaction result).
    #[error("{0}")]
    Fatal(String),
    /// A compaction implementation found nothing it could remove from the history (`prune` with
    /// no old tool output to mask and nothing to drop): nothing failed, there was no work.
    #[error("{implementation} found nothing to remove")]
    NothingToCompact {
        /// The implementation's name.
        implementation: String,
    },
    /// An I/O failure.
    #[error("i/o error: {0}")]
    Io(String),
    /// JSON that could not be read or written.
    #[error("json error: {0}")]
    Json(String),
    /// An auto compaction left a request that cannot fit the usable context window, so the turn
    /// cannot go on (the loop guard, D104).
    #[error(
        "compaction made no progress: {retained_tokens} tokens remain after compaction, over the usable context window of {window} tokens (auto-compact limit {limit})"
    )]
    CompactionMadeNoProgress {
        /// The estimated tokens of the request after compaction.
        retained_tokens: i64,
        /// The auto-compact limit.
        limit: i64,
        /// The usable context window the request had to fit.
        window: i64,
    },
    /// A stream line, event or WebSocket message grew past the client's cap; the stream was ended
    /// there, so one event can never take more than a small multiple of the cap in memory
    /// (D61 in docs/decisions.md). A retry would meet the same event.
    #[error("a stream event exceeded the limit of {limit} bytes; the stream was ended")]
    EventTooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// A compaction's result is still above the usable context window; it was not installed and
    /// nothing was appended for it (D63 in docs/decisions.md).
    #[error(
        "the compacted history does not fit: at least {tokens} tokens, above the usable window of {usable_window} tokens"
    )]
    CompactionDoesNotFit {
        /// The estimated tokens of the compacted history (a lower bound when the compaction was
        /// refused before any request).
        tokens: i64,
        /// The usable context window, in tokens.
        usable_window: i64,
    },
    /// A rollout could not be read, opened or created.
    #[error("rollout error: {0}")]
    Rollout(String),
    /// Writing or syncing the rollout failed (a full disk, a file-size limit, an I/O error).
    /// What that write was to record took no effect, and every later write fails the same way.
    #[error("rollout write to {path} failed: {message}")]
    RolloutWrite {
        /// The rollout file.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// Another process is writing this rollout: it holds the rollout's lock file.
    #[error("rollout {path} is in use by {}", in_use_by(*.pid))]
    RolloutInUse {
        /// The rollout file.
        path: String,
        /// The writer's process id, when its lock file names it.
        pid: Option<u32>,
    },
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The session's pins alone exceed the retained budget of a compacted history: the compaction
    /// was refused before any request, and nothing was installed (D142 in docs/decisions.md).
    #[error(
        "the pins take {pinned_tokens} tokens, over the retained budget of {budget_tokens} tokens; unpin something or raise the budget"
    )]
    PinsOverBudget {
        /// The estimated tokens of the pinned items and notes.
        pinned_tokens: u64,
        /// The retained budget they must fit, in tokens.
        budget_tokens: u64,
    },
    /// No pin of the session has this id.
    #[error("no pin {id} in this session")]
    PinNotFound {
        /// The id asked for (`pin-N`).
        id: String,
    },
    /// The item cannot be pinned: only messages can, since a pinned tool call or output would
    /// stand without its partner in the pin slot (D140 in docs/decisions.md).
    #[error("a `{item_type}` item cannot be pinned: only messages can; pin a note instead")]
    NotPinnable {
        /// The item's `type`.
        item_type: String,
    },
}

impl CompactorError {
    /// Whether a retry of the same request can succeed (D43).
    pub fn is_retryable(&self) -> bool {
        match self {
            CompactorError::Stream { .. }
            | CompactorError::Timeout(_)
            | CompactorError::UnexpectedStatus { .. }
            | CompactorError::ResponseStreamFailed { .. }
            | CompactorError::ConnectionFailed(_)
            | CompactorError::InternalServerError
            | CompactorError::Io(_)
            | CompactorError::Json(_) => true,
            CompactorError::Cancelled
            | CompactorError::TurnAborted { .. }
            | CompactorError::ContextWindowExceeded
            | CompactorError::InvalidRequest(_)
            | CompactorError::CyberPolicy(_)
            | CompactorError::UsageLimitReached(_)
            | CompactorError::ServerOverloaded
            | CompactorError::QuotaExceeded(_)
            | CompactorError::UsageNotIncluded(_)
            | CompactorError::RetryLimit { .. }
            | CompactorError::Fatal(_)
            | CompactorError::NothingToCompact { .. }
            | CompactorError::CompactionMadeNoProgress { .. }
            | CompactorError::EventTooLarge { .. }
            | CompactorError::CompactionDoesNotFit { .. }
            | CompactorError::Rollout(_)
            | CompactorError::RolloutWrite { .. }
            | CompactorError::RolloutInUse { .. }
            | CompactorError::Config(_)
            | CompactorError::PinsOverBudget { .. }
            | CompactorError::PinNotFound { .. }
            | CompactorError::NotPinnable { .. } => false,
        }
    }

    /// The delay the server asked for before a retry, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CompactorError::Stream { retry_after, .. }
            | CompactorError::ResponseStreamFailed { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A transient stream error without a requested delay.
    pub fn stream(message: impl Into<String>) -> Self {
        CompactorError::Stream { message: message.into(), retry_after: None }
    }

    /// Whether this is a cancellation or an abort (analytics status `interrupted`).
    pub fn is_interruption(&self) -> bool {
        matches!(self, CompactorError::Cancelled | CompactorError::TurnAborted { .. })
    }

    /// The structured info a harness can act on.
    pub fn info(&self) -> CompactorErrorInfo {
        match self {
            CompactorError::ContextWindowExceeded | CompactorError::CompactionDoesNotFit { .. } => {
                CompactorErrorInfo::ContextWindowExceeded
            }
            CompactorError::UsageLimitReached(_) => CompactorErrorInfo::UsageLimitExceeded,
            CompactorError::ServerOverloaded => CompactorErrorInfo::ServerOverloaded,
            CompactorError::InternalServerError => CompactorErrorInfo::InternalServerError,
            CompactorError::QuotaExceeded(_) | CompactorError::UsageNotIncluded(_) => {
                CompactorErrorInfo::QuotaExceeded
            }
            CompactorError::InvalidRequest(_) | CompactorError::CyberPolicy(_) => {
                CompactorErrorInfo::BadRequest
            }
            CompactorError::UnexpectedStatus { status, .. }
            | CompactorError::RetryLimit { status, .. } => {
                CompactorErrorInfo::ResponseStreamConnectionFailed {
                    http_status_code: Some(*status),
                }
            }
            CompactorError::ConnectionFailed(_) | CompactorError::Timeout(_) => {
                CompactorErrorInfo::ResponseStreamConnectionFailed { http_status_code: None }
            }
            CompactorError::Stream { .. }
            | CompactorError::ResponseStreamFailed { .. }
            | CompactorError::EventTooLarge { .. } => {
                CompactorErrorInfo::ResponseStreamDisconnected { http_status_code: None }
            }
            CompactorError::CompactionMadeNoProgress { .. } => {
                CompactorErrorInfo::CompactionMadeNoProgress
            }
            CompactorError::Cancelled | CompactorError::TurnAborted { .. } => {
                CompactorErrorInfo::Interrupted
            }
            CompactorError::Fatal(_)
            | CompactorError::NothingToCompact { .. }
            | CompactorError::Io(_)
            | CompactorError::Json(_)
            | CompactorError::Rollout(_)
            | CompactorError::RolloutWrite { .. }
            | CompactorError::RolloutInUse { .. }
            | CompactorError::Config(_)
            | CompactorError::PinsOverBudget { .. }
            | CompactorError::PinNotFound { .. }
            | CompactorError::NotPinnable { .. } => CompactorErrorInfo::Other,
        }
    }

    /// The `error` event for this error: `"<prefix>: <message>"`.
    pub fn to_error_event(&self, prefix: &str) -> ErrorEvent {
        ErrorEvent { message: format!("{prefix}: {self}"), compactor_error_info: Some(self.info()) }
    }

    /// The `error` event for this error, without a prefix.
    pub fn to_unprefixed_error_event(&self) -> ErrorEvent {
        ErrorEvent { message: self.to_string(), compactor_error_info: Some(self.info()) }
    }
}

/// Who holds a rollout, for [`CompactorError::RolloutInUse`].
fn in_use_by(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_owned(),
    }
}

impl From<serde_json::Error> for CompactorError {
    fn from(err: serde_json::Error) -> Self {
        CompactorError::Json(err.to_string())
    }
}

impl From<std::io::Error> for CompactorError {
    fn from(err: std::io::Error) -> Self {
        CompactorError::Io(err.to_string())
    }
}

/// Structured error info carried by `error` and `stream_error` events (snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompactorErrorInfo {
    /// The context window was exceeded.
    ContextWindowExceeded,
    /// The usage limit was reached.
    UsageLimitExceeded,
    /// No quota.
    QuotaExceeded,
    /// The server is overloaded.
    ServerOverloaded,
    /// The server failed.
    InternalServerError,
    /// The request was rejected.
    BadRequest,
    /// The connection could not be opened, or the status was unexpected.
    ResponseStreamConnectionFailed {
        /// The HTTP status, when there was one.
        http_status_code: Option<u16>,
    },
    /// The stream broke.
    ResponseStreamDisconnected {
        /// The HTTP status, when there was one.
        http_status_code: Option<u16>,
    },
    /// An auto compaction left a request that cannot fit the window.
    CompactionMadeNoProgress,
    /// Cancelled or aborted.
    Interrupted,
    /// Anything else.
    Other,
}

#[cfg(test)]
mod tests;
