//! HTTP-based checks' building blocks: the redirect policy (`redirect`, pure) and the fetcher
//! that applies it (`fetch`), which reaches servers through [`crate::egress`] (`connect`) and
//! speaks HTTP/1.1 on the connection (`exchange`).

pub mod connect;
mod exchange;
pub mod fetch;
pub mod options;
pub mod outcome;
pub(crate) mod pool;
pub mod redirect;
pub mod tls;
