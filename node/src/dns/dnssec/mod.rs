//! DNSSEC validation (RFC 4033-4035, 5155, 6840; BR 3.2.2.8.1 and SC-085): the pure checks of
//! signatures, keys and denial proofs (`verify`, `denial`), the trust anchors (`anchors`), and
//! the chain walk from the anchor to the zone that signed an answer (`chain`), the status of
//! each answer under that zone's keys (`status`), with a memo of
//! verified RRsets (`memo`), and the status of a name's zone without an answer (`proof`, the
//! "Insecure" proof of the BR 3.2.2.8 lookup-failure carve-out).

pub mod anchors;
pub mod chain;
pub mod denial;
mod memo;
pub(crate) mod proof;
pub(crate) mod status;
pub mod verify;
