//! Reading a rollout: every complete line, with a report of what could not be read.
//!
//! A line exists only once its `\n` is written (D21), so an unterminated last fragment
//! (a crash in the middle of a write) is ignored and reported, never a failure. A complete line
//! that cannot be read is damaged: not JSON, not a rollout line, or a line of a known type whose
//! needed fields cannot be read ([`RolloutLine::parse`] is the one rule for all three). It is
//! skipped and reported with its 1-based line number and byte offset: resuming succeeds and says
//! what it skipped, unless the caller asks for [`DamagedLines::Fail`] (see D50 in
//! docs/decisions.md).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use compactor_protocol::{LineDamage, RolloutItem, RolloutLine};

use crate::error::{Error, Result};

/// Corrupt lines logged one by one before the reader only counts them.
const LOGGED_CORRUPT_LINES: usize = 8;

/// The lines of a rollout and what reading them found.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutContents {
    /// Every complete line that parsed, in file order. Lines of unknown type are kept as
    /// [`RolloutItem::Unknown`].
    pub lines: Vec<RolloutLine>,
    /// What was skipped or ignored.
    pub report: ReadReport,
}

/// What reading a rollout skipped or ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Complete (newline-terminated) lines in the file, blank and corrupt ones included.
    pub complete_lines: usize,
    /// Lines holding only whitespace; skipped silently.
    pub blank_lines: usize,
    /// Lines of a type this version does not know; kept, and ignored by reconstruction.
    pub unknown_lines: usize,
    /// Complete lines that are not rollout lines; skipped.
    pub corrupt_lines: Vec<CorruptLine>,
    /// The unterminated fragment after the last `\n`, when there is one; ignored.
    pub torn_tail: Option<TornTail>,
}

/// A complete line that could not be read as a rollout line: a damaged line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptLine {
    /// 1-based line number.
    pub line_number: usize,
    /// Byte offset of the line's start.
    pub byte_offset: u64,
    /// Why it could not be read (the parser's message; it quotes no line content).
    pub error: String,
    /// What is wrong with it.
    pub damage: LineDamage,
    /// The line's `type`, when it could be read or recognized (a damaged `compacted` line means
    /// a lost compaction).
    pub kind: Option<String>,
    /// Where it sat among the lines that were read: the number of [`RolloutContents::lines`]
    /// before it.
    pub position: usize,
}

/// What a reader does with a damaged line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DamagedLines {
    /// Skip it and report it (the default): the session resumes without it.
    #[default]
    Skip,
    /// Fail with [`Error::Damaged`], naming the first one.
    Fail,
}

/// An unterminated last fragment: a write that never finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornTail {
    /// 1-based number the line would have had.
    pub line_number: usize,
    /// Byte offset of the fragment's start; the file's valid length.
    pub byte_offset: u64,
    /// The fragment's length in bytes.
    pub len: u64,
}

impl ReadReport {
    /// Whether nothing was skipped or ignored (unknown and blank lines aside).
    pub fn is_clean(&self) -> bool {
        self.corrupt_lines.is_empty() && self.torn_tail.is_none()
    }

    /// One human-readable sentence per skipped or ignored part, for a harness's warning event.
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.corrupt_lines.iter().map(CorruptLine::warning).collect();
        if let Some(tail) = &self.torn_tail {
            out.push(tail.warning());
        }
        out
    }
}

impl CorruptLine {
    /// The warning for this line: its number, byte offset and what is wrong with it.
    pub fn warning(&self) -> String {
        format!(
            "rollout line {} (byte {}) is damaged and was skipped: {}",
            self.line_number, self.byte_offset, self.error
        )
    }
}

impl TornTail {
    /// The warning for an ignored torn last line.
    pub fn warning(&self) -> String {
        format!(
            "rollout ends with an unterminated line {} ({} bytes at byte {}), ignored",
            self.line_number, self.len, self.byte_offset
        )
    }
}

impl RolloutContents {
    /// `Err` naming the first damaged line of the rollout at `path` when `policy` is
    /// [`DamagedLines::Fail`] and there is one.
    ///
    /// # Errors
    ///
    /// [`Error::Damaged`].
    pub fn check(&self, path: &Path, policy: DamagedLines) -> Result<()> {
        match (policy, self.report.corrupt_lines.first()) {
            (DamagedLines::Fail, Some(first)) => Err(Error::Damaged {
                path: path.to_path_buf(),
                line_number: first.line_number,
                byte_offset: first.byte_offset,
                message: first.error.clone(),
                count: self.report.corrupt_lines.len(),
            }),
            (DamagedLines::Fail | DamagedLines::Skip, _) => Ok(()),
        }
    }
}

/// Parses the bytes of a rollout file. Never fails and never panics: what cannot be read is
/// reported in [`RolloutContents::report`].
///
/// # Examples
///
/// ```
/// use compactor_rollout_trace::parse_rollout;
///
/// let file = b"{\"timestamp\":\"2026-05-15T10:00:00.000Z\",\"type\":\"event_msg\",\"payload\":{\"type\":\"context_compacted\"}}\n{\"timest";
/// let contents = parse_rollout(file);
/// assert_eq!(contents.lines.len(), 1);
/// assert!(contents.report.torn_tail.is_some());
/// ```
pub fn parse_rollout(bytes: &[u8]) -> RolloutContents {
    // Sized once: a rollout of many lines would otherwise leave every smaller buffer behind.
    let mut parser = LineParser::with_capacity(memchr::memchr_iter(b'\n', bytes).count());
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let Some(newline) = memchr::memchr(b'\n', rest) else {
            parser.torn(offset as u64, rest.len() as u64);
            break;
        };
        parser.line(&rest[..newline], offset as u64);
        offset += newline + 1;
    }
    parser.finish()
}

