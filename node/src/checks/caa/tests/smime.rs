//! Table tests for `issuemail` (RFC 9495): which property governs an S/MIME request, and that
//! TLS requests still ignore `issuemail`.

use super::super::policy::*;

const CA: &str = "ca.example";
const ACCOUNT: &str = "https://ca.example/acct/1";

fn rec(flags: u8, tag: &str, value: &str) -> CaaRecord {
    CaaRecord {
        flags,
        tag: tag.into(),
        value: value.as_bytes().to_vec(),
    }
}

fn decide_as(records: &[CaaRecord], certificate_type: CertificateType) -> CaaDecision {
    let issuers = [CA.to_owned()];
    let request = CaaRequest {
        issuer_domains: &issuers,
        wildcard: false,
        certificate_type,
        account_uris: &[ACCOUNT],
        method: None,
    };
    decide(records, &request, &PolicyOptions::default())
}

fn authorized(property: &'static str) -> CaaDecision {
    CaaDecision::Permitted(Permission::Authorized {
        property,
        issuer: CA.into(),
    })
}

fn not_authorized(property: &'static str, issuers: &[&str]) -> CaaDecision {
    CaaDecision::Forbidden(Refusal::NotAuthorized {
        property,
        issuers: issuers.iter().map(|s| (*s).to_owned()).collect(),
        parameter_failures: Vec::new(),
    })
}

#[test]
fn issuemail_selection_table() {
    use CertificateType::{Smime, Tls};
    let cases: Vec<(&str, Vec<CaaRecord>, CertificateType, CaaDecision)> = vec![
        (
            "issuemail naming us permits S/MIME (RFC 9495 §4)",
            vec![rec(0, "issuemail", CA)],
            Smime,
            authorized("issuemail"),
        ),
        (
            "issuemail naming another CA forbids S/MIME",
            vec![rec(0, "issuemail", "other.example")],
            Smime,
            not_authorized("issuemail", &["other.example"]),
        ),
        (
            "one of several issuemail naming us is enough",
            vec![
                rec(0, "issuemail", "other.example"),
                rec(0, "issuemail", CA),
            ],
            Smime,
            authorized("issuemail"),
        ),
        (
            "empty issuemail ; forbids S/MIME",
            vec![rec(0, "issuemail", ";")],
            Smime,
            not_authorized("issuemail", &[""]),
        ),
        (
            "malformed issuemail is an empty issuer (RFC 9495 §4)",
            vec![rec(0, "issuemail", "%%%")],
            Smime,
            not_authorized("issuemail", &[""]),
        ),
        (
            "issuemail tag matches case-insensitively",
            vec![rec(0, "IssueMail", CA)],
            Smime,
            authorized("issuemail"),
        ),
        (
            "issue forbidding everyone is ignored for S/MIME",
            vec![rec(0, "issue", ";"), rec(0, "issuewild", ";")],
            Smime,
            CaaDecision::Permitted(Permission::NoRelevantProperty),
        ),
        (
            "issue naming us does not authorize S/MIME when issuemail names another",
            vec![rec(0, "issue", CA), rec(0, "issuemail", "other.example")],
            Smime,
            not_authorized("issuemail", &["other.example"]),
        ),
        (
            "no records at all: S/MIME unrestricted",
            vec![],
            Smime,
            CaaDecision::Permitted(Permission::NoRecords),
        ),
        (
            "critical unknown tag still forbids S/MIME (RFC 8659 §4.1)",
            vec![rec(0, "issuemail", CA), rec(128, "tbs", "x")],
            Smime,
            CaaDecision::Forbidden(Refusal::UnknownCriticalTag {
                tag: "tbs".into(),
                flags: 128,
            }),
        ),
        (
            "critical issuemail is a known tag",
            vec![rec(128, "issuemail", CA)],
            Smime,
            authorized("issuemail"),
        ),
        (
            "issuemail accounturi is honoured like issue's (RFC 9495 §3, RFC 8657 §3)",
            vec![rec(0, "issuemail", &format!("{CA}; accounturi={ACCOUNT}"))],
            Smime,
            authorized("issuemail"),
        ),
        (
            "issuemail forbidding everyone is ignored for TLS",
            vec![rec(0, "issuemail", ";")],
            Tls,
            CaaDecision::Permitted(Permission::NoRelevantProperty),
        ),
        (
            "issuemail naming us does not authorize TLS when issue names another",
            vec![rec(0, "issuemail", CA), rec(0, "issue", "other.example")],
            Tls,
            not_authorized("issue", &["other.example"]),
        ),
    ];
    for (name, records, certificate_type, expected) in cases {
        assert_eq!(decide_as(&records, certificate_type), expected, "{name}");
    }
}

#[test]
fn issuemail_with_another_account_names_the_parameter() {
    let records = [rec(
        0,
        "issuemail",
        &format!("{CA}; accounturi=https://ca.example/acct/2"),
    )];
    match decide_as(&records, CertificateType::Smime) {
        CaaDecision::Forbidden(Refusal::NotAuthorized {
            property,
            parameter_failures,
            ..
        }) => {
            assert_eq!(property, "issuemail");
            assert_eq!(parameter_failures.len(), 1, "{parameter_failures:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_refusal_names_issuemail() {
    let decision = decide_as(&[rec(0, "issuemail", ";")], CertificateType::Smime);
    assert_eq!(
        decision.to_string_lossy(),
        "CAA issuemail records name \";\" (nobody) but not this CA"
    );
}
