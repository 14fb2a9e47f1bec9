//! Pins, receipts and previews across every compaction implementation: pins stay verbatim in the
//! pin slot through compactions, resume, rollback and fork; receipts add up; a preview agrees with
//! the compaction it previews.

use compactor_analytics::{AnalyticsClient, AnalyticsConfig, MemorySink};
use compactor_core::{
    PreviewOptions, RemoteCompaction, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler,
};
use compactor_protocol::{
    CompactionImplementation, CompactionReceipt, CompactorError, ItemOutcome, Pin, ReceiptStatus,
    ResponseItem, RolloutItem, RolloutLine, ToolOutput, pin_slot_items,
};
use compactor_rollout_trace::{parse_rollout, reconstruct_history_from_rollout};
use compactor_testkit::{ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};
use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::common::{Harness, Options, Transport, bounded, session_config};

/// Answers every tool call with a few hundred bytes, so that `prune` has outputs to mask.
struct SmallOutputs;

impl ToolHandler for SmallOutputs {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let text = format!("{} output line\n", call.name).repeat(40);
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

/// The reference model, calling `shell` for every user text containing "run".
async fn tool_calling_server() -> TestServer {
    TestServer::start(TestServerConfig {
        mode: compactor_testkit::Mode::ReferenceModel(ReferenceModelConfig {
            tool_calls: ToolCallPolicy::OnUserText {
                trigger: "run".into(),
                name: "shell".into(),
                arguments: r#"{"cmd":"cargo test"}"#.into(),
            },
            ..ReferenceModelConfig::default()
        }),
        ..TestServerConfig::default()
    })
    .await
    .unwrap()
}

/// The implementations the acceptance covers, each with its transport and configuration.
#[derive(Debug, Clone, Copy)]
enum Kind {
    V2Ws,
    V2Http,
    V1,
    Local,
    Prune,
}

impl Kind {
    fn options(self) -> Options {
        let transport = if matches!(self, Self::V2Ws) { Transport::Ws } else { Transport::Http };
        Options { transport, response_processed: transport == Transport::Ws, ..Options::default() }
    }

    fn configure(self, config: &mut SessionConfig) {
        match self {
            Self::V2Ws | Self::V2Http => {}
            Self::V1 => config.features.remote_compaction_v2 = false,
            Self::Local => config.remote_compaction = RemoteCompaction::Unsupported,
            Self::Prune => {
                config.compaction.chain = vec![CompactionImplementation::Prune];
                config.compaction.prune.protected_user_turns = 0;
                config.compaction.prune.target_percent = 1;
            }
        }
    }

    fn implementation(self) -> CompactionImplementation {
        match self {
            Self::V2Ws | Self::V2Http => CompactionImplementation::ResponsesCompactionV2,
            Self::V1 => CompactionImplementation::ResponsesCompact,
            Self::Local => CompactionImplementation::Responses,
            Self::Prune => CompactionImplementation::Prune,
        }
    }

