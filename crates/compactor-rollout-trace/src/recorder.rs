//! The rollout recorder: appends one `RolloutLine` JSON object per line (D21, D25).
//!
//! Durability contract (D21):
//! - A line exists only once its `\n` is written; every line is written with its newline in one
//!   `write_all`, and a batch of lines in one write.
//! - Every batch is flushed to the OS when written, so it survives a crash of the process.
//! - A batch holding a `compacted` or a `pins` line is also `fsync`ed (`sync_data`), and
//!   [`RolloutRecorder::record`] returns only once both are done, so a compaction is installed
//!   only when its line is on disk, and a failed write or sync installs nothing (see D53 in
//!   docs/decisions.md). [`RolloutRecorder::flush`] and [`RolloutRecorder::shutdown`] wait until
//!   everything written before them is synced. Other lines are not synced one by one: a sync per
//!   streamed item would cost more than the item is worth, and losing the last lines of a turn to
//!   a power cut leaves a valid, shorter rollout.
//! - A failed write or sync stops the writer for good: that call and every later one return
//!   [`Error::WriterFailed`] naming the file and the OS error. What the failed write managed to
//!   append is cut off again when the file allows it, so the file keeps only whole lines.
//! - Opening an existing rollout for append first truncates an unterminated last fragment, so a
//!   new line never lands after a partial one. Lines in the middle of the file are never
//!   rewritten, damaged or not.
//! - One writer at a time: creating or opening a rollout takes its lock file `<rollout>.lock`
//!   first (see the `lock` module), and the writer releases it when it stops.
//! - Files are created with mode 0600 and new directories with mode 0700 (D47), and a symbolic
//!   link where the rollout goes is refused, for append too (D64).
//!
//! One writer task owns the file. Callers hand it whole, already serialized batches over a
//! bounded channel, so a caller that is cancelled never leaves half a line behind.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use compactor_protocol::RolloutItem;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::crash::{self, CrashPoint};
use crate::error::{Error, Result};
use crate::files::{explain_open_error, private_file_options};
use crate::lock::WriterLock;
use crate::policy::is_persisted;
use crate::timestamp::format_timestamp;

/// Batches the writer may hold before [`RolloutRecorder::record`] waits for it.
const QUEUE_CAPACITY: usize = 256;

/// Bytes read per step when searching backwards for the last newline.
const TAIL_CHUNK: u64 = 64 * 1024;

/// Options of a [`RolloutRecorder`].
#[derive(Debug, Clone, Default)]
pub struct RecorderOptions {
    /// Where line timestamps come from.
    pub clock: Clock,
}

/// Appends rollout lines to one file; cheap to clone (all clones share one writer).
///
/// Only items that pass [`is_persisted`] are written. Write failures are sticky: after the first
/// one the writer stops (so no line follows a partial one) and every later call returns
/// [`Error::WriterFailed`].
#[derive(Debug, Clone)]
pub struct RolloutRecorder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    clock: Clock,
    tx: mpsc::Sender<Command>,
    failure: Arc<OnceLock<String>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    truncated_tail_bytes: u64,
    lock_taken_over_from: Option<u32>,
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Command {
    Append { bytes: Vec<u8>, durability: Durability, ack: Option<Ack> },
    Flush { ack: Ack },
    Shutdown { ack: Ack },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    /// Written and flushed to the OS.
    Flushed,
    /// Also synced to the disk before the caller is told it is written.
    Synced,
}

/// What the writer task owns.
struct WriterState {
    /// Written on the blocking pool straight from the batch's buffer: an asynchronous file would
    /// copy every batch into a buffer of its own first, and a `compacted` line is megabytes.
    file: Arc<std::fs::File>,
    /// The file's length: where the next batch starts, and where a failed one is cut back to.
    len: u64,
    lock: Option<WriterLock>,
    failure: Arc<OnceLock<String>>,
    path: PathBuf,
}

impl RolloutRecorder {
    /// Creates a new rollout file at `path` (mode 0600), creating missing parent directories
    /// (mode 0700), and takes its writer lock.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] when another writer holds the lock; [`Error::Io`] when the file already
    /// exists (a symbolic link included) or cannot be created.
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub async fn create(path: &Path, options: RecorderOptions) -> Result<Self> {
        let owned = path.to_path_buf();
        let (file, lock) = run_blocking(path, move || {
            create_parent_dirs(&owned)?;
            let lock = WriterLock::acquire(&owned)?;
            let file = private_file_options()
                .append(true)
                .create_new(true)
                .open(&owned)
                .map_err(|err| Error::io(&owned, explain_open_error(&owned, err)));
            match file {
                Ok(file) => Ok((file, lock)),
                Err(err) => {
                    lock.release();
                    Err(err)
                }
            }
        })
        .await?;
        Ok(Self::start(path, options, file, 0, lock))
    }

