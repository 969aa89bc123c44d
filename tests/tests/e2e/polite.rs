//! A polite resolver at scale (issue 19), against fixture authoritative servers that count
//! what they receive: identical questions in flight share one query, a server's rate limit is
//! never exceeded, and a silent server gets only a trickle of probes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use mpic_node::checks::caa::lookup::climb;
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::root_hints::RootHints;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode};
use mpic_node::metrics::DnsMetrics;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use tokio::task::JoinSet;
use tokio::time::Instant;

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

    fn client(&self, limits: Limits) -> DnsClient {
        let hints = RootHints::parse(". NS a.root.test.\na.root.test. A 127.0.0.71\n").unwrap();
        let settings = DnsSettings {
            mode: Mode::Iterative {
                hints,
                port: self.port,
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
        DnsClient::new(settings, DnsMetrics::unregistered().unwrap())
    }
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
    let dns = lab.client(Limits::default());
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
    assert!(lab.root.query_count() >= 1 && lab.leaf2.query_count() == 0);
}
