//! Cross-crate integration tests for Compactor.
//!
//! This library is empty on purpose: Cargo needs a target, and the tests live in the single
//! `integration` test binary under `suite/`.
