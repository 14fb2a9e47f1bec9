//! Compaction trace bundles (D42): what each compaction attempt sent and got, for debugging.
//!
//! Tracing is off unless a trace root is configured ([`TraceConfig::from_env`] reads
//! `COMPACTOR_ROLLOUT_TRACE_ROOT` once, or a path comes from the config file). Off, every handle
//! is an empty `Option`: no allocation, no serialization and no I/O happen.
//!
//! On, each session gets a bundle directory under the root holding:
//! - `manifest.json`: `{schema_version, rollout_id, thread_id, created_at_unix_ms, writer, writer_version}`;
//! - `trace.jsonl`: append-only events
//!   `{schema_version: 1, seq, wall_time_unix_ms, rollout_id, thread_id, turn_id, payload}`;
//! - `payloads/<n>.json`: large payloads, each written (and flushed) **before** the event that
//!   cites it as `{raw_payload_id: "raw_payload:<n>", kind: {type}, path: "payloads/<n>.json"}`.
//!
//! Directories are created 0700 and files 0600. Sequence numbers, payload numbers and
//! `compaction_request:<n>` ids count from 1 per bundle, so two sessions in one process never
//! interleave their numbering.
//!
//! Trace records hold exactly what callers pass: callers pass request *bodies*, never headers, so
//! no key or auth header can reach a bundle. Tracing never fails or blocks a compaction for
//! long: write failures are logged, and an event whose payload could not be written is dropped
//! rather than written citing a missing file.

use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use compactor_protocol::{CompactorError, ResponseItem};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::files::{create_private_dir_all, explain_open_error, private_file_options};

/// The environment variable naming the trace root.
pub const TRACE_ROOT_ENV: &str = "COMPACTOR_ROLLOUT_TRACE_ROOT";

/// The `schema_version` of manifests and trace events.
pub const TRACE_SCHEMA_VERSION: u32 = 1;

/// Commands the writer may hold before a trace call waits for it.
const QUEUE_CAPACITY: usize = 64;

/// Bundle directory names tried after the first before giving up.
const MAX_NAME_SUFFIX: u32 = 1000;

/// Whether and where trace bundles are written.
#[derive(Debug, Clone, Default)]
pub struct TraceConfig {
    root: Option<PathBuf>,
    clock: Clock,
}

impl TraceConfig {
    /// Tracing off.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Tracing into bundles under `root`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self { root: Some(root.into()), clock: Clock::system() }
    }

    /// Reads [`TRACE_ROOT_ENV`] once: set and non-empty turns tracing on under that directory.
    pub fn from_env() -> Self {
        Self::from_env_value(std::env::var_os(TRACE_ROOT_ENV))
    }

    /// As [`TraceConfig::from_env`], given the variable's value (for tests and config layers).
    pub fn from_env_value(value: Option<OsString>) -> Self {
        match value {
            Some(root) if !root.is_empty() => Self::with_root(root),
            Some(_) | None => Self::disabled(),
        }
    }

    /// Replaces the clock that stamps `wall_time_unix_ms`.
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Whether bundles are written.
    pub fn is_enabled(&self) -> bool {
        self.root.is_some()
    }

    /// The trace root, when tracing is on.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }
}

/// The trace bundle of one session; cheap to clone. Disabled, it is a `None` and does nothing.
#[derive(Debug, Clone, Default)]
pub struct ThreadTrace {
    bundle: Option<Arc<Bundle>>,
}

#[derive(Debug)]
struct Bundle {
    dir: PathBuf,
    rollout_id: String,
    thread_id: String,
    clock: Clock,
    tx: mpsc::Sender<Command>,
    counters: Mutex<Counters>,
    next_request: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Counters {
    seq: u64,
    payload: u64,
}

enum Command {
    /// Payload files (number, bytes), then the line citing them.
    Event {
        payloads: Vec<(u64, Vec<u8>)>,
        line: Vec<u8>,
    },
    Flush {
        ack: oneshot::Sender<()>,
    },
    Shutdown {
        ack: oneshot::Sender<()>,
    },
}

/// The kinds of payload files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
enum PayloadKind {
    #[serde(rename = "compaction_request")]
    Request,
    #[serde(rename = "compaction_request_wire_message")]
    WireMessage,
    #[serde(rename = "compaction_response")]
    Response,
    #[serde(rename = "compaction_checkpoint")]
    Checkpoint,
}

/// How an event cites a payload file.
#[derive(Debug, Clone, Serialize)]
struct RawPayloadRef {
    raw_payload_id: String,
    kind: PayloadKind,
    path: String,
}

/// The envelope of one `trace.jsonl` line.
#[derive(Serialize)]
struct TraceEvent<'a> {
    schema_version: u32,
    seq: u64,
    wall_time_unix_ms: u64,
    rollout_id: &'a str,
    thread_id: &'a str,
    turn_id: &'a str,
    payload: TracePayload<'a>,
}

