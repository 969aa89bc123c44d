//! A polite resolver at scale (issue 19), against fixture authoritative servers that count
//! what they receive: identical questions in flight share one query, a server's rate limit is
//! never exceeded, and a silent server gets only a trickle of probes.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use mpic_node::checks::caa::lookup::climb;
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::root_hints::RootHints;
use mpic_node::dns::servers::ServerLimits;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode, Resolver as _};
use mpic_node::metrics::DnsMetrics;
use mpic_protocol::Rir;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::{NodeOptions, NodeProcess, binary_path};
use tokio::task::JoinSet;
use tokio::time::Instant;

mod fast_failure;
mod live;
mod rrl;
mod tcp;

const SOA: &str = "@ 3600 IN SOA ns.invalid. hostmaster.invalid. 1 7200 3600 1209600 60";

/// Root on .71, `test.` on .72, the leaves `one.test.` (one server, .73) and `two.test.` (two
/// servers, .73 and .74), all on one port.
struct Lab {
    root: DnsServer,
    tld: DnsServer,
    leaf: DnsServer,
    leaf2: DnsServer,
    port: u16,
}

impl Lab {
    async fn start() -> Self {
        let root_zone = format!(
            "{SOA}\n@ 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.71\n\
             test. 86400 IN NS ns.tld.test.\nns.tld.test. 86400 IN A 127.0.0.72\n"
        );
        let tld_zone = format!(
            "{SOA}\n@ IN NS ns.tld.test.\nns.tld.test. IN A 127.0.0.72\n@ IN CAA 0 issue \"tld.example\"\n\
             one IN NS ns.one.test.\nns.one IN A 127.0.0.73\n\
             two IN NS ns1.two.test.\ntwo IN NS ns2.two.test.\nns1.two IN A 127.0.0.73\nns2.two IN A 127.0.0.74\n"
        );
        let one_zone = format!(
            "{SOA}\n@ IN NS ns\nns IN A 127.0.0.73\n@ IN CAA 0 issue \"ca.example\"\n\
             permit IN CAA 0 issue \"ca.example\"\n*.wild IN CAA 0 issue \"ca.example\"\n"
        );
        let two_zone = format!(
            "{SOA}\n@ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.73\nns2 IN A 127.0.0.74\n\
             @ IN CAA 0 issue \"ca.example\"\n*.wild IN CAA 0 issue \"ca.example\"\n"
        );
        let root = DnsServer::start(
            "127.0.0.71:0".parse().unwrap(),
            &[ZoneText {
                origin: ".",
                text: &root_zone,
            }],
        )
        .await
        .unwrap();
        let port = root.address().port();
        let at = |last: u8| SocketAddr::new(IpAddr::from([127, 0, 0, last]), port);
        let tld = DnsServer::start(
            at(72),
            &[ZoneText {
                origin: "test.",
                text: &tld_zone,
            }],
        )
        .await
        .unwrap();
        let leaf_zones = [
            ZoneText {
                origin: "one.test.",
                text: &one_zone,
            },
            ZoneText {
                origin: "two.test.",
                text: &two_zone,
            },
        ];
        let leaf = DnsServer::start(at(73), &leaf_zones).await.unwrap();
        let leaf2 = DnsServer::start(at(74), &leaf_zones[1..]).await.unwrap();
        Self {
            root,
            tld,
            leaf,
            leaf2,
            port,
        }
    }

    /// A client and its metrics, for counter assertions.
    fn client_with_metrics(&self, limits: Limits) -> (DnsClient, DnsMetrics) {
        iterative_client(
            SocketAddr::new(IpAddr::from([127, 0, 0, 71]), self.port),
            limits,
        )
    }
}

/// An iterative client (IPv4 only, DNSSEC off) whose root is `root`, and its metrics.
pub(super) fn iterative_client(root: SocketAddr, limits: Limits) -> (DnsClient, DnsMetrics) {
    let hints = RootHints::parse(&format!(
        ". NS a.root.test.\na.root.test. A {}\n",
        root.ip()
    ))
    .unwrap();
    let settings = DnsSettings {
        mode: Mode::Iterative {
            hints,
            port: root.port(),
        },
        limits: Limits {
            use_ipv6: false,
            ..limits
        },
        cache: CacheLimits {
            max_entries: 100_000,
            max_bytes: 64 << 20,
            max_answer_ttl: Duration::from_secs(60),
            max_delegation_ttl: Duration::from_secs(3600),
        },
        transport: TransportConfig::default(),
        dnssec: false,
        trust_anchors: None,
    };
    let metrics = DnsMetrics::unregistered().unwrap();
    (DnsClient::new(settings, metrics.clone()), metrics)
}

