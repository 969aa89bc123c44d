//! placeholder (dns_persist, being written)
