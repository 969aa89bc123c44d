//! Table tests of the strict decoding: each method's required fields, the closed record-type and
//! scheme sets, and the detail each failure is answered with.

use mpic_protocol::{DcvCheck, DcvMethod};

use super::*;

fn wire(method: DcvMethod) -> DcvCheck {
    DcvCheck {
        method,
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
    }
}

const RANDOM: &str = "abcdefghijklmnopqrstuvwxyz012345";

#[test]
fn missing_or_invalid_fields_are_named() {
    let with = |method, edit: fn(&mut DcvCheck)| {
        let mut dcv = wire(method);
        edit(&mut dcv);
        dcv
    };
    let cases: Vec<(&str, DcvCheck, &str)> = vec![
        (
            "dns-01 without key authorization",
            wire(DcvMethod::AcmeDns01),
            "acme DNS methods need key_authorization (or the digest as expected)",
        ),
        (
            "dns-account-01 without account",
            with(DcvMethod::AcmeDnsAccount01, |d| {
                d.key_authorization = Some("t.k".into());
            }),
            "acme-dns-account-01 needs account_uri",
        ),
        (
            "dns-change without expected",
            wire(DcvMethod::DnsChange),
            "dns-change needs expected (the Random Value or Request Token)",
        ),
        (
            "dns-change with an unprintable value",
            with(DcvMethod::DnsChange, |d| d.expected = Some("a b".into())),
            "expected: ",
        ),
        (
            "dns-change in an A record",
            with(DcvMethod::DnsChange, |d| {
                d.expected = Some(RANDOM.into());
                d.record_type = Some("A".into());
            }),
            "record_type \"A\": dns-change looks in TXT, CNAME or CAA records only (BR 3.2.2.4.7)",
        ),
        (
            "dns-persist-01 without account",
            with(DcvMethod::DnsPersist01, |d| {
                d.issuer_domain = Some("ca.test".into());
            }),
            "dns-persist-01 needs issuer_domain and account_uri",
        ),
        (
            "ip-address without expected",
            wire(DcvMethod::IpAddress),
            "ip-address needs expected",
        ),
        (
            "ip-address in a TXT record",
            with(DcvMethod::IpAddress, |d| {
                d.expected = Some("192.0.2.7".into());
                d.record_type = Some("TXT".into());
            }),
            "record_type \"TXT\": ip-address looks in A or AAAA records only (BR 3.2.2.4.8)",
        ),
        (
            "http-01 without token",
            wire(DcvMethod::AcmeHttp01),
            "acme-http-01 needs `token`",
        ),
        (
            "http-01 without key authorization",
            with(DcvMethod::AcmeHttp01, |d| d.token = Some("t".into())),
            "acme-http-01 needs `key_authorization`",
        ),
        (
            "website-change for a wildcard",
            with(DcvMethod::WebsiteChange, |d| d.wildcard = true),
            "website-change cannot validate a wildcard certificate (BR 3.2.2.4.18); use a DNS method",
        ),
        (
            "website-change over ftp",
            with(DcvMethod::WebsiteChange, |d| {
                d.token = Some("f".into());
                d.expected = Some(RANDOM.into());
                d.url_scheme = Some("ftp".into());
            }),
            "url_scheme \"ftp\": website-change uses http or https (BR 3.2.2.4.18)",
        ),
        (
            "tls-alpn-01 without key authorization",
            wire(DcvMethod::AcmeTlsAlpn01),
            "acme-tls-alpn-01 needs `key_authorization` (or `expected`)",
        ),
        (
            "tls-alpn-01 with a short digest",
            with(DcvMethod::AcmeTlsAlpn01, |d| {
                d.expected = Some("abcd".into())
            }),
            "expected must be the SHA-256 of the key authorization as 64 hex digits",
        ),
        (
            "an unknown method",
            wire(DcvMethod::Other("x-future".into())),
            "DCV method \"x-future\" is not available in this node version",
        ),
    ];
    for (name, dcv, detail) in cases {
        let error = DcvRequest::decode(&dcv).expect_err(name);
        assert!(error.to_string().starts_with(detail), "{name}: {error}");
    }
}

#[test]
fn each_method_decodes_into_its_own_variant_with_its_fields() {
    let mut change = wire(DcvMethod::DnsChange);
    change.expected = Some(RANDOM.into());
    change.record_type = Some("cname".into());
    change.prefix = Some("_p".into());
    assert_eq!(
        DcvRequest::decode(&change),
        Ok(DcvRequest::Dns(DnsDcv::DnsChange(DnsChange {
            expected: RANDOM.into(),
            prefix: Some("_p".into()),
            record_type: Some(ChangeRecordType::Cname),
            exact_match: false,
            case_insensitive: false,
        })))
    );
    let mut website = wire(DcvMethod::WebsiteChange);
    website.token = Some("f".into());
    website.expected = Some(RANDOM.into());
    website.url_scheme = Some("https".into());
    assert_eq!(
        DcvRequest::decode(&website),
        Ok(DcvRequest::Http(HttpDcv::WebsiteChange {
            file: "f".into(),
            expected: RANDOM.into(),
            scheme: UrlScheme::Https,
        }))
    );
    let mut address = wire(DcvMethod::IpAddress);
    address.expected = Some("192.0.2.7, 2001:db8::1".into());
    address.record_type = Some("aaaa".into());
    assert_eq!(
        DcvRequest::decode(&address),
        Ok(DcvRequest::Dns(DnsDcv::IpAddress {
            expected: vec!["192.0.2.7".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            record_type: Some(AddressRecordType::Aaaa),
        }))
    );
    let mut alpn = wire(DcvMethod::AcmeTlsAlpn01);
    alpn.key_authorization = Some("t.k".into());
    let digest = crate::checks::tls_alpn::certificate::expected_digest("t.k");
    alpn.expected = Some(hex::encode(digest));
    assert_eq!(
        DcvRequest::decode(&alpn),
        Ok(DcvRequest::TlsAlpn(TlsAlpnDcv { digest }))
    );
    for method in DcvMethod::KNOWN {
        let mut dcv = wire(method.clone());
        dcv.expected = Some(RANDOM.into());
        if let Ok(DcvRequest::Dns(dns)) = DcvRequest::decode(&dcv) {
            assert_eq!(dns.method(), method);
        }
    }
}
