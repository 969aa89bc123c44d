//! tls-alpn-01 certificate handling: the acmeIdentifier parse and the certificate inspection on
//! arbitrary bytes never panic, and nothing but a rule-abiding certificate passes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpic_node::checks::tls_alpn::certificate::exercise(data);
});
