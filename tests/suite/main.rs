//! The one integration-test binary of Compactor: cross-crate tests, one module per area.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod cancellation;
mod child;
mod common;
mod compaction_v2;
mod concurrency;
mod crash;
mod damaged_rollouts;
mod fault_matrix;
mod fit;
mod fuzz_regressions;
mod long_sessions;
mod openai_types;
mod pins;
mod protocol;
mod providers;
mod readme;
mod real_data;
mod request_trace;
mod resume;
mod secrets;
mod server_managed;
mod strategies;
mod stream_retry;
mod token_counts;
mod user_turns;
mod windows;
mod write_failures;
