//! Long sessions that never wedge: the 300-turn soak over WebSocket and over HTTP, a session
//! whose retained user messages alone exceed the auto-compact limit, and truncation on record as
//! the harness and the server see it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use compactor_analytics::{AnalyticsClient, AnalyticsConfig, MemorySink};
use compactor_core::{Session, SessionConfig, ToolCall, ToolFuture, ToolHandler};
use compactor_engine::TruncationPolicy;
use compactor_protocol::{ContentItem, EventMsg, ResponseItem, RolloutItem, ToolOutput};
use compactor_testkit::workload::soak::{
    SOAK_CONTEXT_WINDOW, SOAK_CYCLE, SOAK_TURNS, Soak, soak_model_config,
};
use compactor_testkit::workload::{ErrorSummary, request_estimates};
use compactor_testkit::{Mode, ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};
use pretty_assertions::assert_eq;

use crate::common::{Harness, Options, Transport, bounded, session_config};

/// Answers the soak's tool calls with the output of the current turn.
#[derive(Clone)]
struct SoakTools {
    soak: Arc<Soak>,
    turn: Arc<AtomicUsize>,
}

impl ToolHandler for SoakTools {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        let turn = self.turn.load(Ordering::Relaxed);
        let bytes = self.soak.turn(turn).tool_output_bytes.unwrap_or(100);
        Box::pin(std::future::ready(ToolOutput::Text(self.soak.tool_output(turn, bytes))))
    }
}

/// Answers every tool call with the same output.
struct FixedOutput(Arc<String>);

impl ToolHandler for FixedOutput {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        Box::pin(std::future::ready(ToolOutput::Text(self.0.as_str().to_owned())))
    }
}

/// A reference-model server that records a violation for any request above `window` tokens.
async fn reference_server(model: ReferenceModelConfig, window: i64) -> TestServer {
    TestServer::start(TestServerConfig {
        mode: Mode::ReferenceModel(model),
        input_token_limit: Some(u64::try_from(window).unwrap()),
        ..TestServerConfig::default()
    })
    .await
    .unwrap()
}

/// A harness whose session runs `tools`.
async fn harness_with_tools(
    server: TestServer,
    config: SessionConfig,
    dir: tempfile::TempDir,
    tools: impl ToolHandler,
) -> Harness {
    let analytics = MemorySink::default();
    let client =
        AnalyticsClient::start(AnalyticsConfig::default(), vec![Box::new(analytics.clone())])
            .unwrap();
    let (session, events) =
        Session::builder(config).tools(tools).analytics(client).build().await.unwrap();
    Harness::from_parts(server, session, events, analytics, dir)
}

/// How many compactions the session installed.
fn compactions(events: &[EventMsg]) -> usize {
    events.iter().filter(|event| matches!(event, EventMsg::ContextCompacted {})).count()
}