/// Runs a CAA climb for each name at once; returns where each found its relevant RRset.
async fn climbs(dns: &DnsClient, names: Vec<String>, within: Duration) -> Vec<Option<String>> {
    let deadline = Instant::now() + within;
    let mut set = JoinSet::new();
    for (index, identifier) in names.into_iter().enumerate() {
        let dns = dns.clone();
        set.spawn(async move {
            let found = climb(&dns, &identifier, deadline)
                .await
                .map_err(|error| format!("{identifier}: {}", error.problem.detail))
                .map(|climb| climb.found_at);
            (index, found)
        });
    }
    let mut found = vec![None; set.len()];
    while let Some(joined) = set.join_next().await {
        let (index, result) = joined.unwrap();
        found[index] = Some(result.unwrap());
    }
    found.into_iter().map(Option::flatten).collect()
}

// Test (2) of issue 19: a thousand CAA checks at once under one zone climb the same parents;
// each parent's question reaches its server exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_caa_checks_share_one_query_per_parent() {
    let lab = Lab::start().await;
    let (dns, metrics) = lab.client_with_metrics(Limits::default());
    let names: Vec<String> = (0..1000).map(|i| format!("n{i}.big.one.test")).collect();
    let found = climbs(&dns, names, Duration::from_secs(30)).await;
    assert!(
        found.iter().all(|at| at.as_deref() == Some("one.test")),
        "{:?}",
        found.iter().find(|at| at.as_deref() != Some("one.test"))
    );
    assert_eq!(lab.leaf.count("big.one.test.", RecordType::CAA), 1);
    assert_eq!(lab.leaf.count("one.test.", RecordType::CAA), 1);
    assert_eq!(lab.tld.count("test.", RecordType::CAA), 1);
    // Each name's own question went out once too.
    assert_eq!(lab.leaf.count("n7.big.one.test.", RecordType::CAA), 1);
    assert_eq!(metrics.rate_limited.with_label_values(&["rate"]).get(), 0);
    assert!(lab.root.query_count() >= 1 && lab.leaf2.query_count() == 0);
}

// Test (1) of issue 19: a server that answers REFUSED above N q/s, and ten times N checks under
// it at once. The node's per-server rate (below N, burst included) spaces the queries: every
// check is right and the server never sees more than N in any second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_server_is_never_pushed_past_its_limit() {
    const N: usize = 20;
    let lab = Lab::start().await;
    let (dns, metrics) = lab.client_with_metrics(Limits {
        servers: ServerLimits {
            // 16 q/s with a burst of 1: at most 16 queries in any one second.
            max_rate: 16,
            ..ServerLimits::default()
        },
        ..Limits::default()
    });
    // The delegation and the zone apex first, so the load is the names' own questions.
    let warm = climbs(&dns, vec!["permit.one.test".into()], Duration::from_secs(5)).await;
    assert_eq!(warm, [Some("permit.one.test".to_string())]);
    lab.leaf.refuse_above(Some(N));
    let names: Vec<String> = (0..10 * N).map(|i| format!("r{i}.one.test")).collect();
    let started = Instant::now();
    let found = climbs(&dns, names, Duration::from_secs(40)).await;
    assert!(
        found.iter().all(|at| at.as_deref() == Some("one.test")),
        "{found:?}"
    );
    assert_eq!(lab.leaf.refused_over_cap(), 0);
    assert!(
        lab.leaf.busiest_second() <= N,
        "{}",
        lab.leaf.busiest_second()
    );
    // 200 questions at 16 q/s take about 12 s: they were spaced, not dropped.
    assert!(
        started.elapsed() >= Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(lab.leaf.count("r7.one.test.", RecordType::CAA), 1);
    // Spaced by the node: queued, never given up on, never refused.
    assert!(metrics.queued.get() >= 100, "{}", metrics.queued.get());
    assert_eq!(metrics.rate_limited.with_label_values(&["rate"]).get(), 0);
    assert_eq!(metrics.backed_off.with_label_values(&["refused"]).get(), 0);
}

