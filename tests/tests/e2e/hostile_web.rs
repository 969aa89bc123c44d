//! Slow HTTP and TLS peers (the `hostile::drip` fixture) against the real node over QUIC: a
//! body dripped one byte per 200 ms, a slowloris response head, malformed HTTP framing, and a
//! tls-alpn-01 handshake that never completes. Each case asserts the signed outcome, the problem kind, the time it took,
//! and that the node hung up on the peer rather than leaving the connection open.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mpic_protocol::{Check, DcvCheck, DcvMethod, Outcome, ProblemKind, ResultPayload, Rir, Target};
use mpic_tests::dns_server::DnsServer;
use mpic_tests::hostile::drip::{Drip, DripServer};
use mpic_tests::{NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, detail, expect_verdict, request_within, verdict};

/// `http.hop_timeout` and `http.connect_timeout` of the nodes here.
const HOP: Duration = Duration::from_secs(1);

/// Slack for the QUIC round trip and a debug build on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

/// The interval between two dripped bytes.
const DRIP: Duration = Duration::from_millis(200);

/// A node resolving `*.test` through the loopback fixture, with port 80 mapped to `http` and
/// port 443 to `https`, and one-second HTTP timeouts.
fn node(
    lab: &Lab,
    dns: &DnsServer,
    name: &str,
    http: SocketAddr,
    https: SocketAddr,
) -> NodeProcess {
    let options = NodeOptions::new(name, Rir::RipeNcc)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                dns.address()
            ),
        )
        .with("http", "hop_timeout = \"1s\"\nconnect_timeout = \"1s\"")
        .with(
            "dangerous",
            &format!("http_port = {}\nhttps_port = {}", http.port(), https.port()),
        );
    NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap()
}

/// Runs `check` on `ok.test` with `deadline`: (result, elapsed).
async fn run(
    lab: &Lab,
    node: &NodeProcess,
    check: DcvCheck,
    deadline: Duration,
) -> (ResultPayload, Duration) {
    let primary = primary(&lab.credentials, &[node]).unwrap();
    let request = request_within(
        vec![Target {
            identifier: "ok.test".into(),
            check: Check::Dcv(check),
        }],
        deadline,
    );
    let started = Instant::now();
    let mut results = primary.query(0, &request).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 1, "{results:?}");
    (results.remove(0), elapsed)
}

