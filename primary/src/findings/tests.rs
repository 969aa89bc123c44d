//! Table tests of [`findings`]: one named case per cause, results built by hand.

use super::dns::normalize;
use super::*;
use mpic_protocol::{
    CaaCheck, Check, DnsEvidence, Evidence, HttpEvidence, PerspectiveInfo, Problem, Target,
};

fn id(text: &str) -> PerspectiveId {
    PerspectiveId::new(text).unwrap_or_else(|_| unreachable!("valid test id"))
}

fn payload(perspective: &str, outcome: Outcome, evidence: Evidence) -> ResultPayload {
    ResultPayload {
        version: 1,
        request_id: "r1".into(),
        nonce: vec![0; 16],
        target_index: 0,
        target: Target {
            identifier: "shop.example".into(),
            check: Check::Caa(CaaCheck::default()),
        },
        perspective: PerspectiveInfo {
            id: id(perspective),
            rir: Rir::Arin,
            location: String::new(),
            shadow: false,
        },
        received_unix_ms: 1_000,
        completed_unix_ms: 1_040,
        outcome,
        problem: None,
        dnssec: None,
        evidence,
        key_id: "k".into(),
        tenant: None,
    }
}

fn failed(mut result: ResultPayload, kind: ProblemKind, detail: &str) -> ResultPayload {
    result.problem = Some(Problem {
        kind,
        detail: detail.into(),
    });
    result
}

fn observe(perspective: &str, egress: &[&str], result: Option<ResultPayload>) -> Observation {
    Observation {
        perspective_id: id(perspective),
        rir: Rir::Arin,
        egress: egress.iter().filter_map(|e| e.parse().ok()).collect(),
        result,
        error: None,
    }
}

fn dns(name: &str, record_type: &str, rcode: &str, records: &[&str]) -> Evidence {
    Evidence {
        dns: vec![DnsEvidence {
            name: name.into(),
            record_type: record_type.into(),
            rcode: rcode.into(),
            records: records.iter().map(|r| (*r).to_owned()).collect(),
            dnssec: None,
            server: Some("192.0.2.53:53".into()),
        }],
        ..Evidence::default()
    }
}

fn http(status: Option<u16>, address: Option<&str>, failed: &[&str], bytes: u64) -> Evidence {
    Evidence {
        http: vec![HttpEvidence {
            url: "http://www.example/.well-known/acme-challenge/t".into(),
            address: address.map(str::to_owned),
            status,
            bytes,
            failed_attempts: failed.iter().map(|f| (*f).to_owned()).collect(),
            dnssec: None,
        }],
        ..Evidence::default()
    }
}

const CAA_OURS: &str = "shop.example. 300 IN CAA 0 issue \"ca.example\"";
const CAA_OURS_LOWER_TTL: &str = "SHOP.example. 17 IN CAA 0 issue \"ca.example\"";
const CAA_THEIRS: &str = "shop.example. 300 IN CAA 0 issue \"other-ca.example\"";

