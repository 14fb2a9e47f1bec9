//! Token counts a user can trust (D120-D126): counts cached beside the history survive rollback,
//! fork and resume; they never reach the wire; calibration survives resume; and the estimates
//! against the reference model's o200k usage, per kind of content.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use compactor_analytics::MemorySink;
use compactor_core::{Calibration, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler};
use compactor_engine::{HistoryCounts, ItemCounter};
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{EventMsg, PassThroughList, RolloutItem, ToolOutput, pin_slot_items};
use compactor_testkit::workload::{ContentKind, ErrorSummary, kind_text, request_estimates};
use compactor_testkit::{Mode, ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use crate::common::{Harness, Options, Transport, bounded, session_config};

/// The word that makes the reference model call the tool.
const TRIGGER: &str = "inspect";

/// A tool whose outputs are text of one kind, of a size that grows with each call.
#[derive(Debug, Clone)]
struct KindTool {
    kind: ContentKind,
    bytes: usize,
    calls: Arc<AtomicU64>,
}

impl ToolHandler for KindTool {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let bytes = self.bytes + (index as usize % 5) * self.bytes / 4;
        Box::pin(std::future::ready(ToolOutput::Text(kind_text(self.kind, index, bytes))))
    }
}

async fn server() -> TestServer {
    let model = ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: TRIGGER.to_owned(),
            name: "shell".to_owned(),
            arguments: r#"{"command":"cat the file"}"#.to_owned(),
        },
        ..ReferenceModelConfig::default()
    };
    TestServer::start(TestServerConfig { mode: Mode::ReferenceModel(model), ..Default::default() })
        .await
        .unwrap()
}