/// Waits up to `within` for every connection the server saw to be closed by the node; returns
/// how long after its accept each one was closed.
async fn hang_ups(server: &DripServer, within: Duration) -> Vec<Duration> {
    let started = Instant::now();
    loop {
        let sessions = server.sessions();
        let closed: Vec<Duration> = sessions
            .iter()
            .filter_map(|s| s.closed.map(|at| at - s.accepted))
            .collect();
        if !sessions.is_empty() && closed.len() == sessions.len() {
            return closed;
        }
        assert!(
            started.elapsed() < within,
            "the node left a connection open: {sessions:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn unused_port() -> SocketAddr {
    // A bound-then-dropped listener: nothing answers there (connection refused).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Serves `burst` then drips `pattern` forever to an http-01 check for `token`: the check must
/// time out within the hop timeout, and the node must hang up by then.
async fn drip_times_out_within_the_hop(case: &str, burst: &[u8], pattern: &[u8], token: &str) {
    let dns = crate::web::dns().await;
    let server = DripServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Drip {
            wait_for_request_head: true,
            burst: burst.to_vec(),
            by_path: Vec::new(),
            pattern: pattern.to_vec(),
            interval: DRIP,
        },
    )
    .await
    .unwrap();
    let lab = Lab::new();
    let node = node(&lab, &dns, token, server.address(), unused_port().await);
    let deadline = Duration::from_secs(8);
    let (result, elapsed) = run(&lab, &node, crate::web::http01(token), deadline).await;
    expect_verdict(
        case,
        &result,
        elapsed,
        (Outcome::Fail, Some(ProblemKind::Timeout)),
    );
    assert!(
        elapsed < HOP + SLACK,
        "{case}: took {elapsed:?}, hop timeout {HOP:?}"
    );
    let closed = hang_ups(&server, Duration::from_secs(3)).await;
    eprintln!("{case}: node hung up after {closed:?}");
    assert!(
        closed.iter().all(|after| *after < HOP + SLACK),
        "{case}: {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_web_a_body_dripped_byte_by_byte_times_out_within_the_hop() {
    drip_times_out_within_the_hop(
        "slow body",
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        b"slow.thumbprint",
        "slow",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_web_a_slowloris_response_head_times_out_within_the_hop() {
    drip_times_out_within_the_hop(
        "slowloris head",
        b"",
        b"HTTP/1.1 200 OK\r\nX-Drip: one byte at a time\r\n",
        "loris",
    )
    .await;
}

/// A TLS server that accepts and says nothing, and one that drips a ServerHello record (a
/// header announcing a 16 KiB handshake message, then its body a byte at a time).
async fn slow_tls_servers() -> [(&'static str, DripServer); 2] {
    let silent = DripServer::start("127.0.0.1:0".parse().unwrap(), Drip::silent())
        .await
        .unwrap();
    let dripping = DripServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Drip {
            wait_for_request_head: false,
            burst: vec![0x16, 0x03, 0x03, 0x40, 0x00],
            by_path: Vec::new(),
            pattern: vec![0x02, 0x00, 0x3f, 0xfc, 0x03, 0x03],
            interval: DRIP,
        },
    )
    .await
    .unwrap();
    [("tls-silent", silent), ("tls-drip", dripping)]
}

/// A tls-alpn-01 check against `server` (port 443 mapped to it) with `deadline`.
async fn slow_tls_check(
    lab: &Lab,
    dns: &DnsServer,
    name: &str,
    server: &DripServer,
    deadline: Duration,
) -> (ResultPayload, Duration) {
    let alpn = DcvCheck {
        key_authorization: Some("tok.thumbprint".into()),
        ..crate::web::dcv(DcvMethod::AcmeTlsAlpn01)
    };
    let node = node(lab, dns, name, unused_port().await, server.address());
    let (result, elapsed) = run(lab, &node, alpn, deadline).await;
    eprintln!(
        "{name}: {:?} in {elapsed:?}: {}",
        verdict(&result),
        detail(&result)
    );
    (result, elapsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_web_a_tls_alpn_handshake_that_never_completes_fails_typed() {
    let dns = crate::web::dns().await;
    let lab = Lab::new();
    let deadline = Duration::from_secs(3);
    for (name, server) in &slow_tls_servers().await {
        let (result, elapsed) = slow_tls_check(&lab, &dns, name, server, deadline).await;
        // The handshake shares `http.connect_timeout` with the TCP connect (the test below
        // asserts the time); the prober names its own step.
        assert_eq!(
            verdict(&result),
            (Outcome::Fail, Some(ProblemKind::Tls)),
            "{name}: {}",
            detail(&result)
        );
        assert!(
            detail(&result).contains("did not finish in time"),
            "{name}: {}",
            detail(&result)
        );
        assert!(elapsed < deadline + SLACK, "{name}: took {elapsed:?}");
        let closed = hang_ups(server, Duration::from_secs(3)).await;
        eprintln!("{name}: node hung up after {closed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_web_a_tls_alpn_handshake_is_bounded_by_the_connect_timeout() {
    // `http.connect_timeout` is documented as "one TCP connect (and TLS handshake)", and the
    // https fetch path bounds its handshake so; with a 10 s deadline a silent TLS server should
    // be given up on after 1 s, not hold the check (and its in-flight slot) for all 10 s.
    let dns = crate::web::dns().await;
    let lab = Lab::new();
    for (name, server) in &slow_tls_servers().await {
        let (result, elapsed) =
            slow_tls_check(&lab, &dns, name, server, Duration::from_secs(10)).await;
        assert_eq!(
            verdict(&result),
            (Outcome::Fail, Some(ProblemKind::Tls)),
            "{name}: {}",
            detail(&result)
        );
        assert!(elapsed < HOP + SLACK, "{name}: took {elapsed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_web_malformed_http_framing_fails_typed_within_the_hop() {
    // Each token's path gets its own malformed answer, then the connection is held open (the
    // node must give up by itself). None may pass, all must end within the hop timeout.
    let continues = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(40_000);
    let key = |token: &str| format!("{token}.thumbprint").into_bytes();
    let cases: Vec<(&str, Vec<u8>, ProblemKind)> = vec![
        (
            "chunk-overflow",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n"
                .to_vec(),
            ProblemKind::Connection,
        ),
        (
            "two-lengths",
            [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 21\r\nContent-Length: 22\r\n\r\n"[..],
                &key("two-lengths"),
            ]
            .concat(),
            ProblemKind::Connection,
        ),
        (
            "length-overflow",
            [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"[..],
                &key("length-overflow"),
            ]
            .concat(),
            ProblemKind::Connection,
        ),
        (
            "short-body",
            [
                &b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"[..],
                &key("short-body"),
            ]
            .concat(),
            ProblemKind::Timeout,
        ),
        ("continue-flood", continues, ProblemKind::Timeout),
    ];
    let server = DripServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Drip {
            wait_for_request_head: true,
            burst: Vec::new(),
            by_path: cases
                .iter()
                .map(|(token, bytes, _)| (crate::web::challenge(token), bytes.clone()))
                .collect(),
            pattern: Vec::new(),
            interval: DRIP,
        },
    )
    .await
    .unwrap();
    let dns = crate::web::dns().await;
    let lab = Lab::new();
    let node = node(&lab, &dns, "framing", server.address(), unused_port().await);
    for (token, _, kind) in &cases {
        let check = crate::web::http01(token);
        let (result, elapsed) = run(&lab, &node, check, Duration::from_secs(8)).await;
        eprintln!(
            "{token}: {:?} in {elapsed:?}: {}",
            verdict(&result),
            detail(&result)
        );
        assert_eq!(
            verdict(&result),
            (Outcome::Fail, Some(*kind)),
            "{token}: {}",
            detail(&result)
        );
        assert!(elapsed < HOP + SLACK, "{token}: took {elapsed:?}");
    }
    let closed = hang_ups(&server, Duration::from_secs(3)).await;
    eprintln!("malformed framing: node hung up after {closed:?}");
}
