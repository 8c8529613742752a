//! Test support for the workspace: the SCIM test server and the benchmarks' helpers, with the
//! Qlik Cloud simulator ([`qlik_sim`], its own crate) and its ground-truth digests re-exported
//! under the names the tests use. Integration tests live in `tests/tests/`.
#![deny(missing_docs)]

pub use qlik_sim;
pub use qlik_sim::digest;
pub mod scim_server;