/// What happened.
#[derive(Serialize)]
#[serde(tag = "type")]
enum TracePayload<'a> {
    #[serde(rename = "compaction_request_started")]
    RequestStarted {
        compaction_id: &'a str,
        compaction_request_id: &'a str,
        thread_id: &'a str,
        turn_id: &'a str,
        model: &'a str,
        provider_name: &'a str,
        request_payload: RawPayloadRef,
        #[serde(skip_serializing_if = "Option::is_none")]
        wire_payload: Option<RawPayloadRef>,
    },
    #[serde(rename = "compaction_request_completed")]
    RequestCompleted {
        compaction_id: &'a str,
        compaction_request_id: &'a str,
        response_payload: RawPayloadRef,
    },
    #[serde(rename = "compaction_request_failed")]
    RequestFailed { compaction_id: &'a str, compaction_request_id: &'a str, error: String },
    #[serde(rename = "compaction_installed")]
    Installed { compaction_id: &'a str, checkpoint_payload: RawPayloadRef },
}

#[derive(Serialize)]
struct Manifest<'a> {
    schema_version: u32,
    rollout_id: &'a str,
    thread_id: &'a str,
    created_at_unix_ms: u64,
    writer: &'a str,
    writer_version: &'a str,
}

#[derive(Serialize)]
struct ResponsePayload<'a> {
    output_items: &'a [ResponseItem],
}

#[derive(Serialize)]
struct CheckpointPayload<'a> {
    input_history: &'a [ResponseItem],
    replacement_history: &'a [ResponseItem],
}

impl ThreadTrace {
    /// A trace that records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Opens the bundle of one session under the configured root: a new directory named after
    /// `rollout_id` (made filesystem-safe; `-2`, `-3`, ... appended when taken) holding
    /// `manifest.json`, `trace.jsonl` and `payloads/`. Disabled config: returns a disabled trace
    /// without touching anything.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the directory or files cannot be created; a caller that does not want
    /// tracing problems to matter logs it and uses [`ThreadTrace::disabled`].
    #[tracing::instrument(skip_all, fields(rollout_id = %rollout_id))]
    pub async fn open(config: &TraceConfig, rollout_id: &str, thread_id: &str) -> Result<Self> {
        let Some(root) = &config.root else { return Ok(Self::disabled()) };
        let manifest = serde_json::to_vec_pretty(&Manifest {
            schema_version: TRACE_SCHEMA_VERSION,
            rollout_id,
            thread_id,
            created_at_unix_ms: config.clock.unix_ms(),
            writer: env!("CARGO_PKG_NAME"),
            writer_version: env!("CARGO_PKG_VERSION"),
        })
        .map_err(Error::Serialize)?;
        let name = dir_name(rollout_id);
        let task_root = root.clone();
        let (dir, trace_file) =
            tokio::task::spawn_blocking(move || create_bundle(&task_root, &name, &manifest))
                .await
                .map_err(|_| Error::TaskFailed { path: root.clone() })??;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let writer =
            tokio::spawn(run_writer(tokio::fs::File::from_std(trace_file), rx, dir.clone()));
        tracing::debug!(dir = %dir.display(), "compaction trace bundle opened");
        Ok(Self {
            bundle: Some(Arc::new(Bundle {
                dir,
                rollout_id: rollout_id.to_owned(),
                thread_id: thread_id.to_owned(),
                clock: config.clock.clone(),
                tx,
                counters: Mutex::new(Counters::default()),
                next_request: AtomicU64::new(1),
                writer: Mutex::new(Some(writer)),
            })),
        })
    }

    /// Whether this trace writes anything.
    pub fn is_enabled(&self) -> bool {
        self.bundle.is_some()
    }

    /// The bundle directory, when enabled.
    pub fn bundle_dir(&self) -> Option<&Path> {
        self.bundle.as_deref().map(|bundle| bundle.dir.as_path())
    }

    /// The trace context of one compaction (or one fallback chain): `compaction_id` is the
    /// `ContextCompaction` item's id.
    pub fn compaction_trace_context(
        &self,
        turn_id: &str,
        compaction_id: &str,
        model: &str,
        provider_name: &str,
    ) -> CompactionTraceContext {
        CompactionTraceContext {
            inner: self.bundle.as_ref().map(|bundle| {
                Arc::new(ContextInner {
                    bundle: Arc::clone(bundle),
                    turn_id: turn_id.to_owned(),
                    compaction_id: compaction_id.to_owned(),
                    model: model.to_owned(),
                    provider_name: provider_name.to_owned(),
                })
            }),
        }
    }

