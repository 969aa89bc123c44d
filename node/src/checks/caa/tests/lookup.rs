//! The CAA climb over a scripted resolver: which names are asked, which level decides, and how
//! failures and DNSSEC statuses become problems. Any unscripted lookup fails the test.

use std::time::Duration;

use hickory_proto::rr::rdata::CAA;
use hickory_proto::rr::{RData, RecordType};
use mpic_protocol::{CaaCheck, DnssecStatus, Outcome, ProblemKind};
use tokio::time::Instant;

use crate::checks::CheckReport;
use crate::checks::caa::lookup::check;
use crate::checks::caa::policy::PolicyOptions;
use crate::checks::fake::{FakeResolver, answer, nxdomain, servfail, timeout};

const CAA_T: RecordType = RecordType::CAA;

fn caa(flags: u8, tag: &str, value: &str) -> RData {
    // The struct is non-exhaustive: build one and set its public fields.
    let mut record = CAA::new_issue(false, None, Vec::new());
    record.issuer_critical = flags & 128 != 0;
    record.reserved_flags = flags & 127;
    record.tag = tag.into();
    record.value = value.as_bytes().to_vec();
    RData::CAA(record)
}

fn request(wildcard: bool) -> CaaCheck {
    CaaCheck {
        issuer_domains: vec!["ca.example".into()],
        wildcard,
        ..CaaCheck::default()
    }
}

async fn run(fake: &FakeResolver, identifier: &str, wildcard: bool) -> CheckReport {
    let deadline = Instant::now() + Duration::from_secs(2);
    let report = check(
        fake,
        identifier,
        &request(wildcard),
        &PolicyOptions::default(),
        deadline,
    )
    .await;
    fake.assert_no_surprises();
    report
}

fn kind(report: &CheckReport) -> Option<ProblemKind> {
    report.problem.as_ref().map(|p| p.kind)
}

#[tokio::test]
async fn climbs_to_the_parent_when_the_name_has_no_caa() {
    let fake = FakeResolver::default();
    fake.on(
        "www.example.com",
        CAA_T,
        Ok(answer("www.example.com", CAA_T, vec![])),
    )
    .on(
        "example.com",
        CAA_T,
        Ok(answer(
            "example.com",
            CAA_T,
            vec![caa(0, "issue", "other.example")],
        )),
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    let report = run(&fake, "www.example.com", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Caa));
    let detail = &report.problem.as_ref().unwrap().detail;
    assert!(detail.contains("at example.com."), "{detail}");
    assert_eq!(
        report.evidence.dns.len(),
        3,
        "every level is in the evidence"
    );
}

#[tokio::test]
async fn the_most_specific_rrset_wins() {
    let fake = FakeResolver::default();
    fake.on(
        "www.example.com",
        CAA_T,
        Ok(answer(
            "www.example.com",
            CAA_T,
            vec![caa(0, "issue", "ca.example")],
        )),
    )
    .on(
        "example.com",
        CAA_T,
        Ok(answer("example.com", CAA_T, vec![caa(0, "issue", ";")])),
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    assert_eq!(
        run(&fake, "www.example.com", false).await.outcome,
        Outcome::Pass
    );
}

#[tokio::test]
async fn nxdomain_below_the_tld_climbs_on() {
    let fake = FakeResolver::default();
    fake.on(
        "gone.example.com",
        CAA_T,
        Ok(nxdomain("gone.example.com", CAA_T)),
    )
    .on(
        "example.com",
        CAA_T,
        Ok(answer(
            "example.com",
            CAA_T,
            vec![caa(0, "issue", "ca.example")],
        )),
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    assert_eq!(
        run(&fake, "gone.example.com", false).await.outcome,
        Outcome::Pass
    );
}

#[tokio::test]
async fn wildcard_starts_at_the_base_name_and_uses_issuewild() {
    let fake = FakeResolver::default();
    fake.on(
        "example.com",
        CAA_T,
        Ok(answer(
            "example.com",
            CAA_T,
            vec![caa(0, "issue", "ca.example"), caa(0, "issuewild", ";")],
        )),
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    let report = run(&fake, "*.example.com", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Caa));
    assert_eq!(fake.asked().len(), 2, "{:?}", fake.asked());
}

#[tokio::test]
async fn servfail_below_the_relevant_level_is_a_dns_failure_never_permission() {
    let fake = FakeResolver::default();
    fake.on(
        "www.example.com",
        CAA_T,
        Err(servfail("www.example.com", CAA_T)),
    )
    .on(
        "example.com",
        CAA_T,
        Ok(answer(
            "example.com",
            CAA_T,
            vec![caa(0, "issue", "ca.example")],
        )),
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    let report = run(&fake, "www.example.com", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Dns));
    assert!(report.problem.unwrap().detail.contains("SERVFAIL"));
}

#[tokio::test]
async fn failure_above_the_relevant_level_does_not_matter() {
    let fake = FakeResolver::default();
    fake.on(
        "www.example.com",
        CAA_T,
        Ok(answer(
            "www.example.com",
            CAA_T,
            vec![caa(0, "issue", "ca.example")],
        )),
    )
    .on("example.com", CAA_T, Err(servfail("example.com", CAA_T)))
    .on("com", CAA_T, Err(timeout("com", CAA_T)));
    assert_eq!(
        run(&fake, "www.example.com", false).await.outcome,
        Outcome::Pass
    );
}

#[tokio::test]
async fn timeout_is_reported_as_timeout() {
    let fake = FakeResolver::default();
    fake.on("example.com", CAA_T, Err(timeout("example.com", CAA_T)))
        .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    let report = run(&fake, "example.com", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Timeout));
}

#[tokio::test]
async fn nxdomain_for_the_tld_is_an_error() {
    let fake = FakeResolver::default();
    fake.on(
        "example.invalidtld",
        CAA_T,
        Ok(nxdomain("example.invalidtld", CAA_T)),
    )
    .on("invalidtld", CAA_T, Ok(nxdomain("invalidtld", CAA_T)));
    let report = run(&fake, "example.invalidtld", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Dns));
}

