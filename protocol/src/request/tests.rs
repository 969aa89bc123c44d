//! Wire compatibility of the CAA check: v1 requests with one `account_uri` still decode, the
//! `account_uris` set joins it, `certificate_type` is absent unless set, and any CAA check
//! round-trips through CBOR.

use ciborium::Value;
use proptest::prelude::*;

use super::*;

fn text(value: &str) -> Value {
    Value::Text(value.into())
}

/// A v1 request as a primary built before `account_uris` existed encodes it.
fn old_v1_request() -> Vec<u8> {
    let check = Value::Map(vec![
        (text("kind"), text("caa")),
        (
            text("issuer_domains"),
            Value::Array(vec![text("ca.example")]),
        ),
        (text("wildcard"), Value::Bool(false)),
        (text("account_uri"), text("https://ca.example/acct/1")),
        (text("method"), text("dns-01")),
    ]);
    let request = Value::Map(vec![
        (text("version"), Value::Integer(1.into())),
        (text("request_id"), text("r-1")),
        (text("nonce"), Value::Bytes(vec![7; 16])),
        (text("deadline_unix_ms"), Value::Integer(1_000.into())),
        (
            text("targets"),
            Value::Array(vec![Value::Map(vec![
                (text("identifier"), text("example.com")),
                (text("check"), check),
            ])]),
        ),
    ]);
    let mut bytes = Vec::new();
    // cannot fail: writing a Value to a Vec
    ciborium::into_writer(&request, &mut bytes).unwrap();
    bytes
}

fn caa(request: &Request) -> &CaaCheck {
    match &request.targets[0].check {
        Check::Caa(caa) => caa,
        other => panic!("not a CAA check: {other:?}"),
    }
}

#[test]
fn an_old_v1_request_with_one_account_uri_decodes() {
    let request: Request = ciborium::from_reader(old_v1_request().as_slice()).unwrap();
    let check = caa(&request);
    assert_eq!(
        check.account_uri.as_deref(),
        Some("https://ca.example/acct/1")
    );
    assert!(check.account_uris.is_empty());
    assert_eq!(check.method.as_deref(), Some("dns-01"));
    assert_eq!(
        check.accounts().collect::<Vec<_>>(),
        ["https://ca.example/acct/1"]
    );
}

#[test]
fn account_uri_and_account_uris_combine_into_one_set() {
    let check = CaaCheck {
        account_uri: Some("https://ca.example/acct/9".into()),
        account_uris: vec![
            "https://ca.example/acct/1".into(),
            "https://ca.example/acct/parent".into(),
        ],
        ..CaaCheck::default()
    };
    assert_eq!(
        check.accounts().collect::<Vec<_>>(),
        [
            "https://ca.example/acct/9",
            "https://ca.example/acct/1",
            "https://ca.example/acct/parent"
        ]
    );
    assert_eq!(CaaCheck::default().accounts().count(), 0);
}

#[test]
fn an_empty_account_uris_is_not_on_the_wire() {
    let check = Check::Caa(CaaCheck {
        issuer_domains: vec!["ca.example".into()],
        ..CaaCheck::default()
    });
    let mut bytes = Vec::new();
    ciborium::into_writer(&check, &mut bytes).unwrap();
    let value: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
    let keys: Vec<&str> = value
        .as_map()
        .unwrap()
        .iter()
        .filter_map(|(key, _)| key.as_text())
        .collect();
    assert!(!keys.contains(&"account_uris"), "{keys:?}");
    assert!(!keys.contains(&"account_uri"), "{keys:?}");
    assert!(!keys.contains(&"certificate_type"), "{keys:?}");
}

#[test]
fn an_old_v1_request_is_a_tls_check() {
    let request: Request = ciborium::from_reader(old_v1_request().as_slice()).unwrap();
    assert_eq!(caa(&request).certificate_type, None);
}

#[test]
fn an_smime_check_carries_certificate_type_on_the_wire() {
    let check = Check::Caa(CaaCheck {
        issuer_domains: vec!["ca.example".into()],
        certificate_type: Some(CERTIFICATE_TYPE_SMIME.into()),
        ..CaaCheck::default()
    });
    let mut bytes = Vec::new();
    ciborium::into_writer(&check, &mut bytes).unwrap();
    let value: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
    let entry = value
        .as_map()
        .unwrap()
        .iter()
        .find(|(key, _)| key.as_text() == Some("certificate_type"))
        .map(|(_, value)| value.as_text());
    assert_eq!(entry, Some(Some("s-mime")));
}

fn caa_strategy() -> impl Strategy<Value = CaaCheck> {
    (
        proptest::collection::vec("[a-z]{1,10}\\.example", 0..3),
        any::<bool>(),
        proptest::option::of("https://[a-z]{1,8}/acct/[0-9]{1,5}"),
        proptest::collection::vec(
            "(https://[a-z]{1,8}/acct/[0-9]{1,5})|(acct:[a-z]{1,8}@[a-z]{1,8})",
            0..4,
        ),
        proptest::option::of("[a-z0-9-]{1,16}"),
        any::<bool>(),
        proptest::option::of("tls|s-mime|[a-z-]{1,8}"),
    )
        .prop_map(
            |(
                issuer_domains,
                wildcard,
                account_uri,
                account_uris,
                method,
                allow,
                certificate_type,
            )| CaaCheck {
                issuer_domains,
                wildcard,
                account_uri,
                account_uris,
                method,
                allow_lookup_failure: allow,
                certificate_type,
            },
        )
}

proptest! {
    #[test]
    fn caa_checks_round_trip_through_cbor(check in caa_strategy()) {
        let check = Check::Caa(check);
        let mut bytes = Vec::new();
        ciborium::into_writer(&check, &mut bytes).unwrap();
        let back: Check = ciborium::from_reader(bytes.as_slice()).unwrap();
        prop_assert_eq!(back, check);
    }
}
