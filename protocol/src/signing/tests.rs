use proptest::prelude::*;

use super::*;
use crate::perspective::{PerspectiveId, Rir};
use crate::request::{CaaCheck, Check, DcvCheck, DcvMethod, Target};
use crate::result::{
    DnsEvidence, DnssecStatus, Evidence, Outcome, PerspectiveInfo, Problem, ProblemKind,
};

fn payload(key: &SigningKey) -> ResultPayload {
    ResultPayload {
        version: 1,
        request_id: "req-42".into(),
        nonce: vec![9; 16],
        target_index: 0,
        target: Target {
            identifier: "example.com".into(),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec!["ca.example".into()],
                ..Default::default()
            }),
        },
        perspective: PerspectiveInfo {
            id: PerspectiveId::new("fra-1").unwrap(),
            rir: Rir::RipeNcc,
            location: "Frankfurt".into(),
            shadow: false,
        },
        received_unix_ms: 1_700_000_000_000,
        completed_unix_ms: 1_700_000_000_050,
        outcome: Outcome::Fail,
        problem: Some(Problem {
            kind: ProblemKind::Caa,
            detail: "issue \"other.example\" only".into(),
        }),
        dnssec: Some(DnssecStatus::Secure),
        evidence: Evidence {
            dns: vec![DnsEvidence {
                name: "example.com.".into(),
                record_type: "CAA".into(),
                rcode: "NOERROR".into(),
                records: vec!["example.com. 300 IN CAA 0 issue \"other.example\"".into()],
                dnssec: Some(DnssecStatus::Secure),
                server: Some("127.0.0.1:53".into()),
            }],
            http: vec![crate::HttpEvidence {
                url: "http://example.com/.well-known/acme-challenge/t".into(),
                address: Some("[2001:db8::1]:80".into()),
                status: Some(200),
                bytes: 87,
                failed_attempts: vec!["192.0.2.1:80: connect failed".into()],
                dnssec: Some(DnssecStatus::Insecure),
            }],
            tls: Some(crate::TlsEvidence {
                alpn: Some("acme-tls/1".into()),
                subject_alt_names: vec!["dns:example.com".into()],
                ..crate::TlsEvidence::default()
            }),
            permitted_by_lookup_failure: None,
        },
        key_id: key.key_id().to_string(),
        tenant: None,
    }
}

/// A pass under the BR 3.2.2.8 carve-out, as a node signs it.
fn carve_out_payload(key: &SigningKey) -> ResultPayload {
    let mut payload = payload(key);
    payload.outcome = Outcome::Pass;
    payload.problem = None;
    payload.evidence.permitted_by_lookup_failure = Some(crate::LookupFailurePermit {
        failed_lookups: vec![crate::FailedLookup {
            name: "www.example.com.".into(),
            failure: "timeout".into(),
            attempts: 2,
            attempt_details: vec![
                "192.0.2.53:53 timed out".into(),
                "192.0.2.53:53 timed out".into(),
            ],
            resolution: "iterative".into(),
            dnssec: DnssecStatus::Insecure,
            proof: "example.com. is a delegation from com. without DS (validated denial)".into(),
        }],
    });
    payload
}

#[test]
fn the_carve_out_detail_signs_and_round_trips() {
    let (key, _) = SigningKey::generate().unwrap();
    let signed = key.sign(&carve_out_payload(&key)).unwrap();
    assert_eq!(
        key.verifying_key().verify(&signed).unwrap(),
        carve_out_payload(&key)
    );
}

#[test]
fn an_older_primary_still_decodes_a_carve_out_result() {
    // The evidence as a primary built before `permitted_by_lookup_failure` knew it.
    #[derive(serde::Deserialize)]
    struct OldEvidence {
        dns: Vec<DnsEvidence>,
    }
    #[derive(serde::Deserialize)]
    struct OldPayload {
        outcome: Outcome,
        evidence: OldEvidence,
    }
    let (key, _) = SigningKey::generate().unwrap();
    let signed = key.sign(&carve_out_payload(&key)).unwrap();
    let old: OldPayload = ciborium::from_reader(signed.payload.as_slice()).unwrap();
    assert_eq!(old.outcome, Outcome::Pass);
    assert_eq!(old.evidence.dns.len(), 1);
}

