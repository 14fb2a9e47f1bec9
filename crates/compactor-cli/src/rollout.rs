//! Reading a saved session for `resume` and `compact`: a damaged line in the middle of the file
//! is skipped with a warning naming it (an error under `--strict`), and a torn last line is
//! ignored with a warning.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;
use compactor_core::ModelInfo;
use compactor_engine::rebuild_legacy_compacted;
use compactor_protocol::ContextualMarkers;
use compactor_rollout_trace::{
    DamagedLines, ReconstructedSession, Replay, RolloutContents, read_rollout,
};

use crate::error::{CliError, Exit};
use crate::settings::DEFAULT_MODEL;

/// How strictly a rollout is read.
#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    /// Fail (exit 4) on a damaged rollout line instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,
}

impl ReadArgs {
    /// What the reader does with a damaged line.
    pub(crate) fn damaged_lines(&self) -> DamagedLines {
        if self.strict { DamagedLines::Fail } else { DamagedLines::Skip }
    }
}

/// A rollout read and reconstructed.
#[derive(Debug)]
pub(crate) struct SavedSession {
    pub(crate) path: PathBuf,
    pub(crate) session: ReconstructedSession,
    /// The bytes of an unterminated last line, which opening the rollout for append cuts off.
    pub(crate) torn_tail_bytes: u64,
}

impl SavedSession {
    /// The thread id, when the rollout records one.
    pub(crate) fn thread_id(&self) -> Option<&str> {
        self.session.session_meta.as_ref().map(|meta| meta.id.as_str())
    }

    /// The model the session was last using: its slug, and the window its usable window comes
    /// from (the default model and an unknown window when the rollout does not say).
    pub(crate) fn model(&self) -> ModelInfo {
        let slug = self
            .session
            .previous_turn_settings
            .as_ref()
            .map_or(DEFAULT_MODEL, |settings| settings.model.as_str());
        let usable = self.session.token_info.and_then(|info| info.model_context_window);
        ModelInfo {
            context_window: usable.map(|usable| usable.saturating_mul(100) / 95),
            ..ModelInfo::new(slug, 0)
        }
    }

    /// The base instructions the session was written with.
    pub(crate) fn base_instructions(&self) -> &str {
        self.session
            .session_meta
            .as_ref()
            .and_then(compactor_protocol::SessionMeta::base_instructions_text)
            .unwrap_or_default()
    }
}

/// Reads the rollout at `path`; what it skipped is in the session's `warnings`.
pub(crate) async fn read(path: &Path, damaged: DamagedLines) -> Result<SavedSession, CliError> {
    let contents = read_contents(path, damaged).await?;
    Ok(reconstruct(path, contents))
}

/// The session of `contents`, the lines read from the rollout at `path`.
pub(crate) fn reconstruct(path: &Path, contents: RolloutContents) -> SavedSession {
    let torn_tail_bytes = contents.report.torn_tail.map_or(0, |tail| tail.len);
    let session = Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
        .reconstruct_contents(contents);
    SavedSession { path: path.to_path_buf(), session, torn_tail_bytes }
}

/// The lines of the rollout at `path`: a missing file, a directory, a damaged line under
/// [`DamagedLines::Fail`] and a rollout without lines are errors.
pub(crate) async fn read_contents(
    path: &Path,
    damaged: DamagedLines,
) -> Result<RolloutContents, CliError> {
    match tokio::fs::metadata(path).await {
        Ok(metadata) if metadata.is_dir() => {
            return Err(CliError::msg(
                Exit::BadRollout,
                format_args!("{} is a directory, not a rollout file", path.display()),
            ));
        }
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::msg(
                Exit::MissingFile,
                format_args!("rollout {} does not exist", path.display()),
            ));
        }
        Err(err) => {
            return Err(CliError::new(Exit::BadRollout, err)
                .context(format!("cannot read rollout {}", path.display())));
        }
    }
    let contents = read_rollout(path).await.map_err(|err| {
        CliError::new(Exit::BadRollout, err)
            .context(format!("cannot read rollout {}", path.display()))
    })?;
    let report = &contents.report;
    if damaged == DamagedLines::Fail
        && let Some(first) = report.corrupt_lines.first()
    {
        let more = match report.corrupt_lines.len() {
            1 => String::new(),
            n => format!(" ({n} damaged lines in all)"),
        };
        return Err(CliError::msg(
            Exit::BadRollout,
            format_args!(
                "{}:{}: damaged rollout line (byte {}): {}{more}; without --strict it is skipped",
                path.display(),
                first.line_number,
                first.byte_offset,
                first.error.replace("at line 1 column ", "at column ")
            ),
        ));
    }
    if contents.lines.is_empty() {
        return Err(CliError::msg(
            Exit::BadRollout,
            format_args!("{} holds no rollout lines", path.display()),
        ));
    }
    Ok(contents)
}

/// Where lines appended to `saved`'s rollout from now on start: its length, less the torn tail
/// that opening it for append removes.
pub(crate) async fn append_offset(saved: &SavedSession) -> Result<u64, CliError> {
    let metadata = tokio::fs::metadata(&saved.path).await.map_err(|err| {
        CliError::new(Exit::BadRollout, err)
            .context(format!("cannot read rollout {}", saved.path.display()))
    })?;
    Ok(metadata.len().saturating_sub(saved.torn_tail_bytes))
}

/// The most bytes read back to say what a failed command appended.
const APPENDED_READ_LIMIT: u64 = 1 << 20;

/// What was appended to the rollout at `path` from byte `start` on, as the end of a sentence:
/// "nothing was appended to the rollout", or "appended 3 lines to the rollout (turn_started,
/// error, turn_complete); its history is unchanged" (D69 in docs/decisions.md).
pub(crate) async fn appended_since(path: &Path, start: u64) -> String {
    match read_appended(path, start).await {
        Ok(names) if names.is_empty() => "nothing was appended to the rollout".to_owned(),
        Ok(names) => {
            let lines = if names.len() == 1 { "line" } else { "lines" };
            let history = if names.iter().any(|name| name == "compacted") {
                String::new()
            } else {
                "; its history is unchanged".to_owned()
            };
            format!(
                "appended {} {lines} to the rollout ({}){history}",
                names.len(),
                names.join(", ")
            )
        }
        Err(err) => format!("what was appended to the rollout cannot be read back ({err})"),
    }
}

/// The names of the lines after byte `start`: an event's type (`turn_started`, `error`, ...)
/// or a line's type (`compacted`, `response_item`, ...).
async fn read_appended(path: &Path, start: u64) -> io::Result<Vec<String>> {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let mut file = tokio::fs::File::open(path).await?;
    let end = file.metadata().await?.len();
    if end <= start {
        return Ok(Vec::new());
    }
    file.seek(io::SeekFrom::Start(start)).await?;
    let mut bytes = Vec::new();
    file.take(APPENDED_READ_LIMIT).read_to_end(&mut bytes).await?;
    let mut names: Vec<String> = bytes
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(line) => {
                let kind = line.get("type").and_then(serde_json::Value::as_str).unwrap_or("?");
                let event = line.pointer("/payload/type").and_then(serde_json::Value::as_str);
                match (kind, event) {
                    ("event_msg", Some(event)) => event.to_owned(),
                    _ => kind.to_owned(),
                }
            }
            Err(_) => "an unreadable line".to_owned(),
        })
        .collect();
    if end - start > APPENDED_READ_LIMIT {
        names.push(format!("{} more bytes", end - start - APPENDED_READ_LIMIT));
    }
    Ok(names)
}
