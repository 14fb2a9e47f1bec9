//! A sink appending one JSON object per line to a file created with mode 0600, never through a
//! symbolic link (D64 in docs/decisions.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, Result};
use crate::event::AnalyticsEvent;
use crate::sink::{AnalyticsSink, Batching, SinkFuture};

/// Appends events to a JSONL file, one `{"event_type":...,"event_params":{...}}` per line.
///
/// The file and its missing parent directories are created on [`JsonlFileSink::open`]; a new
/// file gets mode 0600 and new directories 0700 (an existing file keeps its mode). A symbolic
/// link at the file's path is refused: nothing is appended through it. Every batch is written
/// with one `write_all` and flushed to the OS; [`AnalyticsSink::flush`] also syncs it to disk.
/// Events are written as soon as the worker sees them, up to 256 per write.
#[derive(Debug)]
pub struct JsonlFileSink {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
}

impl JsonlFileSink {
    /// Opens `path` for appending.
    ///
    /// # Errors
    ///
    /// [`Error::Open`] when the directory or the file cannot be created or opened, or the file's
    /// path is a symbolic link.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            tokio::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .await
                .map_err(|source| Error::Open { path: parent.to_path_buf(), source })?;
        }
        let mut options = OpenOptions::new();
        // O_NOFOLLOW: a link where the file goes fails the open instead of being appended to.
        options.create(true).append(true).mode(0o600).custom_flags(libc::O_NOFOLLOW);
        let file = options.open(&path).await.map_err(|source| {
            let source = if source.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link; Compactor does not write through links",
                    path.display()
                ))
            } else {
                source
            };
            Error::Open { path: path.clone(), source }
        })?;
        Ok(JsonlFileSink { path, file, line: Vec::new() })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AnalyticsSink for JsonlFileSink {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn batching(&self) -> Batching {
        Batching { max_events: 256, max_delay: Duration::ZERO }
    }

    fn send<'a>(&'a mut self, events: &'a [AnalyticsEvent]) -> SinkFuture<'a> {
        Box::pin(async move {
            self.line.clear();
            for event in events {
                serde_json::to_writer(&mut self.line, event).map_err(Error::Serialize)?;
                self.line.push(b'\n');
            }
            let write = async {
                self.file.write_all(&self.line).await?;
                self.file.flush().await
            };
            write.await.map_err(|source| Error::Write { path: self.path.clone(), source })
        })
    }

    fn flush(&mut self) -> SinkFuture<'_> {
        Box::pin(async move {
            let sync = async {
                self.file.flush().await?;
                self.file.sync_data().await
            };
            sync.await.map_err(|source| Error::Write { path: self.path.clone(), source })
        })
    }
}
