//! CAA (RFC 8659, RFC 8657, BR 3.2.2.8): the pure climb and decision (`policy`) and the
//! lookups that feed it (`lookup`).

pub mod lookup;
pub mod policy;
#[cfg(test)]
mod tests;
