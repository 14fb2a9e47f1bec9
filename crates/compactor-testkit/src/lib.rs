//! A Responses-compatible server on loopback for tests, benches and the CLI's embedded provider.
//!
//! [`TestServer`] is an axum server bound to `127.0.0.1` that serves, on one port,
//! `POST /v1/responses` (SSE), the WebSocket upgrade on `/v1/responses`, and
//! `POST /v1/responses/compact` (the same routes also answer without the `/v1` prefix). It runs
//! in one of two [`Mode`]s:
//!
//! - **Scripted**: queued event batches answer HTTP requests in order ([`HttpScript`]); each
//!   WebSocket connection follows a [`WsConnectionScript`] of request slots, one per client
//!   message (`response.processed` included); [`CompactScript`]s answer `/responses/compact`.
//!   The [`events`] builders produce schema-complete events.
//! - **Reference model**: a deterministic model ([`ReferenceModelConfig`]) answers with text or a
//!   function call, reports usage from [`compactor_protocol::tokens`], compacts on either trigger
//!   form into items sealed with a [`SealKey`], verifies sealed items it gets back, serves
//!   `/responses/compact`, prewarm (`generate: false`) and `previous_response_id`.
//!
//! In both modes every request, handshake and client message is recorded ([`RecordedRequest`],
//! [`RecordedHandshake`], [`RecordedConnection`]), within [`RecordLimits`] (the newest entries
//! are kept, so a long-running server stays small), and can be awaited; slow clients are
//! disconnected ([`TestServerConfig::header_read_timeout`], [`TestServerConfig::body_read_timeout`]),
//! and a binary WebSocket frame gets a close with code 1003. Every request's input is
//! checked for protocol invariants, and a breach is recorded as a [`Violation`] and answered 400
//! (see [`TestServer::assert_no_violations`]). [`Fault`]s and [`HandshakeFault`]s inject delays,
//! broken streams, malformed JSON, error statuses and failed responses.
//!
//! [`workload`] generates the deterministic histories, rollouts and event streams the benches
//! measure (D48).
//!
//! Layer: test support, beside the library layers. It depends on `compactor-protocol` only and
//! must not depend on any other Compactor crate: clients under test talk to it over real sockets.
//!
//! # Examples
//!
//! ```
//! use compactor_testkit::TestServer;
//! use compactor_testkit::events::{ev_assistant_message, ev_completed, ev_response_created};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), compactor_testkit::Error> {
//! let server = TestServer::scripted().await?;
//! server.push_sse(vec![
//!     ev_response_created("resp_1"),
//!     ev_assistant_message("msg_1", "hi"),
//!     ev_completed("resp_1"),
//! ]);
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! // ... point a client at `server.base_url()`, then:
//! server.assert_no_violations();
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test support code")]

mod error;
pub mod events;
mod faults;
mod http;
mod invariants;
mod listener;
mod model;
mod record;
mod request_error;
mod script;
mod seal;
mod server;
mod split_read;
mod stream;
mod token_cache;
mod traffic;
pub mod workload;
mod ws;

pub use error::{Error, Result};
pub use faults::{ErrorReply, Fault, HandshakeFault};
pub use invariants::check_input;
pub use model::{
    ContextWindows, PlannedCall, ReferenceModelConfig, ScriptedTurn, ToolCallPolicy, ToolScript,
};
pub use record::{
    Endpoint, RecordLimits, RecordedConnection, RecordedHandshake, RecordedRequest,
    RecordedWsMessage, Violation,
};
pub use script::{AfterSlots, CompactScript, HttpScript, WsConnectionScript, WsSlot};
pub use seal::{DEFAULT_SEAL_KEY, SealError, SealKey};
pub use server::{Mode, TestServer, TestServerConfig, stop_signal};

/// Reads a request body's text as the server reads a body too small to split (D170): its `input`
/// list by the direct item reader, the rest by `serde_json`; for the parse bench.
///
/// # Errors
///
/// When the text is not a request, with `serde_json`'s error for it.
#[doc(hidden)]
pub fn read_request_on_one_thread(
    text: &str,
) -> serde_json::Result<compactor_protocol::ResponsesApiRequest<'static>> {
    split_read::read_with(text, usize::MAX)
}
