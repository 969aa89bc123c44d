//! Cost of signing and verifying one result: Ed25519 over a typical CAA payload, signed with
//! ed25519-dalek (as the node does), verified with ring (as the primary client does).

use criterion::{Criterion, criterion_group, criterion_main};
use mpic_protocol::{
    CaaCheck, Check, DnsEvidence, DnssecStatus, Evidence, Outcome, PerspectiveId, PerspectiveInfo,
    ResultPayload, Rir, SigningKey, Target,
};

fn payload(key: &SigningKey) -> ResultPayload {
    ResultPayload {
        version: 1,
        request_id: "0123456789abcdef0123456789abcdef".into(),
        nonce: vec![42; 32],
        target_index: 0,
        target: Target {
            identifier: "www.example.com".into(),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec!["ca.example".into()],
                ..CaaCheck::default()
            }),
        },
        perspective: PerspectiveInfo {
            id: PerspectiveId::new("fra-1").unwrap_or_else(|_| unreachable!()),
            rir: Rir::RipeNcc,
            location: "Frankfurt, DE".into(),
            shadow: false,
        },
        received_unix_ms: 1_780_000_000_000,
        completed_unix_ms: 1_780_000_000_004,
        outcome: Outcome::Pass,
        problem: None,
        dnssec: Some(DnssecStatus::Secure),
        evidence: Evidence {
            dns: vec![DnsEvidence {
                name: "example.com.".into(),
                record_type: "CAA".into(),
                rcode: "NOERROR".into(),
                records: vec!["example.com. 300 IN CAA 0 issue \"ca.example\"".into()],
                dnssec: Some(DnssecStatus::Secure),
                server: Some("192.0.2.53:53".into()),
            }],
            ..Evidence::default()
        },
        key_id: key.key_id().to_string(),
        tenant: None,
    }
}

fn bench(c: &mut Criterion) {
    let Ok((key, _)) = SigningKey::generate() else {
        return;
    };
    let payload = payload(&key);
    let Ok(signed) = key.sign(&payload) else {
        return;
    };
    c.bench_function("sign (serialize + Ed25519)", |b| {
        b.iter(|| key.sign(std::hint::black_box(&payload)))
    });
    c.bench_function("sign_bytes (Ed25519 only)", |b| {
        b.iter(|| key.sign_bytes(std::hint::black_box(&signed.payload)))
    });
    c.bench_function("verify (Ed25519 + decode)", |b| {
        b.iter(|| key.verifying_key().verify(std::hint::black_box(&signed)))
    });
    c.bench_function("verify_bytes (Ed25519 only)", |b| {
        b.iter(|| {
            key.verifying_key()
                .verify_bytes(std::hint::black_box(&signed.payload), &signed.signature)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
