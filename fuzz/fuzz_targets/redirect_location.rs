//! `Location` handling: the redirect policy on arbitrary header values never panics and
//! never accepts a hop that breaks the BR redirect rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpic_node::http::redirect::exercise(data);
});
