//! Resuming a damaged rollout, and a rollout another writer holds: damaged lines are skipped
//! with a `warning` event naming them (fatal only when asked), a damaged `compacted` line falls
//! back to the compaction before it, and only one writer at a time may append.

use std::path::Path;

use compactor_core::Session;
use compactor_engine::rebuild_legacy_compacted;
use compactor_protocol::{CompactorError, ContextualMarkers, EventMsg, ResponseItem};
use compactor_rollout_trace::{DamagedLines, Replay, parse_rollout, read_rollout};
use pretty_assertions::assert_eq;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::{Options, bounded, saved_session, session_config};

/// The rollout's lines, each with its newline.
fn lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    bytes.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec).collect()
}

fn line_type(line: &[u8]) -> String {
    serde_json::from_slice::<Value>(line).unwrap()["type"].as_str().unwrap().to_owned()
}

/// Cuts the end off line `index` (keeping its newline), so it is no longer JSON. Returns the
/// line's byte offset.
fn damage_line(path: &Path, index: usize) -> usize {
    let mut all = lines(&std::fs::read(path).unwrap());
    let line = &all[index];
    let mut damaged = line[..line.len() - 6].to_vec();
    damaged.push(b'\n');
    all[index] = damaged;
    let offset = all[..index].iter().map(Vec::len).sum();
    std::fs::write(path, all.concat()).unwrap();
    offset
}

/// The history of `path` without line `index`, as the library reconstructs it.
fn history_without(path: &Path, index: usize) -> Vec<ResponseItem> {
    let kept: Vec<u8> = lines(&std::fs::read(path).unwrap())
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .flat_map(|(_, line)| line)
        .collect();
    Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
        .reconstruct_contents(parse_rollout(&kept))
        .history
}

fn warnings(events: &mut mpsc::Receiver<EventMsg>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventMsg::Warning { message } = event {
            out.push(message);
        }
    }
    out
}

#[tokio::test]
async fn a_damaged_middle_line_is_skipped_with_a_warning_event() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let live = saved_session(&server, dir.path()).await;
    let path = dir.path().join("rollout.jsonl");

    // The first item recorded after the last compaction.
    let all = lines(&std::fs::read(&path).unwrap());
    let last = all.iter().rposition(|line| line_type(line) == "compacted").unwrap();
    let index =
        last + 1 + all[last + 1..].iter().position(|l| line_type(l) == "response_item").unwrap();
    let item: ResponseItem = serde_json::from_value(
        serde_json::from_slice::<Value>(&all[index]).unwrap()["payload"].clone(),
    )
    .unwrap();
    let offset = damage_line(&path, index);
    let mut expected = live.clone();
    expected.remove(live.iter().position(|kept| *kept == item).unwrap());

    // What reading counts.
    let contents = read_rollout(&path).await.unwrap();
    let resumed = Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
        .reconstruct_contents(contents);
    assert_eq!(resumed.skipped_lines, 1);
    assert_eq!(resumed.history, expected);

    let config = session_config(&server, dir.path(), &Options::default());
    let (session, mut events) = bounded(Session::builder(config).resume(&path)).await.unwrap();
    assert_eq!(session.history(), expected);
    let warnings = warnings(&mut events);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(&format!(
            "rollout line {} (byte {offset}) is damaged and was skipped: ",
            index + 1
        )),
        "{warnings:?}"
    );
    bounded(session.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_damaged_compacted_line_resumes_from_the_compaction_before_it() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let live = saved_session(&server, dir.path()).await;
    let path = dir.path().join("rollout.jsonl");
    let all = lines(&std::fs::read(&path).unwrap());
    let newest = all.iter().rposition(|line| line_type(line) == "compacted").unwrap();
    let expected = history_without(&path, newest);
    assert_ne!(expected, live);
    damage_line(&path, newest);

    let config = session_config(&server, dir.path(), &Options::default());
    let (session, mut events) = bounded(Session::builder(config).resume(&path)).await.unwrap();
    assert_eq!(session.history(), expected);
    assert_eq!(session.window_generation(), 2, "the generation never goes back");
    let warnings = warnings(&mut events);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].ends_with(
            "it held the newest compaction, which was lost: the session resumes from the \
             compaction before it"
        ),
        "{warnings:?}"
    );
    // The session goes on from there.
    bounded(session.compact()).await.unwrap();
    bounded(session.shutdown()).await.unwrap();
}

#[tokio::test]
async fn the_strict_policy_refuses_a_damaged_rollout() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    saved_session(&server, dir.path()).await;
    let path = dir.path().join("rollout.jsonl");
    damage_line(&path, 2);
    let config = session_config(&server, dir.path(), &Options::default());
    let error = bounded(Session::builder(config).damaged_lines(DamagedLines::Fail).resume(&path))
        .await
        .unwrap_err();
    let CompactorError::Rollout(message) = &error else { panic!("{error:?}") };
    assert!(message.contains(":3: damaged rollout line (byte "), "{message}");
}

#[tokio::test]
async fn a_second_writer_is_refused_and_readers_still_read() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let live = saved_session(&server, dir.path()).await;
    let path = dir.path().join("rollout.jsonl");
    let config = session_config(&server, dir.path(), &Options::default());
    let (first, _events) = bounded(Session::builder(config.clone()).resume(&path)).await.unwrap();

    let error = bounded(Session::builder(config.clone()).resume(&path)).await.unwrap_err();
    assert_eq!(
        error,
        CompactorError::RolloutInUse {
            path: path.display().to_string(),
            pid: Some(std::process::id())
        }
    );
    assert_eq!(
        error.to_string(),
        format!("rollout {} is in use by pid {}", path.display(), std::process::id())
    );
    let read = read_rollout(&path).await.unwrap();
    assert_eq!(
        Replay::new(&rebuild_legacy_compacted, &ContextualMarkers::default())
            .reconstruct_owned(read.lines)
            .history,
        live
    );

    bounded(first.shutdown()).await.unwrap();
    let (second, _events) = bounded(Session::builder(config).resume(&path)).await.unwrap();
    assert_eq!(second.history(), live);
    bounded(second.shutdown()).await.unwrap();
}

#[tokio::test]
async fn a_torn_last_line_is_cut_off_with_a_warning_event() {
    let server = crate::common::reference_model().await;
    let dir = tempfile::tempdir().unwrap();
    let live = saved_session(&server, dir.path()).await;
    let path = dir.path().join("rollout.jsonl");
    let whole = std::fs::read(&path).unwrap();
    let mut torn = whole.clone();
    torn.extend_from_slice(br#"{"timestamp":"2026-05-15T10:00:00.000Z","type":"resp"#);
    std::fs::write(&path, &torn).unwrap();

    let config = session_config(&server, dir.path(), &Options::default());
    let (session, mut events) = bounded(Session::builder(config).resume(&path)).await.unwrap();
    assert_eq!(session.history(), live);
    assert_eq!(std::fs::read(&path).unwrap(), whole, "the torn line is gone before any append");
    assert_eq!(
        warnings(&mut events),
        vec![format!(
            "rollout {} ended with an unterminated line of {} bytes, a write that never \
             finished; it was cut off before appending",
            path.display(),
            torn.len() - whole.len()
        )]
    );
    bounded(session.shutdown()).await.unwrap();
}