/// Bytes read from a rollout file at a time.
const READ_BUFFER: usize = 64 * 1024;

/// Reads and parses the rollout at `path` on the blocking pool, one line at a time: memory holds
/// the parsed lines and the longest line, never the whole file (D68 in docs/decisions.md). It
/// takes no lock: a reader may read a rollout while its writer appends.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read or is not a regular file (a device or a pipe may
/// never end); damaged content is never an error (see [`parse_rollout`] and
/// [`read_rollout_with`]).
///
/// # Cancel safety
///
/// Cancel safe: dropping the future abandons the read, which has no side effect.
#[tracing::instrument(skip_all, fields(path = %path.display()))]
pub async fn read_rollout(path: &Path) -> Result<RolloutContents> {
    let owned: PathBuf = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&owned).map_err(|err| Error::io(&owned, err))?;
        // A device or a pipe may never end (`/dev/zero` is one endless line): only a regular
        // file is read, so a read ends and holds at most the file's longest line.
        let metadata = file.metadata().map_err(|err| Error::io(&owned, err))?;
        if !metadata.is_file() {
            let err = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file: a rollout is read only from a regular file",
            );
            return Err(Error::io(&owned, err));
        }
        read_lines(std::io::BufReader::with_capacity(READ_BUFFER, file))
            .map_err(|err| Error::io(&owned, err))
    })
    .await
    .map_err(|_| Error::TaskFailed { path: path.to_path_buf() })?
}

/// [`read_rollout`], failing on a damaged line when `damaged` is [`DamagedLines::Fail`].
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, [`Error::Damaged`] for the first damaged line
/// under [`DamagedLines::Fail`].
///
/// # Cancel safety
///
/// Cancel safe, as [`read_rollout`].
pub async fn read_rollout_with(path: &Path, damaged: DamagedLines) -> Result<RolloutContents> {
    let contents = read_rollout(path).await?;
    contents.check(path, damaged)?;
    Ok(contents)
}

/// Parses the lines `reader` yields, holding one line at a time.
fn read_lines(mut reader: impl BufRead) -> std::io::Result<RolloutContents> {
    let mut parser = LineParser::with_capacity(0);
    let mut line = Vec::new();
    let mut offset = 0u64;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        match line.split_last() {
            Some((b'\n', content)) => parser.line(content, offset),
            Some(_) | None => parser.torn(offset, read as u64),
        }
        offset += read as u64;
        if line.capacity() > 4 * READ_BUFFER && read < READ_BUFFER {
            // A long line is behind: its buffer goes back.
            line.shrink_to(READ_BUFFER);
        }
    }
    Ok(parser.finish())
}

/// The state of a read: the lines so far and what was skipped.
struct LineParser {
    lines: Vec<RolloutLine>,
    report: ReadReport,
    line_number: usize,
}

impl LineParser {
    fn with_capacity(lines: usize) -> Self {
        Self { lines: Vec::with_capacity(lines), report: ReadReport::default(), line_number: 0 }
    }

    /// One complete line (without its `\n`) that starts at byte `offset`.
    fn line(&mut self, line: &[u8], offset: u64) {
        self.line_number += 1;
        let line_number = self.line_number;
        let report = &mut self.report;
        report.complete_lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            report.blank_lines += 1;
            return;
        }
        match RolloutLine::parse(line) {
            Ok(parsed) => {
                if matches!(parsed.item, RolloutItem::Unknown { .. }) {
                    report.unknown_lines += 1;
                }
                self.lines.push(parsed);
            }
            Err(err) => {
                if report.corrupt_lines.len() < LOGGED_CORRUPT_LINES {
                    tracing::warn!(
                        line_number,
                        byte_offset = offset,
                        damage = ?err.damage,
                        kind = err.kind.as_deref(),
                        error = %err,
                        "skipping a damaged rollout line"
                    );
                }
                report.corrupt_lines.push(CorruptLine {
                    line_number,
                    byte_offset: offset,
                    error: err.message,
                    damage: err.damage,
                    kind: err.kind,
                    position: self.lines.len(),
                });
            }
        }
    }

    /// The unterminated fragment of `len` bytes at the end, starting at byte `offset`.
    fn torn(&mut self, offset: u64, len: u64) {
        let line_number = self.line_number + 1;
        self.report.torn_tail = Some(TornTail { line_number, byte_offset: offset, len });
        tracing::warn!(
            line_number,
            byte_offset = offset,
            len,
            "ignoring unterminated last rollout line"
        );
    }

    fn finish(self) -> RolloutContents {
        if self.report.corrupt_lines.len() > LOGGED_CORRUPT_LINES {
            tracing::warn!(
                count = self.report.corrupt_lines.len(),
                "skipped damaged rollout lines"
            );
        }
        RolloutContents { lines: self.lines, report: self.report }
    }
}

#[cfg(test)]
mod tests;