// Test (3) of issue 19: of a zone's two servers one goes silent. After its first timeouts it
// is backed off: it gets a bounded trickle of probes, and lookups take as long as the healthy
// server needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_gets_a_trickle_and_latency_recovers() {
    let lab = Lab::start().await;
    let query_timeout = Duration::from_millis(300);
    let (dns, metrics) = lab.client_with_metrics(Limits {
        query_timeout,
        ..Limits::default()
    });
    lab.leaf2.set_silent(true);
    let mut latencies = Vec::new();
    for round in 0..30 {
        let mut set = JoinSet::new();
        for i in 0..10 {
            let dns = dns.clone();
            set.spawn(async move {
                let started = Instant::now();
                let name = Name::from_ascii(format!("n{round}-{i}.two.test.")).unwrap();
                let lookup = dns
                    .lookup(
                        &name,
                        RecordType::A,
                        Instant::now() + Duration::from_secs(5),
                    )
                    .await
                    .unwrap();
                assert_eq!(lookup.rcode, ResponseCode::NXDomain);
                started.elapsed()
            });
        }
        while let Some(latency) = set.join_next().await {
            latencies.push(latency.unwrap());
        }
    }
    let silent = lab.leaf2.query_count();
    let healthy = lab.leaf.query_count();
    // The first round may ask it up to ten times (nothing is known yet); then only probes.
    assert!(
        silent <= 20,
        "silent server got {silent} of {}",
        silent + healthy
    );
    assert!(healthy >= 300, "{healthy}");
    let mut tail = latencies[150..].to_vec();
    tail.sort();
    let median = tail[tail.len() / 2];
    assert!(
        median < query_timeout / 3,
        "median {median:?} of the last 150"
    );
    let report = dns.servers().report();
    let state = report
        .iter()
        .find(|r| r.server == lab.leaf2.address())
        .unwrap();
    assert!(state.health.failures >= 1, "{state:?}");
    // Every query the silent server got timed out and backed it off (again).
    assert_eq!(
        metrics.backed_off.with_label_values(&["timeout"]).get(),
        silent
    );
}

// `mpic-node doctor --dns-servers`: a row per DNS server asked, with its state; a silent
// upstream shows backed off (a warning, not a failure of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_shows_each_dns_servers_state() {
    let root =
        "@ 3600 IN SOA a.root.test. h.test. 1 7200 3600 1209600 60\n@ 3600 IN NS a.root.test.\n";
    let zone = [ZoneText {
        origin: ".",
        text: root,
    }];
    let (healthy, silent, options) = healthy_and_silent("doctor-dns", &zone).await;
    let lab = crate::support::Lab::new();
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let config = node.config_path.clone();
    node.terminate().unwrap();
    let (code, report) = tokio::task::spawn_blocking(move || {
        crate::support::json_output(
            Command::new(binary_path("mpic-node"))
                .arg("doctor")
                .arg("--config")
                .arg(&config)
                .args(["--dns-servers", "--json"]),
        )
    })
    .await
    .unwrap();
    let row = |server: SocketAddr| {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["check"] == format!("dns server {server}"))
            .unwrap_or_else(|| panic!("no row for {server}: {report}"))
            .clone()
    };
    assert_eq!(code, Some(0), "{report}");
    let silent_row = row(silent.address());
    assert_eq!(silent_row["status"], "warn", "{silent_row}");
    let detail = silent_row["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 failures in a row") && detail.contains("backed off"),
        "{detail}"
    );
    let healthy_row = row(healthy.address());
    assert_eq!(healthy_row["status"], "pass", "{healthy_row}");
    assert!(
        healthy_row["detail"].as_str().unwrap().starts_with("srtt "),
        "{healthy_row}"
    );
}

/// A healthy and a silent fixture serving `zone`, and node options (perspective `id`) that
/// forward to both with a 200 ms query timeout.
pub(super) async fn healthy_and_silent(
    id: &str,
    zone: &[ZoneText<'_>],
) -> (DnsServer, DnsServer, NodeOptions) {
    let healthy = DnsServer::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    let silent = DnsServer::start("127.0.0.1:0".parse().unwrap(), zone)
        .await
        .unwrap();
    silent.set_silent(true);
    let options = NodeOptions::new(id, Rir::RipeNcc).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\", \"{}\"]\ndnssec = \"off\"\nquery_timeout = \"200ms\"",
            silent.address(),
            healthy.address()
        ),
    );
    (healthy, silent, options)
}
