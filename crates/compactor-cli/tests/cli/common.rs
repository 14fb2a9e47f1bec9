//! Running the binary with a deadline, a served model in a child process, and redaction of
//! what varies between runs (paths, ports, ids, durations).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The longest any one command may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(90);

/// A finished run.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// A command for the binary, run in `cwd`, with no input and no inherited log settings.
pub(crate) fn compactor(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_compactor"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env_remove("COMPACTOR_ROLLOUT_TRACE_ROOT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs the binary in `cwd` to its end, within the deadline.
pub(crate) async fn run(cwd: &Path, args: &[&str]) -> Run {
    let output = tokio::time::timeout(DEADLINE, compactor(cwd, args).output())
        .await
        .unwrap_or_else(|_| panic!("compactor {args:?} did not finish within {DEADLINE:?}"))
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `compactor serve` in a child process.
pub(crate) struct Served {
    pub(crate) child: Child,
    pub(crate) base_url: String,
}

impl Served {
    /// Starts `compactor serve` and reads its base URL (the first stdout line).
    pub(crate) async fn start(cwd: &Path) -> Served {
        Self::start_with(cwd, &[]).await
    }

    /// [`Served::start`] with more flags.
    pub(crate) async fn start_with(cwd: &Path, flags: &[&str]) -> Served {
        let mut args = vec!["serve", "--port", "0"];
        args.extend_from_slice(flags);
        let mut child = compactor(cwd, &args).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base_url = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("serve printed no base URL in time")
            .unwrap()
            .expect("serve closed stdout before printing its base URL");
        assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");
        assert!(base_url.ends_with("/v1"), "{base_url}");
        Served { child, base_url }
    }

    /// Stops it with SIGTERM and returns its exit code.
    pub(crate) async fn stop(mut self) -> i32 {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("serve did not stop within 30 s of SIGTERM")
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

/// Replaces what varies between runs: `dir`, loopback ports, UUIDs and durations.
pub(crate) fn redact(text: &str, dir: &Path) -> String {
    let text = text.replace(env!("CARGO_BIN_EXE_compactor"), "compactor");
    let text = text.replace(&dir.display().to_string(), "[DIR]");
    let text = replace_after(&text, "127.0.0.1:", |c| c.is_ascii_digit(), "[PORT]");
    let text = redact_uuids(&text);
    redact_durations(&text)
}

/// Replaces the run of characters matching `keep` after each `marker`.
fn replace_after(text: &str, marker: &str, keep: impl Fn(char) -> bool, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(marker) {
        let (head, tail) = rest.split_at(at + marker.len());
        out.push_str(head);
        let end = tail.find(|c: char| !keep(c)).unwrap_or(tail.len());
        if end > 0 {
            out.push_str(with);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_uuids(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let shape = [8, 4, 4, 4, 12];
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < chars.len() {
        let mut j = i;
        for (group, len) in shape.iter().enumerate() {
            for _ in 0..*len {
                if !chars.get(j).is_some_and(char::is_ascii_hexdigit) {
                    out.push(chars[i]);
                    i += 1;
                    continue 'outer;
                }
                j += 1;
            }
            if group < 4 {
                if chars.get(j) != Some(&'-') {
                    out.push(chars[i]);
                    i += 1;
                    continue 'outer;
                }
                j += 1;
            }
        }
        out.push_str("[UUID]");
        i = j;
    }
    out
}

/// `12 ms` and `2.4 s` become `[DURATION]`.
fn redact_durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let words: Vec<&str> = line.split(' ').collect();
        let mut k = 0;
        while k < words.len() {
            let number = words[k];
            let unit = words.get(k + 1).map(|unit| unit.trim_end_matches([',', ')', ']']));
            let is_number = !number.is_empty()
                && number.chars().all(|c| c.is_ascii_digit() || c == '.')
                && number.starts_with(|c: char| c.is_ascii_digit());
            if k > 0 {
                out.push(' ');
            }
            if is_number && matches!(unit, Some("ms" | "s")) {
                let tail = &words[k + 1][unit.map_or(0, str::len)..];
                out.push_str("[DURATION]");
                out.push_str(tail);
                k += 2;
            } else {
                out.push_str(number);
                k += 1;
            }
        }
    }
    out
}

#[test]
fn redaction() {
    let dir = Path::new("/tmp/x");
    assert_eq!(
        redact(
            "at http://127.0.0.1:4242/v1 in /tmp/x/out, 12 ms, 2.4 s) thread 3e1bf621-71ab-4d83-8b3e-08ba601d8ddc; 5 items",
            dir
        ),
        "at http://127.0.0.1:[PORT]/v1 in [DIR]/out, [DURATION], [DURATION]) thread [UUID]; 5 items"
    );
}
