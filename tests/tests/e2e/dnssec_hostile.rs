//! Hostile input to the DNSSEC chain walk and to CAA lookups. The signed vectors (`dnssec.rs`)
//! sit behind a proxy (`mpic_tests::hostile::proxy`) that spoils one step: a parent answering
//! DS with a referral, a DS RRset of 1000 records, a DNSKEY RRset of 200 keys, delegations that
//! loop. Each ends typed (indeterminate, bogus, or a lookup error) within the lookup's budget,
//! never a hang or a panic. And a CAA answer still truncated over TCP, or whose TCP retry
//! fails, is a lookup failure, never an empty RRset (Boulder PR 8839).

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use mpic_node::dns::root_hints::RootHints;
use mpic_node::dns::{DnsError, Mode, Resolver as _};
use mpic_protocol::DnssecStatus;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::hostile::dns::{self as wire, HostileDns, Query, Script};
use mpic_tests::hostile::proxy::{self, Override};
use tokio::time::Instant;

use crate::dnssec::{ROOT_ZONE, client_with, fixture_at};

/// The deadline of every lookup here; each case must end well within it.
const DEADLINE: Duration = Duration::from_secs(8);

const DS: u16 = 43;
const DNSKEY: u16 = 48;
const NS: u16 = 2;

/// The vector zones served on their own thread and runtime (the proxy forwards to them with
/// blocking sockets), stopped when dropped.
struct Upstream {
    address: SocketAddr,
    _stop: std::sync::mpsc::Sender<()>,
}

fn upstream() -> Upstream {
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = fixture_at("127.0.0.1:0".parse().unwrap(), |_, text| text)
                .await
                .unwrap();
            address_tx.send(server.address()).unwrap();
            // Serve until the test drops the sender.
            let _ = tokio::task::spawn_blocking(move || stop_rx.recv()).await;
            drop(server);
        });
    });
    Upstream {
        address: address_rx.recv().unwrap(),
        _stop: stop_tx,
    }
}

