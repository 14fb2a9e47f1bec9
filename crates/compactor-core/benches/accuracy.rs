//! How far a session's token estimates are from the usage a server reports, per kind of
//! content (see D125 in docs/decisions.md): for English prose, code and shell output, JSON tool
//! output and non-English text, one session each against the testkit's reference model (which
//! counts its usage with o200k), with `Bytes4` plain, `Bytes4` calibrated and `O200k`.
//!
//! It prints, per kind and counter, the mean and largest error over every request but the first
//! and over the requests at half the auto-compact limit or more, where the usage gate decides.
//! The bounds are checked by the tests (`tests/suite/token_counts.rs`); this bench reports the
//! figures and fails only when a session fails.

#![allow(clippy::print_stdout, reason = "a bench reports on the terminal")]
#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a bench fails loudly")]

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use compactor_client::{KeySource, ProviderConfig, WebsocketMode};
use compactor_core::{
    Calibration, ModelInfo, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler,
};
use compactor_protocol::tokens::TokenCounter;
use compactor_protocol::{ContentItem, EventMsg, ToolOutput};
use compactor_testkit::workload::{self, ContentKind, ErrorSummary, kind_text, request_estimates};
use compactor_testkit::{Mode, ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};
use serde_json::json;

/// The word that makes the reference model call the tool.
const TRIGGER: &str = "inspect";
/// The window of every session: each holds about 24 turns of tool output before compacting.
const CONTEXT_WINDOW: i64 = 60_000;
const TURNS: usize = 24;
/// The smallest tool output; they grow by a quarter of it per call, on a cycle of five.
const OUTPUT_BYTES: usize = 6_000;

/// A tool whose outputs are text of one kind.
struct KindTool {
    kind: ContentKind,
    calls: Arc<AtomicU64>,
}

impl ToolHandler for KindTool {
    fn call<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let bytes = OUTPUT_BYTES + (index as usize % 5) * OUTPUT_BYTES / 4;
        Box::pin(std::future::ready(ToolOutput::Text(kind_text(self.kind, index, bytes))))
    }
}

fn session_config(
    base_url: &str,
    counter: TokenCounter,
    calibration: Calibration,
) -> SessionConfig {
    let mut provider = ProviderConfig::new("testkit", base_url);
    provider.key = KeySource::None;
    provider.websocket = WebsocketMode::Disabled;
    let mut config = SessionConfig::new(provider, ModelInfo::new("gpt-accuracy", CONTEXT_WINDOW));
    config.base_instructions = "You are a coding agent.".to_owned();
    config.initial_context = workload::initial_context();
    config.tokens.counter = counter;
    config.tokens.calibration = calibration;
    config.tools = vec![json!({
        "type": "function", "name": "shell", "description": "Runs a command.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    })];
    config
}

/// One session of `kind`: its errors over every request but the first, and near the limit.
async fn errors(
    base_url: &str,
    counter: TokenCounter,
    calibration: Calibration,
    kind: ContentKind,
) -> (ErrorSummary, ErrorSummary) {
    let config = session_config(base_url, counter, calibration);
    let limit = config.model.auto_compact_limit();
    let tool = KindTool { kind, calls: Arc::default() };
    let (session, mut events) =
        Session::builder(config).tools(tool).build().await.expect("the session starts");
    let collect = tokio::spawn(async move {
        let mut seen: Vec<EventMsg> = Vec::new();
        while let Some(event) = events.recv().await {
            if matches!(event, EventMsg::TokenCount { .. }) {
                seen.push(event);
            }
        }
        seen
    });
    for turn in 0..TURNS {
        let prompt = format!("Please {TRIGGER} part {turn} of the code and tell me what it does.");
        session
            .run_turn(vec![ContentItem::InputText { text: prompt }])
            .await
            .expect("the turn completes");
    }
    session.shutdown().await.expect("the session shuts down");
    drop(session);
    let seen = collect.await.expect("the events are collected");
    let requests = request_estimates(&seen);
    let near: Vec<_> =
        requests.iter().copied().filter(|request| request.reported >= limit / 2).collect();
    (ErrorSummary::of(requests.get(1..).unwrap_or_default()), ErrorSummary::of(&near))
}

fn cell(all: ErrorSummary, near: ErrorSummary) -> String {
    format!(
        "{:>5.2}% {:>6.2}% | {:>5.2}% {:>6.2}%",
        all.mean_percent, all.max_percent, near.mean_percent, near.max_percent
    )
}

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let model = ReferenceModelConfig {
            tool_calls: ToolCallPolicy::OnUserText {
                trigger: TRIGGER.to_owned(),
                name: "shell".to_owned(),
                arguments: r#"{"command":"cat the file"}"#.to_owned(),
            },
            ..ReferenceModelConfig::default()
        };
        let server = TestServer::start(TestServerConfig {
            mode: Mode::ReferenceModel(model),
            ..TestServerConfig::default()
        })
        .await
        .unwrap();
        let base_url = server.base_url();
        println!(
            "estimate errors against reported o200k usage, {TURNS} turns of {OUTPUT_BYTES}-{} byte \
             tool outputs in a {CONTEXT_WINDOW}-token window (mean max | near the limit: mean max)",
            OUTPUT_BYTES * 2
        );
        println!("  kind         bytes4                            bytes4 calibrated                 o200k");
        for kind in ContentKind::ALL {
            let (raw, raw_near) =
                errors(&base_url, TokenCounter::Bytes4, Calibration::Off, kind).await;
            let (calibrated, calibrated_near) =
                errors(&base_url, TokenCounter::Bytes4, Calibration::On, kind).await;
            let (exact, exact_near) =
                errors(&base_url, TokenCounter::O200k, Calibration::On, kind).await;
            println!(
                "  {:<12} {}   {}   {}",
                kind.name(),
                cell(raw, raw_near),
                cell(calibrated, calibrated_near),
                cell(exact, exact_near),
            );
        }
        server.shutdown().await.ok();
        ExitCode::SUCCESS
    })
}
