//! How Compactor creates the files it writes (D64 in docs/decisions.md): files with mode 0600,
//! directories with mode 0700, and never through a symbolic link at the final path component.
//!
//! A file is opened with `O_NOFOLLOW`, so a link planted where a rollout, a summary or a trace
//! goes makes the open fail instead of writing (or truncating, or appending to) whatever the
//! link points at; `create_new` opens refuse any existing path, links included. The error then
//! says that the path is a link. Links in the directories above the final component are followed:
//! they are the user's own layout.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Open options that create a file with mode 0600 and refuse a symbolic link at `path`'s final
/// component; the caller adds the access mode (`append`, `write`, `create_new`, ...). An existing
/// file keeps its mode.
pub fn private_file_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Creates `dir` and its missing parents with mode 0700. An existing final component must be a
/// directory, not a symbolic link to one.
///
/// # Errors
///
/// The OS error, or [`refused_link`]'s when `dir` is a symbolic link.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.file_type().is_symlink() => return Err(refused_link(dir)),
        Ok(_) | Err(_) => {}
    }
    DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// `err`, from opening or creating `path`, explained when `path` is a symbolic link.
pub fn explain_open_error(path: &Path, err: io::Error) -> io::Error {
    let is_link = err.raw_os_error() == Some(libc::ELOOP)
        || (err.kind() == io::ErrorKind::AlreadyExists
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()));
    if is_link { refused_link(path) } else { err }
}

/// The error of a symbolic link where Compactor was to write.
pub fn refused_link(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is a symbolic link; Compactor does not write through links",
        path.display()
    ))
}

#[cfg(test)]
mod tests;
