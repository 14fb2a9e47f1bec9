//! Network tests of `compactor-client` against `compactor-testkit` on loopback: requests,
//! streams, retries, `/responses/compact`, the WebSocket transport and secret hygiene.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod bounded;
mod common;
mod compact;
mod hostile;
mod http;
mod retry;
mod secrets;
mod ws;
