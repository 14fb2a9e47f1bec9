//! What the commands do with a damaged rollout, a rollout another process writes, and a rollout
//! that cannot be written.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use compactor_engine::rebuild_legacy_compacted;
use compactor_protocol::ContextualMarkers;
use compactor_rollout_trace::{Replay, parse_rollout};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::common::{DEADLINE, compactor, run};

/// Runs the demo into `dir/out` and returns its rollout.
pub(crate) async fn demo_rollout(dir: &Path) -> PathBuf {
    let result = run(dir, &["demo", "--turns", "12", "--out", "out"]).await;
    assert_eq!(result.code, 0, "stdout:\n{}\nstderr:\n{}", result.stdout, result.stderr);
    dir.join("out/rollout.jsonl")
}

/// The rollout's lines, each with its newline.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn line_type(line: &[u8]) -> String {
    serde_json::from_slice::<Value>(line).unwrap()["type"].as_str().unwrap().to_owned()
}

/// `line` (with its newline) made into something that is not JSON: its last bytes cut off.
fn damage(line: &[u8]) -> Vec<u8> {
    let mut damaged = line[..line.len() - 6].to_vec();
    damaged.push(b'\n');
    damaged
}

/// The history `resume --json` prints for `rollout`, and the whole JSON object.
async fn resume_json(dir: &Path, rollout: &Path) -> (Vec<Value>, Value, String) {
    let result = run(dir, &["resume", "--json", rollout.to_str().unwrap()]).await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    let value: Value = serde_json::from_str(&result.stdout).unwrap();
    (value["history"].as_array().unwrap().clone(), value, result.stderr)
}

