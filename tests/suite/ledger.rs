//! The progress ledger in sessions: exactly one ledger message in every compacted history,
//! whatever compacted it, right after the pins; the same ledger after resume, rollback and fork
//! as in a live session that ran the same turns.

use compactor_analytics::{AnalyticsClient, AnalyticsConfig, MemorySink};
use compactor_core::{ProgressLedger, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler};
use compactor_engine::{Ledger, is_ledger_message};
use compactor_protocol::tokens::estimate_item_tokens;
use compactor_protocol::{
    CompactionImplementation, CompactionPhase, ContextManagement, ResponseItem, RolloutItem,
    ToolOutput, pin_slot_items,
};
use compactor_rollout_trace::parse_rollout;
use compactor_testkit::{Mode, ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};
use pretty_assertions::assert_eq;

use crate::common::{Harness, Options, Transport, bounded, session_config};

/// Every `run` turn makes the reference model call `shell` with this command.
const COMMAND: &str = "cargo build --workspace";

/// Answers every call as a shell that ran it successfully, with `padding` bytes of log.
struct Shell {
    padding: usize,
}

impl ToolHandler for Shell {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        let log = "compiling crate\n".repeat(self.padding / 16);
        Box::pin(std::future::ready(ToolOutput::Text(format!("Exit code: 0\nOutput:\n{log}"))))
    }
}

async fn server(reply_padding_bytes: usize) -> TestServer {
    TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(ReferenceModelConfig {
            tool_calls: ToolCallPolicy::OnUserText {
                trigger: "run".into(),
                name: "shell".into(),
                arguments: serde_json::json!({ "command": COMMAND }).to_string(),
            },
            reply_padding_bytes,
            ..ReferenceModelConfig::default()
        }),
        ..TestServerConfig::default()
    })
    .await
    .unwrap()
}

fn config(server: &TestServer, dir: &std::path::Path, transport: Transport) -> SessionConfig {
    let options = Options { transport, response_processed: false, context_window: 100_000 };
    session_config(server, dir, &options)
}

async fn start(server: TestServer, config: SessionConfig, dir: tempfile::TempDir) -> Harness {
    start_with(server, config, dir, 4_000).await
}

/// [`start`] with tool outputs of `padding` bytes.
async fn start_with(
    server: TestServer,
    config: SessionConfig,
    dir: tempfile::TempDir,
    padding: usize,
) -> Harness {
    let analytics = MemorySink::default();
    let client =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
            .unwrap();
    let (session, events) =
        bounded(Session::builder(config).tools(Shell { padding }).analytics(client).build())
            .await
            .unwrap();
    Harness::from_parts(server, session, events, analytics, dir)
}

/// A session whose compactions all go through `implementation`.
async fn session_with(implementation: CompactionImplementation) -> Harness {
    let server = server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path(), Transport::Http);
    config.compaction.chain = vec![implementation];
    // Prune removes every tool output it may: none is protected, and its target is small.
    config.compaction.prune.protected_user_turns = 0;
    config.compaction.prune.target_percent = 1;
    Box::pin(start(server, config, dir)).await
}

fn ledger_messages(items: &[ResponseItem]) -> Vec<String> {
    items
        .iter()
        .filter(|item| is_ledger_message(item))
        .filter_map(ResponseItem::message_text)
        .collect()
}

/// The input of the newest request the server saw.
fn last_input(h: &Harness) -> Vec<ResponseItem> {
    let requests = h.server.responses_requests();
    let body = requests.last().unwrap().body_json();
    serde_json::from_value(body["input"].clone()).unwrap()
}

/// The one ledger message of `items`, which lists the command of the `run` turns.
fn the_one_ledger(items: &[ResponseItem], context: &str) -> String {
    let ledgers = ledger_messages(items);
    assert_eq!(ledgers.len(), 1, "{context}: {ledgers:#?}");
    assert!(
        ledgers[0].contains(&format!("- turn 1: {COMMAND} (exit 0)")),
        "{context}: {}",
        ledgers[0]
    );
    ledgers[0].clone()
}

#[tokio::test]
async fn every_implementation_lays_out_exactly_one_ledger_message() {
    for implementation in [
        CompactionImplementation::ResponsesCompactionV2,
        CompactionImplementation::ResponsesCompact,
        CompactionImplementation::Responses,
        CompactionImplementation::Prune,
    ] {
        let context = implementation.name();
        let mut h = session_with(implementation).await;
        h.turn("run the build").await.unwrap();
        // Nothing was compacted yet: no ledger message anywhere.
        assert!(ledger_messages(&h.session.history()).is_empty(), "{context}");
        h.compact().await.unwrap();
        the_one_ledger(&h.session.history(), context);
        h.turn("what did the build say?").await.unwrap();
        the_one_ledger(&last_input(&h), context);

        // Two compactions in a row: the second render replaces the first.
        h.turn("run it again").await.unwrap();
        h.compact().await.unwrap();
        let second = h.compact().await;
        if implementation == CompactionImplementation::Prune {
            // Prune removed every tool output the first time: the second finds nothing to
            // remove, fails, and leaves the history with its one ledger message.
            assert!(second.is_err(), "{context}");
        } else {
            second.unwrap();
        }
        h.turn("thanks").await.unwrap();
        let ledger = the_one_ledger(&last_input(&h), context);
        assert!(ledger.contains(&format!("- turn 3: {COMMAND} (exit 0)")), "{context}: {ledger}");
        let compactions = if implementation == CompactionImplementation::Prune { 2 } else { 3 };
        assert_eq!(h.session.window_generation(), compactions, "{context}");
        h.server.assert_no_violations();
    }
}