struct Case {
    name: &'static str,
    observations: Vec<Observation>,
    /// Expected causes, in order, and for the first one the perspectives of each side.
    causes: &'static [Cause],
    sides: &'static [&'static [&'static str]],
    /// Text that must appear somewhere in the first finding (evidence or advice).
    quotes: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let pass = |p: &str, e: Evidence| payload(p, Outcome::Pass, e);
    let fail = |p: &str, e: Evidence| payload(p, Outcome::Fail, e);
    vec![
        Case {
            name: "agreement_is_no_finding",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass(
                        "a",
                        dns("shop.example.", "CAA", "NOERROR", &[CAA_OURS]),
                    )),
                ),
                observe(
                    "b",
                    &[],
                    Some(pass(
                        "b",
                        dns("shop.example", "CAA", "NOERROR", &[CAA_OURS_LOWER_TTL]),
                    )),
                ),
            ],
            causes: &[],
            sides: &[],
            quotes: &[],
        },
        Case {
            name: "split_horizon_different_rrsets",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass(
                        "a",
                        dns("shop.example.", "CAA", "NOERROR", &[CAA_OURS]),
                    )),
                ),
                observe(
                    "b",
                    &[],
                    Some(pass(
                        "b",
                        dns("shop.example.", "CAA", "NOERROR", &[CAA_OURS]),
                    )),
                ),
                observe(
                    "c",
                    &[],
                    Some(failed(
                        fail("c", dns("shop.example.", "CAA", "NOERROR", &[CAA_THEIRS])),
                        ProblemKind::Caa,
                        "CAA forbids",
                    )),
                ),
            ],
            causes: &[Cause::SplitHorizon],
            sides: &[&["a", "b"], &["c"]],
            quotes: &["other-ca.example", "answered by 192.0.2.53:53"],
        },
        Case {
            name: "propagation_present_and_absent_with_serials",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass(
                        "a",
                        dns(
                            "_v.shop.example.",
                            "TXT",
                            "NOERROR",
                            &[
                                "_v.shop.example. 60 IN TXT \"token\"",
                                "shop.example. 60 IN SOA ns1.example. host.example. 2026120602 7200 3600 1209600 60",
                            ],
                        ),
                    )),
                ),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail(
                            "b",
                            dns(
                                "_v.shop.example.",
                                "TXT",
                                "NXDOMAIN",
                                &[
                                    "shop.example. 60 IN SOA ns1.example. host.example. 2026120601 7200 3600 1209600 60",
                                ],
                            ),
                        ),
                        ProblemKind::Unauthorized,
                        "no TXT",
                    )),
                ),
            ],
            causes: &[Cause::Propagation],
            sides: &[&["a"], &["b"]],
            quotes: &["SOA serial 2026120602", "SOA serial 2026120601", "NXDOMAIN"],
        },
        Case {
            name: "propagation_without_serials_says_so",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass(
                        "a",
                        dns(
                            "_v.shop.example.",
                            "TXT",
                            "NOERROR",
                            &["_v.shop.example. 60 IN TXT \"token\""],
                        ),
                    )),
                ),
                observe(
                    "b",
                    &[],
                    Some(pass(
                        "b",
                        dns(
                            "_v.shop.example.",
                            "TXT",
                            "NOERROR",
                            &["_v.shop.example. 60 IN TXT \"token\""],
                        ),
                    )),
                ),
                observe(
                    "c",
                    &[],
                    Some(failed(
                        fail("c", dns("_v.shop.example.", "TXT", "NOERROR", &[])),
                        ProblemKind::Unauthorized,
                        "no TXT",
                    )),
                ),
            ],
            causes: &[Cause::Propagation],
            sides: &[&["a", "b"], &["c"]],
            quotes: &["no SOA serial", "NOERROR, no records"],
        },
        Case {
            name: "firewall_refuses_some_perspectives",
            observations: vec![
                observe(
                    "a",
                    &["198.51.100.1"],
                    Some(pass("a", http(Some(200), Some("192.0.2.80:80"), &[], 40))),
                ),
                observe(
                    "b",
                    &["198.51.100.2"],
                    Some(pass("b", http(Some(200), Some("192.0.2.80:80"), &[], 40))),
                ),
                observe(
                    "c",
                    &["203.0.113.7", "2001:db8::7"],
                    Some(failed(
                        fail(
                            "c",
                            http(None, None, &["192.0.2.80:80: connection refused"], 0),
                        ),
                        ProblemKind::Connection,
                        "192.0.2.80:80: connection refused (firewall?)",
                    )),
                ),
            ],
            causes: &[Cause::Unreachable],
            sides: &[&["c"], &["a", "b"]],
            quotes: &[
                "203.0.113.7, 2001:db8::7",
                "connection refused",
                "HTTP 200 from 192.0.2.80:80",
            ],
        },
        Case {
            name: "timeout_without_published_egress",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass("a", http(Some(200), Some("192.0.2.80:80"), &[], 40))),
                ),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail(
                            "b",
                            http(
                                None,
                                None,
                                &["192.0.2.80:80: connect timed out after 2.5s"],
                                0,
                            ),
                        ),
                        ProblemKind::Timeout,
                        "192.0.2.80:80: connect timed out after 2.5s",
                    )),
                ),
            ],
            causes: &[Cause::Unreachable],
            sides: &[&["b"], &["a"]],
            quotes: &["egress addresses not published", "timed out"],
        },
        Case {
            name: "ipv6_only_target_and_perspective_without_ipv6",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass(
                        "a",
                        http(Some(200), Some("[2001:db8::80]:80"), &[], 40),
                    )),
                ),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail(
                            "b",
                            http(None, None, &["[2001:db8::80]:80: network unreachable"], 0),
                        ),
                        ProblemKind::Connection,
                        "[2001:db8::80]:80: network unreachable",
                    )),
                ),
            ],
            causes: &[Cause::Ipv6Only],
            sides: &[&["b"], &["a"]],
            quotes: &["network unreachable", "A record"],
        },
        Case {
            name: "waf_status_differs",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass("a", http(Some(200), Some("192.0.2.80:80"), &[], 40))),
                ),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail("b", http(Some(403), Some("192.0.2.80:80"), &[], 900)),
                        ProblemKind::Unauthorized,
                        "HTTP status 403",
                    )),
                ),
            ],
            causes: &[Cause::HttpResponse],
            sides: &[&["a"], &["b"]],
            quotes: &["HTTP 403", "User-Agent"],
        },
        Case {
            name: "body_differs_with_same_status",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some(pass("a", http(Some(200), Some("192.0.2.80:80"), &[], 40))),
                ),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail("b", http(Some(200), Some("192.0.2.80:80"), &[], 5120)),
                        ProblemKind::Unauthorized,
                        "body does not match",
                    )),
                ),
            ],
            causes: &[Cause::HttpResponse],
            sides: &[&["a"], &["b"]],
            quotes: &["5120 bytes", "body does not match"],
        },
        Case {
            name: "dnssec_status_differs",
            observations: vec![
                observe(
                    "a",
                    &[],
                    Some({
                        let mut r = pass("a", dns("shop.example.", "CAA", "NOERROR", &[CAA_OURS]));
                        r.dnssec = Some(DnssecStatus::Secure);
                        r
                    }),
                ),
                observe(
                    "b",
                    &[],
                    Some({
                        let mut r = failed(
                            fail("b", Evidence::default()),
                            ProblemKind::Dnssec,
                            "RRSIG for shop.example. CAA expired 2026-11-01 (EDE 7)",
                        );
                        r.dnssec = Some(DnssecStatus::Bogus);
                        r
                    }),
                ),
            ],
            causes: &[Cause::Dnssec],
            sides: &[&["a"], &["b"]],
            quotes: &["RRSIG for shop.example. CAA expired", "DNSSEC bogus"],
        },
        Case {
            name: "no_result_from_a_node",
            observations: vec![
                observe("a", &[], Some(pass("a", Evidence::default()))),
                Observation {
                    error: Some("perspective b did not answer within 10s".into()),
                    ..observe("b", &[], None)
                },
            ],
            causes: &[Cause::NoResult],
            sides: &[&["b"]],
            quotes: &["did not answer"],
        },
        Case {
            name: "unexplained_outcomes_differ",
            observations: vec![
                observe("a", &[], Some(pass("a", Evidence::default()))),
                observe(
                    "b",
                    &[],
                    Some(failed(
                        fail("b", Evidence::default()),
                        ProblemKind::Internal,
                        "resolver crashed",
                    )),
                ),
            ],
            causes: &[Cause::Other],
            sides: &[&["a"], &["b"]],
            quotes: &["resolver crashed"],
        },
    ]
}

