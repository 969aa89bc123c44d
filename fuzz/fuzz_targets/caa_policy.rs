//! CAA property parsing and the CAA decision on arbitrary bytes: never panics, malformed values
//! never grant, and only a configured issuer is ever authorized.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpic_node::checks::caa::policy::exercise(data);
});