    fn config(self, server: &TestServer, dir: &std::path::Path) -> SessionConfig {
        let mut config = session_config(server, dir, &self.options());
        self.configure(&mut config);
        config
    }
}

/// A session of `kind` with tools, its analytics in memory.
async fn harness(kind: Kind, edit: impl FnOnce(&mut SessionConfig)) -> Harness {
    let server = tool_calling_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = kind.config(&server, dir.path());
    edit(&mut config);
    let analytics = MemorySink::default();
    let client =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
            .unwrap();
    let (session, events) = Session::builder(config)
        .thread_id("thread-pins")
        .tools(SmallOutputs)
        .analytics(client)
        .build()
        .await
        .unwrap();
    Harness::from_parts(server, session, events, analytics, dir)
}

/// The history's user message whose text is `text`.
fn user_message(history: &[ResponseItem], text: &str) -> ResponseItem {
    history
        .iter()
        .find(|item| {
            matches!(item, ResponseItem::Message { role, .. } if role == "user")
                && item.message_text().as_deref() == Some(text)
        })
        .unwrap_or_else(|| panic!("no user message {text:?}"))
        .clone()
}

/// Whether `item` is the item a remote compaction returns.
fn is_compaction_item(item: &ResponseItem) -> bool {
    matches!(item, ResponseItem::Compaction { .. } | ResponseItem::ContextCompaction { .. })
}

/// Asserts that `history` starts with the pin slot of `pins`, and holds each pinned item once.
fn assert_pin_slot(history: &[ResponseItem], pins: &[Pin], context: &str) {
    let slot = pin_slot_items(pins);
    assert!(history.len() >= slot.len(), "{context}: history shorter than the pin slot");
    assert_eq!(&history[..slot.len()], slot.as_slice(), "{context}: the pin slot");
    for item in &slot {
        let copies = history.iter().filter(|other| *other == item).count();
        assert_eq!(copies, 1, "{context}: {item:?} is in the history {copies} times");
    }
}

/// The receipts of the rollout's `compacted` lines, in order.
fn receipts(lines: &[RolloutLine]) -> Vec<CompactionReceipt> {
    lines
        .iter()
        .filter_map(|line| match &line.item {
            RolloutItem::Compacted(compacted) => Some(compacted.receipt.as_deref().cloned()),
            _ => None,
        })
        .map(|receipt| receipt.expect("every compacted line carries its receipt"))
        .collect()
}

/// What a reader that knows neither pins nor receipts makes of the rollout: the same bytes with
/// the new payload fields removed and `pins` lines of a type it does not know.
fn as_an_older_reader(bytes: &[u8]) -> Vec<ResponseItem> {
    let text = std::str::from_utf8(bytes).unwrap();
    let older: String = text
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).unwrap();
            if value["type"] == "compacted" {
                let payload = value["payload"].as_object_mut().unwrap();
                payload.remove("pins");
                payload.remove("receipt");
            } else if value["type"] == "pins" {
                value["type"] = Value::from("a_type_from_the_future");
            }
            format!("{value}\n")
        })
        .collect();
    let contents = parse_rollout(older.as_bytes());
    assert!(contents.report.is_clean());
    assert!(
        contents.lines.iter().all(|line| !matches!(line.item, RolloutItem::Pins(_))),
        "the older reader sees no pins line"
    );
    reconstruct_history_from_rollout(&contents.lines, &compactor_engine::rebuild_legacy_compacted)
        .history
}

/// Pin one item and one note, compact twice, resume: both are verbatim in the pin slot each
/// time, the receipts add up, and an older reader rebuilds the same history.
async fn pins_survive_compactions_and_resume(kind: Kind) {
    let mut h = harness(kind, |_| {}).await;
    h.turn("run step 0: write the parser").await.unwrap();
    let item = user_message(&h.session.history(), "run step 0: write the parser");
    let item_pin = bounded(h.session.pin_item(&item)).await.unwrap();
    let note_pin = bounded(h.session.pin_note("never touch vendor/")).await.unwrap();
    assert_eq!((item_pin.to_string(), note_pin.to_string()), ("pin-1".into(), "pin-2".into()));
    let pins = h.session.pins();
    assert_eq!(pins.len(), 2);

    h.turn("run step 1: add tests").await.unwrap();
    h.compact().await.unwrap_or_else(|e| panic!("{kind:?}: first compaction: {e}"));
    assert_pin_slot(&h.session.history(), &pins, "after the first compaction");
    // Until this compaction the note was in no history: remote compaction sent it as input, local
    // compaction kept it from its summarizer.
    let note = "never touch vendor/";
    let sent = h.server.requests().iter().any(|r| r.body_contains_text(note))
        || h.server
            .connections()
            .iter()
            .flat_map(|c| c.messages.iter())
            .any(|m| m.text.contains(note));
    if !matches!(kind, Kind::Prune) {
        assert_eq!(sent, !matches!(kind, Kind::Local), "{kind:?}: the note as input");
    }
    h.turn("run step 2: document it").await.unwrap();
    h.compact().await.unwrap_or_else(|e| panic!("{kind:?}: second compaction: {e}"));
    let live = h.session.history();
    assert_pin_slot(&live, &pins, "after the second compaction");
    if matches!(kind, Kind::V2Ws | Kind::V2Http) {
        assert!(live.last().is_some_and(is_compaction_item), "{live:#?}");
        assert_eq!(live.iter().filter(|item| is_compaction_item(item)).count(), 1);
    }

    let lines = h.rollout_lines().await;
    let receipts = receipts(&lines);
    assert_eq!(receipts.len(), 2);
    for receipt in &receipts {
        assert_eq!(receipt.status, ReceiptStatus::Completed);
        assert_eq!(receipt.implementation, kind.implementation());
        assert!(receipt.adds_up(), "{kind:?}: {:#?}", receipt.totals);
        assert_eq!(receipt.pins.len(), 2);
    }
    assert!(receipts[1].items.iter().any(|item| item.outcome == ItemOutcome::Pinned));

    // Resume: the same pins and history; an older reader rebuilds the same history too.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("rollout.jsonl");
    std::fs::copy(h.rollout_path(), &copy).unwrap();
    let bytes = std::fs::read(&copy).unwrap();
    assert_eq!(as_an_older_reader(&bytes), live, "{kind:?}: the older reader's history");
    let config = kind.config(&h.server, copy_dir.path());
    let (resumed, _events) = bounded(Session::builder(config).resume(&copy)).await.unwrap();
    assert_eq!(resumed.pins(), pins);
    assert_eq!(resumed.history(), live);
    bounded(resumed.shutdown()).await.unwrap();
    h.server.assert_no_violations();
}

