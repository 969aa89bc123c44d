//! Table tests for the RFC 8657 parameters as BR 4.2.2.1.2 (SC-098v2) requires them: a case per
//! method label and per equivalence, the `accounturi` set, the case switch, and each example of
//! RFC 8657 Appendix A as a named case.

use super::super::parameters::*;
use super::super::policy::{
    CaaDecision, CaaRecord, CaaRequest, CertificateType, Permission, PolicyOptions, Refusal, decide,
};

const CA: &str = "ca1.example.net";
const ACCT: &str = "https://ca1.example.net/acme/acct/1234";
const PARENT: &str = "https://ca1.example.net/acme/acct/parent-7";

fn issue(value: &str) -> CaaRecord {
    CaaRecord {
        flags: 0,
        tag: "issue".into(),
        value: value.as_bytes().to_vec(),
    }
}

fn decide_with(
    records: &[CaaRecord],
    issuer: &str,
    accounts: &[&str],
    method: Option<&str>,
    case: LabelCase,
) -> CaaDecision {
    let issuers = [issuer.to_owned()];
    decide(
        records,
        &CaaRequest {
            issuer_domains: &issuers,
            wildcard: false,
            certificate_type: CertificateType::Tls,
            account_uris: accounts,
            method,
        },
        &PolicyOptions {
            method_label_case: case,
            ..PolicyOptions::default()
        },
    )
}

/// `Ok(())` when permitted by a record naming the CA, else the parameter failures.
fn verdict(decision: CaaDecision) -> Result<(), Vec<ParameterFailure>> {
    match decision {
        CaaDecision::Permitted(Permission::Authorized { .. }) => Ok(()),
        CaaDecision::Forbidden(Refusal::NotAuthorized {
            parameter_failures, ..
        }) => Err(parameter_failures),
        other => panic!("unexpected decision {other:?}"),
    }
}

/// What a parameter check expects: permitted, or refused with exactly these failures.
type Expected = Result<(), Vec<ParameterFailure>>;

fn methods(
    value: &str,
    method: Option<&str>,
    case: LabelCase,
) -> Result<(), Vec<ParameterFailure>> {
    let record = issue(&format!("{CA}; validationmethods={value}"));
    verdict(decide_with(&[record], CA, &[], method, case))
}

fn not_listed(value: &str, labels: &'static [&'static str], case_only: bool) -> ParameterFailure {
    ParameterFailure::MethodNotListed {
        value: value.into(),
        labels,
        differs_only_in_case: case_only,
    }
}

#[test]
fn every_method_spelling_maps_to_the_labels_of_its_mechanism() {
    let cases: [(&str, Option<&[&str]>); 34] = [
        ("ca-tbr-2", Some(&["ca-tbr-2"])),
        ("ca-tbr-4", Some(&["ca-tbr-4"])),
        ("dns-change", Some(&["ca-tbr-7"])),
        ("ca-tbr-7", Some(&["ca-tbr-7"])),
        ("acme-dns-01", Some(&["dns-01", "ca-tbr-7"])),
        ("dns-01", Some(&["dns-01", "ca-tbr-7"])),
        ("ca-tbr-8", Some(&["ca-tbr-8"])),
        ("ca-tbr-12", Some(&["ca-tbr-12"])),
        ("contact-email-caa", Some(&["ca-tbr-13"])),
        ("ca-tbr-13", Some(&["ca-tbr-13"])),
        ("contact-email-txt", Some(&["ca-tbr-14"])),
        ("ca-tbr-15", Some(&["ca-tbr-15"])),
        ("contact-phone-txt", Some(&["ca-tbr-16"])),
        ("contact-phone-caa", Some(&["ca-tbr-17"])),
        ("website-change", Some(&["ca-tbr-18"])),
        ("ca-tbr-18", Some(&["ca-tbr-18"])),
        ("acme-http-01", Some(&["http-01", "ca-tbr-19"])),
        ("http-01", Some(&["http-01", "ca-tbr-19"])),
        ("ca-tbr-19", Some(&["http-01", "ca-tbr-19"])),
        ("acme-tls-alpn-01", Some(&["tls-alpn-01", "ca-tbr-20"])),
        ("tls-alpn-01", Some(&["tls-alpn-01", "ca-tbr-20"])),
        ("ca-tbr-20", Some(&["tls-alpn-01", "ca-tbr-20"])),
        (
            "acme-dns-account-01",
            Some(&["dns-account-01", "ca-tbr-21"]),
        ),
        ("dns-account-01", Some(&["dns-account-01", "ca-tbr-21"])),
        ("ca-tbr-21", Some(&["dns-account-01", "ca-tbr-21"])),
        ("dns-persist-01", Some(&["dns-persist-01", "ca-tbr-22"])),
        ("ca-tbr-22", Some(&["dns-persist-01", "ca-tbr-22"])),
        // Removed BR methods, CA-specific labels and misspellings have no labels.
        ("ca-tbr-1", None),
        ("ca-tbr-6", None),
        ("ca-tbr-07", None),
        ("ca-dns-change", None),
        ("ca-", None),
        ("DNS-01", None),
        ("", None),
    ];
    for (method, expected) in cases {
        assert_eq!(method_labels(method), expected, "{method:?}");
    }
}

