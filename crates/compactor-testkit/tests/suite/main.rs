//! Integration tests of the testkit server, driven by independent clients (reqwest and
//! tokio-tungstenite) over loopback sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod binary;
mod common;
mod faults;
mod http;
mod invariants;
mod lifecycle;
mod limits;
mod model;
mod shapes;
mod traffic;
mod ws;
