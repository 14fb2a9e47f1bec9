//! The analytics crate's own failures and their mapping into [`CompactorError`].

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use compactor_protocol::CompactorError;

/// Everything that can go wrong in this crate.
///
/// None of these ever reaches a turn through [`crate::AnalyticsClient::track`]: sink failures
/// are logged by the worker and counted in [`crate::AnalyticsStats::sink_errors`]. Only
/// construction, [`crate::AnalyticsClient::flush`] and [`crate::AnalyticsClient::shutdown`]
/// return them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`crate::AnalyticsClient::start`] was called outside a tokio runtime.
    #[error("no tokio runtime to run the analytics worker on")]
    NoRuntime,
    /// The client was shut down, or its worker stopped.
    #[error("the analytics client is shut down")]
    Closed,
    /// A flush did not finish within its bound.
    #[error("analytics flush did not finish within {timeout:?}")]
    FlushTimedOut {
        /// The bound.
        timeout: Duration,
    },
    /// The worker did not stop within its bound and was aborted.
    #[error("analytics shutdown did not finish within {timeout:?}")]
    ShutdownTimedOut {
        /// The bound.
        timeout: Duration,
    },
    /// A sink's configuration is invalid.
    #[error("invalid analytics configuration: {0}")]
    Config(String),
    /// The JSONL file (or its directory) could not be opened.
    #[error("cannot open analytics file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The JSONL file could not be written or synced.
    #[error("cannot write analytics file {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// An event could not be serialized.
    #[error("cannot serialize an analytics event")]
    Serialize(#[source] serde_json::Error),
    /// The HTTP request failed (connect, timeout, body). The URL is stripped from the cause.
    #[error("analytics http request failed")]
    Http(#[source] reqwest::Error),
    /// The endpoint answered with a status other than 2xx.
    #[error("analytics endpoint answered http {status}")]
    HttpStatus {
        /// The HTTP status.
        status: u16,
    },
    /// An OpenTelemetry export failed (the `otlp` feature); the message names neither the
    /// endpoint nor the headers.
    #[error("otlp {0}")]
    Otlp(String),
    /// A sink outside this crate failed.
    #[error("analytics sink failed: {0}")]
    Sink(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error and its sources, joined by `": "`, for logs.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(cause) = source {
            let _ = write!(text, ": {cause}");
            source = cause.source();
        }
        text
    }
}

impl From<Error> for CompactorError {
    fn from(err: Error) -> Self {
        let message = err.chain();
        match err {
            Error::NoRuntime | Error::Config(_) => CompactorError::Config(message),
            Error::FlushTimedOut { .. } | Error::ShutdownTimedOut { .. } => {
                CompactorError::Timeout(message)
            }
            Error::Open { .. } | Error::Write { .. } => CompactorError::Io(message),
            Error::Serialize(_) => CompactorError::Json(message),
            Error::Http(_) | Error::Otlp(_) => CompactorError::ConnectionFailed(message),
            Error::HttpStatus { status } => {
                CompactorError::UnexpectedStatus { status, body: String::new() }
            }
            Error::Closed | Error::Sink(_) => CompactorError::Fatal(message),
        }
    }
}