    /// Waits until every event recorded before is written. Disabled: returns at once.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe.
    pub async fn flush(&self) {
        if let Some(bundle) = &self.bundle {
            let (ack, done) = oneshot::channel();
            if bundle.tx.send(Command::Flush { ack }).await.is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Writes everything recorded, syncs it and stops the writer; later events are dropped.
    /// Bound it with `tokio::time::timeout` (D31). Dropping every handle also drains and
    /// stops the writer.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the writer still stops once it drains.
    pub async fn shutdown(&self) {
        let Some(bundle) = &self.bundle else { return };
        let (ack, done) = oneshot::channel();
        if bundle.tx.send(Command::Shutdown { ack }).await.is_ok() {
            let _ = done.await;
        }
        let writer = bundle.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(writer) = writer
            && writer.await.is_err()
        {
            tracing::warn!(dir = %bundle.dir.display(), "compaction trace writer panicked");
        }
    }
}

/// The trace of one compaction; disabled when its [`ThreadTrace`] is.
#[derive(Debug, Clone, Default)]
pub struct CompactionTraceContext {
    inner: Option<Arc<ContextInner>>,
}

#[derive(Debug)]
struct ContextInner {
    bundle: Arc<Bundle>,
    turn_id: String,
    compaction_id: String,
    model: String,
    provider_name: String,
}

/// A compaction request as it was sent, in JSON, for [`CompactionTraceContext::start_attempt`].
#[derive(Debug, Clone, Copy)]
pub struct SentRequestJson<'a> {
    /// The logical request: the whole request body, as an HTTP request carries it.
    pub request: &'a [u8],
    /// The message that went on the wire instead, when it differs from `request` (a WebSocket
    /// `response.create`, incremental or not).
    pub wire_message: Option<&'a [u8]>,
}

/// One request of a compaction, from [`CompactionTraceContext::start_attempt`].
#[derive(Debug, Clone, Default)]
pub struct CompactionTraceAttempt {
    inner: Option<(Arc<ContextInner>, String)>,
}

impl CompactionTraceContext {
    /// A context that records nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Whether this context writes anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records a request that was sent: writes `sent.request`, the logical request, as a
    /// `compaction_request` payload and, when there is one, `sent.wire_message` as a
    /// `compaction_request_wire_message` payload, then appends `compaction_request_started`
    /// citing them (`request_payload`, `wire_payload`). The bytes are written as they are.
    /// Disabled: does nothing; a caller that would have to serialize a request for this call
    /// asks [`CompactionTraceContext::is_enabled`] first.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the event is queued whole or not at all.
    pub async fn start_attempt(&self, sent: SentRequestJson<'_>) -> CompactionTraceAttempt {
        let Some(ctx) = &self.inner else { return CompactionTraceAttempt::default() };
        let request_id = format!(
            "compaction_request:{}",
            ctx.bundle.next_request.fetch_add(1, Ordering::Relaxed)
        );
        let mut payloads = vec![(PayloadKind::Request, sent.request.to_vec())];
        if let Some(wire_message) = sent.wire_message {
            payloads.push((PayloadKind::WireMessage, wire_message.to_vec()));
        }
        ctx.bundle
            .emit_with_payloads(&ctx.turn_id, payloads, |mut refs| {
                let wire_payload = (refs.len() > 1).then(|| refs.remove(1));
                let request_payload = refs.remove(0);
                TracePayload::RequestStarted {
                    compaction_id: &ctx.compaction_id,
                    compaction_request_id: &request_id,
                    thread_id: &ctx.bundle.thread_id,
                    turn_id: &ctx.turn_id,
                    model: &ctx.model,
                    provider_name: &ctx.provider_name,
                    request_payload,
                    wire_payload,
                }
            })
            .await;
        CompactionTraceAttempt { inner: Some((Arc::clone(ctx), request_id)) }
    }

