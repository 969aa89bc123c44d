//! Feeds arbitrary bytes to the DNS client's response path: parse, match against our query
//! (ID, question, case), and classification as answer / denial / referral / lame.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    mpic_node::dns::exercise_response(data);
});