#[tokio::test]
async fn server_managed_compaction_lays_out_exactly_one_ledger_message() {
    let server = server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path(), Transport::Http);
    config.context_management =
        Some(vec![ContextManagement::Compaction { compact_threshold: 2_000 }]);
    let analytics = MemorySink::default();
    let client =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
            .unwrap();
    let (session, events) = Session::builder(config)
        .tools(Shell { padding: 9_000 })
        .analytics(client)
        .build()
        .await
        .unwrap();
    let mut h = Harness::from_parts(server, session, events, analytics, dir);
    h.turn("run the build").await.unwrap();
    h.turn("what did the build say?").await.unwrap();
    let compactions = h.analytics_events(1).await;
    assert_eq!(compactions[0].implementation, CompactionImplementation::ServerManaged);
    the_one_ledger(&last_input(&h), "after one");
    // A second server compaction replaces the first render.
    h.turn("run it again").await.unwrap();
    h.turn("thanks").await.unwrap();
    assert_eq!(h.analytics_events(2).await.len(), 2);
    let ledger = the_one_ledger(&last_input(&h), "after two");
    assert!(ledger.contains(&format!("- turn 3: {COMMAND} (exit 0)")), "{ledger}");
    the_one_ledger(&h.session.history(), "history");
    h.server.assert_no_violations();
}

#[tokio::test]
async fn pre_turn_compactions_lay_out_exactly_one_ledger_message() {
    // Prune is left out: it removes tool outputs only, and the answers fill this context.
    for implementation in [
        CompactionImplementation::ResponsesCompactionV2,
        CompactionImplementation::ResponsesCompact,
        CompactionImplementation::Responses,
    ] {
        let context = implementation.name();
        // Every answer is about 1 500 tokens as the reference model counts them (o200k): each turn
        // ends over the limit, so the next one starts with a compaction.
        let server = server(10_000).await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(&server, dir.path(), Transport::Http);
        config.compaction.chain = vec![implementation];
        // The loop guard compacts again once the context grew by a tenth of the window.
        config.model.context_window = Some(10_000);
        config.model.auto_compact_token_limit = Some(1_200);
        let mut h = start_with(server, config, dir, 200).await;
        h.turn("run the build").await.unwrap();
        h.turn("what did the build say?").await.unwrap();
        the_one_ledger(&last_input(&h), context);
        h.turn("and then?").await.unwrap();
        let compactions = h.analytics_events(2).await;
        assert!(
            compactions.iter().all(|c| c.phase == CompactionPhase::PreTurn),
            "{context}: {compactions:#?}"
        );
        the_one_ledger(&last_input(&h), context);
        the_one_ledger(&h.session.history(), context);
        h.server.assert_no_violations();
    }
}