/// The history of the rollout `bytes` as the library reconstructs it, as JSON.
fn reconstructed(bytes: &[u8]) -> Vec<Value> {
    let session = Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
        .reconstruct_contents(parse_rollout(bytes));
    session.history.iter().map(|item| serde_json::to_value(item).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_middle_line_is_skipped_counted_named_and_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let (before, _, _) = resume_json(dir.path(), &rollout).await;

    // The first item recorded after the last compaction.
    let mut all = lines(&std::fs::read(&rollout).unwrap());
    let last_compaction = all.iter().rposition(|line| line_type(line) == "compacted").unwrap();
    let index = last_compaction
        + 1
        + all[last_compaction + 1..]
            .iter()
            .position(|line| line_type(line) == "response_item")
            .unwrap();
    let item = serde_json::from_slice::<Value>(&all[index]).unwrap()["payload"].clone();
    let offset: usize = all[..index].iter().map(Vec::len).sum();
    all[index] = damage(&all[index]);
    let damaged = all.concat();
    std::fs::write(&rollout, &damaged).unwrap();

    let (history, value, stderr) = resume_json(dir.path(), &rollout).await;
    let mut expected = before.clone();
    expected.remove(before.iter().position(|kept| *kept == item).unwrap());
    assert_eq!(history, expected);
    assert_eq!(value["skipped_lines"], Value::from(1));
    let warning = format!("rollout line {} (byte {offset}) is damaged and was skipped", index + 1);
    assert!(stderr.contains(&warning), "{stderr}");

    let text = run(dir.path(), &["resume", "out/rollout.jsonl"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.ends_with(", 1 damaged line skipped\n"), "{}", text.stdout);

    let strict = run(dir.path(), &["resume", "--strict", "out/rollout.jsonl"]).await;
    assert_eq!(strict.code, 4, "{}", strict.stderr);
    assert!(
        strict.stderr.contains(&format!("out/rollout.jsonl:{}: damaged rollout line", index + 1)),
        "{}",
        strict.stderr
    );

    // Compacting appends after the damage and leaves it as it is.
    let compact = run(dir.path(), &["compact", "out/rollout.jsonl"]).await;
    assert_eq!(compact.code, 0, "stdout:\n{}\nstderr:\n{}", compact.stdout, compact.stderr);
    assert!(compact.stderr.contains(&format!("warning: {warning}")), "{}", compact.stderr);
    let after = std::fs::read(&rollout).unwrap();
    assert!(after.len() > damaged.len());
    assert_eq!(after[..damaged.len()], damaged[..], "a damaged middle line is never rewritten");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_compacted_line_falls_back_to_the_previous_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let (before, value_before, _) = resume_json(dir.path(), &rollout).await;

    let mut all = lines(&std::fs::read(&rollout).unwrap());
    let compactions: Vec<usize> =
        (0..all.len()).filter(|&index| line_type(&all[index]) == "compacted").collect();
    assert!(compactions.len() >= 2, "the demo compacts at least twice");
    let (newest, previous) =
        (compactions[compactions.len() - 1], compactions[compactions.len() - 2]);
    let previous_base =
        serde_json::from_slice::<Value>(&all[previous]).unwrap()["payload"]["replacement_history"]
            .as_array()
            .unwrap()
            .clone();
    // What the rollout holds without the newest compaction's line.
    let without: Vec<u8> =
        all.iter().enumerate().filter(|(i, _)| *i != newest).flat_map(|(_, l)| l.clone()).collect();
    let expected = reconstructed(&without);
    assert!(expected.starts_with(&previous_base), "replayed from the previous compaction");
    assert_ne!(expected, before);
    all[newest] = damage(&all[newest]);
    std::fs::write(&rollout, all.concat()).unwrap();

    let (history, value, stderr) = resume_json(dir.path(), &rollout).await;
    assert_eq!(history, expected);
    assert_eq!(value["skipped_lines"], Value::from(1));
    assert_eq!(value["window_generation"], value_before["window_generation"]);
    assert!(
        stderr.contains(&format!("rollout line {} (byte ", newest + 1))
            && stderr.contains(
                "it held the newest compaction, which was lost: the session resumes from the \
                 compaction before it"
            ),
        "{stderr}"
    );
}

/// A model endpoint that accepts connections and never answers.
pub(crate) async fn silent_endpoint() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// Waits until `path` names `pid`.
pub(crate) async fn wait_for_lock(path: &Path, pid: u32) {
    let wait = async {
        while std::fs::read_to_string(path).ok().map(|text| text.trim().to_owned())
            != Some(pid.to_string())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("the first compact never took the lock");
}

/// A live session on the demo rollout in `dir`: `compact` against a model that never answers,
/// once it holds the writer lock at `lock`. Returns the process, its pid and the endpoint's task.
pub(crate) async fn hold_rollout(
    dir: &Path,
    lock: &Path,
) -> (tokio::process::Child, u32, tokio::task::JoinHandle<()>) {
    let (url, endpoint) = silent_endpoint().await;
    let args = [
        "compact",
        "out/rollout.jsonl",
        "--base-url",
        &url,
        "--api-key-env",
        "",
        "--transport",
        "http",
    ];
    let holder = compactor(dir, &args).spawn().unwrap();
    let holder_pid = holder.id().unwrap();
    wait_for_lock(lock, holder_pid).await;
    (holder, holder_pid, endpoint)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_writer_at_a_time_readers_always_and_a_dead_writers_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let lock = dir.path().join("out/rollout.jsonl.lock");
    let compactions =
        |bytes: &[u8]| lines(bytes).iter().filter(|l| line_type(l) == "compacted").count();
    let before = compactions(&std::fs::read(&rollout).unwrap());

    // A live session: `compact` against a model that never answers holds the rollout.
    let (mut holder, holder_pid, endpoint) = hold_rollout(dir.path(), &lock).await;

    let second = run(dir.path(), &["compact", "out/rollout.jsonl"]).await;
    assert_eq!(second.code, 9, "stdout:\n{}\nstderr:\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains(&format!("out/rollout.jsonl is in use by pid {holder_pid}")),
        "{}",
        second.stderr
    );
    let reader = run(dir.path(), &["resume", "out/rollout.jsonl"]).await;
    assert_eq!(reader.code, 0, "resume takes no lock: {}", reader.stderr);

    // The holder dies without releasing: its pid stays in the lock file.
    holder.start_kill().unwrap();
    tokio::time::timeout(DEADLINE, holder.wait()).await.unwrap().unwrap();
    endpoint.abort();
    assert_eq!(std::fs::read_to_string(&lock).unwrap().trim(), holder_pid.to_string());

    let third = run(dir.path(), &["compact", "out/rollout.jsonl"]).await;
    assert_eq!(third.code, 0, "stdout:\n{}\nstderr:\n{}", third.stdout, third.stderr);
    assert!(
        third.stderr.contains(&format!("left by pid {holder_pid}, which is gone")),
        "{}",
        third.stderr
    );
    assert_eq!(compactions(&std::fs::read(&rollout).unwrap()), before + 1);
    assert!(!lock.exists(), "a writer that ends removes its lock file");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_size_limit_fails_the_compaction_with_exit_8_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rollout = demo_rollout(dir.path()).await;
    let (before, value_before, _) = resume_json(dir.path(), &rollout).await;
    let original = std::fs::read(&rollout).unwrap();

    // Room for the compaction turn's first event line, not for its `compacted` line.
    // `ulimit -f` counts 512-byte blocks (POSIX).
    let blocks = (original.len() + 300).div_ceil(512);
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_compactor"))
        .args(["compact", "out/rollout.jsonl"])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(DEADLINE, command.output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "rollout write to {} failed: File too large (os error 27)",
            dir.path().join("out/rollout.jsonl").display()
        )) || stderr
            .contains("rollout write to out/rollout.jsonl failed: File too large (os error 27)"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was installed"), "{stderr}");

    // Nothing installed: the file gained at most whole lines that are not a compaction, and
    // resumes to the same history.
    let after = std::fs::read(&rollout).unwrap();
    assert_eq!(after[..original.len()], original[..]);
    let contents = parse_rollout(&after);
    assert!(contents.report.is_clean(), "{:?}", contents.report);
    // What failed was the `compacted` line: the turn's first line, `turn_started`, got in.
    let added = lines(&after[original.len()..]);
    assert_eq!(added.len(), 1, "{added:?}");
    let added: Value = serde_json::from_slice(&added[0]).unwrap();
    assert_eq!(added["payload"]["type"], "turn_started");
    let (history, value, _) = resume_json(dir.path(), &rollout).await;
    assert_eq!(history, before);
    assert_eq!(value["window_generation"], value_before["window_generation"]);
    assert!(!dir.path().join("out/rollout.jsonl.lock").exists());
}
