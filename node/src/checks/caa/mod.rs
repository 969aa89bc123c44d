//! CAA (RFC 8659, RFC 8657, BR 3.2.2.8 / 4.2.2.1): the pure climb and decision (`policy`), the
//! RFC 8657 parameters as BR 4.2.2.1.2 requires them (`parameters`), the BR 3.2.2.8
//! lookup-failure carve-out rule (`carve_out`), and the lookups that feed them (`lookup`).

pub mod carve_out;
pub mod lookup;
pub mod parameters;
pub mod policy;
#[cfg(test)]
mod tests;
