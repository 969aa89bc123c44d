//! Table tests of the tls-alpn-01 certificate rules with certificates made by rcgen.

use std::net::IpAddr;

use mpic_protocol::{DcvCheck, DcvMethod};

use super::certificate::*;
use crate::checks::dcv::request::{DcvRequest, TlsAlpnDcv};

const KEY_AUTH: &str = "token-abc.thumbprint-xyz";

/// A self-signed challenge certificate: these SANs, and the acmeIdentifier with this content
/// and criticality (None: no extension).
fn challenge(sans: &[&str], identifier: Option<(Vec<u8>, bool)>) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans
        .iter()
        .map(|san| match san.parse::<IpAddr>() {
            Ok(ip) => rcgen::SanType::IpAddress(ip),
            Err(_) => rcgen::SanType::DnsName((*san).try_into().unwrap()),
        })
        .collect();
    if let Some((content, critical)) = identifier {
        let mut extension =
            rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 31], content);
        extension.set_criticality(critical);
        params.custom_extensions.push(extension);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

fn good_value(key_authorization: &str) -> Vec<u8> {
    let mut value = vec![0x04, 0x20];
    value.extend_from_slice(&expected_digest(key_authorization));
    value
}

fn verdict(der: &[u8], alpn: Option<&[u8]>, identifier: &str) -> Result<(), ChallengeError> {
    let facts = inspect(der)?;
    decide(
        alpn,
        &facts,
        &Identifier::parse(identifier)?,
        &expected_digest(KEY_AUTH),
    )
}

#[test]
fn a_correct_challenge_certificate_passes() {
    let der = challenge(&["example.com"], Some((good_value(KEY_AUTH), true)));
    assert_eq!(verdict(&der, Some(ACME_TLS_ALPN), "example.com"), Ok(()));
    assert_eq!(verdict(&der, Some(ACME_TLS_ALPN), "EXAMPLE.com."), Ok(()));
    let facts = inspect(&der).unwrap();
    assert_eq!(facts.names, vec!["dns:example.com".to_owned()]);
    assert_eq!(facts.sha256.len(), 64);
}

#[test]
fn each_broken_rule_fails_with_its_reason() {
    let good = good_value(KEY_AUTH);
    type Case = (Vec<u8>, Option<&'static [u8]>, &'static str);
    let cases: Vec<Case> = vec![
        (
            challenge(&["example.com"], Some((good.clone(), true))),
            None,
            "did not negotiate ALPN",
        ),
        (
            challenge(&["example.com"], Some((good.clone(), true))),
            Some(b"h2"),
            "got \"h2\"",
        ),
        (
            challenge(
                &["example.com", "www.example.com"],
                Some((good.clone(), true)),
            ),
            Some(ACME_TLS_ALPN),
            "exactly one entry, dns:example.com; it has 2",
        ),
        (
            challenge(&["other.example"], Some((good.clone(), true))),
            Some(ACME_TLS_ALPN),
            "exactly one entry",
        ),
        (
            challenge(&[], Some((good.clone(), true))),
            Some(ACME_TLS_ALPN),
            "no subjectAltName",
        ),
        (
            challenge(&["example.com"], Some((good.clone(), false))),
            Some(ACME_TLS_ALPN),
            "not marked critical",
        ),
        (
            challenge(&["example.com"], None),
            Some(ACME_TLS_ALPN),
            "no acmeIdentifier",
        ),
        (
            challenge(&["example.com"], Some((good_value("other.key"), true))),
            Some(ACME_TLS_ALPN),
            "but SHA-256 of the key authorization is",
        ),
        (
            challenge(&["example.com"], Some((good[2..].to_vec(), true))),
            Some(ACME_TLS_ALPN),
            "not a DER OCTET STRING of 32 bytes",
        ),
    ];
    for (der, alpn, reason) in cases {
        let error = verdict(&der, alpn, "example.com").unwrap_err().to_string();
        assert!(error.contains(reason), "want {reason:?}, got {error:?}");
    }
}