    /// Opens the rollout at `path` for append, creating it (mode 0600) when missing, after taking
    /// its writer lock. An unterminated last fragment is truncated first;
    /// [`RolloutRecorder::truncated_tail_bytes`] says how many bytes went.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] when another writer holds the lock; [`Error::Io`] when the file cannot be
    /// opened, read or truncated, or is a symbolic link (nothing is written through one).
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub async fn open_append(path: &Path, options: RecorderOptions) -> Result<Self> {
        let owned = path.to_path_buf();
        let (file, truncated, lock) = run_blocking(path, move || {
            create_parent_dirs(&owned)?;
            let lock = WriterLock::acquire(&owned)?;
            let opened = private_file_options()
                .read(true)
                .append(true)
                .create(true)
                .open(&owned)
                .map_err(|err| Error::io(&owned, explain_open_error(&owned, err)))
                .and_then(|mut file| {
                    let truncated =
                        truncate_torn_tail(&mut file).map_err(|err| Error::io(&owned, err))?;
                    Ok((file, truncated))
                });
            match opened {
                Ok((file, truncated)) => Ok((file, truncated, lock)),
                Err(err) => {
                    lock.release();
                    Err(err)
                }
            }
        })
        .await?;
        if truncated > 0 {
            tracing::warn!(
                path = %path.display(),
                bytes = truncated,
                "truncated an unterminated last rollout line before appending"
            );
        }
        Ok(Self::start(path, options, file, truncated, lock))
    }

    fn start(
        path: &Path,
        options: RecorderOptions,
        file: std::fs::File,
        truncated: u64,
        lock: WriterLock,
    ) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let failure = Arc::new(OnceLock::new());
        // A character device such as /dev/full has no length to keep.
        let len = file.metadata().map_or(0, |metadata| metadata.len());
        let lock_taken_over_from = lock.taken_over_from();
        let state = WriterState {
            file: Arc::new(file),
            len,
            lock: Some(lock),
            failure: Arc::clone(&failure),
            path: path.to_path_buf(),
        };
        let writer = tokio::spawn(run_writer(state, rx));
        Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                clock: options.clock,
                tx,
                failure,
                writer: Mutex::new(Some(writer)),
                truncated_tail_bytes: truncated,
                lock_taken_over_from,
            }),
        }
    }

    /// The rollout file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Bytes of an unterminated last line removed when the file was opened for append.
    pub fn truncated_tail_bytes(&self) -> u64 {
        self.inner.truncated_tail_bytes
    }

    /// The process whose stale writer lock this recorder took over: a writer that ended without
    /// releasing it, most likely in a crash.
    pub fn lock_taken_over_from(&self) -> Option<u32> {
        self.inner.lock_taken_over_from
    }

    /// The warning to show for [`RolloutRecorder::lock_taken_over_from`], naming the rollout and
    /// the process.
    pub fn lock_takeover_warning(&self) -> Option<String> {
        self.inner
            .lock_taken_over_from
            .map(|pid| crate::lock::takeover_message(&self.inner.path, pid))
    }

    /// Appends the persisted ones among `items`, one line each, stamped with the clock's time.
    ///
    /// Returns once the batch is queued; a batch holding a `compacted` or a `pins` line is awaited
    /// until it is written and synced to disk.
    ///
    /// # Errors
    ///
    /// [`Error::WriterFailed`] after an earlier write failure, and for this batch's own when it
    /// was awaited; [`Error::Closed`] after [`RolloutRecorder::shutdown`]; [`Error::Serialize`]
    /// when an item cannot be serialized.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a batch is either queued whole or not at all. Once queued it is written even
    /// if the caller stops waiting.
    pub async fn record(&self, items: &[RolloutItem]) -> Result<()> {
        self.check_failure()?;
        if !items.iter().any(is_persisted) {
            return Ok(());
        }
        let timestamp = format_timestamp(self.inner.clock.now());
        let mut bytes = Vec::new();
        let mut durability = Durability::Flushed;
        for item in items.iter().filter(|item| is_persisted(item)) {
            write_line(&mut bytes, &timestamp, item)?;
            if matches!(item, RolloutItem::Compacted(_) | RolloutItem::Pins(_)) {
                durability = Durability::Synced;
            }
        }
        match durability {
            Durability::Flushed => {
                self.send(Command::Append { bytes, durability, ack: None }).await
            }
            Durability::Synced => {
                let (ack, done) = oneshot::channel();
                self.send(Command::Append { bytes, durability, ack: Some(ack) }).await?;
                self.wait(done).await
            }
        }
    }

    /// Waits until everything recorded before is written and synced to disk.
    ///
    /// # Errors
    ///
    /// As [`RolloutRecorder::record`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the flush happens or not; nothing is lost either way.
    pub async fn flush(&self) -> Result<()> {
        self.check_failure()?;
        let (ack, done) = oneshot::channel();
        self.send(Command::Flush { ack }).await?;
        self.wait(done).await
    }

    /// Writes and syncs everything recorded, then stops the writer. Later calls to `record` and
    /// `flush` return [`Error::Closed`]; calling `shutdown` again returns `Ok`.
    ///
    /// Dropping every clone without calling this also drains, flushes and stops the writer, but
    /// nobody learns whether that worked. Bound it with `tokio::time::timeout` (D31).
    ///
    /// # Errors
    ///
    /// [`Error::WriterFailed`] when a write or the final sync failed.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: once the request is queued, the writer drains and stops whether or not the
    /// caller still waits.
    pub async fn shutdown(&self) -> Result<()> {
        let (ack, done) = oneshot::channel();
        let result = match self.inner.tx.send(Command::Shutdown { ack }).await {
            Ok(()) => match done.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => {
                    Err(Error::WriterFailed { path: self.inner.path.clone(), message })
                }
                // Another clone's shutdown stopped the writer first.
                Err(_) => self.check_failure(),
            },
            // Already shut down.
            Err(_) => self.check_failure(),
        };
        let writer = self.inner.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer
            && writer.await.is_err()
        {
            return Err(Error::TaskFailed { path: self.inner.path.clone() });
        }
        result
    }

    fn check_failure(&self) -> Result<()> {
        match self.inner.failure.get() {
            Some(message) => {
                Err(Error::WriterFailed { path: self.inner.path.clone(), message: message.clone() })
            }
            None => Ok(()),
        }
    }

    async fn send(&self, command: Command) -> Result<()> {
        self.inner
            .tx
            .send(command)
            .await
            .map_err(|_| Error::Closed { path: self.inner.path.clone() })
    }

    async fn wait(&self, done: oneshot::Receiver<Result<(), String>>) -> Result<()> {
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(Error::WriterFailed { path: self.inner.path.clone(), message }),
            Err(_) => Err(Error::Closed { path: self.inner.path.clone() }),
        }
    }
}