#[test]
fn each_label_listed_alone_authorizes_every_method_it_names() {
    // For every known spelling, a record listing any one of its labels authorizes it (BR
    // 4.2.2.1.2: "the CA SHOULD accept any of the labels"), and one listing another method's
    // labels does not.
    let spellings = [
        "ca-tbr-2",
        "ca-tbr-4",
        "dns-change",
        "ca-tbr-7",
        "acme-dns-01",
        "dns-01",
        "ca-tbr-8",
        "ca-tbr-12",
        "contact-email-caa",
        "ca-tbr-13",
        "contact-email-txt",
        "ca-tbr-14",
        "ca-tbr-15",
        "contact-phone-txt",
        "ca-tbr-16",
        "contact-phone-caa",
        "ca-tbr-17",
        "website-change",
        "ca-tbr-18",
        "acme-http-01",
        "http-01",
        "ca-tbr-19",
        "acme-tls-alpn-01",
        "tls-alpn-01",
        "ca-tbr-20",
        "acme-dns-account-01",
        "dns-account-01",
        "ca-tbr-21",
        "dns-persist-01",
        "ca-tbr-22",
    ];
    for method in spellings {
        let labels = method_labels(method).unwrap_or_else(|| panic!("{method} has labels"));
        for label in labels {
            assert_eq!(
                methods(label, Some(method), LabelCase::Exact),
                Ok(()),
                "{label} {method}"
            );
        }
        let other = if labels.contains(&"ca-tbr-4") {
            "ca-tbr-2"
        } else {
            "ca-tbr-4"
        };
        assert_eq!(
            methods(other, Some(method), LabelCase::Exact),
            Err(vec![not_listed(other, labels, false)]),
            "{other} {method}"
        );
    }
}

