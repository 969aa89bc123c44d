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
    account: Option<&'a str>,
    method: Option<&'a str>,
}

const PLAIN: Ask<'static> = Ask {
    wildcard: false,
    account: None,
    method: None,
};
const WILD: Ask<'static> = Ask {
    wildcard: true,
    account: None,
    method: None,
};

fn decide_for(records: &[CaaRecord], ask: &Ask<'_>, issuers: &[&str]) -> CaaDecision {
    let issuers: Vec<String> = issuers.iter().map(|s| (*s).to_owned()).collect();
    decide(
        records,
        &CaaRequest {
            issuer_domains: &issuers,
            wildcard: ask.wildcard,
            account_uri: ask.account,
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
        account_uri: None,
        method: None,
    };
    let strict = PolicyOptions {
        flag_1_is_critical: true,
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

const ACCT: &str = "https://ca1.example.net/acme/acct/1234";

#[test]
fn rfc8657_3_accounturi_restricts_to_that_account() {
    let records = [rec(
        0,
        "issue",
        &format!("ca1.example.net; accounturi={ACCT}"),
    )];
    let ours = Ask {
        account: Some(ACCT),
        ..PLAIN
    };
    assert!(permitted(&records, &ours));
    let other = Ask {
        account: Some("https://ca1.example.net/acme/acct/9"),
        ..PLAIN
    };
    match decide_for(&records, &other, &["ca1.example.net"]) {
        CaaDecision::Forbidden(Refusal::NotAuthorized {
            parameter_failures, ..
        }) => {
            assert_eq!(parameter_failures.len(), 1);
            assert!(
                parameter_failures[0].contains("is not the account"),
                "{parameter_failures:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !permitted(&records, &PLAIN),
        "no account in the request cannot satisfy accounturi"
    );
}

#[test]
fn rfc8657_3_accounturi_twice_or_invalid_is_unsatisfiable() {
    let ours = Ask {
        account: Some(ACCT),
        ..PLAIN
    };
    let twice = [rec(
        0,
        "issue",
        &format!("ca1.example.net; accounturi={ACCT}; accounturi={ACCT}"),
    )];
    assert!(!permitted(&twice, &ours));
    let invalid = [rec(0, "issue", "ca1.example.net; accounturi=not-a-uri")];
    assert!(!permitted(
        &invalid,
        &Ask {
            account: Some("not-a-uri"),
            ..PLAIN
        }
    ));
}

#[test]
fn rfc8657_3_accounturi_is_compared_exactly() {
    let records = [rec(
        0,
        "issue",
        &format!("ca1.example.net; accounturi={ACCT}"),
    )];
    let upper = ACCT.to_uppercase();
    assert!(!permitted(
        &records,
        &Ask {
            account: Some(&upper),
            ..PLAIN
        }
    ));
}

#[test]
fn rfc8657_4_validationmethods_restricts_methods() {
    let records = [rec(
        0,
        "issue",
        "ca1.example.net; validationmethods=dns-01,http-01",
    )];
    assert!(permitted(
        &records,
        &Ask {
            method: Some("dns-01"),
            ..PLAIN
        }
    ));
    assert!(
        permitted(
            &records,
            &Ask {
                method: Some("acme-http-01"),
                ..PLAIN
            }
        ),
        "protocol names map to ACME labels"
    );
    assert!(!permitted(
        &records,
        &Ask {
            method: Some("tls-alpn-01"),
            ..PLAIN
        }
    ));
    assert!(
        !permitted(&records, &PLAIN),
        "no method in the request cannot satisfy the list"
    );
}

#[test]
fn rfc8657_4_br_methods_without_acme_name_match_only_ca_labels() {
    let records = [rec(
        0,
        "issue",
        "ca1.example.net; validationmethods=ca-dns-change",
    )];
    assert!(!permitted(
        &records,
        &Ask {
            method: Some("dns-change"),
            ..PLAIN
        }
    ));
    assert!(permitted(
        &records,
        &Ask {
            method: Some("ca-dns-change"),
            ..PLAIN
        }
    ));
}

#[test]
fn rfc8657_4_validationmethods_twice_or_malformed_is_unsatisfiable() {
    let dns = Ask {
        method: Some("dns-01"),
        ..PLAIN
    };
    assert!(!permitted(
        &[rec(
            0,
            "issue",
            "ca1.example.net; validationmethods=dns-01; validationmethods=dns-01"
        )],
        &dns
    ));
    assert!(!permitted(
        &[rec(
            0,
            "issue",
            "ca1.example.net; validationmethods=dns-01,,http-01"
        )],
        &dns
    ));
    assert!(!permitted(
        &[rec(0, "issue", "ca1.example.net; validationmethods=dns_01")],
        &dns
    ));
}

#[test]
fn rfc8657_parameter_tags_are_lowercase_exact_like_boulder() {
    // `AccountURI` is an unknown parameter, hence ignored.
    let records = [rec(
        0,
        "issue",
        "ca1.example.net; AccountURI=https://other.example/1",
    )];
    assert!(permitted(
        &records,
        &Ask {
            account: Some(ACCT),
            ..PLAIN
        }
    ));
}

#[test]
fn rfc8657_example_account_and_methods_together() {
    let records = [rec(
        0,
        "issue",
        &format!("ca1.example.net; accounturi={ACCT}; validationmethods=http-01"),
    )];
    assert!(permitted(
        &records,
        &Ask {
            account: Some(ACCT),
            method: Some("http-01"),
            ..PLAIN
        }
    ));
    assert!(!permitted(
        &records,
        &Ask {
            account: Some(ACCT),
            method: Some("dns-01"),
            ..PLAIN
        }
    ));
}

#[test]
fn a_failing_record_for_our_ca_does_not_hide_another_that_authorizes() {
    let records = [
        rec(0, "issue", "ca1.example.net; validationmethods=http-01"),
        rec(0, "issue", "ca1.example.net; validationmethods=dns-01"),
    ];
    assert!(permitted(
        &records,
        &Ask {
            method: Some("dns-01"),
            ..PLAIN
        }
    ));
}

#[test]
fn refusal_detail_names_issuers_and_the_failed_parameter() {
    let records = [
        rec(0, "issue", "ca2.example.org"),
        rec(0, "issue", "ca1.example.net; validationmethods=http-01"),
    ];
    let decision = decide_for(
        &records,
        &Ask {
            method: Some("dns-01"),
            ..PLAIN
        },
        &["ca1.example.net"],
    );
    let text = decision.to_string_lossy();
    assert!(text.contains("\"ca2.example.org\""), "{text}");
    assert!(text.contains("does not allow \"dns-01\""), "{text}");
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
fn method_labels_map_protocol_names_to_acme_names() {
    assert_eq!(method_label("acme-dns-01"), Some("dns-01"));
    assert_eq!(method_label("acme-tls-alpn-01"), Some("tls-alpn-01"));
    assert_eq!(method_label("dns-persist-01"), Some("dns-persist-01"));
    assert_eq!(method_label("website-change"), None);
    assert_eq!(method_label("ca-x"), Some("ca-x"));
    assert_eq!(method_label("ca-"), Some("ca-"));
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
