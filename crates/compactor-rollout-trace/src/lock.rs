//! One writer per rollout: the sidecar lock file `<rollout>.lock` (see D52 in docs/decisions.md).
//!
//! A recorder holds an advisory lock (`File::try_lock`, `flock` on Linux) on the sidecar for as
//! long as it may append, and writes its process id into it so that a second writer can say who
//! holds the rollout. The kernel drops the lock when the holder's process ends, however it ends,
//! so a lock that can be taken is never held: a file that still names another process is what a
//! crashed writer left behind, and is taken over with a warning. Readers never look at it.
//!
//! Releasing removes the file while still holding the lock. A writer that opened the file just
//! before it was removed may then lock an unlinked file; it notices that the path no longer leads
//! to what it locked and starts again.

use std::fs::{File, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::files::{explain_open_error, private_file_options};

/// Attempts before giving up on a lock file that keeps being replaced under us.
const ATTEMPTS: usize = 8;

/// The longest pid line read from a lock file.
const PID_BYTES: u64 = 32;

/// The lock file of the rollout at `rollout`: its name with `.lock` appended.
pub(crate) fn lock_path(rollout: &Path) -> PathBuf {
    let mut name = rollout.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A held writer lock; dropping it unlocks without removing the file, [`WriterLock::release`]
/// removes it too.
#[derive(Debug)]
pub(crate) struct WriterLock {
    file: File,
    path: PathBuf,
    /// The process that held the lock before and left its file behind, when it was not this one.
    taken_over_from: Option<u32>,
}

impl WriterLock {
    /// Takes the lock of the rollout at `rollout` without waiting. Blocking: call it on the
    /// blocking pool.
    ///
    /// # Errors
    ///
    /// [`Error::InUse`] when another writer holds it, [`Error::Io`] when the lock file cannot be
    /// created, locked or written.
    pub(crate) fn acquire(rollout: &Path) -> Result<Self> {
        let path = lock_path(rollout);
        let io_error = |err| Error::io(&path, err);
        for _ in 0..ATTEMPTS {
            // Private, and never through a link planted where the lock file goes (D64).
            let mut file = private_file_options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|err| io_error(explain_open_error(&path, err)))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::InUse {
                        path: rollout.to_path_buf(),
                        pid: read_pid(&mut file).ok().flatten(),
                    });
                }
                Err(TryLockError::Error(err)) => return Err(io_error(err)),
            }
            if !still_at(&file, &path).map_err(io_error)? {
                continue;
            }
            let previous = read_pid(&mut file).ok().flatten();
            write_pid(&mut file).map_err(io_error)?;
            let taken_over_from = previous.filter(|&pid| pid != std::process::id());
            if let Some(pid) = taken_over_from {
                tracing::warn!(
                    path = %rollout.display(),
                    pid,
                    "took over the writer lock of a rollout from a process that no longer holds it"
                );
            }
            return Ok(Self { file, path, taken_over_from });
        }
        Err(io_error(io::Error::other("the lock file kept being replaced while it was locked")))
    }

    /// The process whose stale lock this one took over.
    pub(crate) fn taken_over_from(&self) -> Option<u32> {
        self.taken_over_from
    }

    /// Removes the lock file, then unlocks. Blocking: call it on the blocking pool.
    pub(crate) fn release(self) {
        if let Err(err) = std::fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove a rollout lock file");
        }
        drop(self.file);
    }
}

/// The sentence a warning gives for a stale lock taken over from `pid`.
pub(crate) fn takeover_message(rollout: &Path, pid: u32) -> String {
    let state = if Path::new("/proc").join(pid.to_string()).exists() {
        "which no longer holds it"
    } else {
        "which is gone"
    };
    format!(
        "took over the stale writer lock of rollout {} left by pid {pid}, {state}",
        rollout.display()
    )
}

/// Whether `path` itself (not a link there) still names the file `file` is open on.
fn still_at(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(named) => Ok(named.dev() == open.dev() && named.ino() == open.ino()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// The pid a lock file names, if it names one.
fn read_pid(file: &mut File) -> io::Result<Option<u32>> {
    file.seek(SeekFrom::Start(0))?;
    let mut text = String::new();
    file.take(PID_BYTES).read_to_string(&mut text)?;
    Ok(text.trim().parse().ok())
}

fn write_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()
}

#[cfg(test)]
mod tests;
