//! The Open MPIC response shapes built from signed results.

use super::*;
use mpic_protocol::DnsEvidence;
use mpic_protocol::{CaaCheck, Evidence, PerspectiveId, PerspectiveInfo, Problem, Rir, Target};

fn payload(outcome: Outcome, problem: Option<ProblemKind>) -> ResultPayload {
    ResultPayload {
        version: 1,
        request_id: "trace-1".into(),
        nonce: vec![1; 32],
        target_index: 0,
        target: Target {
            identifier: "www.a.test".into(),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec!["ca.test".into()],
                ..Default::default()
            }),
        },
        perspective: PerspectiveInfo {
            id: PerspectiveId::new("p-1").unwrap(),
            rir: Rir::Arin,
            location: "x".into(),
            shadow: false,
        },
        received_unix_ms: 1,
        completed_unix_ms: 2,
        outcome,
        problem: problem.map(|kind| Problem {
            kind,
            detail: "why".into(),
        }),
        dnssec: Some(DnssecStatus::Secure),
        evidence: Evidence {
            dns: vec![
                DnsEvidence {
                    name: "www.a.test.".into(),
                    record_type: "CAA".into(),
                    rcode: "NOERROR".into(),
                    records: vec![],
                    dnssec: None,
                    server: None,
                },
                DnsEvidence {
                    name: "a.test.".into(),
                    record_type: "CAA".into(),
                    rcode: "NOERROR".into(),
                    records: vec!["a.test. 60 IN CAA 0 issue \"ca.test\"".into()],
                    dnssec: None,
                    server: None,
                },
            ],
            ..Default::default()
        },
        key_id: "k".into(),
        tenant: None,
    }
}

fn signed() -> SignedResult {
    SignedResult {
        payload: vec![1, 2, 3],
        signature: vec![4; 64],
        key_id: "k".into(),
    }
}

#[test]
fn outcomes_map_to_completed_and_passed() {
    let cases = [
        (Outcome::Pass, None, true, true, None),
        (
            Outcome::Fail,
            Some(ProblemKind::Caa),
            true,
            false,
            Some("mpic_node:caa"),
        ),
        (
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            true,
            false,
            Some("mpic_node:unauthorized"),
        ),
        (
            Outcome::Fail,
            Some(ProblemKind::Dns),
            false,
            false,
            Some("mpic_node:dns"),
        ),
        (
            Outcome::Fail,
            Some(ProblemKind::Dnssec),
            false,
            false,
            Some("mpic_node:dnssec"),
        ),
        (
            Outcome::Fail,
            Some(ProblemKind::Timeout),
            false,
            false,
            Some("mpic_node:timeout"),
        ),
        (
            Outcome::Unsupported,
            Some(ProblemKind::Unsupported),
            false,
            false,
            Some("mpic_node:unsupported"),
        ),
    ];
    for (outcome, problem, completed, passed, error) in cases {
        let response = build(&payload(outcome, problem), &signed(), &typed_dns());
        assert_eq!(
            (response.check_completed, response.check_passed),
            (completed, passed),
            "{outcome:?} {problem:?}"
        );
        let error_type = response.errors.as_ref().map(|e| e[0].error_type.as_str());
        assert_eq!(error_type, error);
        assert_eq!(response.check_type, "caa");
        assert_eq!(response.timestamp_ns, 2_000_000);
        assert_eq!(response.mpic_node.request_id, "trace-1");
        assert_eq!(response.mpic_node.payload, "AQID");
    }
    let pass = build(&payload(Outcome::Pass, None), &signed(), &typed_dns());
    assert_eq!(
        pass.details,
        json!({"caa_record_present": true, "found_at": "a.test", "records_seen": ["0 issue \"ca.test\""]})
    );
    let failed = build(
        &payload(Outcome::Fail, Some(ProblemKind::Dns)),
        &signed(),
        &typed_dns(),
    );
    assert_eq!(failed.details["caa_record_present"], Value::Null);
}

#[test]
fn a_carve_out_pass_keeps_the_lookup_failure_as_a_detail() {
    let mut payload = payload(Outcome::Pass, None);
    payload.evidence.permitted_by_lookup_failure = Some(LookupFailurePermit {
        failed_lookups: vec![mpic_protocol::FailedLookup {
            name: "www.a.test.".into(),
            failure: "timeout".into(),
            attempts: 2,
            attempt_details: vec!["127.0.0.1:53 timed out".into(); 2],
            resolution: "forward".into(),
            dnssec: DnssecStatus::Insecure,
            proof: "a.test. is a delegation from test. without DS (validated denial)".into(),
        }],
    });
    let response = build(&payload, &signed(), &typed_dns());
    assert_eq!(
        (response.check_completed, response.check_passed),
        (true, true)
    );
    assert_eq!(
        response.mpic_node.outcome_detail,
        Some("permitted_by_lookup_failure")
    );
    assert_eq!(
        response.details,
        json!({"caa_record_present": null, "found_at": null, "records_seen": null,
               "outcome_detail": "permitted_by_lookup_failure"})
    );
    let errors = response.errors.unwrap();
    assert_eq!(
        errors[0].error_type,
        "mpic_node:permitted_by_lookup_failure"
    );
    assert!(
        errors[0].error_message.contains(
            "www.a.test. failed (timeout, 2 attempts: 127.0.0.1:53 timed out; 127.0.0.1:53 \
             timed out); zone Insecure: a.test. is a delegation"
        ),
        "{}",
        errors[0].error_message
    );
    let ordinary = build(&payload_plain(), &signed(), &typed_dns());
    assert_eq!(ordinary.mpic_node.outcome_detail, None);
    assert!(ordinary.errors.is_none());
}

