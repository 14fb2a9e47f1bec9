//! Failures of the rollout recorder and reader, converted into [`CompactorError`] at the API.

use std::io;
use std::path::PathBuf;

use compactor_protocol::CompactorError;

/// A failure of this crate. Trace bundles never fail their caller: only opening one can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be created, opened, read or written.
    #[error("rollout i/o failed on {path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A rollout record could not be serialized.
    #[error("rollout record could not be serialized")]
    Serialize(#[source] serde_json::Error),
    /// The recorder's writer stopped after an earlier failure; nothing more is written so that no
    /// line lands after a partial one.
    #[error("rollout writer for {path} failed earlier: {message}")]
    WriterFailed {
        /// The rollout file.
        path: PathBuf,
        /// The first failure.
        message: String,
    },
    /// The recorder was shut down, or its writer task ended.
    #[error("rollout recorder for {path} is closed")]
    Closed {
        /// The rollout file.
        path: PathBuf,
    },
    /// A blocking file task panicked or was cancelled by the runtime.
    #[error("rollout file task for {path} did not complete")]
    TaskFailed {
        /// The file the task worked on.
        path: PathBuf,
    },
}

/// This crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

impl From<Error> for CompactorError {
    fn from(err: Error) -> Self {
        // The message names the file and the cause; `Display` of `Error` leaves the source out,
        // so it is appended here.
        let message = match &err {
            Error::Io { source, .. } => format!("{err}: {source}"),
            Error::Serialize(source) => format!("{err}: {source}"),
            Error::WriterFailed { .. } | Error::Closed { .. } | Error::TaskFailed { .. } => {
                err.to_string()
            }
        };
        CompactorError::Rollout(message)
    }
}
