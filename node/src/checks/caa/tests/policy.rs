//! Table tests for the pure CAA policy: one named case per rule of RFC 8659, RFC 8657 and
//! BR 3.2.2.8 (see `../shared/standards.md` §3), including the RFCs' own examples.

use super::super::policy::*;

fn rec(flags: u8, tag: &str, value: &str) -> CaaRecord {
    CaaRecord {
        flags,
        tag: tag.into(),
        value: value.as_bytes().to_vec(),
    }
}

struct Ask<'a> {
    wildcard: bool,
    accounts: &'a [&'a str],
    method: Option<&'a str>,
}

const PLAIN: Ask<'static> = Ask {
    wildcard: false,
    accounts: &[],
    method: None,
};
const WILD: Ask<'static> = Ask {
    wildcard: true,
    accounts: &[],
    method: None,
};

fn decide_for(records: &[CaaRecord], ask: &Ask<'_>, issuers: &[&str]) -> CaaDecision {
    let issuers: Vec<String> = issuers.iter().map(|s| (*s).to_owned()).collect();
    decide(
        records,
        &CaaRequest {
            issuer_domains: &issuers,
            wildcard: ask.wildcard,
            certificate_type: CertificateType::Tls,
            account_uris: ask.accounts,
            method: ask.method,
        },
        &PolicyOptions::default(),
    )
}

fn permitted(records: &[CaaRecord], ask: &Ask<'_>) -> bool {
    decide_for(records, ask, &["ca1.example.net"]).is_permitted()
}

#[test]
fn no_records_means_unrestricted() {
    assert_eq!(
        decide_for(&[], &PLAIN, &["ca1.example.net"]),
        CaaDecision::Permitted(Permission::NoRecords)
    );
}

#[test]
fn rfc8659_4_issue_names_the_ca() {
    let records = [rec(0, "issue", "ca1.example.net")];
    assert_eq!(
        decide_for(&records, &PLAIN, &["ca1.example.net"]),
        CaaDecision::Permitted(Permission::Authorized {
            property: "issue",
            issuer: "ca1.example.net".into()
        })
    );
    assert!(!decide_for(&records, &PLAIN, &["ca2.example.org"]).is_permitted());
}

#[test]
fn issuer_match_is_ascii_case_insensitive_and_ignores_a_trailing_dot_in_config() {
    let records = [rec(0, "issue", "CA1.Example.NET")];
    assert!(decide_for(&records, &PLAIN, &["ca1.example.net."]).is_permitted());
}

#[test]
fn any_of_the_cas_issuer_domains_authorizes() {
    let records = [rec(0, "issue", "brand2.example")];
    assert!(decide_for(&records, &PLAIN, &["brand1.example", "brand2.example"]).is_permitted());
}

#[test]
fn several_issue_records_are_additive() {
    let records = [
        rec(0, "issue", "ca2.example.org"),
        rec(0, "issue", "ca1.example.net"),
    ];
    assert!(permitted(&records, &PLAIN));
}

#[test]
fn an_empty_issue_value_removes_nothing_from_another_record() {
    let records = [rec(0, "issue", ";"), rec(0, "issue", "ca1.example.net")];
    assert!(permitted(&records, &PLAIN));
}

