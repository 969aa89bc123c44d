//! DNSSEC validation (RFC 4033-4035, 5155, 6840; BR 3.2.2.8.1 and SC-085): the pure checks of
//! signatures, keys and denial proofs (`verify`, `denial`), and the chain walk from the trust
//! anchor that gives every answer a status.

pub mod denial;
pub mod verify;
