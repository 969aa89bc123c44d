//! Protocol v1 against the real node: signed results, the example primary, and typed refusals
//! of bad input that leave the connection and the node up.

use std::process::Command;

use mpic_protocol::client::{ClientError, unix_ms};
use mpic_protocol::frame;
use mpic_protocol::{Check, NodeMessage, Outcome, ProblemKind, ProtocolErrorKind, Rir};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::primary};

use crate::support::{Lab, encode, exchange, probe_target, request};

const CAA_ZONE: &str = "@ 3600 IN SOA ns.test. h.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\npermit IN CAA 0 issue \"ca.example\"\n";

// Multi-threaded: the example runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_primary_verifies_signed_results_from_two_nodes() {
    let dns = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: CAA_ZONE,
        }],
    )
    .await
    .unwrap();
    let dns_table = format!(
        "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
        dns.address()
    );
    let lab = Lab::new();
    let a = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("ex-arin", Rir::Arin).with("dns", &dns_table),
    )
    .unwrap();
    let b = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("ex-ripe", Rir::RipeNcc).with("dns", &dns_table),
    )
    .unwrap();
    let node_arg = |node: &NodeProcess| {
        format!(
            "id={},rir={},addr={},key={}",
            node.id,
            node.rir,
            node.quic,
            node.verifying_key.to_base64()
        )
    };
    let output = Command::new(binary_path("examples/primary"))
        .arg("--ca")
        .arg(lab.credentials.path("ca.pem"))
        .arg("--cert")
        .arg(lab.credentials.path("primary.pem"))
        .arg("--key")
        .arg(lab.credentials.path("primary.key"))
        .args(["--node", &node_arg(&a), "--node", &node_arg(&b)])
        .args([
            "--target",
            "permit.test",
            "--min-remotes",
            "2",
            "--wait-all",
        ])
        .output()
        .expect("run examples/primary (built by `make build`)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Both nodes check CAA against the fixture, sign "pass", and the primary verifies both.
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for node in [&a, &b] {
        let line = format!(
            "  {} ({}): pass  [signature verified, key {}]",
            node.id,
            node.rir,
            node.verifying_key.key_id()
        );
        assert!(stdout.contains(&line), "missing {line:?} in\n{stdout}");
    }
    assert!(
        stdout.ends_with("verdict: issuance permitted\n"),
        "{stdout}"
    );
}

#[tokio::test]
async fn every_target_gets_its_own_signed_result() {
    let lab = Lab::new();
    let node = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("multi", Rir::Apnic),
    )
    .unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let mut targets: Vec<_> = (0..5)
        .map(|i| probe_target(&format!("san{i}.example.com")))
        .collect();
    targets.push(mpic_protocol::Target {
        identifier: "example.com".into(),
        check: Check::Unknown {
            kind: "quantum".into(),
        },
    });
    targets.push(probe_target("not a name"));
    let request = request(targets);
    let results = primary.query(0, &request).await.unwrap();
    assert_eq!(results.len(), 7);
    for result in &results {
        assert_eq!(result.request_id, request.request_id);
        assert_eq!(result.perspective.id, node.id);
        assert_eq!(result.perspective.rir, Rir::Apnic);
        assert_eq!(
            &result.target,
            &request.targets[result.target_index as usize]
        );
        let expected = match result.target_index {
            6 => (Outcome::Fail, ProblemKind::Malformed),
            _ => (Outcome::Unsupported, ProblemKind::Unsupported),
        };
        assert_eq!(
            (
                result.outcome,
                result.problem.as_ref().map(|p| p.kind).unwrap()
            ),
            expected,
            "{result:?}"
        );
    }
    let unknown = results.iter().find(|r| r.target_index == 5).unwrap();
    assert_eq!(
        unknown.problem.as_ref().unwrap().detail,
        "check kind \"quantum\" is not known to this node"
    );
    assert_eq!(node.metric("mpic_node_checks_total{kind=\"unknown\",method=\"unknown\",outcome=\"unsupported\",problem=\"unsupported\"}").unwrap(), 6.0);
    assert_eq!(node.metric("mpic_node_results_signed_total").unwrap(), 7.0);
}

