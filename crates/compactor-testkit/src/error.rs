//! The testkit's own failures, and their conversion into [`CompactorError`].

use std::io;
use std::time::Duration;

use compactor_protocol::CompactorError;

/// A failure of the test server or of a wait on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound on the loopback address.
    #[error("failed to bind 127.0.0.1:{port}")]
    Bind {
        /// The port asked for (0 = any).
        port: u16,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// The traffic log could not be opened or written.
    #[error("cannot record traffic to {}", path.display())]
    Record {
        /// The log file.
        path: std::path::PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },
    /// A wait for recorded traffic ran out of time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    WaitTimedOut {
        /// What was awaited, e.g. "3 requests (saw 1)".
        what: String,
        /// How long the wait lasted.
        timeout: Duration,
    },
    /// The server did not stop within the shutdown timeout; its remaining tasks were aborted.
    #[error("server did not stop within {timeout:?}; remaining tasks were aborted")]
    ShutdownTimedOut {
        /// The shutdown timeout.
        timeout: Duration,
    },
    /// The server task failed.
    #[error("server task failed")]
    Serve(#[source] io::Error),
    /// The server task panicked or was aborted.
    #[error("server task ended abnormally: {0}")]
    Join(String),
    /// Requests broke protocol invariants (see [`crate::Violation`]).
    #[error("{count} protocol violation(s):\n{details}")]
    Violations {
        /// How many violations were recorded.
        count: usize,
        /// One violation per line.
        details: String,
    },
}

/// `Result` with the testkit's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for CompactorError {
    fn from(err: Error) -> Self {
        match err {
            Error::Bind { .. } | Error::Serve(_) | Error::Record { .. } => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                CompactorError::Io(text)
            }
            Error::WaitTimedOut { .. } | Error::ShutdownTimedOut { .. } => {
                CompactorError::Timeout(err.to_string())
            }
            Error::Join(_) | Error::Violations { .. } => CompactorError::Fatal(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
