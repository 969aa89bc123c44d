//! Table tests of the dns-persist parser and decider (BR 3.2.2.4.22, draft-ietf-acme-dns-persist).

use super::*;

/// standards.md §4's example record.
const EXAMPLE: &str =
    "authority.example; accounturi=https://authority.example/acct/123; persistUntil=1782424856";
const ACCOUNT: &str = "https://authority.example/acct/123";
const EXAMPLE_UNTIL: u64 = 1_782_424_856;

fn record(
    issuer: &str,
    account_uri: Option<&str>,
    persist_until: Option<u64>,
    wildcard_policy: bool,
    parameters: &[(&str, &str)],
) -> PersistRecord {
    PersistRecord {
        issuer: issuer.to_owned(),
        account_uri: account_uri.map(str::to_owned),
        persist_until,
        wildcard_policy,
        parameters: parameters
            .iter()
            .map(|(tag, value)| ((*tag).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

#[test]
fn record_names() {
    #[rustfmt::skip]
    let cases = [
        ("plain ADN", "example.com", "_validation-persist.example.com"),
        ("wildcard uses the base name", "*.example.com", "_validation-persist.example.com"),
    ];
    for (name, adn, want) in cases {
        assert_eq!(record_name(adn), want, "{name}");
    }
    assert_eq!(
        ip_record_name("7.113.0.203.in-addr.arpa"),
        "_ip-validation-persist.7.113.0.203.in-addr.arpa"
    );
}

#[test]
fn parse_valid_records() {
    let hashed =
        "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw";
    let draft_example = format!("authority.example; accounturi={hashed}");
    let uri = "https://ca.example/acct?id=1&k=v#f";
    let with_uri = format!("ca.example; accounturi={uri}");
    // (name, TXT value, want)
    #[rustfmt::skip]
    let cases: Vec<(&str, &[u8], PersistRecord)> = vec![
        ("standards.md example", EXAMPLE.as_bytes(),
            record("authority.example", Some(ACCOUNT), Some(EXAMPLE_UNTIL), false,
                &[("accounturi", ACCOUNT), ("persistUntil", "1782424856")])),
        ("draft example, hashed account URI", draft_example.as_bytes(),
            record("authority.example", Some(hashed), None, false, &[("accounturi", hashed)])),
        ("issuer lower-cased, WSP wherever allowed",
            b" \tAuthority.EXAMPLE \t; \taccounturi \t= \thttps://a/1 \t; policy = WILDCARD \t",
            record("authority.example", Some("https://a/1"), None, true,
                &[("accounturi", "https://a/1"), ("policy", "WILDCARD")])),
        ("no parameters", b"authority.example",
            record("authority.example", None, None, false, &[])),
        ("a lone ; after the issuer", b"authority.example;",
            record("authority.example", None, None, false, &[])),
        ("a ; and white space after the issuer", b"authority.example ;  ",
            record("authority.example", None, None, false, &[])),
        ("known tags in any case", b"ca.example; AccountURI=https://a/1; PERSISTUNTIL=5; Policy=wildcard",
            record("ca.example", Some("https://a/1"), Some(5), true,
                &[("AccountURI", "https://a/1"), ("PERSISTUNTIL", "5"), ("Policy", "wildcard")])),
        ("policy=wildcard in mixed case", b"ca.example; accounturi=x; policy=WildCard",
            record("ca.example", Some("x"), None, true, &[("accounturi", "x"), ("policy", "WildCard")])),
        ("another policy value counts as none", b"ca.example; accounturi=x; policy=wildcards",
            record("ca.example", Some("x"), None, false, &[("accounturi", "x"), ("policy", "wildcards")])),
        ("empty policy counts as none", b"ca.example; accounturi=x; policy=",
            record("ca.example", Some("x"), None, false, &[("accounturi", "x"), ("policy", "")])),
        ("unknown parameters kept, ignored, may repeat", b"ca.example; x-future=1; accounturi=x; x-future=2",
            record("ca.example", Some("x"), None, false,
                &[("x-future", "1"), ("accounturi", "x"), ("x-future", "2")])),
        ("value may hold = and punctuation", with_uri.as_bytes(),
            record("ca.example", Some(uri), None, false, &[("accounturi", uri)])),
        ("accounturi case kept", b"ca.example; accounturi=https://CA.example/Acct/ABC",
            record("ca.example", Some("https://CA.example/Acct/ABC"), None, false,
                &[("accounturi", "https://CA.example/Acct/ABC")])),
        ("persistUntil zero", b"ca.example; accounturi=x; persistUntil=0",
            record("ca.example", Some("x"), Some(0), false, &[("accounturi", "x"), ("persistUntil", "0")])),
        ("persistUntil leading zeros", b"ca.example; accounturi=x; persistUntil=007",
            record("ca.example", Some("x"), Some(7), false, &[("accounturi", "x"), ("persistUntil", "007")])),
        ("persistUntil u64::MAX", b"ca.example; accounturi=x; persistUntil=18446744073709551615",
            record("ca.example", Some("x"), Some(u64::MAX), false,
                &[("accounturi", "x"), ("persistUntil", "18446744073709551615")])),
        ("issuer with digits and inner hyphens", b"ca-1--x.example2; accounturi=x",
            record("ca-1--x.example2", Some("x"), None, false, &[("accounturi", "x")])),
        ("single-label issuer", b"authority; accounturi=x",
            record("authority", Some("x"), None, false, &[("accounturi", "x")])),
    ];
    for (name, value, want) in cases {
        assert_eq!(parse(value), Ok(want), "{name}");
    }
}

#[test]
fn parse_errors() {
    use PersistError::{BadPersistUntil, EmptyAccountUri, EmptyIssuer, RepeatedParameter};
    use SyntaxProblem::*;
    let at = |offset, problem| PersistError::Syntax { offset, problem };
    let until = |value: &str| BadPersistUntil {
        value: value.to_owned(),
    };
    // (name, TXT value, want)
    #[rustfmt::skip]
    let cases: Vec<(&str, &[u8], PersistError)> = vec![
        ("empty value", b"", EmptyIssuer),
        ("only white space", b" \t ", EmptyIssuer),
        ("empty issuer with parameters", b"; accounturi=x", EmptyIssuer),
        ("lone ;", b";", EmptyIssuer),
        ("not a name", b"%%%", at(0, BadIssuerDomainName)),
        ("issuer trailing dot", b"ca.example.; accounturi=x", at(0, BadIssuerDomainName)),
        ("issuer underscore", b"ca_1.example; accounturi=x", at(0, BadIssuerDomainName)),
        ("issuer leading hyphen", b" -ca.example", at(1, BadIssuerDomainName)),
        ("issuer label ends in hyphen", b"ca-.example", at(0, BadIssuerDomainName)),
        ("issuer empty label", b"ca..example", at(0, BadIssuerDomainName)),
        ("issuer leading dot", b".ca.example", at(0, BadIssuerDomainName)),
        ("issuer non-ASCII", "cä.example".as_bytes(), at(0, BadIssuerDomainName)),
        ("issuer followed by a word", b"ca.example x", at(11, ExpectedSemicolon)),
        ("two issuers", b"ca.example ca2.example; accounturi=x", at(11, ExpectedSemicolon)),
        ("trailing ; after a parameter", b"ca.example; accounturi=x;", at(25, TrailingSemicolon)),
        ("trailing ; and space", b"ca.example; accounturi=x; ", at(26, TrailingSemicolon)),
        ("empty parameter between ;", b"ca.example; accounturi=x;; a=b", at(25, BadTag)),
        ("double ; after the issuer", b"ca.example;; accounturi=x", at(11, BadTag)),
        ("empty tag", b"ca.example; =x", at(12, BadTag)),
        ("tag with underscore", b"ca.example; account_uri=x", at(12, BadTag)),
        ("tag with leading hyphen", b"ca.example; -a=x", at(12, BadTag)),
        ("tag without =", b"ca.example; accounturi", at(22, MissingEquals)),
        ("two words before =", b"ca.example; a b=c", at(14, MissingEquals)),
        ("space inside a value", b"ca.example; accounturi=a b", at(25, ExpectedSemicolon)),
        ("non-ASCII in a value", "ca.example; accounturi=é".as_bytes(), at(23, BadValue)),
        ("control byte in a value", b"ca.example; accounturi=a\x00", at(24, BadValue)),
        ("DEL in a value", b"ca.example; accounturi=a\x7f", at(24, BadValue)),
        ("invalid UTF-8 in a value", b"ca.example; accounturi=\xff", at(23, BadValue)),
        ("repeated accounturi", b"ca.example; accounturi=a; accounturi=a", RepeatedParameter { tag: "accounturi" }),
        ("repeated accounturi, other case", b"ca.example; accounturi=a; AccountUri=b", RepeatedParameter { tag: "accounturi" }),
        ("repeated persistUntil", b"ca.example; accounturi=a; persistUntil=1; persistuntil=2", RepeatedParameter { tag: "persistUntil" }),
        ("repeated policy", b"ca.example; accounturi=a; policy=wildcard; policy=wildcard", RepeatedParameter { tag: "policy" }),
        ("empty accounturi", b"ca.example; accounturi=", EmptyAccountUri),
        ("empty persistUntil", b"ca.example; accounturi=a; persistUntil=", until("")),
        ("negative persistUntil", b"ca.example; accounturi=a; persistUntil=-1", until("-1")),
        ("signed persistUntil", b"ca.example; accounturi=a; persistUntil=+1", until("+1")),
        ("fractional persistUntil", b"ca.example; accounturi=a; persistUntil=1.5", until("1.5")),
        ("hex persistUntil", b"ca.example; accounturi=a; persistUntil=0x10", until("0x10")),
        ("persistUntil over u64", b"ca.example; accounturi=a; persistUntil=18446744073709551616", until("18446744073709551616")),
        ("persistUntil as a date", b"ca.example; accounturi=a; persistUntil=2026-06-15T00:00:00Z", until("2026-06-15T00:00:00Z")),
    ];
    for (name, value, want) in cases {
        assert_eq!(parse(value), Err(want), "{name}");
    }
}

/// What one record should come to, for the single-record table.
#[derive(Debug)]
enum Want {
    Authorizes,
    DoesNotAuthorize(Vec<Mismatch>),
    Malformed,
}

#[test]
fn decide_single_record() {
    use Mismatch::*;
    use PersistProfile::{Br, Draft};
    use Want::{Authorizes, DoesNotAuthorize as Not, Malformed};
    let ours = vec!["authority.example".to_owned(), "ca2.example".to_owned()];
    let req = |wildcard, is_subdomain, profile| PersistRequest {
        issuer_domains: &ours,
        account_uri: ACCOUNT,
        wildcard,
        is_subdomain,
        profile,
    };
    let now = EXAMPLE_UNTIL;
    let base = "authority.example; accounturi=https://authority.example/acct/123";
    let policy = format!("{base}; policy=wildcard");
    let other_policy = format!("{base}; policy=subdomains");
    // (name, TXT value, wildcard, is_subdomain, profile, now, want)
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, bool, bool, PersistProfile, u64, Want)> = vec![
        ("example, now == persistUntil", EXAMPLE, false, false, Br, now, Authorizes),
        ("example, 1 s before persistUntil", EXAMPLE, false, false, Br, now - 1, Authorizes),
        ("example, 1 s after persistUntil", EXAMPLE, false, false, Br, now + 1,
            Not(vec![Expired { persist_until: now, now: now + 1 }])),
        ("no persistUntil never expires", base, false, false, Br, u64::MAX, Authorizes),
        ("our second issuer", "ca2.example; accounturi=https://authority.example/acct/123",
            false, false, Br, now, Authorizes),
        ("issuer case ignored", "AUTHORITY.Example; accounturi=https://authority.example/acct/123",
            false, false, Br, now, Authorizes),
        ("another CA's record: nothing else judged", "other.example; accounturi=https://x/1; persistUntil=1",
            false, false, Br, now, Not(vec![OtherIssuer])),
        ("issuer below ours is not ours", "sub.authority.example; accounturi=https://authority.example/acct/123",
            false, false, Br, now, Not(vec![OtherIssuer])),
        ("no accounturi", "authority.example", false, false, Br, now, Not(vec![MissingAccountUri])),
        ("accounturi differs in case", "authority.example; accounturi=https://authority.example/ACCT/123",
            false, false, Br, now, Not(vec![OtherAccount])),
        ("accounturi differs by a slash", "authority.example; accounturi=https://authority.example/acct/123/",
            false, false, Br, now, Not(vec![OtherAccount])),
        ("every failed rule listed", "authority.example; accounturi=https://x.example/acct/9; persistUntil=1",
            false, false, Br, now, Not(vec![OtherAccount, Expired { persist_until: 1, now }])),
        ("BR: wildcard, no policy", base, true, false, Br, now, Authorizes),
        ("BR: subdomain, no policy", base, false, true, Br, now, Authorizes),
        ("BR: wildcard below a subdomain, no policy", base, true, true, Br, now, Authorizes),
        ("draft: plain name, no policy", base, false, false, Draft, now, Authorizes),
        ("draft: wildcard, no policy", base, true, false, Draft, now, Not(vec![WildcardNeedsPolicy])),
        ("draft: subdomain, no policy", base, false, true, Draft, now, Not(vec![SubdomainNeedsPolicy])),
        ("draft: wildcard below a subdomain, no policy", base, true, true, Draft, now,
            Not(vec![WildcardNeedsPolicy, SubdomainNeedsPolicy])),
        ("draft: wildcard, policy=wildcard", &policy, true, false, Draft, now, Authorizes),
        ("draft: subdomain, policy=wildcard", &policy, false, true, Draft, now, Authorizes),
        ("draft: another policy is none", &other_policy, true, false, Draft, now, Not(vec![WildcardNeedsPolicy])),
        ("draft: expired and no policy", "authority.example; accounturi=https://authority.example/acct/123; persistUntil=5",
            true, false, Draft, now, Not(vec![Expired { persist_until: 5, now }, WildcardNeedsPolicy])),
        ("malformed record", "authority.example; accounturi=https://authority.example/acct/123;",
            false, false, Br, now, Malformed),
        ("repeated parameter", "authority.example; accounturi=https://authority.example/acct/123; ACCOUNTURI=x",
            false, false, Br, now, Malformed),
    ];
    for (name, value, wildcard, is_subdomain, profile, now, want) in cases {
        let decision = decide(
            &[value.as_bytes().to_vec()],
            &req(wildcard, is_subdomain, profile),
            now,
        );
        let [got] = decision.records.as_slice() else {
            panic!("{name}: one verdict per record, got {:?}", decision.records);
        };
        match (&want, got) {
            (Authorizes, RecordVerdict::Authorizes(_)) => {}
            (Not(want), RecordVerdict::DoesNotAuthorize { reasons, .. }) => {
                assert_eq!(reasons, want, "{name}");
            }
            (Malformed, RecordVerdict::Malformed(_)) => {}
            _ => panic!("{name}: want {want:?}, got {got:?}"),
        }
        assert_eq!(decision.passed(), matches!(want, Authorizes), "{name}");
    }
}

#[test]
fn decide_over_an_rrset() {
    let ours = vec!["authority.example".to_owned()];
    let request = PersistRequest {
        issuer_domains: &ours,
        account_uri: ACCOUNT,
        wildcard: false,
        is_subdomain: false,
        profile: PersistProfile::Br,
    };
    let records: Vec<Vec<u8>> = vec![
        b"authority.example; accounturi=https://authority.example/acct/123;".to_vec(),
        b"other.example; accounturi=https://authority.example/acct/123".to_vec(),
        EXAMPLE.as_bytes().to_vec(),
        b"authority.example; accounturi=https://authority.example/acct/123".to_vec(),
    ];
    let decision = decide(&records, &request, EXAMPLE_UNTIL);
    assert!(decision.passed());
    assert_eq!(
        decision.authorized_by,
        Some(2),
        "the first authorizing record is named"
    );
    let only_account = &[("accounturi", ACCOUNT)];
    assert_eq!(
        decision.records,
        vec![
            RecordVerdict::Malformed(PersistError::Syntax {
                offset: 65,
                problem: SyntaxProblem::TrailingSemicolon,
            }),
            RecordVerdict::DoesNotAuthorize {
                record: record("other.example", Some(ACCOUNT), None, false, only_account),
                reasons: vec![Mismatch::OtherIssuer],
            },
            RecordVerdict::Authorizes(record(
                "authority.example",
                Some(ACCOUNT),
                Some(EXAMPLE_UNTIL),
                false,
                &[("accounturi", ACCOUNT), ("persistUntil", "1782424856")],
            )),
            RecordVerdict::Authorizes(record(
                "authority.example",
                Some(ACCOUNT),
                None,
                false,
                only_account,
            )),
        ]
    );
}

#[test]
fn decide_edge_requests() {
    let example = vec![EXAMPLE.as_bytes().to_vec()];
    let ours = vec!["authority.example".to_owned()];
    let none: Vec<String> = Vec::new();
    let dotted = vec!["Authority.Example.".to_owned()];
    let request = |issuer_domains, account_uri| PersistRequest {
        issuer_domains,
        account_uri,
        wildcard: false,
        is_subdomain: false,
        profile: PersistProfile::Br,
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, &[Vec<u8>], PersistRequest<'_>, bool)> = vec![
        ("no records", &[], request(&ours, ACCOUNT), false),
        ("no issuer domains of ours", &example, request(&none, ACCOUNT), false),
        ("our issuer name with capitals and a trailing dot", &example, request(&dotted, ACCOUNT), true),
        ("an empty requesting account matches nothing", &example, request(&ours, ""), false),
    ];
    for (name, records, request, want) in cases {
        let decision = decide(records, &request, 0);
        assert_eq!(decision.passed(), want, "{name}");
        assert_eq!(decision.records.len(), records.len(), "{name}");
    }
}

#[test]
fn messages_read_well() {
    let error = parse(b"ca.example; a=b;").expect_err("trailing ;");
    assert_eq!(
        error.to_string(),
        "\";\" after a parameter must be followed by another parameter at byte 16"
    );
    let reason = Mismatch::Expired {
        persist_until: 1,
        now: 2,
    };
    assert_eq!(reason.to_string(), "persistUntil 1 is before now (2)");
}
