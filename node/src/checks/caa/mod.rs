//! CAA (RFC 8659, RFC 8657, BR 3.2.2.8).

pub mod policy;
