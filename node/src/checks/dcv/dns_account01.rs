//! placeholder (dns_account01, being written)