#[tokio::test]
async fn the_ledger_follows_the_pins_and_goes_beside_them_in_the_compacted_line() {
    for implementation in [
        CompactionImplementation::ResponsesCompactionV2,
        CompactionImplementation::ResponsesCompact,
        CompactionImplementation::Responses,
        CompactionImplementation::Prune,
    ] {
        let context = implementation.name();
        let mut h = session_with(implementation).await;
        bounded(h.session.pin_note("never edit vendor/")).await.unwrap();
        h.turn("run the build").await.unwrap();
        h.compact().await.unwrap();
        // The pin slot first, then the ledger slot.
        let slot = pin_slot_items(&h.session.pins());
        let history = h.session.history();
        assert_eq!(history[..slot.len()], slot[..], "{context}");
        assert!(is_ledger_message(&history[slot.len()]), "{context}: {history:#?}");
        the_one_ledger(&history, context);

        // The `compacted` line carries the pins, the receipt and the ledger, each its own field.
        let contents = parse_rollout(&std::fs::read(h.rollout_path()).unwrap());
        let compacted = contents
            .lines
            .iter()
            .find_map(|line| match &line.item {
                RolloutItem::Compacted(compacted) => Some(compacted.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(compacted.pins.as_deref(), Some(&h.session.pins()[..]), "{context}");
        assert!(compacted.receipt.is_some(), "{context}");
        assert_eq!(compacted.ledger.as_deref(), Some(h.session.ledger().snapshot()), "{context}");

        // Resume restores both, and the history they are laid out in.
        let live = (h.session.pins(), h.session.ledger(), h.session.history());
        h.session.shutdown().await.unwrap();
        let Harness { server, dir, .. } = h;
        let mut config = config(&server, dir.path(), Transport::Http);
        config.compaction.chain = vec![implementation];
        let resumed = Harness::resume(server, config, dir).await;
        let session = &resumed.session;
        assert_eq!((session.pins(), session.ledger(), session.history()), live, "{context}");
    }
}

#[tokio::test]
async fn pins_that_fit_are_never_refused_because_of_the_ledger() {
    const BUDGET: u64 = 400;
    let server = server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path(), Transport::Http);
    config.compaction.chain = vec![CompactionImplementation::ResponsesCompactionV2];
    config.compaction.retained_budget_tokens = Some(BUDGET);
    let mut h = start(server, config, dir).await;
    // A pin that takes most of the budget, leaving less than the ledger of four builds needs.
    bounded(h.session.pin_note("keep the public API stable; ".repeat(50))).await.unwrap();
    for _ in 0..4 {
        h.turn("run the build").await.unwrap();
    }
    let slot = pin_slot_items(&h.session.pins());
    let pinned: u64 = slot.iter().map(estimate_item_tokens).sum();
    let ledger = h.session.ledger().render(BUDGET / 2).unwrap();
    assert!(pinned < BUDGET && pinned + estimate_item_tokens(&ledger) > BUDGET, "{pinned}");

    h.compact().await.unwrap();
    let history = h.session.history();
    assert_eq!(history[..slot.len()], slot[..]);
    // The ledger got what the pins left of the budget, or nothing.
    let ledgers: u64 =
        history.iter().filter(|item| is_ledger_message(item)).map(estimate_item_tokens).sum();
    assert!(pinned + ledgers <= BUDGET, "{pinned} pinned, {ledgers} of ledger");
}

#[tokio::test]
async fn the_ledger_can_be_turned_off() {
    let server = server(0).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&server, dir.path(), Transport::Http);
    config.compaction.ledger = ProgressLedger::Off;
    let mut h = start(server, config, dir).await;
    h.turn("run the build").await.unwrap();
    h.session.set_open_items(["ship it"]).await.unwrap();
    h.compact().await.unwrap();
    h.turn("thanks").await.unwrap();
    assert!(ledger_messages(&last_input(&h)).is_empty());
    assert_eq!(h.session.ledger(), Ledger::default());
    assert!(!std::fs::read_to_string(h.rollout_path()).unwrap().contains("ledger"));
}

/// The turns both sessions of a restore test run; `run` turns call the shell.
const TURNS: [&str; 5] =
    ["run the build", "what did it say?", "run the tests", "run it once more", "run the linter"];

/// Runs `turns` of [`TURNS`] with a compaction after the first and open items set after the
/// second.
async fn run_turns(h: &mut Harness, turns: usize) {
    for (n, text) in TURNS.iter().take(turns).enumerate() {
        h.turn(text).await.unwrap();
        if n == 0 {
            h.compact().await.unwrap();
        }
        if n == 1 {
            bounded(h.session.set_open_items(["fix the flaky test", "update the changelog"]))
                .await
                .unwrap();
        }
    }
}

/// A live session that ran the first `turns` turns, and its ledger.
async fn live_ledger(turns: usize) -> Ledger {
    let mut h = session_with(CompactionImplementation::ResponsesCompactionV2).await;
    run_turns(&mut h, turns).await;
    let ledger = h.session.ledger();
    assert!(ledger.has_progress());
    assert_eq!(ledger.open_items().len(), 2);
    ledger
}

#[tokio::test]
async fn resume_restores_the_ledger_exactly() {
    let mut h = session_with(CompactionImplementation::ResponsesCompactionV2).await;
    run_turns(&mut h, TURNS.len()).await;
    let live = h.session.ledger();
    assert_eq!(live.snapshot().commands.len(), 4);
    h.session.shutdown().await.unwrap();
    let Harness { server, dir, .. } = h;
    let config = config(&server, dir.path(), Transport::Http);
    let resumed = Harness::resume(server, config, dir).await;
    assert_eq!(resumed.session.ledger(), live);
    assert_eq!(resumed.session.ledger(), Box::pin(live_ledger(TURNS.len())).await);
}

#[tokio::test]
async fn rollback_of_two_turns_restores_the_ledger_of_the_turns_before() {
    let mut h = session_with(CompactionImplementation::ResponsesCompactionV2).await;
    run_turns(&mut h, TURNS.len()).await;
    bounded(h.session.rollback(2)).await.unwrap();
    let rolled_back = h.session.ledger();
    assert_eq!(rolled_back.snapshot().commands.len(), 2);
    assert_eq!(rolled_back, Box::pin(live_ledger(TURNS.len() - 2)).await);
}

#[tokio::test]
async fn a_fork_restores_the_ledger_of_the_turns_it_keeps() {
    let mut h = session_with(CompactionImplementation::ResponsesCompactionV2).await;
    run_turns(&mut h, TURNS.len()).await;
    let path = h.dir.path().join("fork.jsonl");
    bounded(h.session.fork(&path, 1)).await.unwrap();
    let config = config(&h.server, h.dir.path(), Transport::Http);
    let (fork, _events) = bounded(Session::builder(config).resume(&path)).await.unwrap();
    assert_eq!(fork.ledger().snapshot().commands.len(), 3);
    assert_eq!(fork.ledger(), Box::pin(live_ledger(TURNS.len() - 1)).await);
}
