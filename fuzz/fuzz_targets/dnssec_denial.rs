//! The DNSSEC denial proofs (`mpic_node::dns::dnssec::denial`) over records decoded from
//! arbitrary bytes: the bytes are a DNS message whose first question is the name and type to
//! prove absent and whose answer and authority sections are the NSEC/NSEC3 records. Never
//! panics, NSEC3 hashing stays within the budget, and no proof comes out of no records.
#![no_main]

use hickory_proto::op::Message;
use hickory_proto::rr::Record;
use libfuzzer_sys::fuzz_target;
use mpic_node::dns::dnssec::denial;
use mpic_node::dns::dnssec::verify::Budget;

/// NSEC3 hash computations one input may spend (each costs up to 151 SHA-1 rounds).
const HASHES: u32 = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let Ok(message) = Message::from_vec(wire) else {
        return;
    };
    let Some(query) = message.queries.first() else {
        return;
    };
    let name = query.name().clone();
    let record_type = query.query_type();
    // The zone: the name itself or one of its ancestors, picked by the selector.
    let mut zone = name.clone();
    for _ in 0..(selector >> 4) {
        if zone.is_root() {
            break;
        }
        zone = zone.base_name();
    }
    let records: Vec<Record> = message
        .answers
        .iter()
        .chain(message.authorities.iter())
        .cloned()
        .collect();
    let labels = selector & 0x0f;
    let mut budget = Budget {
        signatures: 0,
        hashes: HASHES,
    };
    let proven = match selector % 7 {
        0 => denial::nsec_nxdomain(&name, &records).is_ok(),
        1 => denial::nsec_nodata(&name, record_type, &records).is_ok(),
        2 => denial::nsec_wildcard_answer(&name, labels, &records).is_ok(),
        3 => denial::nsec3_wildcard_answer(&name, labels, &records, &mut budget).is_ok(),
        4 => denial::nsec3_nxdomain(&name, &zone, &records, &mut budget).is_ok(),
        5 => denial::nsec3_nodata(&name, record_type, &zone, &records, &mut budget).is_ok(),
        _ => denial::ds_absence(&name, &zone, &records, &mut budget).is_ok(),
    };
    assert!(budget.hashes <= HASHES);
    if records.is_empty() && selector % 7 != 6 {
        assert!(!proven, "{name}: a denial proven by no records");
    }
});
