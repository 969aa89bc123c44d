//! The BR 3.2.2.8 carve-out rule as a table: every failure kind × every DNSSEC status (and
//! validation off) × the request flag on and off, plus the retry count and the classification of
//! resolver errors.

use std::net::SocketAddr;

use hickory_proto::rr::RecordType;
use mpic_protocol::DnssecStatus;

use crate::checks::caa::carve_out::{
    FailureKind, LookupFailure, MIN_ATTEMPTS, Refusal, classify, decide,
};
use crate::dns::{Attempt, AttemptFailure, DnsError};

const KINDS: [FailureKind; 11] = [
    FailureKind::Timeout,
    FailureKind::ServFail,
    FailureKind::Refused,
    FailureKind::Unreachable,
    FailureKind::Mixed,
    FailureKind::Malformed,
    FailureKind::Truncated,
    FailureKind::Lame,
    FailureKind::Bogus,
    FailureKind::Limit,
    FailureKind::Other,
];

const STATUSES: [Option<DnssecStatus>; 5] = [
    None,
    Some(DnssecStatus::Secure),
    Some(DnssecStatus::Insecure),
    Some(DnssecStatus::Bogus),
    Some(DnssecStatus::Indeterminate),
];

fn failure(kind: FailureKind, attempts: usize) -> LookupFailure {
    LookupFailure {
        kind,
        attempts: vec!["127.0.0.1:53 timed out".into(); attempts],
    }
}

/// What the rule must answer for one combination, written out case by case.
fn expected(
    requested: bool,
    kind: FailureKind,
    attempts: usize,
    zone: Option<DnssecStatus>,
) -> Result<(), Refusal> {
    let lookup_failure = match kind {
        FailureKind::Timeout
        | FailureKind::ServFail
        | FailureKind::Refused
        | FailureKind::Unreachable
        | FailureKind::Mixed => true,
        FailureKind::Malformed
        | FailureKind::Truncated
        | FailureKind::Lame
        | FailureKind::Bogus
        | FailureKind::Limit
        | FailureKind::Other => false,
    };
    match (requested, lookup_failure, attempts >= 2, zone) {
        (false, ..) => Err(Refusal::NotRequested),
        (true, false, ..) => Err(Refusal::NotALookupFailure { kind }),
        (true, true, false, _) => Err(Refusal::NotRetried { attempts }),
        (true, true, true, None) => Err(Refusal::ValidationOff),
        (true, true, true, Some(DnssecStatus::Insecure)) => Ok(()),
        (true, true, true, Some(status)) => Err(Refusal::NotInsecure { status }),
    }
}

#[test]
fn every_failure_kind_by_every_status_by_the_flag() {
    let mut permitted = Vec::new();
    for requested in [false, true] {
        for kind in KINDS {
            for attempts in [0, 1, 2, 3] {
                for zone in STATUSES {
                    let case = format!("flag={requested} {kind:?} attempts={attempts} {zone:?}");
                    let got = decide(requested, &failure(kind, attempts), zone);
                    assert_eq!(got, expected(requested, kind, attempts, zone), "{case}");
                    if got.is_ok() {
                        permitted.push((kind, attempts));
                    }
                }
            }
        }
    }
    // Exactly: the five lookup-failure kinds, retried (2 or 3 queries), insecure, flag on.
    assert_eq!(permitted.len(), 5 * 2, "{permitted:?}");
    assert_eq!(MIN_ATTEMPTS, 2);
}

#[test]
fn refusals_name_their_reason() {
    let cases: [(&str, Result<(), Refusal>, &str); 5] = [
        (
            "flag off",
            decide(false, &failure(FailureKind::Timeout, 2), None),
            "did not ask",
        ),
        (
            "bogus answer",
            decide(true, &failure(FailureKind::Bogus, 2), None),
            "a bogus result is not a lookup failure",
        ),
        (
            "one query",
            decide(true, &failure(FailureKind::ServFail, 1), None),
            "sent 1 time(s), not retried",
        ),
        (
            "validation off",
            decide(true, &failure(FailureKind::Refused, 2), None),
            "DNSSEC validation is off",
        ),
        (
            "indeterminate",
            decide(
                true,
                &failure(FailureKind::Timeout, 2),
                Some(DnssecStatus::Indeterminate),
            ),
            "Indeterminate, not proven insecure",
        ),
    ];
    for (name, got, text) in cases {
        let message = got.expect_err(name).to_string();
        assert!(message.contains(text), "{name}: {message}");
    }
}

