//! Loopback tests of the resolver against the fixture authoritative server live in
//! `tests/tests/e2e/dns.rs`; these cover the pure helpers.

use hickory_proto::rr::rdata::{CNAME, SOA, TXT};

use super::*;

fn n(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

#[test]
fn txt_values_concatenate_each_records_strings() {
    let lookup = Lookup {
        name: n("_acme-challenge.example.com."),
        record_type: RecordType::TXT,
        rcode: ResponseCode::NoError,
        records: vec![
            Record::from_rdata(
                n("_acme-challenge.example.com."),
                60,
                RData::TXT(TXT::new(vec!["abc".into(), "def".into()])),
            ),
            Record::from_rdata(
                n("_acme-challenge.example.com."),
                60,
                RData::TXT(TXT::new(vec!["xyz".into()])),
            ),
        ]
        .into(),
        chain: vec![],
        dnssec: None,
        dnssec_detail: None,
        server: None,
    };
    assert_eq!(
        txt_values(&lookup),
        vec![b"abcdef".to_vec(), b"xyz".to_vec()]
    );
}

#[test]
fn final_name_follows_the_chain_and_evidence_lists_it() {
    let lookup = Lookup {
        name: n("www.example.com."),
        record_type: RecordType::A,
        rcode: ResponseCode::NXDomain,
        records: vec![].into(),
        chain: vec![Record::from_rdata(
            n("www.example.com."),
            60,
            RData::CNAME(CNAME(n("gone.example.net."))),
        )],
        dnssec: None,
        dnssec_detail: None,
        server: Some("127.0.0.1:53".parse().unwrap()),
    };
    assert_eq!(lookup.final_name(), &n("gone.example.net."));
    let evidence = lookup.evidence();
    assert_eq!(evidence.rcode, "NXDOMAIN");
    assert_eq!(
        evidence.records,
        vec!["www.example.com. 60 IN CNAME gone.example.net.".to_string()]
    );
    assert_eq!(evidence.server.as_deref(), Some("127.0.0.1:53"));
}

#[test]
fn negative_ttl_is_the_smaller_of_soa_ttl_and_minimum() {
    let soa = |ttl| {
        Record::from_rdata(
            n("example.com."),
            ttl,
            RData::SOA(SOA::new(n("ns."), n("h."), 1, 1, 1, 1, 300)),
        )
    };
    assert_eq!(negative_ttl(&[soa(60)]), Duration::from_secs(60));
    assert_eq!(negative_ttl(&[soa(3600)]), Duration::from_secs(300));
    assert_eq!(negative_ttl(&[]), Duration::ZERO);
}

#[test]
fn only_timeouts_count_as_timeout() {
    let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let all = DnsError::NoAnswer {
        name: n("x."),
        record_type: RecordType::A,
        attempts: vec![Attempt {
            server,
            failure: AttemptFailure::Timeout,
        }],
    };
    assert!(all.is_timeout());
    let mixed = DnsError::NoAnswer {
        name: n("x."),
        record_type: RecordType::A,
        attempts: vec![
            Attempt {
                server,
                failure: AttemptFailure::Timeout,
            },
            Attempt {
                server,
                failure: AttemptFailure::Rcode("SERVFAIL"),
            },
        ],
    };
    assert!(!mixed.is_timeout());
    assert_eq!(
        mixed.to_string(),
        "x. A: no server answered: 127.0.0.1:53 timed out; 127.0.0.1:53 answered SERVFAIL"
    );
}

#[test]
fn an_attempt_names_what_arrived_instead_of_the_answer() {
    use wire::Malformation::{Garbage, PointerLoop};
    use wire::Mismatch::{Id, Malformed, NotResponse, Question, Source};
    let server: SocketAddr = "127.0.0.2:53".parse().unwrap();
    let ignored = |reasons: &[wire::Mismatch]| {
        let mut ignored = IgnoredResponses::default();
        for reason in reasons {
            ignored.record(*reason);
        }
        ignored
    };
    let cases: [(&str, AttemptFailure, &str); 5] = [
        (
            "nothing came",
            AttemptFailure::Timeout,
            "127.0.0.2:53 timed out",
        ),
        (
            "pointer loops",
            AttemptFailure::NoValidAnswer {
                ignored: ignored(&[Malformed(PointerLoop); 3]),
                waited: Duration::from_millis(1500),
            },
            "127.0.0.2:53: 3 malformed responses (compression pointer loop), no valid answer \
             within 1.5 s",
        ),
        (
            "one of each",
            AttemptFailure::NoValidAnswer {
                ignored: ignored(&[Id, Question, NotResponse, Source, Malformed(Garbage)]),
                waited: Duration::from_secs(2),
            },
            "127.0.0.2:53: 1 response with a mismatched ID, 1 response with a mismatched \
             question, 1 non-response message, 1 response from another source, 1 malformed \
             response (garbage), no valid answer within 2 s",
        ),
        (
            "ids counted in the order first seen",
            AttemptFailure::NoValidAnswer {
                ignored: ignored(&[Question, Id, Question]),
                waited: Duration::from_micros(299_900),
            },
            "127.0.0.2:53: 2 responses with a mismatched question, 1 response with a \
             mismatched ID, no valid answer within 0.3 s",
        ),
        (
            "sub-second to the millisecond",
            AttemptFailure::NoValidAnswer {
                ignored: ignored(&[Id]),
                waited: Duration::from_millis(1025),
            },
            "127.0.0.2:53: 1 response with a mismatched ID, no valid answer within 1.025 s",
        ),
    ];
    for (name, failure, expected) in cases {
        let attempt = Attempt { server, failure };
        assert_eq!(attempt.to_string(), expected, "{name}");
        let error = DnsError::NoAnswer {
            name: n("x."),
            record_type: RecordType::A,
            attempts: vec![attempt],
        };
        assert!(error.is_timeout(), "{name}: ran out of time");
    }
    let counted = ignored(&[Id, Id, Malformed(PointerLoop)]);
    assert_eq!(
        (counted.count(Id), counted.count(Malformed(PointerLoop))),
        (2, 1)
    );
    assert_eq!(counted.count(Malformed(Garbage)), 0);
}
