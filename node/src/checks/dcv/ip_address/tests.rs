use std::net::IpAddr;

use super::*;

/// (case name, expected text, parsed addresses or the error).
type ParseCase = (
    &'static str,
    &'static str,
    Result<Vec<&'static str>, AddressMethodError>,
);
/// (case name, addresses seen, addresses expected, the match).
type MatchCase = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    Option<&'static str>,
);

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn expected_address_lists_parse_or_name_the_bad_entry() {
    let cases: [ParseCase; 7] = [
        ("one v4", "192.0.2.1", Ok(vec!["192.0.2.1"])),
        ("one v6", "2001:DB8::1", Ok(vec!["2001:db8::1"])),
        (
            "list with spaces",
            " 192.0.2.1 , 2001:db8::1,",
            Ok(vec!["192.0.2.1", "2001:db8::1"]),
        ),
        ("empty", "", Err(AddressMethodError::NoExpectedAddress)),
        (
            "only commas",
            " , ,",
            Err(AddressMethodError::NoExpectedAddress),
        ),
        (
            "a name",
            "192.0.2.1,host.test",
            Err(AddressMethodError::NotAnAddress {
                text: "host.test".into(),
            }),
        ),
        (
            "a cidr",
            "192.0.2.0/24",
            Err(AddressMethodError::NotAnAddress {
                text: "192.0.2.0/24".into(),
            }),
        ),
    ];
    for (name, text, want) in cases {
        let want = want.map(|list| list.into_iter().map(ip).collect::<Vec<_>>());
        assert_eq!(parse_expected_addresses(text), want, "{name}");
    }
    let many = vec!["192.0.2.1"; MAX_EXPECTED_ADDRESSES + 1].join(",");
    assert_eq!(
        parse_expected_addresses(&many),
        Err(AddressMethodError::TooManyAddresses {
            count: MAX_EXPECTED_ADDRESSES + 1
        })
    );
}

#[test]
fn an_address_seen_must_equal_an_expected_one() {
    let cases: [MatchCase; 7] = [
        (
            "v4 match",
            &["192.0.2.9", "192.0.2.1"],
            &["192.0.2.1"],
            Some("192.0.2.1"),
        ),
        (
            "v6 match, other spelling",
            &["2001:db8:0:0::1"],
            &["2001:db8::1"],
            Some("2001:db8::1"),
        ),
        (
            "any expected",
            &["198.51.100.1"],
            &["192.0.2.1", "198.51.100.1"],
            Some("198.51.100.1"),
        ),
        ("none seen", &[], &["192.0.2.1"], None),
        ("other address", &["192.0.2.2"], &["192.0.2.1"], None),
        ("no prefix match", &["192.0.2.10"], &["192.0.2.1"], None),
        (
            "mapped v6 is not v4",
            &["::ffff:192.0.2.1"],
            &["192.0.2.1"],
            None,
        ),
    ];
    for (name, seen, expected, want) in cases {
        let seen: Vec<IpAddr> = seen.iter().map(|s| ip(s)).collect();
        let expected: Vec<IpAddr> = expected.iter().map(|s| ip(s)).collect();
        assert_eq!(matching_address(&seen, &expected), want.map(ip), "{name}");
    }
}

#[test]
fn ip_address_takes_plain_domain_names_only() {
    assert_eq!(address_name("www.a.test"), Ok("www.a.test"));
    assert!(matches!(
        address_name("*.a.test"),
        Err(AddressMethodError::Wildcard { .. })
    ));
    assert!(matches!(
        address_name("192.0.2.1"),
        Err(AddressMethodError::AddressIdentifier { .. })
    ));
    assert!(matches!(
        address_name("2001:db8::1"),
        Err(AddressMethodError::AddressIdentifier { .. })
    ));
}

#[test]
fn reverse_names_follow_rfc_1035_and_rfc_3596() {
    let cases = [
        ("v4", "192.0.2.7", "7.2.0.192.in-addr.arpa."),
        ("v4 zeros", "10.0.0.1", "1.0.0.10.in-addr.arpa."),
        (
            "v6",
            "2001:db8::1",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
        ),
        (
            "v6 nibbles low first",
            "2001:db8::abcd",
            "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.",
        ),
    ];
    for (name, address, want) in cases {
        assert_eq!(reverse_name(ip(address)), want, "{name}");
    }
    assert_eq!(address_identifier("192.0.2.7"), Ok(ip("192.0.2.7")));
    assert!(matches!(
        address_identifier("host.test"),
        Err(AddressMethodError::NotAnAddressIdentifier { .. })
    ));
}

#[test]
fn ptr_targets_match_ignoring_case_and_the_trailing_dot() {
    let targets = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let cases: [(&str, &[&str], &str, Option<&str>); 7] = [
        (
            "exact",
            &["host.a.test."],
            "host.a.test",
            Some("host.a.test."),
        ),
        (
            "case",
            &["HOST.A.test."],
            "host.a.TEST.",
            Some("HOST.A.test."),
        ),
        (
            "second of two",
            &["other.test.", "host.a.test."],
            "host.a.test",
            Some("host.a.test."),
        ),
        ("none", &[], "host.a.test", None),
        ("parent is not the name", &["a.test."], "host.a.test", None),
        (
            "child is not the name",
            &["x.host.a.test."],
            "host.a.test",
            None,
        ),
        (
            "substring is not the name",
            &["host.a.test.evil."],
            "host.a.test",
            None,
        ),
    ];
    for (name, seen, expected, want) in cases {
        let seen = targets(seen);
        assert_eq!(matching_ptr(&seen, expected), want, "{name}");
    }
}

#[test]
fn expected_domains_are_names() {
    let cases: [(&str, Option<&str>, Result<&str, ()>); 7] = [
        ("plain", Some("Host.A.Test"), Ok("host.a.test")),
        ("trailing dot", Some("host.a.test."), Ok("host.a.test")),
        ("absent", None, Err(())),
        ("empty", Some(""), Err(())),
        ("wildcard", Some("*.a.test"), Err(())),
        ("empty label", Some("host..test"), Err(())),
        ("space", Some("host a.test"), Err(())),
    ];
    for (name, text, want) in cases {
        assert_eq!(
            expected_domain(text).map_err(|_| ()),
            want.map(str::to_owned),
            "{name}"
        );
    }
}
