//! HTTP-based checks' building blocks: the address guard (`address`) and the redirect policy
//! (`redirect`). Both are pure; the fetcher that uses them follows.

pub mod address;
pub mod redirect;
