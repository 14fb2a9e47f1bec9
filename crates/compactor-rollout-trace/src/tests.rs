//! End-to-end tests: record a live session, read it back, resume it, and cut it at every byte.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use compactor_protocol::display::format_history;
use compactor_protocol::{
    CompactedItem, CompactionTrigger, ContextCompactionItem, ContextualMarkers, EventMsg,
    ResponseItem, RolloutItem, RolloutLine, SessionMeta, TokenUsage, TokenUsageInfo, ToolOutput,
    TurnContextItem, TurnItem,
};
use pretty_assertions::assert_eq;

use crate::{
    Clock, ReconstructedSession, RecorderOptions, RolloutRecorder, parse_rollout,
    reconstruct_history_from_rollout,
};

/// The engine's legacy rebuild is not needed: this session writes no legacy lines.
fn no_legacy(
    history: &[ResponseItem],
    _message: &str,
    _markers: &ContextualMarkers,
) -> Vec<ResponseItem> {
    history.to_vec()
}

/// A clock that advances one millisecond per reading, from a fixed instant.
fn ticking_clock() -> Clock {
    let tick = Arc::new(AtomicU64::new(0));
    Clock::from_fn(move || {
        UNIX_EPOCH + Duration::from_millis(1_778_839_200_000 + tick.fetch_add(1, Ordering::Relaxed))
    })
}

/// What a live session holds after some lines were written.
#[derive(Debug, Clone, PartialEq)]
struct LiveState {
    lines: usize,
    history: Vec<ResponseItem>,
    reference: Option<TurnContextItem>,
    generation: u64,
}

/// A minimal live session, doing what core does: it changes its history and records the
/// rollout items of each step, one `record` call per step as a streaming turn would.
struct LiveSession {
    recorder: RolloutRecorder,
    history: Vec<ResponseItem>,
    reference: Option<TurnContextItem>,
    generation: u64,
    tokens: TokenUsageInfo,
    lines: usize,
    states: Vec<LiveState>,
}

impl LiveSession {
    async fn start(path: &Path) -> Self {
        let recorder = RolloutRecorder::create(path, RecorderOptions { clock: ticking_clock() })
            .await
            .unwrap();
        let mut session = Self {
            recorder,
            history: Vec::new(),
            reference: None,
            generation: 0,
            tokens: TokenUsageInfo::default(),
            lines: 0,
            states: Vec::new(),
        };
        session
            .record(vec![RolloutItem::SessionMeta(SessionMeta {
                id: "thread-1".into(),
                originator: Some("compactor-tests".into()),
                ..SessionMeta::default()
            })])
            .await;
        session
    }

    async fn record(&mut self, items: Vec<RolloutItem>) {
        self.recorder.record(&items).await.unwrap();
        self.lines += items.iter().filter(|item| crate::is_persisted(item)).count();
        self.states.push(LiveState {
            lines: self.lines,
            history: self.history.clone(),
            reference: self.reference.clone(),
            generation: self.generation,
        });
    }

    /// The model produced `item`: it joins the history and the rollout.
    async fn output(&mut self, item: ResponseItem) {
        self.history.push(item.clone());
        self.record(vec![RolloutItem::ResponseItem(item)]).await;
    }

    async fn token_count(&mut self, total: i64) {
        self.tokens.append_last_usage(&TokenUsage::with_total(total));
        self.record(vec![RolloutItem::EventMsg(EventMsg::TokenCount {
            info: Some(self.tokens),
            rate_limits: None,
        })])
        .await;
    }

    fn context(turn: &str) -> TurnContextItem {
        TurnContextItem {
            turn_id: Some(turn.into()),
            cwd: Some("/work".into()),
            model: "gpt-test".into(),
            ..TurnContextItem::default()
        }
    }

    async fn begin_turn(&mut self, turn: &str, text: &str) {
        let ctx = Self::context(turn);
        self.record(vec![
            RolloutItem::EventMsg(EventMsg::TurnStarted {
                turn_id: turn.into(),
                started_at: Some(1_778_839_200),
                model_context_window: Some(10_000),
            }),
            RolloutItem::TurnContext(ctx.clone()),
        ])
        .await;
        if self.reference.is_none() {
            // No baseline: the full initial context is injected again (D16).
            self.output(ResponseItem::developer_text("<permissions>workspace-write</permissions>"))
                .await;
            self.output(ResponseItem::user_text(
                "<environment_context>cwd=/work</environment_context>",
            ))
            .await;
        }
        self.reference = Some(ctx);
        // As core does: the user's message is recorded, then announced.
        self.output(ResponseItem::user_text(text)).await;
        self.record(vec![RolloutItem::EventMsg(EventMsg::UserMessage { message: text.into() })])
            .await;
    }