async fn soak(transport: Transport) {
    let server = reference_server(soak_model_config(), SOAK_CONTEXT_WINDOW).await;
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport, response_processed: true, context_window: SOAK_CONTEXT_WINDOW };
    let config = session_config(&server, dir.path(), &options);
    let soak = Arc::new(Soak::default());
    let tools = SoakTools { soak: Arc::clone(&soak), turn: Arc::new(AtomicUsize::new(0)) };
    let mut h = harness_with_tools(server, config.clone(), dir, tools.clone()).await;

    // The rollout's size after each turn.
    let mut sizes = vec![std::fs::metadata(h.rollout_path()).unwrap().len()];
    for turn in 0..SOAK_TURNS {
        tools.turn.store(turn, Ordering::Relaxed);
        let outcome = bounded(h.session.run_turn(soak.turn(turn).input)).await;
        h.drain();
        if let Err(error) = outcome {
            panic!("turn {turn} failed: {error}; violations: {:?}", h.server.violations());
        }
        h.session.flush().await.unwrap();
        sizes.push(std::fs::metadata(h.rollout_path()).unwrap().len());
    }

    // Every turn completed with the model's answer.
    let answered = h
        .seen
        .iter()
        .filter(|event| matches!(event, EventMsg::TurnComplete { last_agent_message: Some(_), .. }))
        .count();
    assert_eq!(answered, SOAK_TURNS);
    // No request went over the window: the server checked each one, resolved.
    h.server.assert_no_violations();
    let compacted = compactions(&h.seen);
    let truncated =
        h.seen.iter().filter(|event| matches!(event, EventMsg::ToolOutputTruncated { .. })).count();
    assert!(compacted >= SOAK_TURNS / 10, "{compacted} compactions");
    assert!(truncated >= SOAK_TURNS / 10, "{truncated} truncated outputs");

    // The gate's estimates near the auto-compact limit, where it decides, against the usage the
    // reference model counted with o200k (D125): calibrated Bytes4, the library's default, stays
    // within 3% on average and 10% at worst.
    assert_eq!(config.tokens.counter, compactor_protocol::tokens::TokenCounter::Bytes4);
    let limit = config.model.auto_compact_limit();
    let requests = request_estimates(&h.seen);
    let near: Vec<_> =
        requests.iter().copied().filter(|request| request.reported >= limit / 2).collect();
    let errors = ErrorSummary::of(&near);
    let all = ErrorSummary::of(requests.get(1..).unwrap_or_default());
    tracing::info!(?errors, ?all, "soak estimate errors against reported usage");
    assert!(errors.requests >= SOAK_TURNS, "{errors:?}");
    assert!(errors.mean_percent <= 3.0 && errors.max_percent <= 10.0, "{errors:?}; all {all:?}");
    // Calibration is what keeps it there: measured 0.13% mean and 0.9% max, where plain Bytes4
    // (calibration off) measures 0.51% and 3.6% on the same workload.
    assert!(errors.mean_percent < 0.3 && errors.max_percent < 2.0, "{errors:?}; all {all:?}");

    // The rollout grows by as much per turn at the end as at the start.
    assert_eq!(SOAK_TURNS % SOAK_CYCLE, 0);
    let first = (sizes[100] - sizes[0]) as f64 / 100.0;
    let last = (sizes[SOAK_TURNS] - sizes[SOAK_TURNS - 100]) as f64 / 100.0;
    assert!(last <= first * 1.2, "{last:.0} bytes per turn at the end, {first:.0} at the start");

    // A resume at the end sees the live history.
    let live = h.session.history();
    h.session.shutdown().await.unwrap();
    let (resumed, _events) =
        bounded(Session::builder(config).resume(&h.rollout_path())).await.unwrap();
    assert!(resumed.history() == live, "the resumed history differs from the live one");
    resumed.shutdown().await.unwrap();
    bounded(h.server.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_over_websocket() {
    soak(Transport::Ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_over_http() {
    soak(Transport::Http).await;
}

#[tokio::test]
async fn retained_user_messages_over_the_limit_do_not_wedge_the_session() {
    let window = 100_000;
    let server = reference_server(ReferenceModelConfig::default(), window).await;
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport: Transport::Ws, response_processed: true, context_window: window };
    let mut config = session_config(&server, dir.path(), &options);
    // The retained budget (25 000 tokens) is over the auto-compact limit (10 000 tokens).
    config.model.auto_compact_token_limit = Some(10_000);
    let mut h = Harness::with_config(server, config, dir).await;
    // About 2 000 tokens each: five of them are over the limit.
    let message = |turn: usize| format!("turn {turn}: {}", "please keep this in mind ".repeat(320));
    for turn in 0..20 {
        h.turn(&message(turn)).await.unwrap_or_else(|error| panic!("turn {turn}: {error}"));
    }
    let answered = h
        .seen
        .iter()
        .filter(|event| matches!(event, EventMsg::TurnComplete { last_agent_message: Some(_), .. }))
        .count();
    assert_eq!(answered, 20, "every turn sampled and completed");
    let compacted = compactions(&h.seen);
    assert!((1..=5).contains(&compacted), "{compacted} compactions");
    assert!(!h.seen.iter().any(|event| matches!(event, EventMsg::Error(_))));
    // The retained user messages are still over the limit: compaction did not wedge on them.
    assert!(h.session.total_token_usage() >= 10_000);
    h.server.assert_no_violations();
}

#[tokio::test]
async fn a_truncated_tool_output_reaches_the_harness_the_model_and_the_rollout_cut() {
    let window = 100_000;
    let model = ReferenceModelConfig {
        tool_calls: ToolCallPolicy::OnUserText {
            trigger: "dump".into(),
            name: "dump_logs".into(),
            arguments: "{}".into(),
        },
        ..ReferenceModelConfig::default()
    };
    let server = reference_server(model, window).await;
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport: Transport::Http, response_processed: false, context_window: window };
    let mut config = session_config(&server, dir.path(), &options);
    config.model.tool_output_limit = TruncationPolicy::Tokens(1_000);
    let output = Arc::new(Soak::default().tool_output(7, 2_000_000));
    let mut h = harness_with_tools(server, config, dir, FixedOutput(Arc::clone(&output))).await;
    let outcome =
        bounded(h.session.run_turn(vec![ContentItem::InputText { text: "dump them".into() }]))
            .await;
    h.drain();
    outcome.unwrap();

    let (call_id, original, kept) = h
        .seen
        .iter()
        .find_map(|event| match event {
            EventMsg::ToolOutputTruncated { call_id, original_tokens, kept_tokens } => {
                Some((call_id.clone(), *original_tokens, *kept_tokens))
            }
            _ => None,
        })
        .expect("the harness hears of the cut");
    assert_eq!(original, (output.len() as u64).div_ceil(4));
    // 1 200 tokens of text with the slack, and the marker.
    assert!((1_200..1_210).contains(&kept), "{kept}");
    let recorded =
        h.session
            .history()
            .into_iter()
            .find_map(|item| match item {
                ResponseItem::FunctionCallOutput {
                    call_id: id,
                    output: ToolOutput::Text(text),
                } if id == call_id => Some(text),
                _ => None,
            })
            .unwrap();
    assert!(recorded.contains("tokens truncated…"));
    // The model got the cut output, and the rollout stores exactly it.
    let requests = h.server.responses_requests();
    let sent = requests.last().unwrap().function_call_output(&call_id).unwrap().clone();
    assert_eq!(sent["output"], recorded.as_str());
    let stored = h.rollout_lines().await.into_iter().any(|line| {
        matches!(&line.item, RolloutItem::ResponseItem(ResponseItem::FunctionCallOutput { output: ToolOutput::Text(text), .. }) if *text == recorded)
    });
    assert!(stored);
    assert_eq!(h.resumed_history().await, h.session.history());
}

#[tokio::test]
async fn a_paste_that_would_not_fit_compacts_the_history_before_it_is_recorded() {
    let window = 10_000;
    let server = reference_server(ReferenceModelConfig::default(), window).await;
    let dir = tempfile::tempdir().unwrap();
    let options =
        Options { transport: Transport::Ws, response_processed: true, context_window: window };
    let config = session_config(&server, dir.path(), &options);
    let mut h = Harness::with_config(server, config, dir).await;
    // Four messages of about 2 000 tokens (two o200k tokens a repeat, as the reference model
    // counts): about 8 300 tokens, under the 9 000-token limit.
    for turn in 0..4 {
        h.turn(&format!("note {turn}: {}", "remember this ".repeat(1_000))).await.unwrap();
    }
    assert_eq!(compactions(&h.seen), 0);
    let before = h.session.total_token_usage();
    assert!((7_500..9_000).contains(&before), "{before}");
    // About 3 000 tokens more would not fit the 9 500-token usable window.
    let paste = format!("logs: {}", "error at line 7 ".repeat(750));
    h.turn(&paste).await.unwrap();
    assert_eq!(compactions(&h.seen), 1);
    // The history was compacted before the paste was recorded: the paste is whole, last.
    let history = h.session.history();
    let last_user = history.iter().rev().find(|item| item.role() == Some("user")).unwrap();
    assert_eq!(last_user.message_text().unwrap(), paste);
    h.server.assert_no_violations();
}