#[tokio::test]
async fn bogus_dnssec_at_a_level_is_a_dnssec_failure() {
    let fake = FakeResolver::default();
    fake.on_with_status(
        answer("example.com", CAA_T, vec![caa(0, "issue", "ca.example")]),
        DnssecStatus::Bogus,
    )
    .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
    let report = run(&fake, "example.com", false).await;
    assert_eq!(report.outcome, Outcome::Fail);
    assert_eq!(kind(&report), Some(ProblemKind::Dnssec));
    assert_eq!(report.dnssec, Some(DnssecStatus::Bogus));
}

#[tokio::test]
async fn secure_status_is_carried_to_the_report() {
    let fake = FakeResolver::default();
    fake.on_with_status(answer("example.com", CAA_T, vec![]), DnssecStatus::Secure)
        .on_with_status(answer("com", CAA_T, vec![]), DnssecStatus::Secure);
    let report = run(&fake, "example.com", false).await;
    assert_eq!(report.outcome, Outcome::Pass);
    assert_eq!(report.dnssec, Some(DnssecStatus::Secure));
}

#[tokio::test]
async fn ip_addresses_have_no_caa_and_ask_nothing() {
    let fake = FakeResolver::default();
    assert_eq!(run(&fake, "192.0.2.1", false).await.outcome, Outcome::Pass);
    assert!(fake.asked().is_empty());
}

#[tokio::test]
async fn a_request_without_issuer_domains_is_malformed() {
    let fake = FakeResolver::default();
    let deadline = Instant::now() + Duration::from_secs(1);
    let report = check(
        &fake,
        "example.com",
        &CaaCheck::default(),
        &PolicyOptions::default(),
        deadline,
    )
    .await;
    assert_eq!(kind(&report), Some(ProblemKind::Malformed));
    assert!(fake.asked().is_empty());
}

#[tokio::test]
async fn certificate_type_selects_the_property_and_unknown_types_fail() {
    // example.com: `issue ";"` forbids TLS for everyone, `issuemail` names us (RFC 9495 §4).
    let cases: [(Option<&str>, Outcome, Option<ProblemKind>); 4] = [
        (None, Outcome::Fail, Some(ProblemKind::Caa)),
        (Some("tls"), Outcome::Fail, Some(ProblemKind::Caa)),
        (Some("s-mime"), Outcome::Pass, None),
        (Some("vmc"), Outcome::Fail, Some(ProblemKind::Unsupported)),
    ];
    for (certificate_type, outcome, problem) in cases {
        let fake = FakeResolver::default();
        fake.on(
            "example.com",
            CAA_T,
            Ok(answer(
                "example.com",
                CAA_T,
                vec![caa(0, "issue", ";"), caa(0, "issuemail", "ca.example")],
            )),
        )
        .on("com", CAA_T, Ok(answer("com", CAA_T, vec![])));
        let request = CaaCheck {
            certificate_type: certificate_type.map(str::to_owned),
            ..request(false)
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        let report = check(
            &fake,
            "example.com",
            &request,
            &PolicyOptions::default(),
            deadline,
        )
        .await;
        assert_eq!(report.outcome, outcome, "{certificate_type:?}");
        assert_eq!(kind(&report), problem, "{certificate_type:?}");
        if problem == Some(ProblemKind::Unsupported) {
            assert!(fake.asked().is_empty(), "an unknown type asks nothing");
        }
    }
}