    async fn end_turn(&mut self, turn: &str) {
        self.record(vec![RolloutItem::EventMsg(EventMsg::TurnComplete {
            turn_id: turn.into(),
            last_agent_message: None,
        })])
        .await;
    }

    async fn tool_call(&mut self, call_id: &str, output: &str) {
        self.output(ResponseItem::FunctionCall {
            id: None,
            name: "shell".into(),
            namespace: None,
            arguments: r#"{"cmd":"cargo test"}"#.into(),
            call_id: call_id.into(),
        })
        .await;
        self.output(ResponseItem::FunctionCallOutput {
            call_id: call_id.into(),
            output: ToolOutput::Text(output.into()),
        })
        .await;
    }

    /// A v2 compaction: transient items are offered to the recorder too (as a careless caller
    /// might) and must not be persisted; then the replacement is installed.
    async fn compact(&mut self, turn: &str, id: &str, encrypted: &str, reestablish: bool) {
        let item = TurnItem::ContextCompaction(ContextCompactionItem::new(id));
        self.record(vec![
            RolloutItem::EventMsg(EventMsg::ItemStarted {
                thread_id: "thread-1".into(),
                turn_id: turn.into(),
                item: item.clone(),
                started_at_ms: 1,
            }),
            RolloutItem::ResponseItem(ResponseItem::context_compaction_trigger()),
            RolloutItem::EventMsg(EventMsg::StreamError {
                message: "Reconnecting... 1/2".into(),
                compactor_error_info: None,
                additional_details: None,
            }),
        ])
        .await;
        let mut replacement: Vec<ResponseItem> = self
            .history
            .iter()
            .filter(|item| item.role() == Some("user") || item.role() == Some("developer"))
            .filter(|item| !item.is_compaction())
            .cloned()
            .collect();
        replacement.push(ResponseItem::ContextCompaction {
            id: None,
            encrypted_content: Some(encrypted.into()),
        });
        self.history.clone_from(&replacement);
        self.generation += 1;
        let mut installed = vec![RolloutItem::Compacted(CompactedItem::new("", replacement))];
        if reestablish {
            let ctx = Self::context(turn);
            self.reference = Some(ctx.clone());
            installed.push(RolloutItem::TurnContext(ctx));
        } else {
            self.reference = None;
        }
        self.record(installed).await;
        self.record(vec![
            RolloutItem::EventMsg(EventMsg::ItemCompleted {
                thread_id: "thread-1".into(),
                turn_id: turn.into(),
                item,
                completed_at_ms: 2,
            }),
            RolloutItem::EventMsg(EventMsg::ContextCompacted {}),
        ])
        .await;
        self.token_count(40).await;
    }

    fn state(&self) -> LiveState {
        LiveState {
            lines: self.lines,
            history: self.history.clone(),
            reference: self.reference.clone(),
            generation: self.generation,
        }
    }
}

/// Records a session with two compactions: a mid-turn one that re-establishes the baseline and
/// a manual one that clears it, then a last turn that re-injects the context.
async fn record_session(path: &Path) -> LiveSession {
    let mut live = LiveSession::start(path).await;
    live.begin_turn("turn-1", "fix the failing test").await;
    live.tool_call("call-1", "1 failed").await;
    live.output(ResponseItem::assistant_text("The assertion is off by one.")).await;
    live.token_count(900).await;
    live.end_turn("turn-1").await;

    live.begin_turn("turn-2", "now make it faster").await;
    live.tool_call("call-2", "bench: 12ms").await;
    live.token_count(4_000).await;
    live.compact("turn-2", "cmp-1", "ENC-1", true).await;
    live.output(ResponseItem::assistant_text("Done: 3ms.")).await;
    live.end_turn("turn-2").await;

    live.record(vec![RolloutItem::EventMsg(EventMsg::TurnStarted {
        turn_id: "turn-3".into(),
        started_at: None,
        model_context_window: Some(10_000),
    })])
    .await;
    live.record(vec![RolloutItem::EventMsg(EventMsg::HookStarted {
        turn_id: "turn-3".into(),
        hook_event_name: compactor_protocol::HookEventName::PreCompact,
        trigger: CompactionTrigger::Manual,
    })])
    .await;
    live.compact("turn-3", "cmp-2", "ENC-2", false).await;
    live.end_turn("turn-3").await;

    live.begin_turn("turn-4", "summarize what changed").await;
    live.output(ResponseItem::assistant_text("We fixed a test and sped up the bench.")).await;
    live.token_count(300).await;
    live.end_turn("turn-4").await;
    live.recorder.shutdown().await.unwrap();
    live
}

fn resume(lines: &[RolloutLine]) -> ReconstructedSession {
    let borrowed = reconstruct_history_from_rollout(lines, &no_legacy);
    let markers = ContextualMarkers::default();
    let owned = crate::Replay::new(&no_legacy, &markers).reconstruct_owned(lines.to_vec());
    assert_eq!(owned, borrowed, "reconstruct_owned disagrees with reconstruct");
    borrowed
}

