//! Shared set-up for the end-to-end tests.

use std::time::Duration;

use mpic_protocol::frame;
use mpic_protocol::{
    Check, NodeMessage, Outcome, PROTOCOL_VERSION, ProblemKind, Request, ResultPayload, Target,
};
use mpic_tests::DevCredentials;

/// A temporary directory with a fresh dev credential set.
pub(crate) struct Lab {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) credentials: DevCredentials,
}

impl Lab {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let credentials =
            DevCredentials::generate(&dir.path().join("dev")).expect("dev credentials");
        Self { dir, credentials }
    }
}

/// A target of a kind no node implements: answered a signed `unsupported` at once, with no
/// network use, so protocol tests measure the protocol and not the checks.
pub(crate) fn probe_target(identifier: &str) -> Target {
    Target {
        identifier: identifier.into(),
        check: Check::Unknown {
            kind: "x-probe".into(),
        },
    }
}

pub(crate) fn request(targets: Vec<Target>) -> Request {
    Request {
        version: PROTOCOL_VERSION,
        request_id: "e2e-1".into(),
        nonce: vec![5; 16],
        deadline_unix_ms: mpic_protocol::client::unix_ms().unwrap() + 10_000,
        targets,
    }
}

/// Writes raw bytes on a new stream, finishes it, and reads every message back.
pub(crate) async fn exchange(
    connection: &quinn::Connection,
    bytes: &[u8],
    finish: bool,
) -> Vec<NodeMessage> {
    let (mut send, mut recv) = connection.open_bi().await.expect("open stream");
    send.write_all(bytes).await.expect("write");
    if finish {
        send.finish().expect("finish");
    }
    read_all(&mut recv).await
}

pub(crate) async fn read_all(recv: &mut quinn::RecvStream) -> Vec<NodeMessage> {
    let mut messages = Vec::new();
    loop {
        let body = tokio::time::timeout(
            Duration::from_secs(15),
            frame::io::read_frame(recv, 1 << 20),
        )
        .await
        .expect("node answered in time")
        .expect("well-formed frame");
        let Some(body) = body else { break };
        messages.push(frame::decode_body(&body).expect("node message"));
    }
    messages
}

pub(crate) fn encode(request: &Request) -> Vec<u8> {
    frame::encode(request, usize::MAX).expect("encode")
}

/// Runs `command` and reads its stdout as one JSON object: (exit code, JSON). Panics with the
/// whole output when stdout is not JSON, so a failing CLI explains itself.
pub(crate) fn json_output(command: &mut std::process::Command) -> (Option<i32>, serde_json::Value) {
    let output = command.output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{command:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

/// `mpic-node check dcv <domain> --json --dnssec off --timeout <timeout> --resolver <dns>` with
/// `args` appended.
pub(crate) fn check_dcv(
    dns: std::net::SocketAddr,
    domain: &str,
    timeout: &str,
    args: &[&str],
) -> (Option<i32>, serde_json::Value) {
    json_output(
        std::process::Command::new(mpic_tests::binary_path("mpic-node"))
            .args([
                "check",
                "dcv",
                domain,
                "--json",
                "--dnssec",
                "off",
                "--timeout",
                timeout,
            ])
            .args(["--resolver", &dns.to_string()])
            .args(args),
    )
}

/// A request with a fresh id and nonce whose deadline is `timeout` from now.
pub(crate) fn request_within(targets: Vec<Target>, timeout: Duration) -> Request {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut nonce = serial.to_be_bytes().to_vec();
    nonce.extend_from_slice(&mpic_protocol::client::unix_ms().unwrap().to_be_bytes());
    Request {
        version: PROTOCOL_VERSION,
        request_id: format!("e2e-{serial}"),
        nonce,
        deadline_unix_ms: mpic_protocol::client::unix_ms().unwrap()
            + u64::try_from(timeout.as_millis()).unwrap(),
        targets,
    }
}

/// A sample from `/metrics`, or 0 when the labelled series has not been touched yet.
pub(crate) fn counter(node: &mpic_tests::NodeProcess, sample: &str) -> f64 {
    node.metric(sample).unwrap_or(0.0)
}

/// A signed result's outcome and problem kind.
pub(crate) fn verdict(result: &ResultPayload) -> (Outcome, Option<ProblemKind>) {
    (result.outcome, result.problem.as_ref().map(|p| p.kind))
}

/// A signed result's problem detail (empty on a pass).
pub(crate) fn detail(result: &ResultPayload) -> String {
    result
        .problem
        .as_ref()
        .map(|p| p.detail.clone())
        .unwrap_or_default()
}

/// Prints `case`'s verdict, time and detail (the figures the hostile suites report) and asserts
/// the verdict.
pub(crate) fn expect_verdict(
    case: &str,
    result: &ResultPayload,
    elapsed: Duration,
    expected: (Outcome, Option<ProblemKind>),
) {
    eprintln!(
        "{case}: {:?} in {elapsed:?}: {}",
        verdict(result),
        detail(result)
    );
    assert_eq!(verdict(result), expected, "{case}: {}", detail(result));
}
