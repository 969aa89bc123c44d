//! The arena of the hostile-primary cases: a node with a CAA zone behind it, an honest primary
//! and an attacker with credentials of its own, and the helpers that run and measure attacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpic_protocol::client::{ClientOptions, Primary};
use mpic_protocol::frame;
use mpic_protocol::{CaaCheck, Check, NodeMessage, Outcome, ProtocolErrorKind, Rir, Target};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::node::{Memory, primary};
use mpic_tests::{NodeOptions, NodeProcess};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::support::{Lab, request_within};

const CAA_ZONE: &str = "@ 3600 IN SOA ns.test. h.test. 1 7200 3600 1209600 60\n\
    @ IN NS ns\nns IN A 127.0.0.1\npermit IN CAA 0 issue \"ca.example\"\n";

/// Honest CAA requests run during each attack.
pub(super) const HONEST_REQUESTS: usize = 200;

/// Honest requests in flight at once.
const HONEST_CONCURRENCY: usize = 8;

/// Largest growth of the node's resident memory (now and at peak) an attack may cause: the
/// node starts at a few tens of MiB; an attack bounded by the in-flight and stream limits must
/// not add more than this.
const MEMORY_BOUND: u64 = 64 * 1024 * 1024;

/// How long any one read of the attacker's may wait for the node.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// A node, the DNS fixture it uses, an honest primary and an attacker's connection.
pub(super) struct Arena {
    _lab: Lab,
    _dns: DnsServer,
    pub(super) node: NodeProcess,
    pub(super) honest: Primary,
    pub(super) attacker: quinn::Connection,
}

/// Starts a node with `limits` added to its `[limits]` table, an honest primary (`primary.pem`)
/// and an attacker (`attacker.pem`, a second identity from the same CA, so per-primary limits
/// tell them apart), and warms the honest path up (DNS cache, connection).
pub(super) async fn arena(name: &str, limits: &str) -> Arena {
    let dns = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: CAA_ZONE,
        }],
    )
    .await
    .unwrap();
    let lab = Lab::new();
    lab.credentials.issue_primary("attacker").unwrap();
    let options = NodeOptions::new(name, Rir::Apnic)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                dns.address()
            ),
        )
        .with("limits", limits)
        // The test harness sets RUST_BACKTRACE, which the node would inherit: a panic would then
        // symbolize a backtrace from the debug binary's DWARF and add ~200 MiB of RSS, which is
        // the harness's cost, not the node's.
        .with_env("RUST_BACKTRACE", "0");
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let honest = primary(&lab.credentials, &[&node]).unwrap();
    let attacker = Primary::new(
        vec![node.endpoint()],
        ClientOptions::new(
            lab.credentials.ca().unwrap(),
            Some(
                lab.credentials
                    .identity("attacker.pem", "attacker.key")
                    .unwrap(),
            ),
        ),
    )
    .unwrap()
    .connect(0)
    .await
    .unwrap();
    let warm_up = honest_load(&honest, 10, &AtomicBool::new(true)).await;
    assert_eq!(warm_up.passed, 10, "warm-up: {:?}", warm_up.failures);
    Arena {
        _lab: lab,
        _dns: dns,
        node,
        honest,
        attacker,
    }
}

pub(super) fn caa_target() -> Target {
    Target {
        identifier: "permit.test".into(),
        check: Check::Caa(CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            ..CaaCheck::default()
        }),
    }
}

/// Most honest requests one attack's load sends (the load stays bounded if an attack hangs).
const HONEST_CAP: usize = 20_000;

/// What the honest primary saw during an attack.
#[derive(Debug, Default)]
pub(super) struct Honest {
    /// Requests sent.
    pub(super) sent: usize,
    /// Requests answered with one verified `pass`.
    pub(super) passed: usize,
    /// The first few failures, for the assertion message.
    pub(super) failures: Vec<String>,
}

impl Honest {
    /// Asserts a 100 % success rate over at least `HONEST_REQUESTS` requests and no tracing
    /// panic in the node (see [`tracing_panics`]); on failure the message carries the node's
    /// warnings, errors and request counters.
    pub(super) fn assert_all_passed(&self, case: &str, node: &NodeProcess) {
        assert!(
            self.sent >= HONEST_REQUESTS,
            "{case}: only {} sent",
            self.sent
        );
        let lost = self.sent - self.passed;
        let panics = tracing_panics(node);
        if lost > 0 || panics > 0 {
            panic!(
                "{case}: {self}, {panics} tracing panic(s): {:?}\n{}",
                self.failures,
                node_diagnostics(node)
            );
        }
    }
}

/// Panics inside the node's tracing subscriber so far. Until commit "QUIC: request and
/// connection spans via Instrument", a `Span::enter()` guard was held across `.await` in
/// `node/src/quic/stream.rs` and `node/src/quic/mod.rs`; under load a worker thread's span
/// stack kept the id of a span another thread had closed, the registry panicked ("tried to
/// clone a span that already closed") and the request ended with neither a result nor an
/// error. Counted so the regression test can assert there are none.
pub(super) fn tracing_panics(node: &NodeProcess) -> usize {
    node.log()
        .lines()
        .filter(|line| line.contains("panicked at") && line.contains("tracing-subscriber"))
        .count()
}

