//! Table tests of the BR 3.2.2.4.7 DNS Change decider.

use super::*;

const RV: &str = "R4nd0mV4lu3-0123456789abcdef";

/// (case name, record value or target, expected, exact, case_sensitive, want).
type MatchCase<'a, V> = (&'a str, &'a V, &'a str, bool, bool, bool);

/// What [`lookup_names`] returns.
type LookupNames = Result<Vec<String>, PrefixError>;

fn request(expected: &str, exact: bool, case_sensitive: bool) -> DnsChangeRequest<'_> {
    DnsChangeRequest {
        expected,
        exact,
        case_sensitive,
    }
}

#[test]
fn new_has_the_documented_defaults() {
    assert_eq!(
        DnsChangeRequest::new(RV),
        DnsChangeRequest {
            expected: RV,
            exact: false,
            case_sensitive: true,
        }
    );
}

#[test]
fn txt_matching() {
    let upper = RV.to_ascii_uppercase();
    let upper = upper.as_bytes();
    #[rustfmt::skip]
    let cases: &[MatchCase<'_, [u8]>] = &[
        ("presence: equal", RV.as_bytes(), RV, false, true, true),
        ("presence: embedded", b"rv=R4nd0mV4lu3-0123456789abcdef; x", RV, false, true, true),
        ("presence: absent", b"v=spf1 -all", RV, false, true, false),
        ("presence: truncated value", b"R4nd0mV4lu3-0123456789abcde", RV, false, true, false),
        ("presence: case differs, sensitive", upper, RV, false, true, false),
        ("presence: case differs, insensitive", upper, RV, false, false, true),
        ("exact: equal", RV.as_bytes(), RV, true, true, true),
        ("exact: embedded is not equal", b" R4nd0mV4lu3-0123456789abcdef", RV, true, true, false),
        ("exact: case differs, sensitive", upper, RV, true, true, false),
        ("exact: case differs, insensitive", upper, RV, true, false, true),
        ("empty record", b"", RV, false, true, false),
        ("non-UTF-8 bytes around the value", b"\xff\xfeR4nd0mV4lu3-0123456789abcdef\x00", RV, false, true, true),
        ("expected too short never matches", b"abc", "abc", true, true, false),
        ("expected empty never matches", b"anything", "", false, true, false),
        ("expected with a space never matches", b"R4nd0mV4lu3 0123456789", "R4nd0mV4lu3 0123456789", true, true, false),
    ];
    for (name, value, expected, exact, case_sensitive, want) in cases {
        let got = matches_txt(value, &request(expected, *exact, *case_sensitive));
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn caa_value_matches_like_txt() {
    // (name, CAA value, exact, want)
    #[rustfmt::skip]
    let cases: &[(&str, &[u8], bool, bool)] = &[
        ("presence in an issue value", b"ca.example; rv=R4nd0mV4lu3-0123456789abcdef", false, true),
        ("exact value", RV.as_bytes(), true, true),
        ("exact fails on a longer value", b"ca.example; rv=R4nd0mV4lu3-0123456789abcdef", true, false),
        ("absent", b"ca.example", false, false),
    ];
    for (name, value, exact, want) in cases {
        assert_eq!(
            matches_caa(value, &request(RV, *exact, true)),
            *want,
            "{name}"
        );
    }
}

#[test]
fn cname_matching() {
    let name = "rv-0123456789abcdef.dcv.ca.example";
    let label = "rv-0123456789abcdef";
    #[rustfmt::skip]
    let cases: &[MatchCase<'_, str>] = &[
        ("exact: same name", name, name, true, true, true),
        ("exact: trailing dot on target", "rv-0123456789abcdef.dcv.ca.example.", name, true, true, true),
        ("exact: trailing dot on expected", name, "rv-0123456789abcdef.dcv.ca.example.", true, true, true),
        ("exact: name case ignored even if case_sensitive", "RV-0123456789ABCDEF.DCV.CA.EXAMPLE", name, true, true, true),
        ("exact: a longer name", "rv-0123456789abcdef.dcv.ca.example.net", name, true, true, false),
        ("presence: random value as first label", "rv-0123456789abcdef.dcv.ca.example.", label, false, true, true),
        ("presence: case ignored", "RV-0123456789ABCDEF.dcv.ca.example", label, false, true, true),
        ("presence: absent", "dcv.ca.example", label, false, true, false),
        ("presence: short expected never matches", "dcv.ca.example", "dcv", false, true, false),
    ];
    for (case, target, expected, exact, case_sensitive, want) in cases {
        let got = matches_cname(target, &request(expected, *exact, *case_sensitive));
        assert_eq!(got, *want, "{case}");
    }
}

#[test]
fn lookup_names_cases() {
    let long_prefix = format!("_{}", "a".repeat(62));
    let too_long_prefix = format!("_{}", "a".repeat(63));
    let ok = |name: &str| Ok(vec![name.to_owned()]);
    // (case, fqdn, prefix, want)
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, Option<&str>, LookupNames)> = vec![
        ("plain FQDN is the ADN", "www.example.com", None, ok("www.example.com")),
        ("wildcard FQDN loses *.", "*.example.com", None, ok("example.com")),
        ("only one *. is stripped", "*.*.example.com", None, ok("*.example.com")),
        ("a * inside a label is kept", "a*.example.com", None, ok("a*.example.com")),
        ("prefix goes before the ADN", "www.example.com", Some("_dcv"), ok("_dcv.www.example.com")),
        ("prefix with a wildcard FQDN", "*.example.com", Some("_dnsauth"), ok("_dnsauth.example.com")),
        ("prefix of only an underscore", "example.com", Some("_"), ok("_.example.com")),
        ("prefix with digits, - and _", "example.com", Some("_rv-0a_9"), ok("_rv-0a_9.example.com")),
        ("63-octet prefix", "example.com", Some(&long_prefix), ok(&format!("{long_prefix}.example.com"))),
        ("empty prefix", "example.com", Some(""), Err(PrefixError::Empty)),
        ("no underscore", "example.com", Some("dcv"), Err(PrefixError::NoUnderscore { prefix: "dcv".into() })),
        ("underscore not first", "example.com", Some("dcv_"), Err(PrefixError::NoUnderscore { prefix: "dcv_".into() })),
        ("two labels", "example.com", Some("_a._b"), Err(PrefixError::MultipleLabels { prefix: "_a._b".into() })),
        ("trailing dot", "example.com", Some("_a."), Err(PrefixError::MultipleLabels { prefix: "_a.".into() })),
        ("space", "example.com", Some("_a b"), Err(PrefixError::BadCharacter { prefix: "_a b".into(), character: ' ' })),
        ("non-ASCII", "example.com", Some("_é"), Err(PrefixError::BadCharacter { prefix: "_é".into(), character: 'é' })),
        ("64-octet prefix", "example.com", Some(&too_long_prefix), Err(PrefixError::TooLong { len: 64 })),
    ];
    for (case, fqdn, prefix, want) in cases {
        assert_eq!(lookup_names(fqdn, prefix), want, "{case}");
    }
}

#[test]
fn prefixed_name_over_253_octets_is_refused() {
    let adn = format!("{}.example", vec!["a".repeat(60); 4].join(".")); // 251 octets
    assert_eq!(
        lookup_names(&adn, Some("_x")),
        Err(PrefixError::NameTooLong {
            name: format!("_x.{adn}"),
            len: 254,
        })
    );
}

#[test]
fn authorization_domain_names() {
    let cases = [
        ("plain", "example.com", "example.com"),
        ("wildcard", "*.example.com", "example.com"),
        ("bare star kept", "*", "*"),
    ];
    for (case, fqdn, want) in cases {
        assert_eq!(authorization_domain_name(fqdn), want, "{case}");
    }
}

#[test]
fn random_value_sanity() {
    use RandomValueError::{NotPrintable, TooShort};
    #[rustfmt::skip]
    let cases: &[(&str, &str, Result<(), RandomValueError>)] = &[
        ("16 characters", "0123456789abcdef", Ok(())),
        ("base64url, 128 bits", "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", Ok(())),
        ("punctuation is printable", "!\"#$%&'()*+,-./:;<=>?@[]~", Ok(())),
        ("15 characters", "0123456789abcde", Err(TooShort { len: 15, min: 16 })),
        ("empty", "", Err(TooShort { len: 0, min: 16 })),
        ("space", "0123456789 abcdef", Err(NotPrintable { offset: 10 })),
        ("tab", "\t0123456789abcdef", Err(NotPrintable { offset: 0 })),
        ("non-ASCII", "0123456789abcdefé", Err(NotPrintable { offset: 16 })),
    ];
    for (case, value, want) in cases {
        assert_eq!(validate_random_value(value), *want, "{case}");
    }
}
