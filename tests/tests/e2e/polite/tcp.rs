//! TCP pipelining (RFC 7766 §6.2.1), against the fixture server and a real Knot DNS: queries
//! share a few connections, answers that come out of order reach the right query, a server that
//! answers once per connection still answers every query, and an answer with an unknown ID is
//! counted and dropped.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::rr::{Name, RData, RecordType};
use mpic_node::dns::transport::{
    Carrier, Exchange, MAX_TCP_PER_SERVER, Transport, TransportConfig, TransportError,
};
use mpic_node::dns::wire::QuerySpec;
use mpic_node::metrics::DnsMetrics;
use mpic_tests::dns_server::{Behaviour, DnsServer, Rule, TcpMode, ZoneText};
use mpic_tests::knot::KnotServer;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// `*.x.p.test` answers a TXT whose owner is the name asked.
const ZONE: &str = "@ 3600 IN SOA ns.invalid. hostmaster.invalid. 1 7200 3600 1209600 60\n\
                    @ IN NS ns.invalid.\n*.x IN TXT \"pipelined\"\n";

fn spec(name: &str) -> QuerySpec {
    QuerySpec {
        name: Name::from_ascii(name).unwrap(),
        record_type: RecordType::TXT,
        recursion_desired: false,
        dnssec_ok: false,
        checking_disabled: false,
    }
}

fn transport() -> (Arc<Transport>, DnsMetrics) {
    let metrics = DnsMetrics::unregistered().unwrap();
    let transport = Transport::new(TransportConfig::default(), metrics.clone());
    (Arc::new(transport), metrics)
}

/// The owner of the first answer record, lower-cased.
fn owner(exchange: &Exchange) -> String {
    exchange
        .message
        .answers
        .first()
        .map(|record| record.name.to_ascii().to_ascii_lowercase())
        .unwrap_or_default()
}

fn tcp_count(metrics: &DnsMetrics, result: &str) -> u64 {
    metrics.tcp_connections.with_label_values(&[result]).get()
}

async fn fixture() -> DnsServer {
    DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "p.test.",
            text: ZONE,
        }],
    )
    .await
    .unwrap()
}

/// Asks each name over TCP at once; returns each result with its latency, in `names` order.
async fn ask_all(
    transport: &Arc<Transport>,
    server: SocketAddr,
    names: &[String],
    tcp_only: bool,
) -> Vec<(Result<Exchange, TransportError>, Duration)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut set = JoinSet::new();
    for (index, name) in names.iter().enumerate() {
        let (transport, spec) = (Arc::clone(transport), spec(name));
        set.spawn(async move {
            let started = Instant::now();
            let result = if tcp_only {
                transport.exchange_tcp(server, &spec, deadline).await
            } else {
                transport.exchange(server, &spec, deadline).await
            };
            (index, result, started.elapsed())
        });
    }
    let mut results: Vec<_> = (0..names.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (index, result, elapsed) = joined.unwrap();
        results[index] = Some((result, elapsed));
    }
    results.into_iter().map(Option::unwrap).collect()
}

// RFC 7766 §6.2.1.1: a slow query does not hold up the ones behind it on the same connection;
// their answers overtake it and each reaches its own query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_tcp_answers_reach_their_own_queries_on_one_connection() {
    let server = fixture().await;
    server.set_tcp_mode(TcpMode::Concurrent);
    let slow_delay = Duration::from_millis(600);
    server.set_rules(vec![Rule {
        suffix: "slow.x.p.test".into(),
        record_type: None,
        behaviour: Behaviour::Delay(slow_delay),
    }]);
    let (transport, metrics) = transport();
    let address = server.address();
    let slow = {
        let transport = Arc::clone(&transport);
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            transport
                .exchange_tcp(address, &spec("slow.x.p.test."), deadline)
                .await
        })
    };
    // The slow query is on the wire before the others start.
    let waited = Instant::now();
    while server.query_count() == 0 && waited.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let names: Vec<String> = (0..20).map(|i| format!("f{i}.x.p.test.")).collect();
    let fast = ask_all(&transport, address, &names, true).await;
    assert!(
        !slow.is_finished(),
        "the slow answer came before the fast ones"
    );
    for (name, (result, latency)) in names.iter().zip(&fast) {
        let exchange = result.as_ref().unwrap();
        assert_eq!(&owner(exchange), name);
        assert!(*latency < slow_delay, "{name}: {latency:?}");
    }
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(owner(&slow), "slow.x.p.test.");
    assert_eq!(server.tcp_connections(), 1);
    assert_eq!(tcp_count(&metrics, "opened"), 1);
    assert_eq!(tcp_count(&metrics, "pipelined"), 20);
    assert_eq!(metrics.mismatched.with_label_values(&["id"]).get(), 0);
    assert_eq!(metrics.tcp_retried.get(), 0);
    // Once idle, the connection is reused.
    let again = ask_all(&transport, address, &["again.x.p.test.".into()], true).await;
    assert_eq!(owner(again[0].0.as_ref().unwrap()), "again.x.p.test.");
    assert_eq!(tcp_count(&metrics, "reused"), 1);
    assert_eq!(server.tcp_connections(), 1);
}

