//! The node's one way out to a target: fresh address lookups with the BR Reserved-IP guard
//! (`lookup`, `address`) and the IPv6-first / IPv4-fallback dial loop with a typed record of
//! every failed attempt (`dial`). The HTTP fetcher and the TLS-ALPN prober both go through it;
//! it sits below them and imports only `dns`, `config`, `metrics` and the protocol crate.

pub mod address;
pub mod dial;
pub mod lookup;

pub use address::{ReservedAddress, check_target, reserved_block};
pub use dial::{DialAttempt, DialError, Dialed, NoConnection, dial_tcp, first_reachable};
pub use lookup::{ResolveError, resolve};
