//! Test support for the workspace: the Qlik Cloud simulator, ground-truth digests
//! and the benchmarks' helpers. Integration tests live in `tests/tests/`.
#![deny(missing_docs)]

pub mod digest;
pub mod qlik_sim;
pub mod scim_server;
