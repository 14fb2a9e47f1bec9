//! Reading a saved session for `resume` and `compact`: a damaged line in the middle of the file
//! is skipped with a warning naming it (an error under `--strict`), and a torn last line is
//! ignored with a warning.

use std::io;
use std::path::{Path, PathBuf};

use clap::Args;
use compactor_engine::rebuild_legacy_compacted;
use compactor_protocol::ContextualMarkers;
use compactor_rollout_trace::{DamagedLines, ReconstructedSession, Replay, read_rollout};

use crate::error::{CliError, Exit};

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
}

impl SavedSession {
    /// The thread id, when the rollout records one.
    pub(crate) fn thread_id(&self) -> Option<&str> {
        self.session.session_meta.as_ref().map(|meta| meta.id.as_str())
    }

    /// The base instructions the session was written with.
    pub(crate) fn base_instructions(&self) -> &str {
        self.session
            .session_meta
            .as_ref()
            .and_then(|meta| meta.base_instructions.as_deref())
            .unwrap_or_default()
    }
}

/// Reads the rollout at `path`; what it skipped is in the session's `warnings`.
pub(crate) async fn read(path: &Path, damaged: DamagedLines) -> Result<SavedSession, CliError> {
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
    let session = Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
        .reconstruct_contents(contents);
    Ok(SavedSession { path: path.to_path_buf(), session })
}
