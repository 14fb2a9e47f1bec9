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

#[doc(hidden)]
pub mod bench;
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
