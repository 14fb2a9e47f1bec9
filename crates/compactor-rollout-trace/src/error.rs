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
    /// Writing or syncing the rollout failed. The writer stopped at the first failure, so this
    /// call and every later one report that failure, and no line lands after a partial one.
    #[error("rollout write to {path} failed: {message}")]
    WriterFailed {
        /// The rollout file.
        path: PathBuf,
        /// What the OS said the first time, e.g. `No space left on device (os error 28)`.
        message: String,
    },
    /// Another writer holds the rollout's lock file (`<rollout>.lock`).
    #[error("rollout {} is in use by {}", path.display(), match pid {
        Some(pid) => format!("pid {pid}"),
        None => "another process".to_owned(),
    })]
    InUse {
        /// The rollout file.
        path: PathBuf,
        /// The writer's process id, when the lock file names it.
        pid: Option<u32>,
    },
    /// A complete line could not be read and the reader was told to fail on one
    /// ([`DamagedLines::Fail`](crate::DamagedLines::Fail)).
    #[error("{}:{line_number}: damaged rollout line (byte {byte_offset}): {message}", path.display())]
    Damaged {
        /// The rollout file.
        path: PathBuf,
        /// The first damaged line's 1-based number.
        line_number: usize,
        /// Its byte offset.
        byte_offset: u64,
        /// Why it cannot be read.
        message: String,
        /// How many damaged lines the file has in all.
        count: usize,
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
            Error::WriterFailed { path, message } => {
                return CompactorError::RolloutWrite {
                    path: path.display().to_string(),
                    message: message.clone(),
                };
            }
            Error::InUse { path, pid } => {
                return CompactorError::RolloutInUse {
                    path: path.display().to_string(),
                    pid: *pid,
                };
            }
            Error::Damaged { .. } | Error::Closed { .. } | Error::TaskFailed { .. } => {
                err.to_string()
            }
        };
        CompactorError::Rollout(message)
    }
}
