//! Compactor's model client (layer L1): the Responses API over HTTP+SSE and WebSocket,
//! `POST /responses/compact`, retries and the sticky HTTP fallback.
//!
//! It depends on `compactor-protocol` only among Compactor's crates, never on the engine,
//! analytics or rollout crates. Key types:
//!
//! - [`ProviderConfig`]: base URL, [`KeySource`], extra headers, transport, retries, timeouts.
//! - [`ModelClient`]: session-scoped and cheap to clone; owns the cached WebSocket connection,
//!   the sticky fallback and the window generation; [`ModelClient::compact`] is the v1 endpoint.
//! - [`ModelClientSession`]: turn-scoped; [`ModelClientSession::stream`] returns a
//!   [`ResponseStream`] of [`compactor_protocol::ResponseEvent`]s, and
//!   [`ModelClientSession::send_response_processed`] acknowledges a response on its WebSocket.
//! - [`ClientObserver`]: hears about retries (`Reconnecting... n/max`) and the fallback.
//! - [`SentRequest`]: what a request sent (the logical request and the wire message), reported
//!   by [`ModelClientSession::stream_with_report`] and [`ModelClient::compact_with_report`].
//!
//! The API key lives in a [`SecretString`]: it never appears in `Debug`, logs or errors. Text a
//! server sends back is redacted of the key and of the base URL's credentials, also when the
//! server encodes them, before it reaches an error (D60 in docs/decisions.md). One stream line,
//! event or message is capped at [`ProviderConfig::max_event_bytes`] (D61), and the client
//! follows no redirects (D62).
//!
//! # Examples
//!
//! One response streamed over HTTP from a scripted `compactor-testkit` server on 127.0.0.1 (a
//! real provider is `ProviderConfig::default()`, with the key in `OPENAI_API_KEY`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use compactor_client::{KeySource, ModelClient, ProviderConfig, WebsocketMode};
//! use compactor_protocol::{Prompt, ResponseEvent, ResponseItem, TurnSettings, owned_items};
//! use compactor_testkit::TestServer;
//! use compactor_testkit::events::{ev_assistant_message, ev_completed, ev_response_created};
//! use futures::StreamExt as _;
//!
//! let server = TestServer::scripted().await?;
//! server.push_sse(vec![
//!     ev_response_created("resp_1"),
//!     ev_assistant_message("msg_1", "Hello."),
//!     ev_completed("resp_1"),
//! ]);
//! let config = ProviderConfig {
//!     key: KeySource::None,
//!     websocket: WebsocketMode::Disabled,
//!     ..ProviderConfig::new("testkit", server.base_url())
//! };
//! let client = ModelClient::builder(config, "thread-1").build()?;
//! let prompt = Prompt {
//!     input: owned_items([ResponseItem::user_text("Say hello.")]),
//!     ..Prompt::default()
//! };
//! let settings = TurnSettings { model: "gpt-5".into(), ..TurnSettings::default() };
//! let mut stream = client.new_session().stream(&prompt, &settings).await?;
//! let (mut text, mut completed) = (String::new(), None);
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         ResponseEvent::OutputItemDone { item } => text += &item.message_text().unwrap_or_default(),
//!         ResponseEvent::Completed { response_id, .. } => completed = Some(response_id),
//!         _ => {}
//!     }
//! }
//! assert_eq!((text.as_str(), completed.as_deref()), ("Hello.", Some("resp_1")));
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

#[doc(hidden)]
pub mod bench;
mod body;
mod client;
mod config;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod redact;
mod retry;
mod sent;
mod sse;
mod stream;
mod ws;

pub use client::{ModelClient, ModelClientBuilder, ModelClientSession};
pub use config::{
    DEFAULT_MAX_EVENT_BYTES, KeySource, Prewarm, ProviderConfig, RetryPolicy, SecretString,
    WebsocketMode, check_base_url, url_without_userinfo,
};
pub use retry::{ClientNotice, ClientObserver, RetryNotice};
pub use sent::{SentReport, SentRequest};
pub use stream::ResponseStream;
pub use ws::OPENAI_BETA_WEBSOCKETS;
