use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::{A, NULL};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn n(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

/// A CAA RDATA: flags, tag length, tag, value (RFC 8659 §4.1).
fn caa_rdata(flags: u8, tag: &str, value: &str) -> Vec<u8> {
    let mut rdata = vec![flags, u8::try_from(tag.len()).unwrap()];
    rdata.extend_from_slice(tag.as_bytes());
    rdata.extend_from_slice(value.as_bytes());
    rdata
}

fn raw_record(owner: &str, code: RecordType, rdata: Vec<u8>) -> Record {
    Record::from_rdata(
        n(owner),
        300,
        RData::Unknown {
            code,
            rdata: NULL::with(rdata),
        },
    )
}

fn response(answers: Vec<Record>, additionals: Vec<Record>) -> Vec<u8> {
    let mut message = Message::new(7, MessageType::Response, OpCode::Query);
    message.add_query(Query::query(n("example.test."), RecordType::CAA));
    for record in answers {
        message.add_answer(record);
    }
    for record in additionals {
        message.add_additional(record);
    }
    message.to_vec().unwrap()
}

#[test]
fn long_caa_tag_is_kept_raw_beside_readable_records() {
    let long = "averyveryverylongtag"; // 20 octets: over hickory's 15
    let bytes = response(
        vec![
            raw_record(
                "example.test.",
                RecordType::CAA,
                caa_rdata(0, "issue", "ca.test"),
            ),
            raw_record("example.test.", RecordType::CAA, caa_rdata(128, long, "x")),
        ],
        vec![],
    );
    assert!(
        Message::from_vec(&bytes).is_err(),
        "hickory refuses it alone"
    );
    let message = decode(&bytes).unwrap();
    assert_eq!(message.answers.len(), 2);
    let parts: Vec<_> = message.answers.iter().filter_map(caa_parts).collect();
    assert_eq!(
        parts,
        vec![
            (0, "issue".to_string(), b"ca.test".to_vec()),
            (128, long.to_string(), b"x".to_vec()),
        ]
    );
    assert!(
        message
            .answers
            .iter()
            .all(|r| r.record_type() == RecordType::CAA)
    );
    // The raw record re-encodes to the same RDATA (what its RRSIG covers).
    assert!(
        matches!(&message.answers[1].data, RData::Unknown { rdata, .. }
        if rdata.anything == caa_rdata(128, long, "x"))
    );
}

#[test]
fn unreadable_svcb_in_additional_is_dropped_not_fatal() {
    let bytes = response(
        vec![Record::from_rdata(
            n("example.test."),
            300,
            RData::A(A::new(127, 0, 0, 1)),
        )],
        vec![raw_record(
            "svc.example.test.",
            RecordType::SVCB,
            vec![0, 1, 0xff],
        )],
    );
    let message = decode(&bytes).unwrap();
    assert_eq!(message.answers.len(), 1);
    assert!(message.additionals.is_empty());
}

#[test]
fn garbage_and_truncated_walks_stay_unreadable_and_say_why() {
    use crate::dns::wire::Malformation::{Garbage, PastTheEnd, PointerLoop};
    let question = |bytes: &mut Vec<u8>| bytes.extend_from_slice(&[1, b'x', 0, 0, 1, 0, 1]);
    let cases: [(&str, Vec<u8>, Malformation); 5] = [
        ("short header", vec![0; 5], PastTheEnd),
        (
            "counts past the end",
            {
                let mut bytes = vec![0u8; 12];
                bytes[7] = 3;
                bytes
            },
            PastTheEnd,
        ),
        (
            "extended label code",
            {
                let mut bytes = vec![0u8, 1, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0];
                bytes.extend_from_slice(&[0x40, 0x40]);
                bytes
            },
            Garbage,
        ),
        (
            "pointer to itself",
            {
                let mut bytes = vec![0u8, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
                question(&mut bytes);
                // The answer's owner at offset 19 points at offset 19.
                bytes.extend_from_slice(&[0xc0, 19, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
                bytes
            },
            PointerLoop,
        ),
        (
            "rdlength past the end",
            {
                let mut bytes = vec![0u8, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
                question(&mut bytes);
                bytes.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 200, 192, 0]);
                bytes
            },
            PastTheEnd,
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode(&bytes).map(|_| ()), Err(expected), "{name}");
    }
}

#[test]
fn raw_caa_parts_are_bounded() {
    let cases: [(&str, Vec<u8>, Option<CaaParts>); 4] = [
        ("empty", vec![], None),
        ("flags only", vec![128], None),
        ("tag longer than rdata", vec![0, 9, b'a'], None),
        (
            "empty value",
            vec![0, 5, b'i', b's', b's', b'u', b'e'],
            Some((0, "issue".into(), vec![])),
        ),
    ];
    for (name, rdata, expected) in cases {
        assert_eq!(raw_caa(&rdata), expected, "{name}");
    }
}