/// Serializes one rollout line and its newline into `out`, exactly as
/// `serde_json::to_writer(&RolloutLine::new(timestamp, item.clone()))` would, without the clone
/// (a `compacted` line can hold megabytes of history), and with the protocol's own JSON writer,
/// which writes the same bytes faster (see D167 in docs/decisions.md).
pub(crate) fn write_line(out: &mut Vec<u8>, timestamp: &str, item: &RolloutItem) -> Result<()> {
    let start = out.len();
    if let Err(err) = compactor_protocol::json::write_json(out, &LineRef { timestamp, item }) {
        out.truncate(start);
        return Err(Error::Serialize(err));
    }
    out.push(b'\n');
    Ok(())
}

/// A rollout line that borrows its item.
struct LineRef<'a> {
    timestamp: &'a str,
    item: &'a RolloutItem,
}

impl Serialize for LineRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("timestamp", self.timestamp)?;
        map.serialize_entry("type", self.item.kind())?;
        match self.item {
            RolloutItem::SessionMeta(meta) => map.serialize_entry("payload", meta)?,
            RolloutItem::ResponseItem(item) => map.serialize_entry("payload", item)?,
            RolloutItem::Compacted(compacted) => map.serialize_entry("payload", compacted)?,
            RolloutItem::TurnContext(ctx) => map.serialize_entry("payload", ctx)?,
            RolloutItem::EventMsg(event) => map.serialize_entry("payload", event)?,
            RolloutItem::OpenItems(open) => map.serialize_entry("payload", open)?,
            RolloutItem::Pins(pins) => map.serialize_entry("payload", pins)?,
            RolloutItem::Unknown { payload: Some(payload), .. } => {
                map.serialize_entry("payload", payload)?;
            }
            RolloutItem::Unknown { payload: None, .. } => {}
        }
        map.end()
    }
}

