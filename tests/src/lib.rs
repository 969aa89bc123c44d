//! Test support for mpic-node: start the real `mpic-node` binary on loopback with generated
//! credentials, and build primaries that talk to it. Fixture servers (DNS, HTTP, TLS-ALPN,
//! hostile peers) join this library as the checks land; `bench/` reuses it.

pub mod by_source;
pub mod dns_server;
pub mod hostile;
pub mod http_server;
pub mod knot;
pub mod node;
pub mod tls_alpn_server;

pub use node::{DevCredentials, NodeOptions, NodeProcess, binary_path};
