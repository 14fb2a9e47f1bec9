//! Rollouts and compaction traces of Compactor (layer L1): the append-only JSONL record of a
//! session, resuming and forking from it, and per-attempt compaction trace bundles.
//!
//! This crate depends on `compactor-protocol` only among Compactor crates; it never depends on
//! `compactor-engine` or another L1 crate (D1). Where reconstruction needs the engine's
//! legacy-compaction rebuild, the caller passes it in as a [`LegacyRebuild`] function.
//!
//! - Writing: [`RolloutRecorder`] appends [`RolloutLine`](compactor_protocol::RolloutLine)s
//!   (UTC millisecond timestamps, [`format_timestamp`]) for the items [`is_persisted`] keeps;
//!   files are 0600; a `compacted` line is written and synced before `record` returns; the
//!   first failed write stops the writer (D53); opening for append takes the writer lock
//!   `<rollout>.lock` (D52) and truncates a torn last line.
//! - Reading: [`read_rollout`] / [`parse_rollout`] return every complete line and a
//!   [`ReadReport`] of torn tails and damaged lines ([`CorruptLine`]); they never fail on
//!   content and never panic, unless asked to with [`DamagedLines::Fail`] (D50). Readers take
//!   no lock.
//! - Resuming: [`Replay`], built with the session's contextual markers, gives a
//!   [`ReconstructedSession`] (history, reference context, previous turn settings, token info,
//!   window generation) and the items of a forked rollout; [`Replay::reconstruct_contents`] also
//!   counts and words what reading skipped; [`reconstruct_history_from_rollout`] replays with
//!   the default markers. The session's pins come from the newest surviving pins record, and
//!   [`Replay::compactions`] lists every compaction with its receipt and ledger snapshot
//!   ([`CompactionRecord`]).
//! - Crash points: [`crash`], compiled in only with the `crash-points` feature (D51).
//! - Tracing: [`TraceConfig`], [`ThreadTrace`], [`CompactionTraceContext`] and
//!   [`CompactionTraceAttempt`] write trace bundles (D42), and do nothing at all unless a
//!   trace root is configured; a request is recorded as it was sent ([`SentRequestJson`]).
//! - Files: every file this crate writes is created 0600 (directories 0700) and never through a
//!   symbolic link at its final path component; [`private_file_options`] and
//!   [`create_private_dir_all`] do the same for other writers (D64).
//! - Errors: [`Error`], converted into [`CompactorError`](compactor_protocol::CompactorError)
//!   where it crosses crates.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use compactor_protocol::{CompactedItem, ResponseItem, RolloutItem};
//! use compactor_rollout_trace::{
//!     RecorderOptions, RolloutRecorder, read_rollout, reconstruct_history_from_rollout,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("rollout.jsonl");
//! let recorder = RolloutRecorder::create(&path, RecorderOptions::default()).await?;
//! recorder.record(&[RolloutItem::ResponseItem(ResponseItem::user_text("hello"))]).await?;
//! let compacted = vec![ResponseItem::user_text("hello"), ResponseItem::user_text("summary")];
//! recorder.record(&[RolloutItem::Compacted(CompactedItem::new("", compacted.clone()))]).await?;
//! recorder.shutdown().await?;
//!
//! let contents = read_rollout(&path).await?;
//! assert!(contents.report.is_clean());
//! let no_legacy = |history: &[ResponseItem], _: &str, _: &_| history.to_vec();
//! let session = reconstruct_history_from_rollout(&contents.lines, &no_legacy);
//! assert_eq!(session.history, compacted);
//! assert_eq!(session.window_generation, 1);
//! # Ok(())
//! # }
//! ```

mod clock;
pub mod crash;
mod error;
mod files;
mod lock;
mod policy;
mod reader;
mod reconstruct;
mod recorder;
mod timestamp;
mod trace;

pub use clock::Clock;
pub use error::{Error, Result};
pub use files::{create_private_dir_all, explain_open_error, private_file_options, refused_link};
pub use policy::{is_persisted, is_persisted_event};
pub use reader::{
    CorruptLine, DamagedLines, ReadReport, RolloutContents, TornTail, parse_rollout, read_rollout,
    read_rollout_with,
};
pub use reconstruct::{
    CompactionRecord, LegacyRebuild, PreviousTurnSettings, ReconstructedSession, Replay,
    reconstruct_history_from_rollout,
};
pub use recorder::{RecorderOptions, RolloutRecorder};
pub use timestamp::format_timestamp;
pub use trace::{
    CompactionTraceAttempt, CompactionTraceContext, SentRequestJson, TRACE_ROOT_ENV,
    TRACE_SCHEMA_VERSION, ThreadTrace, TraceConfig,
};

#[cfg(test)]
mod tests;
