//! Tests of the recorder: exact line bytes, file modes, policy, torn tails and shutdown.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use compactor_protocol::{
    CompactedItem, CompactionImplementation, CompactionPhase, CompactionReason, CompactionReceipt,
    CompactionTrigger, EventMsg, ItemOutcome, ItemReceipt, ReceiptStatus, ReceiptTotals,
    ResponseItem, RolloutItem, RolloutLine, SessionMeta, TurnContextItem,
};
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::reader::parse_rollout;

const TS: &str = "2026-05-15T10:00:00.123Z";

fn options() -> RecorderOptions {
    RecorderOptions { clock: Clock::fixed_unix_ms(1_778_839_200_123) }
}

fn every_kind() -> Vec<RolloutItem> {
    vec![
        RolloutItem::SessionMeta(SessionMeta { id: "thread".into(), ..SessionMeta::default() }),
        RolloutItem::ResponseItem(ResponseItem::user_text("hi \"there\"\n")),
        RolloutItem::ResponseItem(
            serde_json::from_value(json!({"type": "future_item", "k": [1]})).unwrap(),
        ),
        RolloutItem::Compacted(CompactedItem::new("", vec![ResponseItem::user_text("hi")])),
        RolloutItem::TurnContext(TurnContextItem {
            model: "gpt".into(),
            ..TurnContextItem::default()
        }),
        RolloutItem::EventMsg(EventMsg::ContextCompacted {}),
        RolloutItem::Unknown { kind: "future".into(), payload: Some(json!({"a": 1})) },
        RolloutItem::Unknown { kind: "bare".into(), payload: None },
    ]
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn write_line_matches_the_protocol_serializer() {
    for item in every_kind() {
        let mut out = Vec::new();
        write_line(&mut out, TS, &item).unwrap();
        let mut expected = serde_json::to_vec(&RolloutLine::new(TS, item)).unwrap();
        expected.push(b'\n');
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(expected).unwrap());
    }
}

/// The bytes `serde_json` writes for `item`'s line, which `write_line` must write.
fn serde_line(item: RolloutItem) -> String {
    let mut expected = serde_json::to_vec(&RolloutLine::new(TS, item)).unwrap();
    expected.push(b'\n');
    String::from_utf8(expected).unwrap()
}

fn written_line(item: &RolloutItem) -> String {
    let mut out = Vec::new();
    write_line(&mut out, TS, item).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn a_compacted_line_with_its_receipt_is_written_as_serde_json_writes_it() {
    let history = vec![
        ResponseItem::user_text("keep \"this\"\n\u{1}é"),
        ResponseItem::assistant_text("done"),
    ];
    let kinds =
        [("message", Some("user")), ("function_call", None), ("we\"ird\u{7}", Some("tool"))];
    let items = (0..300u64)
        .map(|index| {
            let (item_type, role) = kinds[(index % 3) as usize];
            ItemReceipt {
                item_type: item_type.to_owned().into(),
                role: role.map(|role| role.to_owned().into()),
                outcome: ItemOutcome::ALL[(index % 6) as usize],
                tokens: index * 977 % 100_003,
            }
        })
        .collect();
    let receipt = CompactionReceipt {
        compaction_id: "cmp-\u{2028}1".into(),
        implementation: CompactionImplementation::ResponsesCompactionV2,
        chain_position: 1,
        chain_length: 2,
        trigger: CompactionTrigger::Auto,
        reason: CompactionReason::ContextLimit,
        phase: CompactionPhase::MidTurn,
        status: ReceiptStatus::Completed,
        error: None,
        request_id: Some("compaction_request:1".into()),
        response_id: None,
        tokens_before: i64::MAX,
        tokens_after: Some(-3),
        items,
        totals: ReceiptTotals { unattributed: i64::MIN, ..ReceiptTotals::default() },
        pins: Vec::new(),
    };
    let mut compacted = CompactedItem::new("summary\twith \\ escapes", history);
    compacted.receipt = Some(Box::new(receipt));
    compacted.extra.insert("future".into(), json!({"nested": [1.5, null, "x\"y"]}));
    let item = RolloutItem::Compacted(compacted);
    assert_eq!(written_line(&item), serde_line(item));
}

#[test]
fn every_line_of_a_real_codex_rollout_is_written_back_as_serde_json_writes_it() {
    let text =
        include_str!("../../../../tests/fixtures/codex-rollouts/codex-0.171-exec-compacted.jsonl");
    let mut lines = 0;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let line: RolloutLine = serde_json::from_str(line).unwrap();
        let mut out = Vec::new();
        write_line(&mut out, &line.timestamp, &line.item).unwrap();
        let mut expected =
            serde_json::to_vec(&RolloutLine::new(line.timestamp, line.item)).unwrap();
        expected.push(b'\n');
        assert_eq!(String::from_utf8(out).unwrap(), String::from_utf8(expected).unwrap());
        lines += 1;
    }
    assert!(lines > 10, "the fixture has {lines} lines");
}