#[tokio::test]
async fn pins_survive_compactions_and_resume_v2_websocket() {
    pins_survive_compactions_and_resume(Kind::V2Ws).await;
}

#[tokio::test]
async fn pins_survive_compactions_and_resume_v2_http() {
    pins_survive_compactions_and_resume(Kind::V2Http).await;
}

#[tokio::test]
async fn pins_survive_compactions_and_resume_v1() {
    pins_survive_compactions_and_resume(Kind::V1).await;
}

#[tokio::test]
async fn pins_survive_compactions_and_resume_local() {
    pins_survive_compactions_and_resume(Kind::Local).await;
}

#[tokio::test]
async fn pins_survive_compactions_and_resume_prune() {
    pins_survive_compactions_and_resume(Kind::Prune).await;
}

#[tokio::test]
async fn pins_over_the_budget_fail_naming_the_pinned_tokens_and_install_nothing() {
    let mut h = harness(Kind::V2Http, |config| {
        config.compaction.retained_budget_tokens = Some(50);
    })
    .await;
    h.turn("write the parser").await.unwrap();
    bounded(h.session.pin_note("a long note ".repeat(100))).await.unwrap();
    let before = h.snapshot().await;
    let requests = h.server.requests().len();
    let error = h.compact().await.unwrap_err();
    let CompactorError::PinsOverBudget { pinned_tokens, budget_tokens } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*budget_tokens, 50);
    assert!(*pinned_tokens > 50, "{pinned_tokens}");
    assert!(error.to_string().contains(&pinned_tokens.to_string()), "{error}");
    assert_eq!(h.snapshot().await, before, "nothing was installed");
    assert_eq!(h.server.requests().len(), requests, "nothing was sent");
}

#[tokio::test]
async fn rollback_of_a_turn_removes_the_pins_it_made_and_fork_keeps_pins() {
    let mut h = harness(Kind::V2Http, |_| {}).await;
    h.turn("first task").await.unwrap();
    let kept = bounded(h.session.pin_note("kept: made in the first turn")).await.unwrap();
    h.turn("second task").await.unwrap();
    let gone = bounded(h.session.pin_note("gone: made in the second turn")).await.unwrap();
    assert_eq!(h.session.pins().len(), 2);

    bounded(h.session.rollback(1)).await.unwrap();
    let ids: Vec<_> = h.session.pins().iter().map(|pin| pin.id).collect();
    assert_eq!(ids, vec![kept]);
    // An id is never given again, not even after a rollback.
    let next = bounded(h.session.pin_note("after the rollback")).await.unwrap();
    assert!(next.number() > gone.number(), "{next} after {gone}");

    h.compact().await.unwrap();
    let pins = h.session.pins();
    let fork_path = h.dir.path().join("fork.jsonl");
    bounded(h.session.fork(&fork_path, 0)).await.unwrap();
    let config = Kind::V2Http.config(&h.server, h.dir.path());
    let (forked, _events) = bounded(Session::builder(config).resume(&fork_path)).await.unwrap();
    assert_eq!(forked.pins(), pins);
    assert_eq!(forked.history(), h.session.history());
    assert_pin_slot(&forked.history(), &pins, "the fork");
    bounded(forked.shutdown()).await.unwrap();
}

/// A receipt without what only the real compaction knows: its ids and status.
fn comparable(receipt: &CompactionReceipt) -> CompactionReceipt {
    CompactionReceipt {
        compaction_id: String::new(),
        status: ReceiptStatus::Completed,
        request_id: None,
        response_id: None,
        ..receipt.clone()
    }
}