#[test]
fn sign_then_verify_returns_the_payload() {
    let (key, _) = SigningKey::generate().unwrap();
    let signed = key.sign(&payload(&key)).unwrap();
    assert_eq!(signed.signature.len(), SIGNATURE_LEN);
    assert_eq!(key.verifying_key().verify(&signed).unwrap(), payload(&key));
}

#[test]
fn tampered_payload_fails() {
    let (key, _) = SigningKey::generate().unwrap();
    let mut signed = key.sign(&payload(&key)).unwrap();
    let last = signed.payload.len() - 1;
    signed.payload[last] ^= 0x01;
    assert!(matches!(
        key.verifying_key().verify(&signed),
        Err(VerifyError::BadSignature)
    ));
}

#[test]
fn tampered_signature_fails() {
    let (key, _) = SigningKey::generate().unwrap();
    let mut signed = key.sign(&payload(&key)).unwrap();
    signed.signature[0] ^= 0x80;
    assert!(matches!(
        key.verifying_key().verify(&signed),
        Err(VerifyError::BadSignature)
    ));
    signed.signature.truncate(10);
    assert!(matches!(
        key.verifying_key().verify(&signed),
        Err(VerifyError::BadSignature)
    ));
}

#[test]
fn wrong_key_fails_by_id_and_by_signature() {
    let (key, _) = SigningKey::generate().unwrap();
    let (other, _) = SigningKey::generate().unwrap();
    let signed = key.sign(&payload(&key)).unwrap();
    assert!(matches!(
        other.verifying_key().verify(&signed),
        Err(VerifyError::WrongKey { .. })
    ));
    // A forger who copies the expected key id onto the wrapper still fails on the signature.
    let mut forged = signed;
    forged.key_id = other.key_id().to_string();
    assert!(matches!(
        other.verifying_key().verify(&forged),
        Err(VerifyError::BadSignature)
    ));
}

#[test]
fn payload_key_id_must_match_wrapper() {
    let (key, _) = SigningKey::generate().unwrap();
    let mut inner = payload(&key);
    inner.key_id = "0000000000000000".into();
    let signed = key.sign(&inner).unwrap();
    assert!(matches!(
        key.verifying_key().verify(&signed),
        Err(VerifyError::KeyIdMismatch { .. })
    ));
}

#[test]
fn signature_is_domain_separated() {
    // A signature over the bare payload (no context prefix) must not verify.
    let (key, _) = SigningKey::generate().unwrap();
    let mut signed = key.sign(&payload(&key)).unwrap();
    signed.signature = key.sign_in_context(b"", &signed.payload).to_vec();
    assert!(matches!(
        key.verifying_key().verify(&signed),
        Err(VerifyError::BadSignature)
    ));
}

#[test]
fn pkcs8_and_base64_round_trip() {
    let (key, der) = SigningKey::generate().unwrap();
    let reloaded = SigningKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(reloaded.key_id(), key.key_id());
    let public = VerifyingKey::from_base64(&key.verifying_key().to_base64()).unwrap();
    assert_eq!(&public, key.verifying_key());
    assert_eq!(public.key_id().as_str().len(), 16);
    assert_eq!(
        SigningKey::from_pkcs8_der(b"nope")
            .err()
            .map(|e| matches!(e, KeyError::BadPrivateKey(_))),
        Some(true)
    );
    assert_eq!(
        VerifyingKey::from_base64("AAAA"),
        Err(KeyError::BadPublicKey)
    );
}