    /// Records the installed checkpoint: writes `{input_history, replacement_history}` as a
    /// `compaction_checkpoint` payload, then appends `compaction_installed`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the event is queued whole or not at all.
    pub async fn record_installed(
        &self,
        input_history: &[ResponseItem],
        replacement_history: &[ResponseItem],
    ) {
        let Some(ctx) = &self.inner else { return };
        let payload = serde_json::to_vec(&CheckpointPayload { input_history, replacement_history });
        ctx.bundle
            .emit_with_payload(&ctx.turn_id, PayloadKind::Checkpoint, payload, |payload_ref| {
                TracePayload::Installed {
                    compaction_id: &ctx.compaction_id,
                    checkpoint_payload: payload_ref,
                }
            })
            .await;
    }
}

impl CompactionTraceAttempt {
    /// The attempt's `compaction_request:<n>` id, when enabled.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.as_ref().map(|(_, id)| id.as_str())
    }

    /// Records how the request ended: `Ok(output items)` writes a `compaction_response` payload
    /// `{"output_items": [...]}` and appends `compaction_request_completed`; `Err(error)` appends
    /// `compaction_request_failed` with the error's text.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: the event is queued whole or not at all.
    pub async fn record_result(&self, result: Result<&[ResponseItem], &CompactorError>) {
        let Some((ctx, request_id)) = &self.inner else { return };
        match result {
            Ok(output_items) => {
                let payload = serde_json::to_vec(&ResponsePayload { output_items });
                ctx.bundle
                    .emit_with_payload(
                        &ctx.turn_id,
                        PayloadKind::Response,
                        payload,
                        |payload_ref| TracePayload::RequestCompleted {
                            compaction_id: &ctx.compaction_id,
                            compaction_request_id: request_id,
                            response_payload: payload_ref,
                        },
                    )
                    .await;
            }
            Err(error) => {
                ctx.bundle
                    .emit(
                        &ctx.turn_id,
                        TracePayload::RequestFailed {
                            compaction_id: &ctx.compaction_id,
                            compaction_request_id: request_id,
                            error: error.to_string(),
                        },
                    )
                    .await;
            }
        }
    }
}

impl RawPayloadRef {
    fn new(number: u64, kind: PayloadKind) -> Self {
        Self {
            raw_payload_id: format!("raw_payload:{number}"),
            kind,
            path: format!("payloads/{number}.json"),
        }
    }
}

impl Bundle {
    /// Queues a payload file and then the event citing it. A payload that cannot be serialized
    /// drops the event.
    async fn emit_with_payload<'a>(
        &'a self,
        turn_id: &'a str,
        kind: PayloadKind,
        payload: serde_json::Result<Vec<u8>>,
        event: impl FnOnce(RawPayloadRef) -> TracePayload<'a>,
    ) {
        let bytes = match payload {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::warn!(error = %err, "compaction trace payload could not be serialized; event dropped");
                return;
            }
        };
        self.emit_with_payloads(turn_id, vec![(kind, bytes)], |mut refs| event(refs.remove(0)))
            .await;
    }

    /// Queues payload files, numbered in order, and then the event citing them; `event` gets
    /// their references in the order of `payloads`.
    async fn emit_with_payloads<'a>(
        &'a self,
        turn_id: &'a str,
        payloads: Vec<(PayloadKind, Vec<u8>)>,
        event: impl FnOnce(Vec<RawPayloadRef>) -> TracePayload<'a>,
    ) {
        let wall_time_unix_ms = self.clock.unix_ms();
        let Ok(permit) = self.tx.reserve().await else { return self.closed() };
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let first = counters.payload + 1;
        let mut refs = Vec::with_capacity(payloads.len());
        let mut numbered = Vec::with_capacity(payloads.len());
        for (number, (kind, bytes)) in (first..).zip(payloads) {
            refs.push(RawPayloadRef::new(number, kind));
            numbered.push((number, bytes));
        }
        let event = event(refs);
        if let Some(line) = self.event_line(&mut counters, wall_time_unix_ms, turn_id, event) {
            counters.payload += u64::try_from(numbered.len()).unwrap_or(u64::MAX);
            permit.send(Command::Event { payloads: numbered, line });
        }
    }

    /// Queues an event without a payload.
    async fn emit(&self, turn_id: &str, event: TracePayload<'_>) {
        let wall_time_unix_ms = self.clock.unix_ms();
        let Ok(permit) = self.tx.reserve().await else { return self.closed() };
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = self.event_line(&mut counters, wall_time_unix_ms, turn_id, event) {
            permit.send(Command::Event { payloads: Vec::new(), line });
        }
    }

    /// The next event's line, numbered. Called with the counters locked and a queue slot
    /// reserved, so the file order is the numbering order.
    fn event_line(
        &self,
        counters: &mut Counters,
        wall_time_unix_ms: u64,
        turn_id: &str,
        payload: TracePayload<'_>,
    ) -> Option<Vec<u8>> {
        let envelope = TraceEvent {
            schema_version: TRACE_SCHEMA_VERSION,
            seq: counters.seq + 1,
            wall_time_unix_ms,
            rollout_id: &self.rollout_id,
            thread_id: &self.thread_id,
            turn_id,
            payload,
        };
        match serde_json::to_vec(&envelope) {
            Ok(mut line) => {
                line.push(b'\n');
                counters.seq += 1;
                Some(line)
            }
            Err(err) => {
                tracing::warn!(error = %err, "compaction trace event could not be serialized");
                None
            }
        }
    }

    fn closed(&self) {
        tracing::debug!(dir = %self.dir.display(), "compaction trace closed; event dropped");
    }
}

