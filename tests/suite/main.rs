//! The one integration-test binary of Compactor: cross-crate tests, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;
mod compaction_v2;
mod protocol;
mod resume;
mod server_managed;
mod strategies;