// "Where the server allows": a server that answers one query and closes drops the queries
// pipelined behind it. Each is retried once, and the server is then asked one query per
// connection: every query gets its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_answers_once_per_connection_still_answers_every_query() {
    let server = fixture().await;
    server.set_tcp_mode(TcpMode::OneAnswerThenClose);
    // Each connection's first answer is held 100 ms, so the other queries pile up behind it
    // and are dropped when it closes (without the hold, a loaded machine could send every
    // query alone and nothing would be dropped).
    server.set_rules(vec![Rule {
        suffix: "x.p.test".into(),
        record_type: None,
        behaviour: Behaviour::Delay(Duration::from_millis(100)),
    }]);
    let (transport, metrics) = transport();
    let watch = ConnectionWatch::start(server.address());
    let names: Vec<String> = (0..20).map(|i| format!("o{i}.x.p.test.")).collect();
    let results = ask_all(&transport, server.address(), &names, true).await;
    for (name, (result, _)) in names.iter().zip(&results) {
        assert_eq!(&owner(result.as_ref().unwrap()), name);
    }
    let retried = metrics.tcp_retried.get();
    assert!(retried >= 1, "{retried}");
    server.set_rules(Vec::new());
    // Known not to pipeline now: the next queries each get a connection of their own, and no
    // query is dropped (so none is retried).
    let opened = tcp_count(&metrics, "opened");
    let names: Vec<String> = (0..10).map(|i| format!("s{i}.x.p.test.")).collect();
    let results = ask_all(&transport, server.address(), &names, true).await;
    for (name, (result, _)) in names.iter().zip(&results) {
        assert_eq!(&owner(result.as_ref().unwrap()), name);
    }
    assert_eq!(tcp_count(&metrics, "opened"), opened + 10);
    assert_eq!(metrics.tcp_retried.get(), retried);
    // Sampled: short-lived connections may come and go between samples.
    let seen = watch.stop();
    assert!(
        seen <= MAX_TCP_PER_SERVER,
        "ss saw {seen} connections at once"
    );
    assert_eq!(server.tcp_connections(), tcp_count(&metrics, "opened"));
}

// An answer with an ID no query on the connection has is counted and dropped; the real answer
// still arrives and the connection stays open. An answer with the query's ID but another
// question fails that query and closes the connection (it misbehaves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_with_an_unknown_id_is_counted_and_dropped() {
    let server = fixture().await;
    server.set_rules(vec![Rule {
        suffix: "spoof.x.p.test".into(),
        record_type: None,
        behaviour: Behaviour::SpoofThenAnswer,
    }]);
    let (transport, metrics) = transport();
    let names = ["spoof.x.p.test.".to_string(), "after.x.p.test.".to_string()];
    for name in &names {
        let results = ask_all(
            &transport,
            server.address(),
            std::slice::from_ref(name),
            true,
        )
        .await;
        assert_eq!(&owner(results[0].0.as_ref().unwrap()), name);
    }
    assert_eq!(metrics.mismatched.with_label_values(&["id"]).get(), 1);
    assert_eq!(
        metrics.tcp_closed.with_label_values(&["misbehaved"]).get(),
        0
    );
    assert_eq!(server.tcp_connections(), 1);
    assert_eq!(tcp_count(&metrics, "reused"), 1);
    server.set_rules(vec![Rule {
        suffix: "x.p.test".into(),
        record_type: None,
        behaviour: Behaviour::WrongQuestion,
    }]);
    let wrong = ask_all(&transport, server.address(), &["wq.x.p.test.".into()], true).await;
    assert!(
        matches!(wrong[0].0, Err(TransportError::Malformed { .. })),
        "{:?}",
        wrong[0].0
    );
    assert_eq!(metrics.mismatched.with_label_values(&["question"]).get(), 1);
    let waited = Instant::now();
    while metrics.tcp_closed.with_label_values(&["misbehaved"]).get() == 0
        && waited.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        metrics.tcp_closed.with_label_values(&["misbehaved"]).get(),
        1
    );
}

