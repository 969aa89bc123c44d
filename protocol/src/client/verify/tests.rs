use std::time::Duration;

use super::*;
use crate::perspective::{PerspectiveId, Rir};
use crate::request::{CaaCheck, Check, PROTOCOL_VERSION, Target};
use crate::result::{Evidence, Outcome, PerspectiveInfo};
use crate::signing::SigningKey;

const NOW: u64 = 1_780_000_000_000;

fn request(nonce: u8) -> Request {
    Request {
        version: PROTOCOL_VERSION,
        request_id: "attempt-1".into(),
        nonce: vec![nonce; 32],
        deadline_unix_ms: NOW + 10_000,
        targets: ["a.example", "b.example"]
            .into_iter()
            .map(|identifier| Target {
                identifier: identifier.into(),
                check: Check::Caa(CaaCheck {
                    issuer_domains: vec!["ca.example".into()],
                    ..Default::default()
                }),
            })
            .collect(),
    }
}

fn node(key: &SigningKey) -> NodeEndpoint {
    NodeEndpoint {
        perspective_id: PerspectiveId::new("fra-1").unwrap(),
        rir: Rir::RipeNcc,
        address: "127.0.0.1:4433".parse().unwrap(),
        server_name: "localhost".into(),
        verifying_key: key.verifying_key().clone(),
    }
}

fn payload(key: &SigningKey, request: &Request, index: u32) -> ResultPayload {
    ResultPayload {
        version: 1,
        request_id: request.request_id.clone(),
        nonce: request.nonce.clone(),
        target_index: index,
        target: request.targets[index as usize].clone(),
        perspective: PerspectiveInfo {
            id: PerspectiveId::new("fra-1").unwrap(),
            rir: Rir::RipeNcc,
            location: "x".into(),
            shadow: false,
        },
        received_unix_ms: NOW - 20,
        completed_unix_ms: NOW - 10,
        outcome: Outcome::Pass,
        problem: None,
        dnssec: None,
        evidence: Evidence::default(),
        key_id: key.key_id().to_string(),
        tenant: None,
    }
}

fn window() -> Window {
    Window {
        sent_unix_ms: NOW - 30,
        now_unix_ms: NOW,
        skew: Duration::from_secs(5),
    }
}

fn check(
    key: &SigningKey,
    request: &Request,
    payload: &ResultPayload,
) -> Result<ResultPayload, ClientError> {
    let signed = key.sign(payload).unwrap();
    verify_result(&node(key), request, &signed, window(), &mut [false, false])
}

#[test]
fn a_matching_result_verifies() {
    let (key, _) = SigningKey::generate().unwrap();
    let request = request(1);
    assert_eq!(
        check(&key, &request, &payload(&key, &request, 1)).unwrap(),
        payload(&key, &request, 1)
    );
}

#[test]
fn a_result_replayed_from_another_attempt_is_refused() {
    let (key, _) = SigningKey::generate().unwrap();
    let old = request(1);
    let new = request(2);
    let replayed = key.sign(&payload(&key, &old, 0)).unwrap();
    let error =
        verify_result(&node(&key), &new, &replayed, window(), &mut [false, false]).unwrap_err();
    assert!(
        matches!(error, ClientError::Mismatch { field: "nonce", .. }),
        "{error}"
    );
}

#[test]
fn a_tampered_result_is_refused() {
    let (key, _) = SigningKey::generate().unwrap();
    let request = request(1);
    let mut signed = key.sign(&payload(&key, &request, 0)).unwrap();
    // Flip a byte of the outcome text deep inside the payload.
    let position = signed
        .payload
        .windows(4)
        .position(|w| w == b"pass")
        .unwrap();
    signed.payload[position] = b'f';
    let error = verify_result(
        &node(&key),
        &request,
        &signed,
        window(),
        &mut [false, false],
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Verify {
                source: crate::VerifyError::BadSignature,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_result_signed_by_another_key_is_refused() {
    let (key, _) = SigningKey::generate().unwrap();
    let (other, _) = SigningKey::generate().unwrap();
    let request = request(1);
    let signed = other.sign(&payload(&other, &request, 0)).unwrap();
    let error = verify_result(
        &node(&key),
        &request,
        &signed,
        window(),
        &mut [false, false],
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Verify {
                source: crate::VerifyError::WrongKey { .. },
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn each_echoed_field_is_checked() {
    let (key, _) = SigningKey::generate().unwrap();
    let request = request(1);
    type Edit = fn(&mut ResultPayload);
    let cases: [(&str, Edit, &str); 7] = [
        (
            "other request id",
            |p| p.request_id = "attempt-2".into(),
            "request_id",
        ),
        ("index out of range", |p| p.target_index = 2, "target_index"),
        (
            "target swapped",
            |p| p.target.identifier = "evil.example".into(),
            "target",
        ),
        (
            "other perspective",
            |p| p.perspective.id = PerspectiveId::new("nyc-1").unwrap(),
            "perspective.id",
        ),
        (
            "other rir",
            |p| p.perspective.rir = Rir::Arin,
            "perspective.rir",
        ),
        (
            "from the future",
            |p| p.completed_unix_ms = NOW + 60_000,
            "time window",
        ),
        (
            "before the request",
            |p| p.received_unix_ms = NOW - 60_000,
            "time window",
        ),
    ];
    for (name, edit, field) in cases {
        let mut edited = payload(&key, &request, 0);
        edit(&mut edited);
        match check(&key, &request, &edited) {
            Err(ClientError::Mismatch { field: got, .. }) => assert_eq!(got, field, "{name}"),
            other => panic!("{name}: expected mismatch on {field}, got {other:?}"),
        }
    }
}

#[test]
fn a_duplicate_answer_is_refused() {
    let (key, _) = SigningKey::generate().unwrap();
    let request = request(1);
    let signed = key.sign(&payload(&key, &request, 0)).unwrap();
    let mut seen = [false, false];
    verify_result(&node(&key), &request, &signed, window(), &mut seen).unwrap();
    let error = verify_result(&node(&key), &request, &signed, window(), &mut seen).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Mismatch {
                field: "target_index",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_result_for_another_tenant_does_not_count() {
    let (key, _) = SigningKey::generate().unwrap();
    let request = request(1);
    let mut result = payload(&key, &request, 0);
    assert!(check_tenant(&node(&key), None, &result).is_ok());
    assert!(matches!(
        check_tenant(&node(&key), Some("ca-one"), &result),
        Err(ClientError::Mismatch {
            field: "tenant",
            ..
        })
    ));
    result.tenant = Some("ca-two".into());
    assert!(check_tenant(&node(&key), Some("ca-one"), &result).is_err());
    result.tenant = Some("ca-one".into());
    assert!(check_tenant(&node(&key), Some("ca-one"), &result).is_ok());
}