async fn run_writer(mut state: WriterState, mut rx: mpsc::Receiver<Command>) {
    while let Some(command) = rx.recv().await {
        match command {
            Command::Append { bytes, durability, ack } => {
                let result = state.append(bytes, durability).await;
                if let Some(ack) = ack {
                    let _ = ack.send(result);
                }
            }
            Command::Flush { ack } => {
                let _ = ack.send(state.sync().await);
            }
            Command::Shutdown { ack } => {
                let result = state.sync().await;
                rx.close();
                // Batches queued before the channel closed were sent before the shutdown and
                // have been written already; anything left raced with it and is dropped.
                state.release_lock().await;
                let _ = ack.send(result);
                return;
            }
        }
    }
    // Every handle was dropped without a shutdown: make what was written durable.
    let _ = state.sync().await;
    state.release_lock().await;
}

impl WriterState {
    /// Appends one batch: all of it, or, when the write fails, nothing that can be taken back.
    async fn append(&mut self, bytes: Vec<u8>, durability: Durability) -> Result<(), String> {
        self.check()?;
        if crash::reached(CrashPoint::MidLine) {
            // Half of the batch's first line, as a crash in the middle of the write leaves it.
            let first_line = bytes.iter().position(|&b| b == b'\n').unwrap_or(bytes.len());
            let half = bytes[..first_line / 2].to_vec();
            let _ = on_file(&self.file, move |mut file| file.write_all(&half)).await;
            crash::abort(CrashPoint::MidLine);
        }
        let len = bytes.len() as u64;
        if let Err(err) = on_file(&self.file, move |mut file| file.write_all(&bytes)).await {
            let message = self.fail(&err);
            self.cut_back().await;
            return Err(message);
        }
        if durability == Durability::Synced {
            crash::hit(CrashPoint::AfterCompactedWrite);
            if let Err(err) = on_file(&self.file, std::fs::File::sync_data).await {
                // The caller installs nothing, so the file must not keep the batch either.
                let message = self.fail(&err);
                self.cut_back().await;
                return Err(message);
            }
            crash::hit(CrashPoint::AfterCompactedSync);
        }
        self.len += len;
        Ok(())
    }

    async fn sync(&mut self) -> Result<(), String> {
        self.check()?;
        on_file(&self.file, std::fs::File::sync_data).await.map_err(|err| self.fail(&err))
    }

    fn check(&self) -> Result<(), String> {
        match self.failure.get() {
            Some(message) => Err(message.clone()),
            None => Ok(()),
        }
    }

    /// Stops the writer for good; the first failure is the one every later call reports.
    fn fail(&self, err: &std::io::Error) -> String {
        let message = err.to_string();
        if self.failure.set(message.clone()).is_ok() {
            tracing::error!(path = %self.path.display(), error = %err, "rollout write failed; writer stopped");
        }
        self.failure.get().cloned().unwrap_or(message)
    }

    /// Cuts off what a failed batch appended, so the file ends where it ended before the batch.
    async fn cut_back(&mut self) {
        match on_file(&self.file, std::fs::File::metadata).await {
            Ok(metadata) if metadata.is_file() && metadata.len() > self.len => {
                let len = self.len;
                if let Err(err) = on_file(&self.file, move |file| file.set_len(len)).await {
                    tracing::warn!(
                        path = %self.path.display(),
                        error = %err,
                        "cannot cut a partly written rollout line; the reader will ignore it"
                    );
                }
            }
            Ok(_) | Err(_) => {}
        }
    }

    async fn release_lock(&mut self) {
        if let Some(lock) = self.lock.take() {
            let _ = tokio::task::spawn_blocking(move || lock.release()).await;
        }
    }
}

/// Runs `io` on `file` on the blocking pool, where file I/O may block.
async fn on_file<T: Send + 'static>(
    file: &Arc<std::fs::File>,
    io: impl FnOnce(&std::fs::File) -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let file = Arc::clone(file);
    match tokio::task::spawn_blocking(move || io(&file)).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::other("the rollout's blocking file task failed")),
    }
}

async fn run_blocking<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Error::TaskFailed { path: path.to_path_buf() })?
}

pub(crate) fn create_parent_dirs(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|err| Error::io(parent, err)),
        Some(_) | None => Ok(()),
    }
}

/// Cuts `file` after its last `\n` (to empty when it has none) and returns how many bytes went.
fn truncate_torn_tail(file: &mut std::fs::File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let mut end = len;
    let mut buf = Vec::new();
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(TAIL_CHUNK);
        let chunk_len = usize::try_from(end - start).unwrap_or(usize::MAX);
        buf.resize(chunk_len, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf)?;
        if let Some(newline) = buf.iter().rposition(|&b| b == b'\n') {
            break start + newline as u64 + 1;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep)?;
        file.sync_data()?;
    }
    Ok(len - keep)
}

#[cfg(test)]
mod tests;
