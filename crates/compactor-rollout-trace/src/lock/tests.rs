//! Tests of the writer lock: one holder, the holder's pid, stale locks taken over.

use std::os::unix::fs::PermissionsExt;

use pretty_assertions::assert_eq;

use super::*;

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rollout = dir.path().join("rollout.jsonl");
    (dir, rollout)
}

#[test]
fn the_lock_file_sits_beside_the_rollout() {
    assert_eq!(lock_path(Path::new("/a/b/rollout.jsonl")), Path::new("/a/b/rollout.jsonl.lock"));
    assert_eq!(lock_path(Path::new("r")), Path::new("r.lock"));
}

#[test]
fn a_held_lock_names_its_pid_and_release_removes_it() {
    let (_dir, rollout) = setup();
    let lock = WriterLock::acquire(&rollout).unwrap();
    let path = lock_path(&rollout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(lock.taken_over_from(), None);
    lock.release();
    assert!(!path.exists());
    // Released means free.
    WriterLock::acquire(&rollout).unwrap().release();
}

#[test]
fn a_second_writer_is_refused_with_the_holders_pid() {
    let (_dir, rollout) = setup();
    let lock = WriterLock::acquire(&rollout).unwrap();
    // A second open file description conflicts even inside one process.
    let err = WriterLock::acquire(&rollout).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { path, pid: Some(pid) } if *path == rollout && *pid == std::process::id()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("rollout {} is in use by pid {}", rollout.display(), std::process::id())
    );
    drop(lock);
    // Dropping unlocks without removing the file; this process's own pid is not a stale lock.
    assert!(lock_path(&rollout).exists());
    let again = WriterLock::acquire(&rollout).unwrap();
    assert_eq!(again.taken_over_from(), None);
}

#[test]
fn a_lock_left_by_a_gone_process_is_taken_over() {
    let (_dir, rollout) = setup();
    let gone = dead_pid();
    std::fs::write(lock_path(&rollout), format!("{gone}\n")).unwrap();
    let lock = WriterLock::acquire(&rollout).unwrap();
    assert_eq!(lock.taken_over_from(), Some(gone));
    assert_eq!(
        std::fs::read_to_string(lock_path(&rollout)).unwrap(),
        format!("{}\n", std::process::id())
    );
    assert_eq!(
        takeover_message(&rollout, gone),
        format!(
            "took over the stale writer lock of rollout {} left by pid {gone}, which is gone",
            rollout.display()
        )
    );
}

#[test]
fn an_unreadable_lock_file_is_taken_without_a_takeover() {
    for content in ["", "not a pid", "\u{fffd}\u{fffd}"] {
        let (_dir, rollout) = setup();
        std::fs::write(lock_path(&rollout), content).unwrap();
        let lock = WriterLock::acquire(&rollout).unwrap();
        assert_eq!(lock.taken_over_from(), None, "{content:?}");
    }
}

#[test]
fn a_lock_file_replaced_under_its_opener_is_noticed() {
    let (_dir, rollout) = setup();
    let path = lock_path(&rollout);
    let file = File::create(&path).unwrap();
    assert!(still_at(&file, &path).unwrap());
    std::fs::remove_file(&path).unwrap();
    assert!(!still_at(&file, &path).unwrap());
    File::create(&path).unwrap();
    assert!(!still_at(&file, &path).unwrap());
}

#[test]
fn a_link_planted_at_the_lock_path_is_not_followed() {
    let (dir, rollout) = setup();
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, "keep me").unwrap();
    std::os::unix::fs::symlink(&target, lock_path(&rollout)).unwrap();
    let err = WriterLock::acquire(&rollout).unwrap_err();
    assert!(err.to_string().starts_with("rollout i/o failed on "), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}