fn no_answer(failures: &[AttemptFailure]) -> DnsError {
    DnsError::NoAnswer {
        name: hickory_proto::rr::Name::from_ascii("www.example.test.").unwrap(),
        record_type: RecordType::CAA,
        attempts: failures
            .iter()
            .map(|failure| Attempt {
                server: SocketAddr::from(([192, 0, 2, 53], 53)),
                failure: failure.clone(),
            })
            .collect(),
    }
}

#[test]
fn resolver_errors_classify_with_their_query_count() {
    use AttemptFailure::{Lame, Malformed, Network, Rcode, Timeout, Truncated};
    let net = || Network(std::io::ErrorKind::ConnectionRefused.into());
    let name = || hickory_proto::rr::Name::from_ascii("www.example.test.").unwrap();
    let cases: Vec<(&str, DnsError, FailureKind, usize)> = vec![
        (
            "two timeouts",
            no_answer(&[Timeout, Timeout]),
            FailureKind::Timeout,
            2,
        ),
        (
            "servfail twice",
            no_answer(&[Rcode("SERVFAIL"), Rcode("SERVFAIL")]),
            FailureKind::ServFail,
            2,
        ),
        (
            "refused once",
            no_answer(&[Rcode("REFUSED")]),
            FailureKind::Refused,
            1,
        ),
        (
            "unreachable",
            no_answer(&[net(), net()]),
            FailureKind::Unreachable,
            2,
        ),
        (
            "timeout then servfail",
            no_answer(&[Timeout, Rcode("SERVFAIL")]),
            FailureKind::Mixed,
            2,
        ),
        (
            "timeout then malformed",
            no_answer(&[Timeout, Malformed]),
            FailureKind::Malformed,
            2,
        ),
        (
            "formerr",
            no_answer(&[Rcode("FORMERR"), Rcode("FORMERR")]),
            FailureKind::Malformed,
            2,
        ),
        (
            "truncated",
            no_answer(&[Truncated, Truncated]),
            FailureKind::Truncated,
            2,
        ),
        (
            "lame then timeout",
            no_answer(&[Lame, Timeout]),
            FailureKind::Lame,
            2,
        ),
        (
            "deadline",
            DnsError::DeadlineExceeded {
                name: name(),
                record_type: RecordType::CAA,
            },
            FailureKind::Timeout,
            0,
        ),
        (
            "no servers",
            DnsError::NoServers { zone: name() },
            FailureKind::Unreachable,
            0,
        ),
        (
            "cname loop",
            DnsError::CnameLoop {
                name: name(),
                chain: Vec::new(),
            },
            FailureKind::Limit,
            0,
        ),
        (
            "bad name",
            DnsError::BadName {
                name: name().to_string(),
                detail: "x".into(),
            },
            FailureKind::Other,
            0,
        ),
    ];
    for (case, error, kind, attempts) in cases {
        let got = classify(&error);
        assert_eq!((got.kind, got.attempts.len()), (kind, attempts), "{case}");
    }
}

mod over_a_scripted_resolver {
    use std::time::Duration;

    use hickory_proto::rr::rdata::CAA;
    use hickory_proto::rr::{RData, RecordType};
    use mpic_protocol::{CaaCheck, DnssecStatus, Outcome, ProblemKind};
    use tokio::time::Instant;

    use super::no_answer;
    use crate::checks::CheckReport;
    use crate::checks::caa::lookup::check;
    use crate::checks::caa::policy::PolicyOptions;
    use crate::checks::fake::{FakeResolver, answer, servfail};
    use crate::dns::AttemptFailure::{Rcode, Timeout};

    const CAA_T: RecordType = RecordType::CAA;
    const PROOF: &str = "example.test. is a delegation from test. without DS (validated denial)";

    fn issue(value: &str) -> RData {
        RData::CAA(CAA::new_issue(
            false,
            Some(hickory_proto::rr::Name::from_ascii(value).unwrap()),
            Vec::new(),
        ))
    }

    /// `www.example.test` fails as scripted; the parents answer empty unless told otherwise.
    fn fake(failure: crate::dns::DnsError) -> FakeResolver {
        let fake = FakeResolver::default();
        fake.on("www.example.test", CAA_T, Err(failure));
        for name in ["example.test", "test"] {
            fake.on(name, CAA_T, Ok(answer(name, CAA_T, vec![])));
        }
        fake
    }