#[test]
fn key_id_is_stable() {
    // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
    assert_eq!(KeyId::of(&[0u8; 32]).as_str(), "66687aadf862bd77");
}

fn method_strategy() -> impl Strategy<Value = DcvMethod> {
    prop_oneof![
        proptest::sample::select(DcvMethod::KNOWN.to_vec()),
        "[a-z0-9-]{1,20}".prop_map(|name| name.parse().unwrap()),
    ]
}

fn check_strategy() -> impl Strategy<Value = Check> {
    prop_oneof![
        (
            proptest::collection::vec("[a-z]{1,10}\\.example", 0..3),
            any::<bool>(),
            proptest::option::of("https://[a-z]{1,8}/acct/[0-9]{1,5}")
        )
            .prop_map(
                |(issuer_domains, wildcard, account_uri)| Check::Caa(CaaCheck {
                    issuer_domains,
                    wildcard,
                    account_uri,
                    account_uris: Vec::new(),
                    method: None,
                    allow_lookup_failure: false,
                    certificate_type: None,
                })
            ),
        (
            method_strategy(),
            proptest::option::of(".{0,40}"),
            proptest::option::of("_[a-z]{1,10}"),
            any::<bool>()
        )
            .prop_map(|(method, expected, prefix, wildcard)| Check::Dcv(DcvCheck {
                url_scheme: None,
                record_type: None,
                exact_match: false,
                case_insensitive: false,
                method,
                expected,
                key_authorization: None,
                token: None,
                prefix,
                issuer_domain: None,
                account_uri: None,
                wildcard
            })),
        "[a-z]{1,10}"
            .prop_filter("not a known kind", |k| k != "caa" && k != "dcv")
            .prop_map(|kind| Check::Unknown { kind }),
    ]
}

proptest! {
    #[test]
    fn wire_types_round_trip_and_sign_verify(
        identifier in "[a-z0-9.*-]{1,60}",
        check in check_strategy(),
        nonce in proptest::collection::vec(any::<u8>(), 16..64),
        request_id in "[!-~]{1,40}",
        detail in ".{0,80}",
        index in 0u32..1000,
    ) {
        let (key, _) = SigningKey::generate().unwrap();
        let mut inner = payload(&key);
        inner.target = Target { identifier, check };
        inner.nonce = nonce;
        inner.request_id = request_id;
        inner.target_index = index;
        inner.problem = Some(Problem { kind: ProblemKind::Dns, detail });
        let signed = key.sign(&inner).unwrap();
        // The wrapper round-trips through a frame, and the payload through the signature.
        let frame = crate::frame::encode(&crate::result::NodeMessage::Result(signed.clone()), 1 << 20).unwrap();
        let (body, _) = crate::frame::split_frame(&frame, 1 << 20).unwrap().unwrap();
        let decoded: crate::result::NodeMessage = crate::frame::decode_body(body).unwrap();
        prop_assert_eq!(&decoded, &crate::result::NodeMessage::Result(signed.clone()));
        prop_assert_eq!(key.verifying_key().verify(&signed).unwrap(), inner);
    }
}

#[test]
fn dalek_signs_exactly_the_bytes_ring_would_sign() {
    // Ed25519 is deterministic: the signer (ed25519-dalek) and ring, from the same PKCS#8
    // document, must give the same signature, and ring must verify it.
    let (key, der) = SigningKey::generate().unwrap();
    let ring_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
    for length in [0, 1, 64, 700, 5000] {
        let payload = vec![0xa5_u8; length];
        let mut message = SIGNATURE_CONTEXT.to_vec();
        message.extend_from_slice(&payload);
        assert_eq!(
            key.sign_bytes(&payload).as_slice(),
            ring_pair.sign(&message).as_ref(),
            "payload of {length} bytes"
        );
        assert!(
            key.verifying_key()
                .verify_bytes(&payload, &key.sign_bytes(&payload))
                .is_ok()
        );
    }
}
