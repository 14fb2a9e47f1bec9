//! Files only where the user asked: everything a command creates is 0600 (directories 0700),
//! and a symbolic link planted where the rollout, the summary, the analytics file or the trace
//! bundles go makes the command fail with a clear error, its target untouched.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::common::{DEADLINE, compactor, run};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

/// A file a link points at, with what it must still hold afterwards.
fn precious(dir: &Path) -> std::path::PathBuf {
    let target = dir.join("precious.txt");
    std::fs::write(&target, "keep me").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    target
}

#[track_caller]
fn assert_untouched(target: &Path) {
    assert_eq!(std::fs::read_to_string(target).unwrap(), "keep me");
    assert_eq!(mode(target), 0o644);
}

/// Checks every file under `dir` is 0600 and every directory 0700.
fn assert_private(dir: &Path) -> usize {
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files += assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_a_demo_writes_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let result = run(dir.path(), &["demo", "--turns", "2", "--out", out.to_str().unwrap()]).await;
    assert_eq!(result.code, 0, "{}", result.stderr);
    let files = assert_private(&out);
    assert!(files >= 6, "rollout, summary, analytics and a trace bundle: {files} files");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_at_any_demo_output_fails_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["rollout.jsonl", "summary.json", "analytics.jsonl", "traces"] {
        let out = dir.path().join(format!("out-{name}"));
        std::fs::create_dir(&out).unwrap();
        let target = precious(dir.path());
        std::os::unix::fs::symlink(&target, out.join(name)).unwrap();
        let result =
            run(dir.path(), &["demo", "--turns", "2", "--out", out.to_str().unwrap()]).await;
        assert_ne!(result.code, 0, "{name}: {}", result.stdout);
        assert!(result.stderr.contains("is a symbolic link"), "{name}: {}", result.stderr);
        assert_untouched(&target);
        // Nothing else was written either.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "{name}");
    }
}

/// A small rollout to compact.
fn rollout(path: &Path) {
    let lines = [
        r#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"session_meta","payload":{"id":"thread-files"}}"#,
        r#"{"timestamp":"2026-05-15T10:00:00.001Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hello"}]}}"#,
    ];
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_at_a_compact_output_fails_the_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();

    // The rollout itself: it is read through the link, but never appended through it.
    let real = root.join("real.jsonl");
    rollout(&real);
    let before = std::fs::read(&real).unwrap();
    let link = root.join("link.jsonl");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let result = run(root, &["compact", link.to_str().unwrap()]).await;
    assert_ne!(result.code, 0, "{}", result.stdout);
    assert!(result.stderr.contains("is a symbolic link"), "{}", result.stderr);
    assert_eq!(std::fs::read(&real).unwrap(), before);

    // The analytics file of the config.
    let path = root.join("rollout.jsonl");
    rollout(&path);
    let before = std::fs::read(&path).unwrap();
    let target = precious(root);
    std::os::unix::fs::symlink(&target, root.join("analytics.jsonl")).unwrap();
    std::fs::write(root.join("analytics.toml"), "[analytics]\njsonl = \"analytics.jsonl\"\n")
        .unwrap();
    let result =
        run(root, &["compact", path.to_str().unwrap(), "--config", "analytics.toml"]).await;
    assert_ne!(result.code, 0, "{}", result.stdout);
    assert!(result.stderr.contains("is a symbolic link"), "{}", result.stderr);
    assert_untouched(&target);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The trace root.
    let elsewhere = root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let traces = root.join("traces");
    std::os::unix::fs::symlink(&elsewhere, &traces).unwrap();
    let mut command = compactor(root, &["compact", path.to_str().unwrap()]);
    command.env("COMPACTOR_ROLLOUT_TRACE_ROOT", &traces);
    let output = tokio::time::timeout(DEADLINE, command.output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
