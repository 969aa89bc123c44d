//! placeholder (acme_dns01, being written)