/// A directory name from `rollout_id`: ASCII letters, digits, `.`, `_` and `-` kept, anything
/// else replaced by `_`; never empty, never `.` or `..`.
fn dir_name(rollout_id: &str) -> String {
    let name: String = rollout_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    if name.is_empty() || name.chars().all(|c| c == '.') { format!("bundle{name}") } else { name }
}

fn create_bundle(root: &Path, name: &str, manifest: &[u8]) -> Result<(PathBuf, std::fs::File)> {
    // A link planted at the root is refused; below it, every directory and file is new, and
    // neither `mkdir` nor a `create_new` open follows a link (D64 in docs/decisions.md).
    create_private_dir_all(root).map_err(|err| Error::io(root, err))?;
    let mut dirs = std::fs::DirBuilder::new();
    dirs.mode(0o700);
    let mut dir = root.join(name);
    let mut suffix = 1;
    loop {
        match dirs.create(&dir) {
            Ok(()) => break,
            Err(err)
                if err.kind() == std::io::ErrorKind::AlreadyExists && suffix < MAX_NAME_SUFFIX =>
            {
                suffix += 1;
                dir = root.join(format!("{name}-{suffix}"));
            }
            Err(err) => return Err(Error::io(&dir, err)),
        }
    }
    let payloads = dir.join("payloads");
    dirs.create(&payloads).map_err(|err| Error::io(&payloads, err))?;
    let manifest_path = dir.join("manifest.json");
    write_new_file(&manifest_path, manifest).map_err(|err| Error::io(&manifest_path, err))?;
    let trace_path = dir.join("trace.jsonl");
    let trace = private_file_options()
        .append(true)
        .create_new(true)
        .open(&trace_path)
        .map_err(|err| Error::io(&trace_path, explain_open_error(&trace_path, err)))?;
    Ok((dir, trace))
}

fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut file = private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|err| explain_open_error(path, err))?;
    file.write_all(bytes)?;
    file.write_all(b"\n")
}

async fn run_writer(mut trace: tokio::fs::File, mut rx: mpsc::Receiver<Command>, dir: PathBuf) {
    while let Some(command) = rx.recv().await {
        match command {
            Command::Event { payloads, line } => {
                if !write_payloads(&dir, payloads).await {
                    continue;
                }
                if let Err(err) = append(&mut trace, &line).await {
                    tracing::warn!(dir = %dir.display(), error = %err, "compaction trace event write failed");
                }
            }
            Command::Flush { ack } => {
                let _ = ack.send(());
            }
            Command::Shutdown { ack } => {
                rx.close();
                if let Err(err) = trace.sync_data().await {
                    tracing::warn!(dir = %dir.display(), error = %err, "compaction trace sync failed");
                }
                let _ = ack.send(());
                return;
            }
        }
    }
    if let Err(err) = trace.sync_data().await {
        tracing::warn!(dir = %dir.display(), error = %err, "compaction trace sync failed");
    }
}

/// Writes each payload file; false (logged) when one cannot be written, and the event citing
/// them is then dropped.
async fn write_payloads(dir: &Path, payloads: Vec<(u64, Vec<u8>)>) -> bool {
    for (number, bytes) in payloads {
        let path = dir.join("payloads").join(format!("{number}.json"));
        if let Err(err) = write_payload(&path, &bytes).await {
            tracing::warn!(path = %path.display(), error = %err, "compaction trace payload write failed; event dropped");
            return false;
        }
    }
    true
}

async fn write_payload(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = private_file_options();
    options.write(true).create_new(true);
    let mut file = tokio::fs::OpenOptions::from(options).open(path).await?;
    file.write_all(bytes).await?;
    file.write_all(b"\n").await?;
    // The event citing this file is appended only after the payload is in the OS.
    file.flush().await
}

async fn append(trace: &mut tokio::fs::File, line: &[u8]) -> std::io::Result<()> {
    trace.write_all(line).await?;
    trace.flush().await
}

#[cfg(test)]
mod tests;
