//! The Open MPIC endpoint's request bodies: JSON parsing and translation into a target never
//! panic, and a translated target keeps the request's identifier and kind.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpic_node::openmpic::model::exercise(data);
});