#[test]
fn labels_naming_one_mechanism_are_equivalent_and_only_those() {
    // (case, record's list, request's method, permitted)
    let cases = [
        (
            "ballot example: ca-tbr-19 allows http-01",
            "ca-tbr-19",
            "acme-http-01",
            true,
        ),
        (
            "ballot example: http-01 allows ca-tbr-19",
            "http-01",
            "ca-tbr-19",
            true,
        ),
        (
            "acme dns-01 is a BR .7 DNS change",
            "ca-tbr-7",
            "acme-dns-01",
            true,
        ),
        (
            "dns-01 listed allows acme dns-01",
            "dns-01",
            "acme-dns-01",
            true,
        ),
        (
            "a non-ACME DNS change is not dns-01",
            "dns-01",
            "dns-change",
            false,
        ),
        (
            "a non-ACME DNS change is ca-tbr-7",
            "ca-tbr-7",
            "dns-change",
            true,
        ),
        (
            "tls-alpn-01 is ca-tbr-20",
            "ca-tbr-20",
            "acme-tls-alpn-01",
            true,
        ),
        ("ca-tbr-20 is tls-alpn-01", "tls-alpn-01", "ca-tbr-20", true),
        (
            "dns-account-01 is ca-tbr-21",
            "ca-tbr-21",
            "acme-dns-account-01",
            true,
        ),
        (
            "dns-persist-01 is ca-tbr-22",
            "ca-tbr-22",
            "dns-persist-01",
            true,
        ),
        (
            "ca-tbr-22 is dns-persist-01",
            "dns-persist-01",
            "ca-tbr-22",
            true,
        ),
        (
            "website change v2 is not the ACME website method",
            "ca-tbr-19",
            "website-change",
            false,
        ),
        (
            "http-01 is not website change v2",
            "ca-tbr-18",
            "acme-http-01",
            false,
        ),
        (
            "website change is ca-tbr-18",
            "ca-tbr-18",
            "website-change",
            true,
        ),
        ("dns-01 is not http-01", "http-01", "acme-dns-01", false),
        (
            "email to CAA contact",
            "ca-tbr-13",
            "contact-email-caa",
            true,
        ),
        (
            "email to TXT contact",
            "ca-tbr-14",
            "contact-email-txt",
            true,
        ),
        (
            "phone to TXT contact",
            "ca-tbr-16",
            "contact-phone-txt",
            true,
        ),
        (
            "phone to CAA contact",
            "ca-tbr-17",
            "contact-phone-caa",
            true,
        ),
        (
            "the CAA email contact is not the TXT one",
            "ca-tbr-14",
            "contact-email-caa",
            false,
        ),
        (
            "one of several labels",
            "http-01,ca-tbr-7,tls-alpn-01",
            "dns-change",
            true,
        ),
    ];
    for (name, list, method, permitted) in cases {
        let result = methods(list, Some(method), LabelCase::Exact);
        assert_eq!(result.is_ok(), permitted, "{name}: {result:?}");
        if !permitted {
            let labels = method_labels(method).unwrap_or_default();
            assert_eq!(result, Err(vec![not_listed(list, labels, false)]), "{name}");
        }
    }
}

#[test]
fn validationmethods_rules_table() {
    use ParameterFailure as F;
    let dns01: &'static [&'static str] = &["dns-01", "ca-tbr-7"];
    // (case, record's value after "validationmethods=", method, label case, expected)
    let cases: [(&str, &str, Option<&str>, LabelCase, Expected); 12] = [
        (
            "listed",
            "dns-01,http-01",
            Some("dns-01"),
            LabelCase::Exact,
            Ok(()),
        ),
        (
            "not listed",
            "http-01",
            Some("dns-01"),
            LabelCase::Exact,
            Err(vec![not_listed("http-01", dns01, false)]),
        ),
        (
            "no method in the request",
            "dns-01",
            None,
            LabelCase::Exact,
            Err(vec![F::MethodsWithoutMethod {
                value: "dns-01".into(),
            }]),
        ),
        (
            "RFC 8657 §4 ABNF: an empty list permits no method",
            "",
            Some("dns-01"),
            LabelCase::Exact,
            Err(vec![not_listed("", dns01, false)]),
        ),
        (
            "an empty label is malformed",
            "dns-01,,http-01",
            Some("dns-01"),
            LabelCase::Exact,
            Err(vec![F::MethodsMalformed {
                value: "dns-01,,http-01".into(),
            }]),
        ),
        (
            "an underscore is not a label character",
            "dns_01",
            Some("dns-01"),
            LabelCase::Exact,
            Err(vec![F::MethodsMalformed {
                value: "dns_01".into(),
            }]),
        ),
        (
            "BR 4.2.2.1.2: labels are lower case, matched exactly by default",
            "DNS-01",
            Some("dns-01"),
            LabelCase::Exact,
            Err(vec![not_listed("DNS-01", dns01, true)]),
        ),
        (
            "BR 4.2.2.1.2 MAY: case-insensitive when configured",
            "DNS-01",
            Some("dns-01"),
            LabelCase::Insensitive,
            Ok(()),
        ),
        (
            "case-insensitive ca-tbr label",
            "CA-TBR-7",
            Some("dns-change"),
            LabelCase::Insensitive,
            Ok(()),
        ),
        (
            "case-insensitive still needs the right method",
            "HTTP-01",
            Some("dns-01"),
            LabelCase::Insensitive,
            Err(vec![not_listed("HTTP-01", dns01, false)]),
        ),
        (
            "a CA-specific ca- label never authorizes: the method is unknown",
            "ca-dns-change",
            Some("ca-dns-change"),
            LabelCase::Exact,
            Err(vec![F::MethodUnknown {
                value: "ca-dns-change".into(),
                method: "ca-dns-change".into(),
            }]),
        ),
        (
            "a CA-specific ca- label in the record is just another label",
            "ca-foo,dns-01",
            Some("acme-dns-01"),
            LabelCase::Exact,
            Ok(()),
        ),
    ];
    for (name, value, method, case, expected) in cases {
        assert_eq!(methods(value, method, case), expected, "{name}");
    }
    let twice = issue(&format!(
        "{CA}; validationmethods=dns-01; validationmethods=dns-01"
    ));
    assert_eq!(
        verdict(decide_with(
            &[twice],
            CA,
            &[],
            Some("dns-01"),
            LabelCase::Exact
        )),
        Err(vec![F::MethodsRepeated]),
        "repeated validationmethods is unsatisfiable (Boulder)"
    );
}

