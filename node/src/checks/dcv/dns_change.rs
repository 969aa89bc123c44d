//! placeholder (dns_change, being written)
