//! HTTP-based checks' building blocks: the address guard (`address`) and the redirect policy
//! (`redirect`), both pure, and the fetcher that applies them (`fetch`).

pub mod address;
pub mod connect;
pub mod fetch;
pub(crate) mod pool;
pub mod redirect;
pub mod tls;