#[test]
fn rfc8659_4_2_semicolon_alone_forbids_everyone() {
    let records = [rec(0, "issue", ";")];
    match decide_for(&records, &PLAIN, &["ca1.example.net"]) {
        CaaDecision::Forbidden(Refusal::NotAuthorized {
            property, issuers, ..
        }) => {
            assert_eq!(property, "issue");
            assert_eq!(issuers, vec![String::new()]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn empty_value_forbids_everyone() {
    assert!(!permitted(&[rec(0, "issue", "")], &PLAIN));
}

#[test]
fn rfc8659_4_1_critical_unknown_tag_forbids() {
    let records = [
        rec(0, "issue", "ca1.example.net"),
        rec(128, "tbs", "Unknown"),
    ];
    assert_eq!(
        decide_for(&records, &PLAIN, &["ca1.example.net"]),
        CaaDecision::Forbidden(Refusal::UnknownCriticalTag {
            tag: "tbs".into(),
            flags: 128
        })
    );
}

#[test]
fn non_critical_unknown_tag_is_ignored() {
    let records = [rec(0, "issue", "ca1.example.net"), rec(0, "tbs", "Unknown")];
    assert!(permitted(&records, &PLAIN));
}

#[test]
fn critical_known_tag_is_processed_not_refused() {
    let records = [
        rec(128, "issue", "ca1.example.net"),
        rec(128, "iodef", "mailto:x@example.com"),
    ];
    assert!(permitted(&records, &PLAIN));
}

#[test]
fn critical_is_the_top_bit_other_bits_are_ignored() {
    // Flags 1 is not critical by RFC 8659 §4.1 (bit 0 is the most significant bit).
    let records = [rec(0, "issue", "ca1.example.net"), rec(1, "tbs", "x")];
    assert!(permitted(&records, &PLAIN));
    // 129 has the critical bit set.
    let records = [rec(0, "issue", "ca1.example.net"), rec(129, "tbs", "x")];
    assert!(!permitted(&records, &PLAIN));
}

#[test]
fn flag_1_critical_is_opt_in_like_boulder() {
    let records = [rec(0, "issue", "ca1.example.net"), rec(1, "tbs", "x")];
    let issuers = ["ca1.example.net".to_owned()];
    let request = CaaRequest {
        issuer_domains: &issuers,
        wildcard: false,
        certificate_type: CertificateType::Tls,
        account_uris: &[],
        method: None,
    };
    let strict = PolicyOptions {
        flag_1_is_critical: true,
        ..PolicyOptions::default()
    };
    assert!(matches!(
        decide(&records, &request, &strict),
        CaaDecision::Forbidden(Refusal::UnknownCriticalTag { .. })
    ));
}

#[test]
fn tags_match_case_insensitively() {
    assert!(permitted(&[rec(0, "ISSUE", "ca1.example.net")], &PLAIN));
    assert!(!permitted(&[rec(0, "Issue", "ca2.example.org")], &PLAIN));
    assert!(permitted(
        &[
            rec(128, "IoDeF", "mailto:a@b.example"),
            rec(0, "issue", "ca1.example.net")
        ],
        &PLAIN
    ));
}

#[test]
fn only_iodef_is_unrestricted_iodef_never_decides() {
    assert_eq!(
        decide_for(
            &[rec(0, "iodef", "mailto:security@example.com")],
            &PLAIN,
            &["ca1.example.net"]
        ),
        CaaDecision::Permitted(Permission::NoRelevantProperty)
    );
}

#[test]
fn rfc8659_4_3_plain_name_ignores_issuewild() {
    // {issuewild ca2} alone: anyone for plain names.
    let records = [rec(0, "issuewild", "ca2.example.org")];
    assert_eq!(
        decide_for(&records, &PLAIN, &["ca1.example.net"]),
        CaaDecision::Permitted(Permission::NoRelevantProperty)
    );
    // and ca2 only for wildcards.
    assert!(!permitted(&records, &WILD));
    assert!(decide_for(&records, &WILD, &["ca2.example.org"]).is_permitted());
}

#[test]
fn rfc8659_4_3_wildcard_uses_issuewild_when_present() {
    let records = [
        rec(0, "issue", "ca1.example.net"),
        rec(0, "issuewild", "ca2.example.org"),
    ];
    assert!(permitted(&records, &PLAIN));
    assert!(!permitted(&records, &WILD));
    match decide_for(&records, &WILD, &["ca2.example.org"]) {
        CaaDecision::Permitted(Permission::Authorized { property, .. }) => {
            assert_eq!(property, "issuewild");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rfc8659_4_3_wildcard_falls_back_to_issue() {
    let records = [rec(0, "issue", "ca1.example.net")];
    assert!(permitted(&records, &WILD));
    assert!(!decide_for(&records, &WILD, &["ca2.example.org"]).is_permitted());
}

#[test]
fn issuewild_semicolon_with_issue_semicolon_forbids_both() {
    let records = [rec(0, "issuewild", "ca2.example.org"), rec(0, "issue", ";")];
    assert!(!decide_for(&records, &PLAIN, &["ca2.example.org"]).is_permitted());
    assert!(decide_for(&records, &WILD, &["ca2.example.org"]).is_permitted());
}

#[test]
fn malformed_value_grants_nobody() {
    for value in [
        "%%%",
        "ca1.example.net.",
        "ca_1.example.net",
        "ca1.example.net; a=b;",
        "ca1.example.net x",
        "-ca1.example.net",
    ] {
        assert!(!permitted(&[rec(0, "issue", value)], &PLAIN), "{value:?}");
    }
}

#[test]
fn whitespace_and_empty_parameters_follow_the_grammar() {
    for value in [
        " ca1.example.net ; a=b ",
        "ca1.example.net;",
        "ca1.example.net; a=",
        "\tca1.example.net\t;\ta = b ; c=d",
    ] {
        assert!(permitted(&[rec(0, "issue", value)], &PLAIN), "{value:?}");
    }
}

/// Value, issuer, parameters, malformed.
type ParseCase = (
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str)],
    bool,
);

#[test]
fn parse_issue_value_table() {
    let cases: [ParseCase; 9] = [
        (";", None, &[], false),
        ("", None, &[], false),
        ("ca.example", Some("ca.example"), &[], false),
        (
            " ca.example ; a=b ",
            Some("ca.example"),
            &[("a", "b")],
            false,
        ),
        (
            "CA.Example; Key=Va=lue",
            Some("ca.example"),
            &[("Key", "Va=lue")],
            false,
        ),
        (
            "; accounturi=https://x.example/1",
            None,
            &[("accounturi", "https://x.example/1")],
            false,
        ),
        (
            "ca.example; a=b; c=d",
            Some("ca.example"),
            &[("a", "b"), ("c", "d")],
            false,
        ),
        ("ca.example; a=b;", None, &[], true),
        ("ca.example; =b", None, &[], true),
    ];
    for (value, issuer, parameters, malformed) in cases {
        let parsed = parse_issue_value(value.as_bytes());
        assert_eq!(parsed.issuer.as_deref(), issuer, "{value:?}");
        let got: Vec<(&str, &str)> = parsed
            .parameters
            .iter()
            .map(|(t, v)| (t.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, parameters, "{value:?}");
        assert_eq!(parsed.malformed, malformed, "{value:?}");
    }
    assert!(
        parse_issue_value(&[0xff, b'a']).malformed,
        "non-ASCII is malformed"
    );
}

#[test]
fn unknown_parameters_are_ignored() {
    assert!(permitted(
        &[rec(
            0,
            "issue",
            "ca1.example.net; account=230123; policy=ev"
        )],
        &PLAIN
    ));
}

#[test]
fn climb_names_from_the_name_to_the_tld() {
    assert_eq!(
        climb_names("a.b.Example.COM."),
        vec!["a.b.example.com", "b.example.com", "example.com", "com"]
    );
    assert_eq!(climb_names("*.example.com"), vec!["example.com", "com"]);
    assert_eq!(climb_names("com"), vec!["com"]);
    assert!(climb_names("").is_empty());
    assert!(climb_names(".").is_empty());
}

/// Boulder PR 8643 (2026): a wildcard name with upper-case labels must be lowercased after the
/// `*.` is removed, or the climb queries (and caches, and reports) a mixed-case name.
#[test]
fn wildcard_names_are_lowercased_after_the_star_is_removed() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "mixed case wildcard",
            "*.ExAmPlE.test",
            &["example.test", "test"],
        ),
        (
            "upper case wildcard",
            "*.WWW.EXAMPLE.TEST.",
            &["www.example.test", "example.test", "test"],
        ),
        (
            "lower case wildcard",
            "*.example.test",
            &["example.test", "test"],
        ),
        (
            "mixed case plain name",
            "ExAmPlE.test",
            &["example.test", "test"],
        ),
    ];
    for (name, identifier, expected) in cases {
        assert_eq!(climb_names(identifier), expected, "{name}");
    }
}

#[test]
fn relevant_level_is_the_first_non_empty() {
    let levels = [
        LevelResult::Empty,
        LevelResult::Records(vec![rec(0, "issue", ";")]),
        LevelResult::Empty,
    ];
    assert_eq!(relevant_level(&levels), Ok(Relevant::Found { level: 1 }));
    assert_eq!(
        relevant_level(&[LevelResult::Empty, LevelResult::Empty]),
        Ok(Relevant::NoneFound)
    );
}

#[test]
fn relevant_level_failure_below_the_found_level_is_an_error() {
    let levels = [
        LevelResult::Failed {
            detail: "SERVFAIL".into(),
        },
        LevelResult::Records(vec![rec(0, "issue", "ca1.example.net")]),
    ];
    assert_eq!(
        relevant_level(&levels),
        Err(ClimbFailure {
            level: 0,
            detail: "SERVFAIL".into()
        })
    );
}

#[test]
fn relevant_level_failure_above_the_found_level_does_not_matter() {
    let levels = [
        LevelResult::Records(vec![rec(0, "issue", "ca1.example.net")]),
        LevelResult::Failed {
            detail: "timeout".into(),
        },
    ];
    assert_eq!(relevant_level(&levels), Ok(Relevant::Found { level: 0 }));
}

#[test]
fn relevant_level_tld_nxdomain_is_an_error() {
    let levels = [LevelResult::Empty, LevelResult::NxDomainTld];
    assert!(matches!(
        relevant_level(&levels),
        Err(ClimbFailure { level: 1, .. })
    ));
}

#[test]
fn exercise_accepts_arbitrary_bytes() {
    for data in [
        &b""[..],
        b"\x80\x03;;;",
        b"\x00\x00ca.example; accounturi=https://ca.example/acct/1",
        &[0xff; 80],
    ] {
        exercise(data);
    }
}
