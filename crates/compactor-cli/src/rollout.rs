//! Reading a saved session for `resume` and `compact`: strict about damage in the middle of the
//! file (an error naming the first corrupt line), tolerant of a torn last line (a warning).

use std::io;
use std::path::{Path, PathBuf};

use compactor_engine::rebuild_legacy_compacted;
use compactor_rollout_trace::{
    ReconstructedSession, read_rollout, reconstruct_history_from_rollout,
};

use crate::error::{CliError, Exit};

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

/// Reads the rollout at `path`.
pub(crate) async fn read(path: &Path) -> Result<SavedSession, CliError> {
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
    if let Some(first) = report.corrupt_lines.first() {
        let more = match report.corrupt_lines.len() {
            1 => String::new(),
            n => format!(" ({n} corrupt lines in all)"),
        };
        return Err(CliError::msg(
            Exit::BadRollout,
            format_args!(
                "{}:{}: not a rollout line: {}{more}",
                path.display(),
                first.line_number,
                first.error.replace("at line 1 column ", "at column ")
            ),
        ));
    }
    if let Some(tail) = &report.torn_tail {
        eprintln!(
            "warning: {}:{}: ignoring an unterminated last line ({} bytes): a write that never finished",
            path.display(),
            tail.line_number,
            tail.len
        );
    }
    if contents.lines.is_empty() {
        return Err(CliError::msg(
            Exit::BadRollout,
            format_args!("{} holds no rollout lines", path.display()),
        ));
    }
    let session = reconstruct_history_from_rollout(&contents.lines, &rebuild_legacy_compacted);
    Ok(SavedSession { path: path.to_path_buf(), session })
}
