//! Compactor against independent Responses servers on loopback: the LiteLLM proxy, Microsoft's
//! `azure-ai-agentserver-responses`, llmock and aimock (`interop/README.md`); and its OTLP
//! analytics sink against an OTLP/HTTP receiver built on `opentelemetry-proto`.
//!
//! Run it with `cargo xtask interop`, which installs and starts the servers, passes their base
//! URLs in `COMPACTOR_INTEROP_*` variables, runs this binary one test at a time (llmock's
//! scenarios and journal are server-wide), and stops the servers. One module per server; the
//! xtask groups its report by these module names.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

mod agentserver;
mod aimock;
mod common;
mod litellm;
mod llmock;
mod otlp;
