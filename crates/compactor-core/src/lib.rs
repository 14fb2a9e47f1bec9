//! Compactor's thin orchestrator (layer L2): sessions, turns, and inline (auto) and manual
//! compaction, composing the client, engine, analytics and rollout-trace crates.
//!
//! Algorithms live in `compactor-engine`; this crate is glue. Key types:
//!
//! - [`Session`] (cheap to clone, turns serialized) built by [`SessionBuilder`] from a
//!   [`SessionConfig`]: [`Session::run_turn`], [`Session::compact`], [`Session::interrupt`],
//!   [`Session::shutdown`], and [`SessionBuilder::resume`] from a rollout.
//! - Pins ([`Session::pin_item`], [`Session::pin_note`], [`Session::unpin`], [`Session::pins`]),
//!   kept verbatim through every compaction; a `compaction_receipt` event for every compaction
//!   attempt; [`Session::preview_compaction`] with [`PreviewOptions`], which sends, installs and
//!   writes nothing, and [`SessionBuilder::read_only`] for a session that never writes.
//! - [`TurnContext`], [`TurnOptions`], [`TurnOutcome`].
//! - [`Features`], [`ModelInfo`] (context window and auto-compact limit, D6),
//!   [`CompactionSettings`].
//! - [`ToolHandler`]: the harness runs the model's tool calls.
//!
//! Events ([`compactor_protocol::EventMsg`]) arrive on the channel returned with the session;
//! errors become `error` events here and nowhere else.
//!
//! # Examples
//!
//! A session against the deterministic reference model of `compactor-testkit` on 127.0.0.1,
//! with a window small enough that a manual compaction has something to do
//! (`examples/minimal_harness.rs` adds a tool and auto compaction):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use compactor_client::{KeySource, ProviderConfig};
//! use compactor_core::{ModelInfo, Session, SessionConfig};
//! use compactor_protocol::{ContentItem, EventMsg};
//! use compactor_testkit::TestServer;
//!
//! let server = TestServer::reference_model().await?;
//! let provider = ProviderConfig {
//!     key: KeySource::None,
//!     ..ProviderConfig::new("testkit", server.base_url())
//! };
//! let config = SessionConfig::new(provider, ModelInfo::new("gpt-5", 16_000));
//! let (session, mut events) = Session::builder(config).build().await?;
//! let input = vec![ContentItem::InputText { text: "Summarize the design.".into() }];
//! let outcome = session.run_turn(input).await?;
//! assert!(outcome.last_agent_message.is_some());
//! session.compact().await?;
//! session.shutdown().await?;
//! let mut compacted = false;
//! while let Ok(event) = events.try_recv() {
//!     compacted |= matches!(event, EventMsg::ContextCompacted {});
//! }
//! assert!(compacted);
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

mod compact;
mod config;
mod hooks;
mod pins;
mod preview;
mod receipt;
mod retry;
mod session;
mod state;
mod toml_config;
mod tools;
mod turn;

pub use compact::{
    LOCAL_COMPACT_ERROR_PREFIX, LOCAL_COMPACTION_WARNING, REMOTE_COMPACT_ERROR_PREFIX,
};
pub use config::{
    Calibration, CompactionSettings, Features, ModelInfo, ProviderKind, PruneSettings,
    ReactiveCompaction, RemoteCompaction, SessionConfig, TokenSettings,
};
pub use hooks::{CompactHookInput, CompactHooks, HookFuture, HookOutcome};
pub use preview::{CompactionPreview, PreviewOptions};
pub use session::{EVENT_CHANNEL_CAPACITY, Session, SessionBuilder};
pub use tools::{NoTools, ToolCall, ToolCallKind, ToolFuture, ToolHandler};
pub use turn::{TurnContext, TurnOptions, TurnOutcome};
// toml_config re-exports go below this line.
pub use toml_config::{AnalyticsSettings, CONFIG_FILE_NAME, CompactorToml, ConfigFileError};