#[tokio::test]
async fn create_writes_lines_with_mode_0600_in_a_0700_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions/2026/05/15/rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    recorder.record(&every_kind()).await.unwrap();
    recorder.shutdown().await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let contents = parse_rollout(&std::fs::read(&path).unwrap());
    assert!(contents.report.is_clean());
    let expected: Vec<RolloutLine> =
        every_kind().into_iter().map(|item| RolloutLine::new(TS, item)).collect();
    assert_eq!(contents.lines, expected);
}

#[tokio::test]
async fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    std::fs::write(&path, "keep\n").unwrap();
    let err = RolloutRecorder::create(&path, options()).await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep\n");
}

#[tokio::test]
async fn record_applies_the_persistence_policy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    recorder
        .record(&[
            RolloutItem::ResponseItem(ResponseItem::context_compaction_trigger()),
            RolloutItem::EventMsg(EventMsg::StreamError {
                message: "Reconnecting... 1/2".into(),
                compactor_error_info: None,
                additional_details: None,
            }),
            RolloutItem::ResponseItem(ResponseItem::user_text("kept")),
        ])
        .await
        .unwrap();
    // Nothing persisted: no write at all.
    recorder.record(&[RolloutItem::ResponseItem(ResponseItem::CompactionTrigger)]).await.unwrap();
    recorder.record(&[]).await.unwrap();
    recorder.flush().await.unwrap();
    let contents = parse_rollout(&std::fs::read(&path).unwrap());
    assert_eq!(
        contents.lines,
        vec![RolloutLine::new(TS, RolloutItem::ResponseItem(ResponseItem::user_text("kept")))]
    );
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_compacted_line_is_on_disk_when_record_returns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    let compacted =
        RolloutItem::Compacted(CompactedItem::new("", vec![ResponseItem::user_text("s")]));
    recorder.record(std::slice::from_ref(&compacted)).await.unwrap();
    // No flush: the compaction line must already be written.
    let contents = parse_rollout(&std::fs::read(&path).unwrap());
    assert_eq!(contents.lines, vec![RolloutLine::new(TS, compacted)]);
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn open_append_creates_a_missing_file_and_truncates_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new/rollout.jsonl");
    let recorder = RolloutRecorder::open_append(&path, options()).await.unwrap();
    assert_eq!(recorder.truncated_tail_bytes(), 0);
    recorder.record(&[RolloutItem::EventMsg(EventMsg::ContextCompacted {})]).await.unwrap();
    recorder.shutdown().await.unwrap();
    assert_eq!(mode(&path), 0o600);
    let clean = std::fs::read(&path).unwrap();

    let mut torn = clean.clone();
    torn.extend_from_slice(b"{\"timestamp\":\"2026");
    std::fs::write(&path, &torn).unwrap();
    let recorder = RolloutRecorder::open_append(&path, options()).await.unwrap();
    assert_eq!(recorder.truncated_tail_bytes(), 18);
    recorder.record(&[RolloutItem::EventMsg(EventMsg::ContextCompacted {})]).await.unwrap();
    recorder.shutdown().await.unwrap();
    let contents = parse_rollout(&std::fs::read(&path).unwrap());
    assert!(contents.report.is_clean());
    assert_eq!(contents.lines.len(), 2);
}

#[test]
fn truncate_torn_tail_cases() {
    let long_fragment = |prefix: &[u8], fragment: usize| {
        let mut bytes = prefix.to_vec();
        bytes.extend(std::iter::repeat_n(b'y', fragment));
        bytes
    };
    let mut long_line = vec![b'z'; 150_000];
    long_line.push(b'\n');
    // (input, bytes kept)
    let cases: Vec<(Vec<u8>, usize)> = vec![
        (b"".to_vec(), 0),
        (b"a\n".to_vec(), 2),
        (b"a\nb".to_vec(), 2),
        (b"partial".to_vec(), 0),
        (b"a\nb\n\n".to_vec(), 5),
        // Fragments longer than one backward read step.
        (long_fragment(b"x\n", 200_000), 2),
        (long_fragment(&long_line, 70_000), 150_001),
        (long_fragment(b"", 140_000), 0),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (index, (input, kept)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("case-{index}"));
        std::fs::write(&path, &input).unwrap();
        let mut file = std::fs::OpenOptions::new().read(true).append(true).open(&path).unwrap();
        let truncated = truncate_torn_tail(&mut file).unwrap();
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), input[..kept], "case {index}");
        assert_eq!(truncated, (input.len() - kept) as u64, "case {index}");
    }
}

#[tokio::test]
async fn closed_after_shutdown_and_shutdown_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    let clone = recorder.clone();
    recorder.shutdown().await.unwrap();
    clone.shutdown().await.unwrap();
    let err =
        clone.record(&[RolloutItem::EventMsg(EventMsg::ContextCompacted {})]).await.unwrap_err();
    assert!(matches!(err, Error::Closed { .. }), "{err:?}");
    assert!(matches!(clone.flush().await.unwrap_err(), Error::Closed { .. }));
    let converted = compactor_protocol::CompactorError::from(err);
    assert!(
        converted.to_string().starts_with("rollout error: rollout recorder for "),
        "{converted}"
    );
}

