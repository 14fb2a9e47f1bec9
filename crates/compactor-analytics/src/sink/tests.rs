//! Tests of the in-memory, JSONL and tracing sinks.

use std::time::Duration;

use pretty_assertions::assert_eq;

use super::*;
use crate::client::{AnalyticsClient, AnalyticsConfig};
use crate::error::Error;
use crate::event::CompactionEvent;
use crate::test_support::{CapturedLogs, sample_event};

const WAIT: Duration = Duration::from_secs(5);

fn events(attempts: std::ops::RangeInclusive<u32>) -> Vec<AnalyticsEvent> {
    attempts.map(|attempt| sample_event(attempt).into()).collect()
}

async fn read_lines(path: &std::path::Path) -> Vec<AnalyticsEvent> {
    let text = tokio::fs::read_to_string(path).await.unwrap();
    assert!(text.ends_with('\n'), "{text:?}");
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[tokio::test]
async fn memory_sink_records_and_wakes_waiters() {
    let memory = MemorySink::default();
    let waiter = {
        let memory = memory.clone();
        tokio::spawn(async move { memory.wait_for(3).await })
    };
    let mut sink = memory.clone();
    sink.send(&events(1..=2)).await.unwrap();
    assert!(!waiter.is_finished());
    sink.send(&events(3..=3)).await.unwrap();
    tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
    assert_eq!(memory.events(), events(1..=3));
    let attempts: Vec<u32> =
        memory.compaction_events().iter().map(|event| event.attempt_number).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!((memory.len(), memory.is_empty()), (3, false));
    assert!(MemorySink::default().is_empty());
}

#[tokio::test]
async fn jsonl_sink_appends_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/analytics.jsonl");
    let sink = JsonlFileSink::open(&path).await.unwrap();
    assert_eq!(sink.path(), path);
    let client = AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(sink)]).unwrap();
    client.track(sample_event(1));
    client.track(sample_event(2));
    client.flush().await.unwrap();
    assert_eq!(read_lines(&path).await, events(1..=2));
    client.shutdown().await.unwrap();

    // Reopening appends.
    let mut sink = JsonlFileSink::open(&path).await.unwrap();
    sink.send(&events(3..=4)).await.unwrap();
    sink.flush().await.unwrap();
    assert_eq!(read_lines(&path).await, events(1..=4));

    // The exact line format.
    let text = tokio::fs::read_to_string(&path).await.unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(
            r#"{"event_type":"compactor_compaction_event","event_params":{"thread_id":"thread-1","#
        ),
        "{first}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn jsonl_sink_creates_files_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("analytics.jsonl");
    let mut sink = JsonlFileSink::open(&path).await.unwrap();
    sink.send(&events(1..=1)).await.unwrap();
    let mode = tokio::fs::metadata(&path).await.unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    // New directories are owner-only too.
    let nested = dir.path().join("new/analytics.jsonl");
    JsonlFileSink::open(&nested).await.unwrap();
    let mode = tokio::fs::metadata(dir.path().join("new")).await.unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "mode {mode:o}");
}

#[tokio::test]
async fn jsonl_sink_refuses_a_symbolic_link_and_leaves_its_target_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious.txt");
    tokio::fs::write(&target, b"keep").await.unwrap();
    let link = dir.path().join("analytics.jsonl");
    tokio::fs::symlink(&target, &link).await.unwrap();
    let err = JsonlFileSink::open(&link).await.unwrap_err();
    assert!(err.chain().contains("is a symbolic link"), "{}", err.chain());
    assert_eq!(tokio::fs::read(&target).await.unwrap(), b"keep");
}

#[tokio::test]
async fn jsonl_sink_reports_unopenable_paths() {
    let dir = tempfile::tempdir().unwrap();
    // A directory cannot be opened as the file.
    let err = JsonlFileSink::open(dir.path()).await.unwrap_err();
    assert!(matches!(&err, Error::Open { path, .. } if path == dir.path()), "{err:?}");
    // A regular file cannot be a parent directory.
    let file = dir.path().join("file");
    tokio::fs::write(&file, b"").await.unwrap();
    let err = JsonlFileSink::open(file.join("analytics.jsonl")).await.unwrap_err();
    assert!(matches!(&err, Error::Open { path, .. } if *path == file), "{err:?}");
}

#[tokio::test]
async fn tracing_sink_logs_every_field() {
    let logs = CapturedLogs::default();
    let _guard = tracing::subscriber::set_default(logs.subscriber());
    let failed = CompactionEvent {
        status: compactor_protocol::CompactionStatus::Failed,
        error: Some("stream error: closed early".to_owned()),
        completed_usage: None,
        receipt: None,
        ..sample_event(2)
    };
    let mut sink = TracingSink;
    sink.send(&[sample_event(1).into(), failed.into()]).await.unwrap();
    let lines: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.starts_with("INFO compactor_analytics "))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}
