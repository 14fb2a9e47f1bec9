//! Child processes of this test binary: a test that must run in a process of its own (to be
//! killed, or to run under a file-size limit) is this binary started again with `--exact` and the
//! child test's name, and told what to do through environment variables.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::process::Command;

/// This test binary.
pub(crate) fn this_binary() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// The libtest arguments that run the test `name` alone, with its output shown.
pub(crate) fn test_args(name: &str) -> [&str; 4] {
    ["--exact", name, "--nocapture", "--test-threads=1"]
}

/// This binary, running only the test `name`; stdout and stderr piped, killed on drop.
pub(crate) fn child(name: &str) -> Command {
    let mut command = Command::new(this_binary());
    command.args(test_args(name));
    quiet(&mut command);
    command
}

/// This binary, running only the test `name` under `ulimit -f blocks` (512-byte blocks, POSIX),
/// with `SIGXFSZ` ignored so that a write past the limit fails with `EFBIG` instead of killing it.
pub(crate) fn child_with_file_size_limit(name: &str, blocks: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""))
        .arg(this_binary())
        .args(test_args(name));
    quiet(&mut command);
    command
}

fn quiet(command: &mut Command) {
    command
        .env_remove("RUST_LOG")
        .env_remove("COMPACTOR_CRASH_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
}