/// Byte ranges `[start, end)` of every line, `end` being the index of its `\n`.
fn line_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'\n' {
            spans.push((start, index));
            start = index + 1;
        }
    }
    assert_eq!(start, bytes.len(), "a recorded rollout ends with a newline");
    spans
}

async fn recorded(dir: &Path) -> (PathBuf, LiveSession, Vec<u8>) {
    let path = dir.join("rollout.jsonl");
    let live = record_session(&path).await;
    let bytes = std::fs::read(&path).unwrap();
    (path, live, bytes)
}

#[tokio::test]
async fn two_compactions_resume_to_the_installed_history_after_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let (_, live, bytes) = recorded(dir.path()).await;
    let contents = parse_rollout(&bytes);
    assert!(contents.report.is_clean(), "{:?}", contents.report);
    assert_eq!(contents.lines.len(), live.lines);

    let resumed = resume(&contents.lines);
    let installed = live.state();
    assert_eq!(format_history(&resumed.history), format_history(&installed.history));
    assert_eq!(resumed.history, installed.history);
    assert_eq!(resumed.window_generation, 2);
    assert_eq!(resumed.reference_context_item, installed.reference);
    assert_eq!(resumed.token_info, Some(live.tokens));
    assert_eq!(resumed.previous_turn_settings.map(|s| s.model), Some("gpt-test".to_owned()));
    assert_eq!(resumed.session_meta.map(|m| m.id), Some("thread-1".to_owned()));

    // Resuming after any step gives exactly what the live session had then.
    for state in &live.states {
        let resumed = resume(&contents.lines[..state.lines]);
        let actual = LiveState {
            lines: state.lines,
            history: resumed.history,
            reference: resumed.reference_context_item,
            generation: resumed.window_generation,
        };
        assert_eq!(&actual, state);
    }
}

#[tokio::test]
async fn every_torn_line_resumes_to_the_state_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = recorded(dir.path()).await;
    let full = parse_rollout(&bytes).lines;
    let spans = line_spans(&bytes);
    let mut offsets = 0;
    for (index, (start, newline)) in spans.iter().copied().enumerate() {
        let before = resume(&full[..index]);
        // Every cut strictly inside the line: at least one byte written, its `\n` not yet.
        for cut in start + 1..=newline {
            let contents = parse_rollout(&bytes[..cut]);
            let tail = contents.report.torn_tail.expect("torn tail reported");
            assert_eq!((tail.line_number, tail.byte_offset), (index + 1, start as u64));
            assert!(contents.report.corrupt_lines.is_empty());
            assert_eq!(contents.lines, full[..index], "cut at byte {cut}");
            assert_eq!(resume(&contents.lines), before, "cut at byte {cut}");
            offsets += 1;
        }
    }
    assert_eq!(offsets, bytes.len() - spans.len());
}

#[tokio::test]
async fn appending_after_a_torn_tail_yields_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = recorded(dir.path()).await;
    let full = parse_rollout(&bytes).lines;
    let spans = line_spans(&bytes);
    let last_compacted =
        full.iter().rposition(|line| matches!(line.item, RolloutItem::Compacted(_))).unwrap();
    let appended = RolloutItem::ResponseItem(ResponseItem::user_text("after the crash"));
    let path = dir.path().join("torn.jsonl");
    let mut cuts = 0;
    // The last line, and the last `compacted` line (the biggest write of the session).
    for index in [spans.len() - 1, last_compacted] {
        let (start, newline) = spans[index];
        for cut in start + 1..=newline {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let recorder =
                RolloutRecorder::open_append(&path, RecorderOptions::default()).await.unwrap();
            assert_eq!(recorder.truncated_tail_bytes(), (cut - start) as u64);
            recorder.record(std::slice::from_ref(&appended)).await.unwrap();
            recorder.shutdown().await.unwrap();
            let contents = parse_rollout(&std::fs::read(&path).unwrap());
            assert!(contents.report.is_clean(), "cut at byte {cut}: {:?}", contents.report);
            assert_eq!(contents.lines.len(), index + 1);
            assert_eq!(contents.lines[..index], full[..index]);
            assert_eq!(contents.lines[index].item, appended);
            cuts += 1;
        }
    }
    assert_eq!(
        cuts,
        spans[spans.len() - 1].1 - spans[spans.len() - 1].0 + spans[last_compacted].1
            - spans[last_compacted].0
    );
}

#[tokio::test]
async fn golden_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = recorded(dir.path()).await;
    insta::assert_snapshot!("golden_rollout_jsonl", String::from_utf8(bytes).unwrap());
}