/// A lab: an unsigned root on 127.0.0.9 delegating `test.` to the proxy on 127.0.0.1 (same
/// port), the proxy in front of the vectors. Returns a validating iterative client for it.
async fn lab(overrides: Override) -> (mpic_node::dns::DnsClient, Vec<Box<dyn std::any::Any>>) {
    let upstream = upstream();
    for _ in 0..10 {
        let script = proxy::forwarding(upstream.address, Arc::clone(&overrides));
        let proxy = HostileDns::start(IpAddr::from([127, 0, 0, 1]), script)
            .await
            .unwrap();
        let port = proxy.address().port();
        let root = DnsServer::start(
            SocketAddr::from(([127, 0, 0, 9], port)),
            &[ZoneText {
                origin: ".",
                text: ROOT_ZONE,
            }],
        )
        .await;
        if let Ok(root) = root {
            let hints = RootHints::parse(". NS a.root.test.\na.root.test. A 127.0.0.9\n").unwrap();
            let client = client_with(Mode::Iterative { hints, port }, true);
            let keep: Vec<Box<dyn std::any::Any>> =
                vec![Box::new(upstream), Box::new(proxy), Box::new(root)];
            return (client, keep);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.9");
}

fn only(name: &'static str, record_type: u16, reply: fn(&Query) -> Vec<u8>) -> Override {
    Arc::new(move |query: &Query| {
        (query.name == name && query.record_type == record_type).then(|| vec![reply(query)])
    })
}

/// A referral to `child.test.` (NS ns.child.test. with glue): what a parent must never answer
/// to a DS question for the child (RFC 4035 §3.1.4.1).
fn referral_to_child(query: &Query) -> Vec<u8> {
    wire::message(
        query,
        &[],
        &[wire::record(
            &wire::name("child.test."),
            NS,
            &wire::name("ns.child.test."),
        )],
        &[wire::record(
            &wire::name("ns.child.test."),
            wire::A,
            &[127, 0, 0, 1],
        )],
    )
}

fn thousand_ds(query: &Query) -> Vec<u8> {
    let records: Vec<Vec<u8>> = (0..1000u16)
        .map(|i| {
            let mut data = i.to_be_bytes().to_vec();
            data.extend_from_slice(&[13, 2]);
            data.extend_from_slice(&[u8::try_from(i % 251).unwrap_or(0); 32]);
            wire::record(&wire::QUESTION_NAME, DS, &data)
        })
        .collect();
    proxy::authoritative(wire::response(query, &records))
}

fn two_hundred_keys(query: &Query) -> Vec<u8> {
    let records: Vec<Vec<u8>> = (0..200u16)
        .map(|i| {
            let mut data = vec![1, 1, 3, 13];
            let [high, low] = i.to_be_bytes();
            data.extend_from_slice(&[high, low]);
            data.extend_from_slice(&[7; 62]);
            wire::record(&wire::QUESTION_NAME, DNSKEY, &data)
        })
        .collect();
    proxy::authoritative(wire::response(query, &records))
}

async fn status(
    client: &mpic_node::dns::DnsClient,
    name: &str,
) -> (Result<mpic_node::dns::Lookup, DnsError>, Duration) {
    let started = Instant::now();
    let lookup = client
        .lookup(
            &Name::from_ascii(name).unwrap(),
            RecordType::TXT,
            Instant::now() + DEADLINE,
        )
        .await;
    (lookup, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_chain_inputs_end_typed_within_the_budget() {
    use DnssecStatus::{Bogus, Indeterminate};
    let cases: [(&str, Override, DnssecStatus, &str); 3] = [
        (
            "DS answered with a referral",
            only("child.test.", DS, referral_to_child),
            Indeterminate,
            "could not fetch child.test. DS",
        ),
        (
            "a DS RRset of 1000 records",
            only("child.test.", DS, thousand_ds),
            Bogus,
            "child.test. DS",
        ),
        (
            "a DNSKEY RRset of 200 keys",
            only("child.test.", DNSKEY, two_hundred_keys),
            Bogus,
            "no DNSKEY matches the DS",
        ),
    ];
    for (case, overrides, expected, reason) in cases {
        let (client, _keep) = lab(overrides).await;
        let (lookup, elapsed) = status(&client, "www.child.test.").await;
        let lookup = lookup.unwrap_or_else(|error| panic!("{case}: {error}"));
        let detail = lookup.dnssec_detail.unwrap_or_default();
        assert_eq!(lookup.dnssec, Some(expected), "{case}: {detail}");
        assert!(detail.contains(reason), "{case}: {detail}");
        assert!(elapsed < DEADLINE, "{case}: took {elapsed:?}");
    }
}

/// `a.test.` is served by `ns.b.test.` and `b.test.` by `ns.a.test.`, neither with glue: finding
/// either server needs the other.
fn looping_delegations() -> Override {
    Arc::new(|query: &Query| {
        let (zone, server) = if query.name.ends_with("a.test.") {
            ("a.test.", "ns.b.test.")
        } else if query.name.ends_with("b.test.") {
            ("b.test.", "ns.a.test.")
        } else {
            return None;
        };
        Some(vec![wire::message(
            query,
            &[],
            &[wire::record(&wire::name(zone), NS, &wire::name(server))],
            &[],
        )])
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_delegations_end_in_a_typed_error_within_the_budget() {
    let (client, _keep) = lab(looping_delegations()).await;
    let (lookup, elapsed) = status(&client, "www.a.test.").await;
    match lookup {
        Err(DnsError::Limit { .. } | DnsError::NoServers { .. }) => {}
        other => panic!("expected a limit or no servers, got {other:?}"),
    }
    assert!(elapsed < DEADLINE, "took {elapsed:?}");
}

/// A forwarder whose every UDP answer is truncated and whose TCP answer is `tcp`.
async fn truncating(tcp: fn(&Query) -> Vec<u8>) -> HostileDns {
    let script: Script = Arc::new(move |query: &Query| {
        if query.tcp {
            vec![tcp(query)]
        } else {
            vec![wire::truncated(query)]
        }
    });
    HostileDns::start(IpAddr::from([127, 0, 0, 1]), script)
        .await
        .unwrap()
}

/// Runs `mpic-node check caa` against `resolver` (DNSSEC off: the answers are unsigned).
fn check_caa(resolver: SocketAddr) -> serde_json::Value {
    let output = Command::new(mpic_tests::binary_path("mpic-node"))
        .args([
            "check",
            "caa",
            "truncated.test",
            "--issuer-domain",
            "ca.example",
        ])
        .args(["--json", "--timeout", "5s", "--dnssec", "off"])
        .args(["--resolver", &resolver.to_string()])
        .output()
        .unwrap();
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

// Multi-threaded: the CLI runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caa_answer_still_truncated_over_tcp_is_a_lookup_failure() {
    // TCP answers NOERROR with TC=1 and no records: read as the whole answer it would be an
    // empty CAA RRset, and an empty climb permits issuance.
    let server = truncating(wire::truncated).await;
    let json = check_caa(server.address());
    assert_eq!(json["outcome"], "fail", "{json}");
    assert_eq!(json["problem"]["kind"], "dns", "{json}");
    assert!(
        json["problem"]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("still truncated over TCP"),
        "{json}"
    );
    assert!(server.tcp_queries() >= 1);
}

/// Bytes with the query's id that claim five answers and carry none: undecodable.
fn broken(query: &Query) -> Vec<u8> {
    let mut bytes = wire::header(query.id, false, 0, 5);
    bytes.extend_from_slice(&query.question);
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caa_answer_whose_tcp_retry_fails_is_a_lookup_failure() {
    let server = truncating(broken).await;
    let json = check_caa(server.address());
    assert_eq!(json["outcome"], "fail", "{json}");
    assert_eq!(json["problem"]["kind"], "dns", "{json}");
    assert!(server.tcp_queries() >= 1);
}
