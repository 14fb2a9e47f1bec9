//! A minimal harness: a session with one tool, turns until the history is compacted, events printed.
//!
//! It talks to the embedded reference model of `compactor-testkit` on 127.0.0.1 (no key, no
//! network), or to a real Responses endpoint when `COMPACTOR_BASE_URL` is set (the key is read
//! from `OPENAI_API_KEY`; `COMPACTOR_MODEL` picks the model, default `gpt-5-mini`).
//! `COMPACTOR_ROLLOUT=FILE` saves the session. `cargo run -p compactor-core --example minimal_harness`

#![allow(clippy::print_stdout, reason = "an example prints its events")]

use compactor_client::{KeySource, ProviderConfig};
use compactor_core::{ModelInfo, Session, SessionConfig, ToolCall, ToolFuture, ToolHandler};
use compactor_protocol::{ContentItem, EventMsg, ToolOutput};
use compactor_testkit::{Mode, ReferenceModelConfig, TestServer, TestServerConfig, ToolCallPolicy};

/// The one tool: `read_file`, answering with a few kilobytes of text so the window fills up.
struct ReadFile;

impl ToolHandler for ReadFile {
    fn call<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
        let text = format!("{}:\n{}", call.input, "fn step() -> u32 { 42 }\n".repeat(200));
        Box::pin(std::future::ready(ToolOutput::Text(text)))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (server, provider) = match std::env::var("COMPACTOR_BASE_URL") {
        Ok(base_url) => (None, ProviderConfig::new("openai", base_url)),
        Err(_) => {
            // The reference model calls `read_file` whenever the user message says "read".
            let (trigger, name, arguments) = ("read".into(), "read_file".into(), "{}".into());
            let tool_calls = ToolCallPolicy::OnUserText { trigger, name, arguments };
            let mode =
                Mode::ReferenceModel(ReferenceModelConfig { tool_calls, ..Default::default() });
            let server = TestServer::start(TestServerConfig { mode, ..Default::default() }).await?;
            let provider = ProviderConfig {
                key: KeySource::None,
                ..ProviderConfig::new("testkit", server.base_url())
            };
            (Some(server), provider)
        }
    };
    let model = std::env::var("COMPACTOR_MODEL").unwrap_or_else(|_| "gpt-5-mini".into());
    // A small window, so that a few tool outputs fill it (auto compaction at 90 %).
    let mut config = SessionConfig::new(provider, ModelInfo::new(model, 8_000));
    config.tools = vec![serde_json::json!({
        "type": "function", "name": "read_file", "description": "Reads a file.",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    })];
    config.rollout_path = std::env::var_os("COMPACTOR_ROLLOUT").map(Into::into);
    let (session, mut events) = Session::builder(config).tools(ReadFile).build().await?;

    let mut compactions = 0;
    for turn in 1..=10 {
        let text = format!("Please read src/lib.rs again (turn {turn}).");
        session.run_turn(vec![ContentItem::InputText { text }]).await?;
        while let Ok(event) = events.try_recv() {
            if let EventMsg::ContextCompacted {} = event {
                compactions += 1;
            }
            println!("  {}", serde_json::to_string(&event)?.chars().take(110).collect::<String>());
        }
        println!("turn {turn} done, {compactions} compaction(s) so far");
        if compactions > 0 {
            break;
        }
    }
    session.shutdown().await?;
    if let Some(server) = server {
        server.shutdown().await?;
    }
    if compactions == 0 { Err("no compaction happened".into()) } else { Ok(()) }
}