/// A loopback port free for UDP (knotd binds UDP and TCP on it).
fn free_port(ip: [u8; 4]) -> u16 {
    let socket = UdpSocket::bind(SocketAddr::from((ip, 0))).unwrap();
    socket.local_addr().unwrap().port()
}

/// Established TCP connections to `server`, as the kernel lists them (`ss`).
fn established_to(server: SocketAddr) -> usize {
    let output = Command::new("ss")
        .args(["-Htn", "state", "established", "dst"])
        .arg(server.to_string())
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// Samples [`established_to`] every 5 ms on a thread until stopped (at most 60 s).
struct ConnectionWatch {
    most: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConnectionWatch {
    fn start(server: SocketAddr) -> Self {
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (seen, stop) = (Arc::clone(&most), Arc::clone(&done));
        let thread = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            while !stop.load(Ordering::Acquire) && started.elapsed() < Duration::from_secs(60) {
                seen.fetch_max(established_to(server), Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Self {
            most,
            done,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the most connections seen at once.
    fn stop(mut self) -> usize {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.most.load(Ordering::Acquire)
    }
}

// 200 lookups at once whose answers do not fit in UDP (1.5 KB TXT, 1232-byte EDNS) all go to
// a real Knot DNS over TCP: every answer is right, and the kernel never shows more than eight
// connections to it (the per-server cap), the rest pipelined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_truncated_lookups_share_at_most_eight_connections_to_knot() {
    const LOOKUPS: usize = 200;
    let ip = [127, 0, 0, 86];
    let address = SocketAddr::from((ip, free_port(ip)));
    let chunk = "k".repeat(250);
    let txt = format!("\"{chunk}\" ").repeat(6);
    let zone = format!(
        "$ORIGIN big.test.\n@ 300 IN SOA ns hostmaster 1 7200 3600 1209600 60\n\
         @ 300 IN NS ns\nns 300 IN A 127.0.0.86\n*.w 300 IN TXT {txt}\n"
    );
    let knot = KnotServer::start(address, "big.test.", &zone, "").unwrap();
    let watch = ConnectionWatch::start(address);
    let (transport, metrics) = transport();
    let names: Vec<String> = (0..LOOKUPS).map(|i| format!("n{i}.w.big.test.")).collect();
    let results = ask_all(&transport, address, &names, false).await;
    // The lookups can finish between two samples; the connections stay open (idle) after
    // them, so one more look counts them too.
    let seen = watch.stop().max(established_to(address));
    for (name, (result, _)) in names.iter().zip(&results) {
        let exchange = result
            .as_ref()
            .unwrap_or_else(|error| panic!("{name}: {error}; knot: {}", knot.log()));
        assert_eq!(exchange.transport, Carrier::Tcp, "{name}");
        assert_eq!(&owner(exchange), name);
        let Some(RData::TXT(txt)) = exchange.message.answers.first().map(|r| &r.data) else {
            panic!("{name}: no TXT in {:?}", exchange.message);
        };
        assert_eq!(txt.txt_data.len(), 6, "{name}");
        assert!(txt.txt_data.iter().all(|s| **s == *chunk.as_bytes()));
    }
    let used: u64 = ["opened", "reused", "pipelined"]
        .iter()
        .map(|result| tcp_count(&metrics, result))
        .sum();
    assert_eq!(metrics.truncated.get(), LOOKUPS as u64);
    assert_eq!(used, LOOKUPS as u64);
    let opened = tcp_count(&metrics, "opened");
    assert!(
        opened <= MAX_TCP_PER_SERVER as u64,
        "opened {opened} connections"
    );
    assert!(tcp_count(&metrics, "pipelined") > 0);
    assert!(
        (1..=MAX_TCP_PER_SERVER).contains(&seen),
        "ss saw {seen} connections at once"
    );
    eprintln!(
        "knot: {LOOKUPS} lookups over {opened} connections (ss saw at most {seen} at once), \
         {} pipelined, {} reused",
        tcp_count(&metrics, "pipelined"),
        tcp_count(&metrics, "reused")
    );
}