fn payload_plain() -> ResultPayload {
    payload(Outcome::Pass, None)
}

#[test]
fn typed_evidence_answers_as_its_signed_strings_do() {
    use hickory_proto::rr::rdata::{CAA, TXT};
    use hickory_proto::rr::{Name, RData, RecordType};

    use crate::checks::evidence::DnsLookupEvidence;
    use crate::checks::fake::answer;

    let issue = RData::CAA(CAA::new_issue(
        false,
        Some(Name::from_ascii("ca.test").unwrap()),
        Vec::new(),
    ));
    let txt = RData::TXT(TXT::new(vec!["v".into()]));
    let failed = crate::dns::DnsError::DeadlineExceeded {
        name: Name::from_ascii("www.a.test").unwrap(),
        record_type: RecordType::TXT,
    };
    let cases: Vec<(&str, Check, Vec<DnsLookupEvidence>)> = vec![
        (
            "caa found at the parent",
            Check::Caa(CaaCheck::default()),
            vec![
                DnsLookupEvidence::answered(&answer("www.a.test", RecordType::CAA, vec![])),
                DnsLookupEvidence::answered(&answer("a.test", RecordType::CAA, vec![issue])),
            ],
        ),
        (
            "dns-change seen",
            Check::Dcv(mpic_protocol::DcvCheck {
                method: DcvMethod::DnsChange,
                expected: None,
                key_authorization: None,
                token: None,
                prefix: None,
                issuer_domain: None,
                account_uri: None,
                wildcard: false,
                url_scheme: None,
                record_type: None,
                exact_match: false,
                case_insensitive: false,
            }),
            vec![DnsLookupEvidence::answered(&answer(
                "www.a.test",
                RecordType::TXT,
                vec![txt],
            ))],
        ),
        (
            "dns-change lookup failed",
            Check::Dcv(mpic_protocol::DcvCheck {
                method: DcvMethod::AcmeDns01,
                expected: None,
                key_authorization: None,
                token: None,
                prefix: None,
                issuer_domain: None,
                account_uri: None,
                wildcard: false,
                url_scheme: None,
                record_type: None,
                exact_match: false,
                case_insensitive: false,
            }),
            vec![DnsLookupEvidence::failed(
                "www.a.test.".into(),
                RecordType::TXT,
                failed,
            )],
        ),
    ];
    for (name, check, dns) in cases {
        let mut signed_payload = payload(Outcome::Pass, None);
        signed_payload.target.check = check;
        signed_payload.evidence = Evidence {
            dns: dns.iter().map(DnsLookupEvidence::to_wire).collect(),
            ..Default::default()
        };
        let from_typed = serde_json::to_value(build(&signed_payload, &signed(), &dns)).unwrap();
        let views: Vec<LookupView<'_>> = signed_payload.evidence.dns.iter().map(parsed).collect();
        let from_strings =
            serde_json::to_value(respond(&signed_payload, &signed(), &views)).unwrap();
        assert_eq!(from_typed, from_strings, "{name}");
    }
}

/// The view the endpoint used to build by parsing the signed presentation strings back (kept
/// here only to show the typed path answers exactly as that did).
fn parsed(lookup: &DnsEvidence) -> LookupView<'_> {
    let type_and_rdata = |record: &str| -> Option<(String, String)> {
        let mut parts = record.splitn(5, ' ');
        let (_name, _ttl, _class) = (parts.next()?, parts.next()?, parts.next()?);
        Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
    };
    let rcode = match lookup.rcode.as_str() {
        "NOERROR" => Some(0),
        "SERVFAIL" => Some(2),
        "NXDOMAIN" => Some(3),
        "REFUSED" => Some(5),
        _ => None,
    };
    LookupView {
        name: &lookup.name,
        record_type: lookup.record_type.clone(),
        rcode,
        records: lookup
            .records
            .iter()
            .filter_map(|r| type_and_rdata(r))
            .collect(),
    }
}

/// The DNS evidence of [`payload`], typed.
fn typed_dns() -> Vec<DnsLookupEvidence> {
    use hickory_proto::rr::rdata::CAA;
    use hickory_proto::rr::{Name, RData, RecordType};

    use crate::checks::evidence::DnsLookupEvidence;
    use crate::checks::fake::answer;

    let issue = RData::CAA(CAA::new_issue(
        false,
        Some(Name::from_ascii("ca.test").unwrap()),
        Vec::new(),
    ));
    vec![
        DnsLookupEvidence::answered(&answer("www.a.test", RecordType::CAA, vec![])),
        DnsLookupEvidence::answered(&answer("a.test", RecordType::CAA, vec![issue])),
    ]
}
