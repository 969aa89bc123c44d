//! Feeds arbitrary bytes to everything a remote peer reaches in the protocol: frame splitting,
//! CBOR decoding of requests and node messages, request validation, and result verification.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpic_protocol::frame;
use mpic_protocol::{NodeMessage, Request, SignedResult, VerifyingKey};

fuzz_target!(|data: &[u8]| {
    // As the node sees a request stream: frames one after another.
    let mut rest = data;
    while let Ok(Some((body, tail))) = frame::split_frame(rest, 64 * 1024) {
        if let Ok(request) = frame::decode_body::<Request>(body) {
            let _ = request.validate(100, 1_800_000_000_000);
        }
        if let Ok(NodeMessage::Result(signed)) = frame::decode_body::<NodeMessage>(body) {
            let key = VerifyingKey::from_bytes([7; 32]);
            let _ = key.verify(&signed);
        }
        rest = tail;
    }
    // The raw body paths, without a frame.
    let _ = frame::decode_body::<Request>(data);
    let _ = frame::decode_body::<SignedResult>(data);
});