#[test]
fn findings_table() {
    for case in cases() {
        let found = findings(&case.observations);
        let causes: Vec<Cause> = found.iter().map(|f| f.cause).collect();
        assert_eq!(causes, case.causes, "case {}: {found:#?}", case.name);
        let Some(first) = found.first() else { continue };
        let sides: Vec<Vec<&str>> = first
            .sides
            .iter()
            .map(|s| s.perspectives.iter().map(PerspectiveId::as_str).collect())
            .collect();
        assert_eq!(sides, case.sides, "case {}: {first:#?}", case.name);
        let text = format!("{first:?}");
        for quote in case.quotes {
            assert!(
                text.contains(quote),
                "case {}: no {quote:?} in {first:#?}",
                case.name
            );
        }
    }
}

#[test]
fn normalize_drops_ttl_and_owner_case() {
    assert_eq!(normalize(CAA_OURS), normalize(CAA_OURS_LOWER_TTL));
    assert_ne!(normalize(CAA_OURS), normalize(CAA_THEIRS));
}

#[test]
fn address_of_failed_attempts() {
    let cases = [
        ("v4", "192.0.2.1:80: connection refused", "192.0.2.1:80"),
        ("v6", "[2001:db8::1]:80: unreachable", "[2001:db8::1]:80"),
        ("bare", "192.0.2.1:80", "192.0.2.1:80"),
    ];
    for (name, text, expected) in cases {
        assert_eq!(address_of(text), expected, "case {name}");
    }
}
