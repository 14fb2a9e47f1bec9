//! Tests that run the built `compactor` binary as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod common;
mod demo;
mod errors;
mod files;
mod fit;
mod hostile;
mod pins;
mod rollouts;
mod serve;