#[tokio::test]
async fn results_do_not_verify_under_another_key_or_for_another_attempt() {
    let lab = Lab::new();
    let a = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("verify-a", Rir::Arin),
    )
    .unwrap();
    let b = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("verify-b", Rir::RipeNcc),
    )
    .unwrap();
    let primary = primary(&lab.credentials, &[&a]).unwrap();
    let connection = primary.connect(0).await.unwrap();
    let first = request(vec![probe_target("example.com")]);
    let messages = exchange(&connection, &encode(&first), true).await;
    let [NodeMessage::Result(signed)] = messages.as_slice() else {
        panic!("{messages:?}")
    };

    // Real bytes from node a verify under a's key ...
    let payload = a.verifying_key.verify(signed).unwrap();
    assert_eq!(payload.nonce, first.nonce);
    // ... not under b's key ...
    assert!(matches!(
        b.verifying_key.verify(signed),
        Err(mpic_protocol::VerifyError::WrongKey { .. })
    ));
    // ... not after tampering ...
    let mut tampered = signed.clone();
    let at = tampered.payload.len() / 2;
    tampered.payload[at] ^= 0x20;
    assert!(matches!(
        a.verifying_key.verify(&tampered),
        Err(mpic_protocol::VerifyError::BadSignature)
    ));
    // ... and not as an answer to another attempt (a replay with the old nonce).
    let mut second = first.clone();
    second.nonce = vec![6; 16];
    let window = mpic_protocol::client::verify::Window {
        sent_unix_ms: unix_ms().unwrap() - 5_000,
        now_unix_ms: unix_ms().unwrap(),
        skew: std::time::Duration::from_secs(5),
    };
    let error =
        mpic_protocol::client::verify_result(&a.endpoint(), &second, signed, window, &mut [false])
            .unwrap_err();
    assert!(
        matches!(error, ClientError::Mismatch { field: "nonce", .. }),
        "{error}"
    );
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_the_connection_stays_up() {
    let lab = Lab::new();
    let options = NodeOptions::new("hostile", Rir::Lacnic).with(
        "limits",
        "max_targets_per_request = 3\nmax_request_bytes = 4096\nrequest_read_timeout = \"1s\"",
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let connection = primary.connect(0).await.unwrap();
    let good = encode(&request(vec![probe_target("example.com")]));

    let mut past = request(vec![probe_target("example.com")]);
    past.deadline_unix_ms = unix_ms().unwrap() - 1_000;
    let mut future_version = request(vec![probe_target("example.com")]);
    future_version.version = 2;
    let mut short_nonce = request(vec![probe_target("example.com")]);
    short_nonce.nonce = vec![1; 4];
    let garbage_cbor = {
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, 0x00, 0x13, 0x37]);
        bytes
    };
    let mut oversize = 1_000_000u32.to_be_bytes().to_vec();
    oversize.extend_from_slice(&[0u8; 64]);
    let cases: Vec<(&str, Vec<u8>, bool, ProtocolErrorKind)> = vec![
        (
            "oversize frame",
            oversize,
            true,
            ProtocolErrorKind::FrameTooLarge,
        ),
        (
            "truncated frame",
            good[..good.len() - 5].to_vec(),
            true,
            ProtocolErrorKind::BadFrame,
        ),
        (
            "truncated prefix",
            good[..2].to_vec(),
            true,
            ProtocolErrorKind::BadFrame,
        ),
        (
            "empty stream",
            Vec::new(),
            true,
            ProtocolErrorKind::BadFrame,
        ),
        (
            "garbage CBOR",
            garbage_cbor,
            true,
            ProtocolErrorKind::BadFrame,
        ),
        (
            "stalled mid-frame",
            good[..good.len() - 5].to_vec(),
            false,
            ProtocolErrorKind::BadFrame,
        ),
        (
            "too many targets",
            encode(&request(
                (0..4)
                    .map(|i| probe_target(&format!("{i}.example")))
                    .collect(),
            )),
            true,
            ProtocolErrorKind::TooManyTargets,
        ),
        (
            "no targets",
            encode(&request(Vec::new())),
            true,
            ProtocolErrorKind::BadRequest,
        ),
        (
            "deadline in the past",
            encode(&past),
            true,
            ProtocolErrorKind::DeadlinePassed,
        ),
        (
            "unsupported version",
            encode(&future_version),
            true,
            ProtocolErrorKind::UnsupportedVersion,
        ),
        (
            "nonce too short",
            encode(&short_nonce),
            true,
            ProtocolErrorKind::BadRequest,
        ),
    ];
    for (name, bytes, finish, kind) in cases {
        let messages = exchange(&connection, &bytes, finish).await;
        match messages.as_slice() {
            [NodeMessage::Error(error)] => assert_eq!(error.kind, kind, "{name}: {}", error.detail),
            other => panic!("{name}: expected one {kind} error, got {other:?}"),
        }
        // The same connection still serves a good request.
        let after = exchange(&connection, &good, true).await;
        assert!(
            matches!(after.as_slice(), [NodeMessage::Result(_)]),
            "{name}: connection unusable after: {after:?}"
        );
    }
    assert!(connection.close_reason().is_none());
    assert_eq!(
        node.metric("mpic_node_requests_total{outcome=\"frame_too_large\"}")
            .unwrap(),
        1.0
    );
    assert_eq!(
        node.metric("mpic_node_requests_total{outcome=\"bad_frame\"}")
            .unwrap(),
        5.0
    );
    // Counted after the last result is written: poll rather than race the client.
    node.wait_for_metric("mpic_node_requests_total{outcome=\"answered\"}", 11.0)
        .unwrap();
    // The frame cap is checked before any body byte is buffered.
    let _ = frame::DEFAULT_MAX_REQUEST_BYTES;
}
