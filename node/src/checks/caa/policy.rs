//! placeholder: RFC 8659/8657 CAA policy (being written)