#[test]
fn ip_identifiers_use_an_ip_san_and_a_reverse_name() {
    let der = challenge(&["192.0.2.7"], Some((good_value(KEY_AUTH), true)));
    assert_eq!(verdict(&der, Some(ACME_TLS_ALPN), "192.0.2.7"), Ok(()));
    assert!(verdict(&der, Some(ACME_TLS_ALPN), "192.0.2.8").is_err());
    assert_eq!(
        Identifier::parse("192.0.2.7").unwrap().server_name(),
        "7.2.0.192.in-addr.arpa"
    );
    assert_eq!(
        Identifier::parse("2001:db8::1").unwrap().server_name(),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
    assert!(
        Identifier::parse("*.example.com")
            .unwrap_err()
            .to_string()
            .contains("wildcard")
    );
}

#[test]
fn acme_identifier_value_is_exactly_an_octet_string_of_32() {
    let digest = expected_digest(KEY_AUTH);
    let mut good = vec![0x04, 0x20];
    good.extend_from_slice(&digest);
    assert_eq!(parse_acme_identifier(&good), Ok(digest));
    let mut long = good.clone();
    long.push(0);
    let mut wrong_tag = good.clone();
    wrong_tag[0] = 0x0c;
    let mut wrong_len = good.clone();
    wrong_len[1] = 0x1f;
    for bad in [
        Vec::new(),
        vec![0x04],
        long,
        wrong_tag,
        wrong_len,
        digest.to_vec(),
    ] {
        assert!(parse_acme_identifier(&bad).is_err(), "{bad:02x?}");
    }
}

#[test]
fn garbage_is_not_a_certificate() {
    for bytes in [&b""[..], b"\x30\x03\x02\x01", b"hello", &[0x30; 64]] {
        assert!(inspect(bytes).is_err());
    }
    let mut der = challenge(&["example.com"], None);
    der.push(0);
    assert!(inspect(&der).unwrap_err().to_string().contains("trailing"));
}

#[test]
fn the_digest_comes_from_the_key_authorization_or_hex() {
    // The digest is decoded from the wire check once, in `dcv::request`.
    let wanted = |dcv: &DcvCheck| match DcvRequest::decode(dcv) {
        Ok(DcvRequest::TlsAlpn(TlsAlpnDcv { digest })) => Ok(digest),
        Ok(other) => panic!("decoded as {other:?}"),
        Err(error) => Err(error),
    };
    let mut dcv = DcvCheck {
        method: DcvMethod::AcmeTlsAlpn01,
        url_scheme: None,
        record_type: None,
        exact_match: false,
        case_insensitive: false,
        expected: None,
        key_authorization: Some(KEY_AUTH.into()),
        token: None,
        prefix: None,
        issuer_domain: None,
        account_uri: None,
        wildcard: false,
    };
    let digest = expected_digest(KEY_AUTH);
    assert_eq!(wanted(&dcv), Ok(digest));
    dcv.expected = Some(hex::encode(digest));
    assert_eq!(wanted(&dcv), Ok(digest));
    dcv.key_authorization = None;
    assert_eq!(wanted(&dcv), Ok(digest));
    dcv.key_authorization = Some("other.key".into());
    assert!(wanted(&dcv).unwrap_err().to_string().contains("agree"));
    dcv.key_authorization = None;
    dcv.expected = Some("zz".into());
    assert!(wanted(&dcv).unwrap_err().to_string().contains("64 hex"));
    dcv.expected = None;
    assert!(wanted(&dcv).unwrap_err().to_string().contains("needs"));
}

#[test]
fn typed_errors_render_the_details_the_checks_always_wrote() {
    let two = challenge(
        &["example.com", "www.example.com"],
        Some((good_value(KEY_AUTH), true)),
    );
    let cases: [(String, &str); 5] = [
        (
            Identifier::parse("*.example.com").unwrap_err().to_string(),
            "\"*.example.com\" is a wildcard name: tls-alpn-01 cannot validate wildcards (RFC \
             8555 §7.1.3); use a DNS method",
        ),
        (
            verdict(&two, None, "example.com").unwrap_err().to_string(),
            "the server did not negotiate ALPN \"acme-tls/1\" (got none): a server or proxy \
             that ignores ALPN answered with its ordinary certificate",
        ),
        (
            verdict(&two, Some(ACME_TLS_ALPN), "example.com")
                .unwrap_err()
                .to_string(),
            "the certificate's subjectAltName must be exactly one entry, dns:example.com; it \
             has 2 (dns:example.com, dns:www.example.com)",
        ),
        (
            parse_acme_identifier(&[0x04]).unwrap_err().to_string(),
            "the acmeIdentifier value is not a DER OCTET STRING of 32 bytes (1 bytes: 04)",
        ),
        (
            super::prober::HandshakeError::ServerName {
                server_name: "a b".into(),
            }
            .to_string(),
            "server name \"a b\": invalid dns name",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}
