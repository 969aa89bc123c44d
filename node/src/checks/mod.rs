//! The checks a perspective runs. Each has a pure part that turns what the network returned into
//! a verdict (exhaustively table-tested, fuzzed) and an I/O part that fetches under a deadline.

pub mod caa;
pub mod dcv;
pub mod evidence;
#[cfg(test)]
pub(crate) mod fake;
pub mod http;
pub mod report;
pub mod tls_alpn;

pub use evidence::Evidence;
pub use report::{CheckReport, problem};
