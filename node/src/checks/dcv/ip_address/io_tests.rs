//! The I/O half of the address methods (`dcv::lookup`) against a scripted resolver: what is
//! asked, and how DNSSEC status and DNS failures reach the signed verdict.

use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mpic_protocol::{DcvCheck, DcvMethod, DnssecStatus, Outcome, ProblemKind};
use tokio::time::Instant;

use crate::checks::dcv::lookup;
use crate::checks::dcv::request::DcvRequest;
use crate::checks::fake::{FakeResolver, answer, servfail, timeout};

fn check(method: DcvMethod, expected: &str, record_type: Option<&str>) -> DcvCheck {
    DcvCheck {
        method,
        expected: Some(expected.into()),
        key_authorization: None,
        token: None,
        prefix: None,
        issuer_domain: None,
        account_uri: None,
        wildcard: false,
        url_scheme: None,
        record_type: record_type.map(str::to_owned),
        exact_match: false,
        case_insensitive: false,
    }
}

fn a(text: &str) -> RData {
    RData::A(A(text.parse().unwrap()))
}

fn aaaa(text: &str) -> RData {
    RData::AAAA(AAAA(text.parse().unwrap()))
}

fn ptr(name: &str) -> RData {
    RData::PTR(PTR(Name::from_ascii(name).unwrap()))
}

const REVERSE: &str = "7.2.0.192.in-addr.arpa";

/// (case, scripted resolver, identifier, check, outcome, problem kind, DNSSEC status, lookups).
type Case = (
    &'static str,
    FakeResolver,
    &'static str,
    DcvCheck,
    Outcome,
    Option<ProblemKind>,
    Option<DnssecStatus>,
    &'static [RecordType],
);

fn cases() -> Vec<Case> {
    use RecordType::{A as TA, AAAA as TAAAA, PTR as TPTR};
    let ip = |expected| check(DcvMethod::IpAddress, expected, None);
    let reverse = |expected| check(DcvMethod::ReverseAddressLookup, expected, None);
    let secure_a = FakeResolver::default();
    secure_a.on_with_status(
        answer("h.test", TA, vec![a("192.0.2.7")]),
        DnssecStatus::Secure,
    );
    let v6_insecure = FakeResolver::default();
    v6_insecure
        .on_with_status(
            answer("h.test", TA, vec![a("192.0.2.9")]),
            DnssecStatus::Secure,
        )
        .on_with_status(
            answer("h.test", TAAAA, vec![aaaa("2001:db8::7")]),
            DnssecStatus::Insecure,
        );
    let bogus_a = FakeResolver::default();
    bogus_a.on_with_status(
        answer("h.test", TA, vec![a("192.0.2.7")]),
        DnssecStatus::Bogus,
    );
    // alias.test CNAME h.test: the address is only at the target.
    let via_cname = FakeResolver::default();
    let alias = Name::from_ascii("alias.test.").unwrap();
    let mut chained = answer("h.test", TA, vec![a("192.0.2.7")]);
    chained.name = alias.clone();
    chained.chain = vec![Record::from_rdata(
        alias,
        300,
        RData::CNAME(CNAME(Name::from_ascii("h.test.").unwrap())),
    )];
    via_cname.on_with_status(chained, DnssecStatus::Secure);
    let slow = FakeResolver::default();
    slow.on("h.test", TA, Err(timeout("h.test", TA)));
    let aaaa_only = FakeResolver::default();
    aaaa_only.on("h.test", TAAAA, Ok(answer("h.test", TAAAA, vec![])));
    let secure_ptr = FakeResolver::default();
    secure_ptr.on_with_status(
        answer(REVERSE, TPTR, vec![ptr("H.test.")]),
        DnssecStatus::Secure,
    );
    let bogus_ptr = FakeResolver::default();
    bogus_ptr.on_with_status(
        answer(REVERSE, TPTR, vec![ptr("h.test.")]),
        DnssecStatus::Bogus,
    );
    let failing_ptr = FakeResolver::default();
    failing_ptr.on(REVERSE, TPTR, Err(servfail(REVERSE, TPTR)));
    vec![
        (
            "A match, secure",
            secure_a,
            "h.test",
            ip("192.0.2.7"),
            Outcome::Pass,
            None,
            Some(DnssecStatus::Secure),
            &[TA],
        ),
        (
            "AAAA after A, worst status",
            v6_insecure,
            "h.test",
            ip("2001:db8::7"),
            Outcome::Pass,
            None,
            Some(DnssecStatus::Insecure),
            &[TA, TAAAA],
        ),
        (
            "CNAME at the ADN: 3.2.2.4.8 has no CNAME check (SC-101v2)",
            via_cname,
            "alias.test",
            ip("192.0.2.7"),
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            Some(DnssecStatus::Secure),
            &[TA],
        ),
        (
            "bogus never passes",
            bogus_a,
            "h.test",
            ip("192.0.2.7"),
            Outcome::Fail,
            Some(ProblemKind::Dnssec),
            Some(DnssecStatus::Bogus),
            &[TA],
        ),
        (
            "timeout",
            slow,
            "h.test",
            ip("192.0.2.7"),
            Outcome::Fail,
            Some(ProblemKind::Timeout),
            None,
            &[TA],
        ),
        (
            "record_type AAAA alone",
            aaaa_only,
            "h.test",
            check(DcvMethod::IpAddress, "192.0.2.7", Some("AAAA")),
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            None,
            &[TAAAA],
        ),
        (
            "malformed asks nothing",
            FakeResolver::default(),
            "*.h.test",
            ip("192.0.2.7"),
            Outcome::Fail,
            Some(ProblemKind::Malformed),
            None,
            &[],
        ),
        (
            "PTR match, secure",
            secure_ptr,
            "192.0.2.7",
            reverse("h.test"),
            Outcome::Pass,
            None,
            Some(DnssecStatus::Secure),
            &[TPTR],
        ),
        (
            "bogus PTR never passes",
            bogus_ptr,
            "192.0.2.7",
            reverse("h.test"),
            Outcome::Fail,
            Some(ProblemKind::Dnssec),
            Some(DnssecStatus::Bogus),
            &[TPTR],
        ),
        (
            "PTR SERVFAIL",
            failing_ptr,
            "192.0.2.7",
            reverse("h.test"),
            Outcome::Fail,
            Some(ProblemKind::Dns),
            None,
            &[TPTR],
        ),
        (
            "PTR of a name is malformed",
            FakeResolver::default(),
            "h.test",
            reverse("h.test"),
            Outcome::Fail,
            Some(ProblemKind::Malformed),
            None,
            &[],
        ),
    ]
}

#[tokio::test]
async fn address_methods_report_dnssec_and_failures_like_the_other_dns_methods() {
    for (name, fake, identifier, dcv, outcome, problem, dnssec, asked) in cases() {
        let deadline = Instant::now() + Duration::from_secs(2);
        let Ok(DcvRequest::Dns(dcv)) = DcvRequest::decode(&dcv) else {
            panic!("{name}: {dcv:?} does not decode as a DNS method");
        };
        let report = lookup::check(&fake, identifier, &dcv, deadline).await;
        assert_eq!(report.outcome, outcome, "{name}: {report:?}");
        assert_eq!(
            report.problem.as_ref().map(|p| p.kind),
            problem,
            "{name}: {report:?}"
        );
        assert_eq!(report.dnssec, dnssec, "{name}: {report:?}");
        let types: Vec<RecordType> = fake.asked().into_iter().map(|(_, t)| t).collect();
        assert_eq!(types, asked, "{name}");
        fake.assert_no_surprises();
    }
}
