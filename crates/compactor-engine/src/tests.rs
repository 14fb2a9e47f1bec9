//! Crate-level tests: snapshots of compacted-history shapes and property tests.

mod properties;
mod shapes;
