//! Cross-crate integration tests for Compactor.
//!
//! This library is empty on purpose: Cargo needs a target. The tests live in the `integration`
//! test binary under `suite/` (the one binary `cargo xtask test` runs) and, against independent
//! Responses servers, in the `interop` binary under `interop/`, which only `cargo xtask interop`
//! runs (it starts the servers).
