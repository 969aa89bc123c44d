//! Table tests of the denial proofs on a small zone `z.test.` holding the apex, `a.z.test.`,
//! the wildcard `*.w.z.test.` (so `w.z.test.` is an empty non-terminal) and `x.z.test.`.

use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC, NSEC3};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;

fn n(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn nsec(owner: &str, next: &str, types: &[RecordType]) -> Record {
    Record::from_rdata(
        n(owner),
        300,
        RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(n(next), types.to_vec()))),
    )
}

fn hash(name: &str) -> Vec<u8> {
    Nsec3HashAlgorithm::SHA1
        .hash(&[], &n(name), 0)
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The NSEC3 chain of the zone (no salt, no iterations), each record's types from `types`.
fn nsec3_chain(opt_out: bool, types: impl Fn(&str) -> Vec<RecordType>) -> Vec<Record> {
    let mut names: Vec<(Vec<u8>, &str)> = [
        "z.test.",
        "a.z.test.",
        "w.z.test.",
        "*.w.z.test.",
        "x.z.test.",
    ]
    .iter()
    .map(|name| (hash(name), *name))
    .collect();
    names.sort();
    (0..names.len())
        .map(|i| {
            let (owner_hash, name) = &names[i];
            let next = names[(i + 1) % names.len()].0.clone();
            let owner = format!("{}.z.test.", BASE32_DNSSEC.encode(owner_hash));
            Record::from_rdata(
                n(&owner),
                300,
                RData::DNSSEC(DNSSECRData::NSEC3(NSEC3::new(
                    Nsec3HashAlgorithm::SHA1,
                    opt_out,
                    0,
                    Vec::new(),
                    next,
                    types(name),
                ))),
            )
        })
        .collect()
}

fn zone_types(name: &str) -> Vec<RecordType> {
    match name {
        "z.test." => vec![RecordType::SOA, RecordType::NS],
        "w.z.test." => vec![],
        _ => vec![RecordType::TXT],
    }
}

#[test]
fn nsec_wildcard_answers() {
    let cover = nsec("*.w.z.test.", "x.z.test.", &[RecordType::TXT]);
    let closer = nsec("*.w.z.test.", "s.r.w.z.test.", &[RecordType::TXT]);
    let cases: [(&str, &str, u8, Vec<Record>, bool); 4] = [
        (
            "covered, encloser is the wildcard's parent",
            "q.w.z.test.",
            3,
            vec![cover],
            true,
        ),
        ("no NSEC", "q.w.z.test.", 3, vec![], false),
        // r.w.z.test. exists (s.r.w.z.test. is next): the wildcard could not have answered.
        (
            "a closer name exists",
            "q.r.w.z.test.",
            3,
            vec![closer],
            false,
        ),
        // An NSEC that does not cover the name proves nothing.
        (
            "not covering",
            "q.w.z.test.",
            3,
            vec![nsec("x.z.test.", "z.test.", &[RecordType::TXT])],
            false,
        ),
    ];
    for (case, name, labels, records, proven) in cases {
        let got = nsec_wildcard_answer(&n(name), labels, &records);
        assert_eq!(got.is_ok(), proven, "{case}: {got:?}");
    }
}

#[test]
fn nsec_wildcard_nodata() {
    let records = |types: &[RecordType]| vec![nsec("*.w.z.test.", "x.z.test.", types)];
    let cases: [(&str, RecordType, Vec<Record>, bool); 4] = [
        (
            "wildcard without the type",
            RecordType::CAA,
            records(&[RecordType::TXT]),
            true,
        ),
        (
            "wildcard has the type",
            RecordType::TXT,
            records(&[RecordType::TXT]),
            false,
        ),
        (
            "wildcard is a CNAME",
            RecordType::CAA,
            records(&[RecordType::CNAME]),
            false,
        ),
        (
            "no wildcard NSEC",
            RecordType::CAA,
            vec![nsec("a.z.test.", "x.z.test.", &[RecordType::TXT])],
            false,
        ),
    ];
    for (case, record_type, records, proven) in cases {
        let got = nsec_nodata(&n("q.w.z.test."), record_type, &records);
        assert_eq!(got.is_ok(), proven, "{case}: {got:?}");
    }
}

#[test]
fn nsec3_wildcard_answers() {
    let cases: [(&str, Vec<Record>, Result<Denied, ()>); 3] = [
        (
            "next closer covered",
            nsec3_chain(false, zone_types),
            Ok(Denied::Proven),
        ),
        (
            "covered by an opt-out span",
            nsec3_chain(true, zone_types),
            Ok(Denied::OptOut),
        ),
        ("no NSEC3", vec![], Err(())),
    ];
    for (case, records, expected) in cases {
        let mut budget = Budget::default();
        let got = nsec3_wildcard_answer(&n("q.w.z.test."), 3, &records, &mut budget);
        assert_eq!(got.map_err(|_| ()), expected, "{case}");
    }
    // The next closer name exists (its hash matches, nothing covers it): not a wildcard answer.
    let mut budget = Budget::default();
    let got = nsec3_wildcard_answer(
        &n("a.z.test."),
        2,
        &nsec3_chain(false, zone_types),
        &mut budget,
    );
    assert!(got.is_err(), "{got:?}");
}

#[test]
fn nsec3_wildcard_nodata() {
    let cases: [(&str, RecordType, Vec<Record>, bool); 3] = [
        (
            "wildcard without the type",
            RecordType::CAA,
            nsec3_chain(false, zone_types),
            true,
        ),
        (
            "wildcard has the type",
            RecordType::TXT,
            nsec3_chain(false, zone_types),
            false,
        ),
        (
            "wildcard is a CNAME",
            RecordType::CAA,
            nsec3_chain(false, |name| {
                if name == "*.w.z.test." {
                    vec![RecordType::CNAME]
                } else {
                    zone_types(name)
                }
            }),
            false,
        ),
    ];
    for (case, record_type, records, proven) in cases {
        let mut budget = Budget::default();
        let got = nsec3_nodata(
            &n("q.w.z.test."),
            record_type,
            &n("z.test."),
            &records,
            &mut budget,
        );
        assert_eq!(got.is_ok(), proven, "{case}: {got:?}");
    }
}

#[test]
fn nsec3_nxdomain_needs_the_wildcard_denied() {
    // q.w.z.test. does not exist but *.w.z.test. does: not an NXDOMAIN proof.
    let mut budget = Budget::default();
    let got = nsec3_nxdomain(
        &n("q.w.z.test."),
        &n("z.test."),
        &nsec3_chain(false, zone_types),
        &mut budget,
    );
    assert!(got.is_err(), "{got:?}");
    // b.z.test. does not exist and *.z.test. neither.
    let mut budget = Budget::default();
    let got = nsec3_nxdomain(
        &n("b.z.test."),
        &n("z.test."),
        &nsec3_chain(false, zone_types),
        &mut budget,
    );
    assert_eq!(got, Ok(Denied::Proven));
}
