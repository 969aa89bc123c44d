//! placeholder (contacts, being written)