#[tokio::test]
async fn dropping_every_handle_still_writes_what_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    for n in 0..50 {
        recorder
            .record(&[RolloutItem::ResponseItem(ResponseItem::user_text(format!("m{n}")))])
            .await
            .unwrap();
    }
    drop(recorder);
    let wait = async {
        loop {
            let contents = parse_rollout(&tokio::fs::read(&path).await.unwrap());
            if contents.lines.len() == 50 {
                assert!(contents.report.is_clean());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clones_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let recorder = RolloutRecorder::create(&path, options()).await.unwrap();
    let big = "x".repeat(100_000);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..4 {
        let recorder = recorder.clone();
        let big = big.clone();
        tasks.spawn(async move {
            for n in 0..20 {
                let text = format!("{task}-{n}-{big}");
                recorder
                    .record(&[RolloutItem::ResponseItem(ResponseItem::user_text(text))])
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    recorder.shutdown().await.unwrap();
    let contents = parse_rollout(&std::fs::read(&path).unwrap());
    assert!(contents.report.is_clean());
    assert_eq!(contents.lines.len(), 80);
}

fn context_compacted() -> RolloutItem {
    RolloutItem::EventMsg(EventMsg::ContextCompacted {})
}

#[tokio::test]
async fn one_writer_at_a_time_and_readers_never_wait() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let lock = crate::lock::lock_path(&path);
    let writer = RolloutRecorder::create(&path, options()).await.unwrap();
    writer.record(&[context_compacted()]).await.unwrap();
    writer.flush().await.unwrap();
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), format!("{}\n", std::process::id()));
    for second in [
        RolloutRecorder::open_append(&path, options()).await,
        RolloutRecorder::create(&path, options()).await,
    ] {
        let err = second.unwrap_err();
        assert!(
            matches!(&err, Error::InUse { pid: Some(pid), .. } if *pid == std::process::id()),
            "{err:?}"
        );
        assert_eq!(
            compactor_protocol::CompactorError::from(err).to_string(),
            format!("rollout {} is in use by pid {}", path.display(), std::process::id())
        );
    }
    // A reader takes no lock and reads what the writer has written.
    assert_eq!(crate::read_rollout(&path).await.unwrap().lines.len(), 1);
    writer.shutdown().await.unwrap();
    assert!(!lock.exists(), "shutdown releases and removes the lock file");
    let next = RolloutRecorder::open_append(&path, options()).await.unwrap();
    assert_eq!(next.lock_taken_over_from(), None);
    next.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_releases_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    drop(RolloutRecorder::create(&path, options()).await.unwrap());
    let reopen = async {
        loop {
            match RolloutRecorder::open_append(&path, options()).await {
                Ok(recorder) => break recorder,
                Err(Error::InUse { .. }) => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(err) => panic!("{err:?}"),
            }
        }
    };
    let recorder = tokio::time::timeout(Duration::from_secs(10), reopen).await.unwrap();
    recorder.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_stale_lock_of_a_gone_process_is_taken_over_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    std::fs::write(crate::lock::lock_path(&path), format!("{gone}\n")).unwrap();
    let recorder = RolloutRecorder::open_append(&path, options()).await.unwrap();
    assert_eq!(recorder.lock_taken_over_from(), Some(gone));
    let warning = recorder.lock_takeover_warning().unwrap();
    assert!(warning.contains(&format!("left by pid {gone}, which is gone")), "{warning}");
    recorder.record(&[context_compacted()]).await.unwrap();
    recorder.shutdown().await.unwrap();
    assert_eq!(parse_rollout(&std::fs::read(&path).unwrap()).lines.len(), 1);
}

#[tokio::test]
async fn a_failed_write_names_the_file_and_the_os_error_and_every_later_call_fails_alike() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rollout.jsonl");
    // A node of the `full` device (1, 7): every write to it fails with ENOSPC. It is made here
    // rather than linked to /dev/full, because a rollout is never opened through a link (D64).
    let made = std::process::Command::new("mknod").arg(&path).args(["c", "1", "7"]).status();
    assert!(made.unwrap().success(), "this test makes a device node: it needs CAP_MKNOD");
    let recorder = RolloutRecorder::open_append(&path, options()).await.unwrap();
    let compacted =
        RolloutItem::Compacted(CompactedItem::new("", vec![ResponseItem::user_text("s")]));
    let expected = format!(
        "rollout write to {} failed: No space left on device (os error 28)",
        path.display()
    );
    let first = recorder.record(std::slice::from_ref(&compacted)).await.unwrap_err();
    assert!(matches!(first, Error::WriterFailed { .. }), "{first:?}");
    assert_eq!(first.to_string(), expected);
    let later = [
        recorder.record(&[context_compacted()]).await.unwrap_err(),
        recorder.record(std::slice::from_ref(&compacted)).await.unwrap_err(),
        recorder.flush().await.unwrap_err(),
        recorder.shutdown().await.unwrap_err(),
    ];
    for err in later {
        assert_eq!(err.to_string(), expected);
    }
    assert_eq!(
        compactor_protocol::CompactorError::from(first),
        compactor_protocol::CompactorError::RolloutWrite {
            path: path.display().to_string(),
            message: "No space left on device (os error 28)".into(),
        }
    );
}
