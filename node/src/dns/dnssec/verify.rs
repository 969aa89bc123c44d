//! placeholder: pure RRSIG / DNSKEY / DS verification (being written)