#[test]
fn accounturi_rules_table() {
    use ParameterFailure as F;
    let other = "https://ca1.example.net/acme/acct/9";
    // (case, record's accounturi parameters, request's accounts, expected)
    let cases: [(&str, &str, &[&str], Expected); 10] = [
        (
            "the account itself",
            &format!("accounturi={ACCT}"),
            &[ACCT],
            Ok(()),
        ),
        (
            "BR 4.2.2.1.2: a Parent Account in the set",
            &format!("accounturi={PARENT}"),
            &[ACCT, PARENT],
            Ok(()),
        ),
        (
            "the account among parents",
            &format!("accounturi={ACCT}"),
            &[PARENT, ACCT],
            Ok(()),
        ),
        (
            "none of the set",
            &format!("accounturi={other}"),
            &[ACCT, PARENT],
            Err(vec![F::AccountUriOtherAccount {
                value: other.into(),
                accounts: vec![ACCT.into(), PARENT.into()],
            }]),
        ),
        (
            "RFC 8657 §3: no account in the request",
            &format!("accounturi={ACCT}"),
            &[],
            Err(vec![F::AccountUriWithoutAccount { value: ACCT.into() }]),
        ),
        (
            "compared exactly, not case-folded",
            &format!("accounturi={}", ACCT.to_uppercase()),
            &[ACCT],
            Err(vec![F::AccountUriOtherAccount {
                value: ACCT.to_uppercase(),
                accounts: vec![ACCT.into()],
            }]),
        ),
        (
            "RFC 8657 §3: two accounturi parameters are unsatisfiable",
            &format!("accounturi={ACCT}; accounturi={ACCT}"),
            &[ACCT],
            Err(vec![F::AccountUriRepeated]),
        ),
        (
            "RFC 8657 §3: a value that is not a URI is unsatisfiable",
            "accounturi=not-a-uri",
            &["not-a-uri"],
            Err(vec![F::AccountUriNotUri {
                value: "not-a-uri".into(),
            }]),
        ),
        (
            "an acct: URI (BR 4.2.2.1.2, RFC 7565)",
            "accounturi=acct:alice@ca1.example.net",
            &["acct:alice@ca1.example.net"],
            Ok(()),
        ),
        ("no accounturi: any account", "policy=ev", &[], Ok(())),
    ];
    for (name, parameters, accounts, expected) in cases {
        let record = issue(&format!("{CA}; {parameters}"));
        assert_eq!(
            verdict(decide_with(&[record], CA, accounts, None, LabelCase::Exact)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn parameter_tags_are_lower_case_exact_like_boulder() {
    // `AccountURI` is an unknown parameter, hence ignored.
    let record = issue(&format!("{CA}; AccountURI=https://other.example/1"));
    assert_eq!(
        verdict(decide_with(&[record], CA, &[ACCT], None, LabelCase::Exact)),
        Ok(())
    );
}

#[test]
fn both_parameters_must_hold_and_another_record_may_still_authorize() {
    let records = [
        issue(&format!(
            "{CA}; accounturi={ACCT}; validationmethods=http-01"
        )),
        issue(&format!(
            "{CA}; accounturi={PARENT}; validationmethods=dns-01"
        )),
    ];
    let with = |accounts: &[&str], method| {
        verdict(decide_with(
            &records,
            CA,
            accounts,
            Some(method),
            LabelCase::Exact,
        ))
    };
    assert_eq!(with(&[ACCT], "acme-http-01"), Ok(()));
    assert_eq!(with(&[ACCT, PARENT], "acme-dns-01"), Ok(()));
    assert_eq!(
        with(&[ACCT], "acme-dns-01"),
        Err(vec![
            not_listed("http-01", &["dns-01", "ca-tbr-7"], false),
            ParameterFailure::AccountUriOtherAccount {
                value: PARENT.into(),
                accounts: vec![ACCT.into()]
            },
        ])
    );
}

#[test]
fn refusal_detail_names_issuers_and_each_failed_parameter() {
    let records = [
        issue("ca2.example.org"),
        issue(&format!("{CA}; validationmethods=DNS-01")),
    ];
    let text = decide_with(&records, CA, &[], Some("dns-01"), LabelCase::Exact).to_string_lossy();
    assert!(text.contains("\"ca2.example.org\""), "{text}");
    assert!(
        text.contains("validationmethods \"DNS-01\" lists none of [\"dns-01\", \"ca-tbr-7\"]"),
        "{text}"
    );
    assert!(text.contains("case_insensitive_method_labels"), "{text}");
}

// RFC 8657 Appendix A (the examples; the brief's "§5" is the Security Considerations). The CA is
// "example.net"; "xyz-01" and "ca-foo" are methods this node does not know.
const EXAMPLE_CA: &str = "example.net";
const A1234: &str = "https://example.net/account/1234";
const A2345: &str = "https://example.net/account/2345";

fn example(records: &[&str], accounts: &[&str], method: Option<&str>) -> bool {
    let records: Vec<CaaRecord> = records.iter().map(|value| issue(value)).collect();
    decide_with(&records, EXAMPLE_CA, accounts, method, LabelCase::Exact).is_permitted()
}

#[test]
fn rfc8657_appendix_a_two_authorized_accounts() {
    let records = [
        "example.net; accounturi=https://example.net/account/1234",
        "example.net; accounturi=https://example.net/account/2345",
    ];
    assert!(example(&records, &[A1234], None));
    assert!(example(&records, &[A2345], None));
    assert!(!example(
        &records,
        &["https://example.net/account/3456"],
        None
    ));
    assert!(!example(&records, &[], None));
}

#[test]
fn rfc8657_appendix_a_dns01_or_xyz01_in_one_record() {
    let records = ["example.net; validationmethods=dns-01,xyz-01"];
    assert!(example(&records, &[], Some("acme-dns-01")));
    assert!(!example(&records, &[], Some("acme-http-01")));
    assert!(
        !example(&records, &[], Some("xyz-01")),
        "a method this node does not know"
    );
    assert!(
        !example(&records, &[], Some("dns-change")),
        "ca-tbr-7 is not listed"
    );
}

#[test]
fn rfc8657_appendix_a_dns01_or_xyz01_in_two_records() {
    let records = [
        "example.net; validationmethods=dns-01",
        "example.net; validationmethods=xyz-01",
    ];
    assert!(example(&records, &[], Some("dns-01")));
    assert!(!example(&records, &[], Some("http-01")));
    assert!(!example(&records, &[], Some("xyz-01")));
}

#[test]
fn rfc8657_appendix_a_one_account_per_method() {
    let records = [
        "example.net; accounturi=https://example.net/account/1234; validationmethods=dns-01",
        "example.net; accounturi=https://example.net/account/2345; validationmethods=http-01",
    ];
    assert!(example(&records, &[A1234], Some("acme-dns-01")));
    assert!(example(&records, &[A2345], Some("acme-http-01")));
    assert!(!example(&records, &[A1234], Some("acme-http-01")));
    assert!(!example(&records, &[A2345], Some("acme-dns-01")));
    assert!(
        example(&records, &[A2345, A1234], Some("acme-dns-01")),
        "a parent in the set"
    );
}

#[test]
fn rfc8657_appendix_a_dns01_or_ca_specific_ca_foo() {
    let records = ["example.net; validationmethods=dns-01,ca-foo"];
    assert!(example(&records, &[], Some("dns-01")));
    assert!(
        !example(&records, &[], Some("ca-foo")),
        "CA-specific labels are not run here"
    );
    assert!(!example(&records, &[], Some("acme-http-01")));
}