#[tokio::test]
async fn a_prune_preview_is_the_receipt_and_history_the_compaction_installs() {
    let mut h = harness(Kind::Prune, |_| {}).await;
    h.turn("run step 0").await.unwrap();
    bounded(h.session.pin_note("never touch vendor/")).await.unwrap();
    h.turn("run step 1").await.unwrap();
    let before = h.session.history();
    let preview = bounded(h.session.preview_compaction(&PreviewOptions::default())).await.unwrap();
    assert_eq!(preview.receipt.status, ReceiptStatus::Preview);
    assert!(preview.exact && preview.request.is_none());
    assert_eq!(h.session.history(), before, "a preview installs nothing");

    h.compact().await.unwrap();
    let receipt = receipts(&h.rollout_lines().await).pop().unwrap();
    assert_eq!(comparable(&preview.receipt), comparable(&receipt));
    assert_eq!(preview.history, h.session.history());
}

#[tokio::test]
async fn a_remote_preview_agrees_with_the_compaction_except_the_summarized_part() {
    let mut h = harness(Kind::V2Http, |_| {}).await;
    h.turn("run step 0").await.unwrap();
    bounded(h.session.pin_note("never touch vendor/")).await.unwrap();
    h.turn("run step 1").await.unwrap();
    let lines_before = h.rollout_lines().await.len();
    let requests_before = h.server.requests().len();
    let preview = bounded(h.session.preview_compaction(&PreviewOptions::default())).await.unwrap();
    assert!(!preview.exact);
    assert_eq!(h.server.requests().len(), requests_before, "a preview sends nothing");
    assert_eq!(h.rollout_lines().await.len(), lines_before, "a preview writes nothing");

    h.compact().await.unwrap();
    let sent = h.server.requests().last().unwrap().body_json().clone();
    let previewed: Value = serde_json::from_str(preview.request.as_deref().unwrap()).unwrap();
    assert_eq!(previewed["input"], sent["input"], "the request the preview would send");
    let receipt = receipts(&h.rollout_lines().await).pop().unwrap();
    assert_eq!(preview.receipt.items.len(), receipt.items.len());
    for (index, (previewed, real)) in preview.receipt.items.iter().zip(&receipt.items).enumerate() {
        let summarized = real.outcome == ItemOutcome::Summarized;
        assert!(previewed == real || summarized, "item {index}: {previewed:?} vs {real:?}");
    }
    // The retained part is the installed history without the new compaction item.
    let installed = h.session.history();
    assert!(installed.last().is_some_and(is_compaction_item), "{installed:#?}");
    assert_eq!(preview.history, installed[..installed.len() - 1]);
}

#[tokio::test]
async fn every_attempt_emits_a_receipt_and_only_the_installed_one_is_persisted() {
    // v2's retained budget cannot hold the note; local's budget can: v2 is refused, local installs.
    let mut h = harness(Kind::V2Http, |config| {
        config.compaction.retained_budget_tokens = Some(50);
        config.compaction.chain = vec![
            CompactionImplementation::ResponsesCompactionV2,
            CompactionImplementation::Responses,
        ];
    })
    .await;
    h.turn("write the parser").await.unwrap();
    bounded(h.session.pin_note("a long note ".repeat(30))).await.unwrap();
    h.compact().await.unwrap();

    let emitted: Vec<CompactionReceipt> = h
        .seen
        .iter()
        .filter_map(|event| match event {
            compactor_protocol::EventMsg::CompactionReceipt { receipt } => {
                Some((**receipt).clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(emitted.len(), 2, "{emitted:#?}");
    let (failed, installed) = (&emitted[0], &emitted[1]);
    assert_eq!(failed.status, ReceiptStatus::Failed);
    assert_eq!(failed.implementation, CompactionImplementation::ResponsesCompactionV2);
    assert!(
        failed.error.as_deref().is_some_and(|e| e.contains("the pins take")),
        "{:?}",
        failed.error
    );
    assert!(failed.items.iter().all(|item| item.outcome == ItemOutcome::KeptVerbatim));
    assert!(failed.adds_up());
    assert_eq!(installed.status, ReceiptStatus::Completed);
    assert_eq!(installed.implementation, CompactionImplementation::Responses);
    assert_eq!(installed.compaction_id, failed.compaction_id, "one chain, one compaction id");
    assert_eq!((failed.chain_position, installed.chain_position), (1, 2));

    let persisted = receipts(&h.rollout_lines().await);
    assert_eq!(persisted, vec![installed.clone()], "only the installed receipt is persisted");

    let analytics = h.analytics_events(2).await;
    let totals: Vec<_> = analytics.iter().map(|event| event.receipt).collect();
    assert_eq!(totals, vec![Some(failed.totals), Some(installed.totals)]);
}