/// The node's warnings, errors, panics and request counters (now and 3 s later), for a
/// failure message.
pub(super) fn node_diagnostics(node: &NodeProcess) -> String {
    let log = node.log();
    let problems: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("ERROR") || line.contains("WARN") || line.contains("panicked"))
        .filter(|line| !line.contains("DANGEROUS"))
        .take(20)
        .collect();
    let counters = || {
        let metrics = mpic_tests::node::http_get(node.metrics, "/metrics").unwrap_or_default();
        metrics
            .lines()
            .filter(|line| {
                line.starts_with("mpic_node_requests")
                    || line.starts_with("mpic_node_results_signed_total")
                    || line.starts_with("mpic_node_shed")
            })
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let now = counters();
    std::thread::sleep(Duration::from_secs(3));
    format!(
        "node warnings, errors and panics:\n{}\nnode counters:\n{now}\n3 s later:\n{}",
        problems.join("\n"),
        counters()
    )
}

impl std::fmt::Display for Honest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} honest requests passed", self.passed, self.sent)
    }
}

/// Runs honest CAA requests, `HONEST_CONCURRENCY` at a time, at least `min` of them and then
/// on until `stop` is set, so the honest load spans the whole attack.
pub(super) async fn honest_load(primary: &Primary, min: usize, stop: &AtomicBool) -> Honest {
    let permits = Arc::new(Semaphore::new(HONEST_CONCURRENCY));
    let mut tasks = JoinSet::new();
    let mut honest = Honest::default();
    let record = |honest: &mut Honest, outcome: Result<Result<(), String>, _>| match outcome {
        Ok(Ok(())) => honest.passed += 1,
        Ok(Err(failure)) | Err(failure) => {
            if honest.failures.len() < 5 {
                honest.failures.push(failure);
            }
        }
    };
    while honest.sent < min || (!stop.load(Ordering::SeqCst) && honest.sent < HONEST_CAP) {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let primary = primary.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let request = request_within(vec![caa_target()], Duration::from_secs(10));
            match primary.query(0, &request).await {
                Ok(results) if matches!(results.as_slice(), [r] if r.outcome == Outcome::Pass) => {
                    Ok(())
                }
                Ok(results) => Err(format!("{results:?}")),
                Err(error) => Err(error.to_string()),
            }
        });
        honest.sent += 1;
        while let Some(joined) = tasks.try_join_next() {
            record(&mut honest, joined.map_err(|e| e.to_string()));
        }
    }
    while let Some(joined) = tasks.join_next().await {
        record(&mut honest, joined.map_err(|e| e.to_string()));
    }
    honest
}

/// How one attacker stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ending {
    /// Typed error messages (and nothing else).
    Error(ProtocolErrorKind),
    /// A signed result.
    Result,
    /// The node reset the stream or closed it without a message.
    Reset(String),
}

/// Reads every message on `recv` without panicking on a reset or a bad frame.
pub(super) async fn ending(recv: &mut quinn::RecvStream) -> Ending {
    let mut messages = Vec::new();
    loop {
        match tokio::time::timeout(READ_TIMEOUT, frame::io::read_frame(recv, 1 << 20)).await {
            Err(_) => return Ending::Reset("no answer within 15 s".into()),
            Ok(Err(error)) => return Ending::Reset(error.to_string()),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(body))) => match frame::decode_body::<NodeMessage>(&body) {
                Ok(message) => messages.push(message),
                Err(error) => return Ending::Reset(format!("undecodable message: {error}")),
            },
        }
    }
    match messages.as_slice() {
        [NodeMessage::Error(error)] => Ending::Error(error.kind),
        [NodeMessage::Result(_)] => Ending::Result,
        other => Ending::Reset(format!("unexpected messages: {other:?}")),
    }
}

/// Opens a stream, writes `bytes` (finishing it if `finish`) and reads how it ended. A write
/// the node refused (it stops reading a shed stream at once) is not an error: the answer is
/// still on the receive side.
pub(super) async fn attack_stream(
    connection: &quinn::Connection,
    bytes: &[u8],
    finish: bool,
) -> Ending {
    let opened = tokio::time::timeout(READ_TIMEOUT, connection.open_bi()).await;
    let (mut send, mut recv) = match opened {
        Ok(Ok(streams)) => streams,
        Ok(Err(error)) => return Ending::Reset(format!("open: {error}")),
        Err(_) => return Ending::Reset("stream credit never came".into()),
    };
    if send.write_all(bytes).await.is_ok() && finish {
        let _ = send.finish();
    }
    let end = ending(&mut recv).await;
    drop(send);
    end
}

/// Memory before and after, printed and checked against `MEMORY_BOUND`.
pub(super) fn check_memory(case: &str, before: Memory, after: Memory) {
    let grown = after.rss_bytes.saturating_sub(before.rss_bytes);
    let peak = after.peak_bytes.saturating_sub(before.rss_bytes);
    eprintln!(
        "{case}: memory before {before}; after {after}; RSS +{:.1} MiB, peak over start +{:.1} MiB",
        grown as f64 / 1048576.0,
        peak as f64 / 1048576.0
    );
    assert!(grown < MEMORY_BOUND, "{case}: RSS grew {grown} bytes");
    assert!(peak < MEMORY_BOUND, "{case}: peak grew {peak} bytes");
}

pub(super) fn tally(case: &str, endings: &[Ending]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for end in endings {
        let key = match end {
            Ending::Error(kind) => kind.to_string(),
            Ending::Result => "result".into(),
            Ending::Reset(why) => format!("reset: {why}"),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    eprintln!("{case}: attacker streams ended as {counts:?}");
    counts
}

/// Runs `attack` with the honest load alongside until it ends; returns the attack's output,
/// what the honest primary saw, and the time both took.
pub(super) async fn under_attack<T>(
    arena: &Arena,
    attack: impl Future<Output = T>,
) -> (T, Honest, Duration) {
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let attack = async {
        let out = attack.await;
        stop.store(true, Ordering::SeqCst);
        out
    };
    let (out, honest) = tokio::join!(attack, honest_load(&arena.honest, HONEST_REQUESTS, &stop));
    (out, honest, started.elapsed())
}
