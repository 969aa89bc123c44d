//! placeholder: NSEC / NSEC3 denial proofs (being written)