    async fn run(fake: &FakeResolver, allow: bool) -> CheckReport {
        let request = CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            allow_lookup_failure: allow,
            ..CaaCheck::default()
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let options = PolicyOptions::default();
        let report = check(fake, "www.example.test", &request, &options, deadline).await;
        fake.assert_no_surprises();
        report
    }

    fn verdict(report: &CheckReport) -> (Outcome, Option<ProblemKind>, bool) {
        (
            report.outcome,
            report.problem.as_ref().map(|p| p.kind),
            report.evidence.permitted_by_lookup_failure.is_some(),
        )
    }

    #[tokio::test]
    async fn a_retried_timeout_in_an_insecure_zone_passes_only_when_asked() {
        let fake = fake(no_answer(&[Timeout, Timeout]));
        assert_eq!(
            verdict(&run(&fake, false).await),
            (Outcome::Fail, Some(ProblemKind::Timeout), false)
        );
        assert!(!fake.asked().iter().any(|(_, t)| *t == RecordType::DS));
        fake.on_zone("www.example.test", DnssecStatus::Insecure, PROOF);
        let report = run(&fake, true).await;
        assert_eq!(verdict(&report), (Outcome::Pass, None, true));
        assert_eq!(report.dnssec, Some(DnssecStatus::Insecure));
        let permit = report.evidence.permitted_by_lookup_failure.unwrap();
        assert_eq!(permit.failed_lookups.len(), 1);
        let failed = &permit.failed_lookups[0];
        assert_eq!(
            (
                failed.name.as_str(),
                failed.failure.as_str(),
                failed.attempts
            ),
            ("www.example.test.", "timeout", 2)
        );
        assert_eq!(
            (failed.dnssec, failed.proof.as_str()),
            (DnssecStatus::Insecure, PROOF)
        );
    }

    #[tokio::test]
    async fn each_proof_that_is_not_insecure_keeps_the_failure() {
        for status in [
            DnssecStatus::Secure,
            DnssecStatus::Bogus,
            DnssecStatus::Indeterminate,
        ] {
            let fake = fake(no_answer(&[Rcode("SERVFAIL"), Rcode("SERVFAIL")]));
            fake.on_zone("www.example.test", status, "why");
            let report = run(&fake, true).await;
            assert_eq!(
                verdict(&report),
                (Outcome::Fail, Some(ProblemKind::Dns), false),
                "{status:?}"
            );
            let detail = &report.problem.unwrap().detail;
            assert!(detail.contains("carve-out refused"), "{detail}");
        }
    }

    #[tokio::test]
    async fn a_lookup_sent_once_is_not_retried_and_asks_no_proof() {
        let fake = fake(servfail("www.example.test.", CAA_T));
        let report = run(&fake, true).await;
        assert_eq!(
            verdict(&report),
            (Outcome::Fail, Some(ProblemKind::Dns), false)
        );
        assert!(report.problem.unwrap().detail.contains("not retried"));
    }

    #[tokio::test]
    async fn a_forbidding_parent_still_forbids() {
        let fake = fake(no_answer(&[Timeout, Timeout]));
        fake.on(
            "example.test",
            CAA_T,
            Ok(answer("example.test", CAA_T, vec![issue("other.example")])),
        );
        fake.on_zone("www.example.test", DnssecStatus::Insecure, PROOF);
        let report = run(&fake, true).await;
        assert_eq!(
            verdict(&report),
            (Outcome::Fail, Some(ProblemKind::Caa), false)
        );
    }

    #[tokio::test]
    async fn a_bogus_answer_is_never_a_lookup_failure() {
        let fake = FakeResolver::default();
        fake.on_with_status(
            answer("www.example.test", CAA_T, vec![issue("ca.example")]),
            DnssecStatus::Bogus,
        );
        for name in ["example.test", "test"] {
            fake.on(name, CAA_T, Ok(answer(name, CAA_T, vec![])));
        }
        let report = run(&fake, true).await;
        assert_eq!(
            verdict(&report),
            (Outcome::Fail, Some(ProblemKind::Dnssec), false)
        );
        assert!(
            report
                .problem
                .unwrap()
                .detail
                .contains("not a lookup failure")
        );
    }
}
