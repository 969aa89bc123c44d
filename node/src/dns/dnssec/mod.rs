//! DNSSEC validation (RFC 4033-4035, 5155, 6840; BR 3.2.2.8.1 and SC-085): the pure checks of
//! signatures, keys and denial proofs (`verify`, `denial`), the trust anchors (`anchors`), and
//! the chain walk from the anchor that gives every answer a status (`chain`), with a memo of
//! verified RRsets (`memo`).

pub mod anchors;
pub mod chain;
pub mod denial;
mod memo;
pub mod verify;