fn config(server: &TestServer, dir: &std::path::Path, counter: TokenCounter) -> SessionConfig {
    let options =
        Options { transport: Transport::Http, context_window: 60_000, ..Options::default() };
    let mut config = session_config(server, dir, &options);
    config.tokens.counter = counter;
    config.tools = vec![json!({
        "type": "function", "name": "shell", "description": "Runs a command.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    })];
    config
}

async fn harness(counter: TokenCounter, kind: ContentKind, bytes: usize) -> Harness {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(&server, dir.path(), counter);
    let tool = KindTool { kind, bytes, calls: Arc::default() };
    let (session, events) =
        Session::builder(config).thread_id("thread-tokens").tools(tool).build().await.unwrap();
    Harness::from_parts(server, session, events, MemorySink::default(), dir)
}

fn prompt(turn: usize) -> String {
    format!("Please {TRIGGER} part {turn} of the code and tell me what it does.")
}

/// What counting `session`'s history from scratch gives.
fn counted_from_scratch(session: &Session, counter: TokenCounter) -> Vec<u64> {
    let pass_through = PassThroughList::default();
    HistoryCounts::new(&session.history(), &ItemCounter { counter, pass_through: &pass_through })
        .iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cached_counts_survive_rollback_fork_and_resume() {
    let mut h = harness(TokenCounter::O200k, ContentKind::Code, 3_000).await;
    for turn in 0..4 {
        h.turn(&prompt(turn)).await.unwrap();
    }
    let live = h.session.item_token_counts();
    assert_eq!(live.len(), h.session.history().len());
    assert_eq!(live, counted_from_scratch(&h.session, TokenCounter::O200k));

    bounded(h.session.rollback(1)).await.unwrap();
    let rolled_back = h.session.item_token_counts();
    assert!(rolled_back.len() < live.len());
    assert_eq!(rolled_back, live[..rolled_back.len()], "rollback");
    assert_eq!(rolled_back, counted_from_scratch(&h.session, TokenCounter::O200k));

    let fork_path = h.dir.path().join("fork.jsonl");
    bounded(h.session.fork(&fork_path, 1)).await.unwrap();
    // A resume takes the rollout's writer lock: the live session lets go of it first.
    let config = h.session.config().clone();
    h.session.shutdown().await.unwrap();
    let resumed = |path: std::path::PathBuf| {
        let config = config.clone();
        async move { bounded(Session::builder(config).resume(&path)).await.unwrap().0 }
    };
    let resumed_session = resumed(h.rollout_path()).await;
    assert_eq!(resumed_session.item_token_counts(), rolled_back, "resume");
    resumed_session.shutdown().await.unwrap();
    let forked = resumed(fork_path).await;
    let forked_counts = forked.item_token_counts();
    assert!(!forked_counts.is_empty());
    assert_eq!(forked_counts.len(), forked.history().len());
    assert_eq!(forked_counts, counted_from_scratch(&forked, TokenCounter::O200k), "fork");
    forked.shutdown().await.unwrap();
    h.server.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_carries_no_count_on_the_wire() {
    let mut h = harness(TokenCounter::O200k, ContentKind::Json, 600).await;
    h.turn(&prompt(1)).await.unwrap();
    assert!(h.session.item_token_counts().iter().all(|count| *count > 0));
    let requests = h.server.responses_requests();
    let mut last = requests.last().unwrap().body_json().clone();
    // The tool output is long generated JSON; its shape, not its text, is what this checks.
    for item in last["input"].as_array_mut().unwrap() {
        if item["type"] == "function_call_output" {
            item["output"] = json!("[tool output]");
        }
    }
    fn keys(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.iter().for_each(|(key, value)| {
                out.push(key.clone());
                keys(value, out);
            }),
            Value::Array(values) => values.iter().for_each(|value| keys(value, out)),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    let mut names = Vec::new();
    keys(&last["input"], &mut names);
    assert!(!names.iter().any(|name| name.contains("token")), "{names:?}");
    insta::assert_json_snapshot!("request_input_without_counts", last["input"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn calibration_survives_resume() {
    let mut h = harness(TokenCounter::Bytes4, ContentKind::Json, 3_000).await;
    for turn in 0..3 {
        h.turn(&prompt(turn)).await.unwrap();
    }
    let live = h.session.token_usage_info();
    let calibration = live.calibration.expect("reported usage calibrates a bytes4 session");
    // JSON packs fewer bytes into a token than four: the session learned to count up.
    assert!(calibration.ratio() > 1.05, "{calibration:?}");
    // A resume takes the rollout's writer lock: the live session lets go of it first.
    h.session.shutdown().await.unwrap();
    let (resumed, _events) =
        bounded(Session::builder(h.session.config().clone()).resume(&h.rollout_path()))
            .await
            .unwrap();
    let restored = resumed.token_usage_info();
    assert_eq!(restored.calibration, Some(calibration));
    assert_eq!(restored.calibration.unwrap().ratio(), calibration.ratio());
    resumed.shutdown().await.unwrap();
}

/// The auto-compact limit of the sessions measured here: 90% of their 60 000-token window.
const LIMIT: i64 = 54_000;

/// The estimate errors of one session of `kind` with `counter`, calibrated or not: over every
/// request but the first (which has nothing to learn from), and over the requests near the
/// auto-compact limit (at least half of it), where the decisions are made.
async fn errors(
    counter: TokenCounter,
    calibration: Calibration,
    kind: ContentKind,
) -> (ErrorSummary, ErrorSummary) {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path(), counter);
    config.tokens.calibration = calibration;
    let tool = KindTool { kind, bytes: 6_000, calls: Arc::default() };
    let (session, events) = Session::builder(config).tools(tool).build().await.unwrap();
    let mut h = Harness::from_parts(server, session, events, MemorySink::default(), dir);
    for turn in 0..24 {
        h.turn(&prompt(turn)).await.unwrap();
    }
    let seen: Vec<&EventMsg> = h.seen.iter().collect();
    let requests = request_estimates(seen);
    assert!(requests.len() >= 48, "{}", requests.len());
    h.server.assert_no_violations();
    let near: Vec<_> =
        requests.iter().copied().filter(|request| request.reported >= LIMIT / 2).collect();
    (ErrorSummary::of(&requests[1..]), ErrorSummary::of(&near))
}

#[tokio::test(flavor = "multi_thread")]
async fn calibrated_bytes4_tracks_reported_usage_for_every_kind_of_content() {
    let mut table = String::from(
        "kind         bytes4 (all / near the limit)         calibrated (all / near the limit)\n",
    );
    for kind in ContentKind::ALL {
        let (raw, raw_near) = errors(TokenCounter::Bytes4, Calibration::Off, kind).await;
        let (calibrated, near) = errors(TokenCounter::Bytes4, Calibration::On, kind).await;
        let (exact, _) = errors(TokenCounter::O200k, Calibration::On, kind).await;
        table.push_str(&format!(
            "{:<12} mean {:>5.2}% max {:>5.2}% / max {:>5.2}%   mean {:>5.2}% max {:>5.2}% / mean {:>5.2}% max {:>5.2}%\n",
            kind.name(),
            raw.mean_percent,
            raw.max_percent,
            raw_near.max_percent,
            calibrated.mean_percent,
            calibrated.max_percent,
            near.mean_percent,
            near.max_percent,
        ));
        assert!(near.requests >= 10, "{table}");
        assert!(calibrated.mean_percent <= 3.0, "{table}");
        assert!(near.mean_percent <= 3.0 && near.max_percent <= 10.0, "{table}");
        assert!(calibrated.mean_percent < raw.mean_percent, "calibration helps\n{table}");
        // The reference model counts with o200k, so o200k agrees by construction.
        assert!(exact.max_percent < 0.01, "{table}");
    }
    tracing::info!("estimate errors against reported usage\n{table}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pins_receipts_and_installed_counts_use_the_session_counter() {
    let mut h = harness(TokenCounter::O200k, ContentKind::NonEnglish, 2_000).await;
    for turn in 0..2 {
        h.turn(&prompt(turn)).await.unwrap();
    }
    // Russian: o200k counts about half of what four bytes per token does.
    let note = "Не меняй публичный API без согласования с командой. ".repeat(20);
    bounded(h.session.pin_note(note)).await.unwrap();
    let before = h.session.history();
    h.compact().await.unwrap();

    let receipt = h
        .rollout_lines()
        .await
        .into_iter()
        .rev()
        .find_map(|line| match line.item {
            RolloutItem::Compacted(compacted) => compacted.receipt,
            _ => None,
        })
        .expect("the compaction's receipt");
    let exact: Vec<u64> = before.iter().map(|item| TokenCounter::O200k.item_tokens(item)).collect();
    let receipted: Vec<u64> = receipt.items.iter().map(|item| item.tokens).collect();
    assert_eq!(receipted, exact, "the receipt counts the items with o200k");
    let instructions = TokenCounter::O200k.text_tokens(&h.session.config().base_instructions);
    assert_eq!(receipt.totals.instructions, instructions);
    let slot = pin_slot_items(&h.session.pins());
    let pinned = TokenCounter::O200k.item_tokens(&slot[0]);
    assert_eq!(receipt.pins[0].tokens, pinned);
    assert!(pinned < TokenCounter::Bytes4.item_tokens(&slot[0]), "{pinned}");

    // The installed history, pin slot first, has its counts rebuilt with the same counter.
    let history = h.session.history();
    assert_eq!(history[0], slot[0]);
    assert_eq!(
        h.session.item_token_counts(),
        counted_from_scratch(&h.session, TokenCounter::O200k)
    );
    h.server.assert_no_violations();
}
