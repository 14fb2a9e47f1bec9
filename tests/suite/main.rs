//! The one integration-test binary of Compactor: cross-crate tests, one module per area.

mod protocol;
