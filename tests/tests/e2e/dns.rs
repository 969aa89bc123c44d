//! The node's DNS client against the fixture authoritative servers on loopback: a fake root,
//! TLD and leaf hierarchy on 127.0.0.2-6 (same port), misbehaving servers, and forward mode.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::root_hints::RootHints;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{
    AttemptFailure, DnsClient, DnsError, DnsSettings, Limits, Lookup, Mode, Resolver as _,
    txt_values,
};
use mpic_node::metrics::DnsMetrics;
use mpic_tests::dns_server::{Behaviour, DnsServer, Rule, ZoneText};
use tokio::time::Instant;

const SOA: &str = "@ 3600 IN SOA ns.invalid. hostmaster.invalid. 1 7200 3600 1209600 60";

fn root_zone() -> String {
    format!(
        "{SOA}\n@ 86400 IN NS a.root.test.\na.root.test. 86400 IN A 127.0.0.2\n\
         test. 86400 IN NS ns.tld.test.\nns.tld.test. 86400 IN A 127.0.0.3\n\
         net. 86400 IN NS ns.nic.net.\nns.nic.net. 86400 IN A 127.0.0.3\n"
    )
}

fn tld_zone() -> String {
    format!(
        "{SOA}\n@ IN NS ns.tld.test.\nns.tld.test. IN A 127.0.0.3\n\
         example IN NS ns1.example.test.\nexample IN NS ns2.example.test.\n\
         ns1.example IN A 127.0.0.4\nns2.example IN A 127.0.0.5\n\
         lame IN NS ns1.lame.test.\nlame IN NS ns2.lame.test.\nns1.lame IN A 127.0.0.6\nns2.lame IN A 127.0.0.4\n\
         noglue IN NS ns.other.net.\n"
    )
}

fn net_zone() -> String {
    format!(
        "{SOA}\n@ IN NS ns.nic.net.\nns.nic.net. IN A 127.0.0.3\nother IN NS ns.other.net.\nns.other IN A 127.0.0.4\n"
    )
}

fn example_zone() -> String {
    format!(
        "{SOA}\n@ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.4\nns2 IN A 127.0.0.5\n\
         www 300 IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\nwww IN TXT \"hello \" \"world\"\nwww IN CAA 0 issue \"ca.example\"\n\
         alias IN CNAME www\ncross IN CNAME www.other.net.\ndangling IN CNAME nowhere.other.net.\n\
         loop1 IN CNAME loop2\nloop2 IN CNAME loop1\nbig IN TXT \"x\"\nslow IN A 192.0.2.9\nempty.sub IN A 192.0.2.7\n"
    )
}

fn other_zone() -> String {
    format!("{SOA}\n@ IN NS ns.other.net.\nns IN A 127.0.0.4\nwww IN A 198.51.100.7\n")
}

fn lame_zone() -> String {
    format!(
        "{SOA}\n@ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.6\nns2 IN A 127.0.0.4\nwww IN A 192.0.2.66\n"
    )
}

/// Root, TLDs and leaves, each server on its own loopback address and one shared port.
struct Lab {
    root: DnsServer,
    tld: DnsServer,
    leaf: DnsServer,
    leaf2: DnsServer,
    lame: DnsServer,
    port: u16,
}

impl Lab {
    async fn start() -> Self {
        let root = DnsServer::start(
            "127.0.0.2:0".parse().unwrap(),
            &[ZoneText {
                origin: ".",
                text: &root_zone(),
            }],
        )
        .await
        .unwrap();
        let port = root.address().port();
        let at = |last: u8| SocketAddr::new(IpAddr::from([127, 0, 0, last]), port);
        let tld = DnsServer::start(
            at(3),
            &[
                ZoneText {
                    origin: "test.",
                    text: &tld_zone(),
                },
                ZoneText {
                    origin: "net.",
                    text: &net_zone(),
                },
            ],
        )
        .await
        .unwrap();
        let leaf_zones = [
            ZoneText {
                origin: "example.test.",
                text: &example_zone(),
            },
            ZoneText {
                origin: "other.net.",
                text: &other_zone(),
            },
            ZoneText {
                origin: "lame.test.",
                text: &lame_zone(),
            },
        ];
        let leaf = DnsServer::start(at(4), &leaf_zones).await.unwrap();
        let leaf2 = DnsServer::start(at(5), &leaf_zones[..1]).await.unwrap();
        // 127.0.0.6 is listed for lame.test but serves nothing: every answer is REFUSED.
        let lame = DnsServer::start(
            at(6),
            &[ZoneText {
                origin: "unrelated.test.",
                text: &format!("{SOA}\n@ IN NS ns\nns IN A 127.0.0.6\n"),
            }],
        )
        .await
        .unwrap();
        Self {
            root,
            tld,
            leaf,
            leaf2,
            lame,
            port,
        }
    }

    fn iterative(&self) -> DnsClient {
        let hints = RootHints::parse(". NS a.root.test.\na.root.test. A 127.0.0.2\n").unwrap();
        client(
            Mode::Iterative {
                hints,
                port: self.port,
            },
            Duration::from_millis(500),
        )
    }
}

fn client(mode: Mode, query_timeout: Duration) -> DnsClient {
    let settings = DnsSettings {
        mode,
        limits: Limits {
            query_timeout,
            use_ipv6: false,
            ..Limits::default()
        },
        cache: CacheLimits {
            max_entries: 10_000,
            max_bytes: 1 << 20,
            max_answer_ttl: Duration::from_secs(60),
            max_delegation_ttl: Duration::from_secs(3600),
        },
        transport: TransportConfig {
            case_randomisation: true,
            ..TransportConfig::default()
        },
        dnssec: false,
        trust_anchors: None,
    };
    DnsClient::new(settings, DnsMetrics::unregistered().unwrap())
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).unwrap()
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn iterates_from_a_loopback_root_through_two_delegations() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    let lookup = dns
        .lookup(&name("www.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(lookup.rcode, ResponseCode::NoError);
    assert_eq!(lookup.records.len(), 1);
    assert!(
        matches!(&lookup.records[0].data, RData::A(a) if a.0 == std::net::Ipv4Addr::new(192, 0, 2, 1))
    );
    assert!(lookup.chain.is_empty());
    let server = lookup.server.unwrap();
    assert!(
        server.ip() == IpAddr::from([127, 0, 0, 4]) || server.ip() == IpAddr::from([127, 0, 0, 5]),
        "{server}"
    );
    // root -> test. -> example.test.: one query each, no recursion desired.
    assert_eq!(lab.root.queries().len(), 1);
    assert_eq!(lab.tld.queries().len(), 1);
    assert!(lab.root.queries().iter().all(|q| !q.recursion_desired));
    // The second lookup in the zone starts at the cached delegation.
    dns.lookup(&name("www.example.test."), RecordType::AAAA, soon())
        .await
        .unwrap();
    assert_eq!(lab.root.queries().len(), 1);
    assert_eq!(lab.tld.queries().len(), 1);
}

#[tokio::test]
async fn answers_each_record_type_and_tells_nxdomain_from_nodata() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    let txt = dns
        .lookup(&name("www.example.test."), RecordType::TXT, soon())
        .await
        .unwrap();
    assert_eq!(txt_values(&txt), vec![b"hello world".to_vec()]);
    let caa = dns
        .lookup(&name("www.example.test."), RecordType::CAA, soon())
        .await
        .unwrap();
    assert_eq!(caa.records.len(), 1);
    assert_eq!(caa.records[0].record_type(), RecordType::CAA);
    let aaaa = dns
        .lookup(&name("www.example.test."), RecordType::AAAA, soon())
        .await
        .unwrap();
    assert_eq!(aaaa.records.len(), 1);

    let nxdomain = dns
        .lookup(&name("missing.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(
        (nxdomain.rcode, nxdomain.records.len()),
        (ResponseCode::NXDomain, 0)
    );
    let nodata = dns
        .lookup(&name("www.example.test."), RecordType::MX, soon())
        .await
        .unwrap();
    assert_eq!(
        (nodata.rcode, nodata.records.len()),
        (ResponseCode::NoError, 0)
    );
    let empty_non_terminal = dns
        .lookup(&name("sub.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(
        (empty_non_terminal.rcode, empty_non_terminal.records.len()),
        (ResponseCode::NoError, 0)
    );
}

#[tokio::test]
async fn follows_cname_chains_within_and_across_zones() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    let alias = dns
        .lookup(&name("alias.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(alias.chain.len(), 1);
    assert_eq!(alias.final_name(), &name("www.example.test."));
    assert_eq!(alias.records.len(), 1);

    let cross = dns
        .lookup(&name("cross.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(cross.final_name(), &name("www.other.net."));
    assert!(
        matches!(&cross.records[0].data, RData::A(a) if a.0 == std::net::Ipv4Addr::new(198, 51, 100, 7))
    );

    let dangling = dns
        .lookup(&name("dangling.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(
        (dangling.rcode, dangling.chain.len(), dangling.records.len()),
        (ResponseCode::NXDomain, 1, 0)
    );
}

#[tokio::test]
async fn a_cname_loop_is_a_typed_error() {
    let lab = Lab::start().await;
    let error = lab
        .iterative()
        .lookup(&name("loop1.example.test."), RecordType::A, soon())
        .await
        .unwrap_err();
    match error {
        DnsError::CnameLoop { name, chain } => {
            assert_eq!(name.to_string(), "loop1.example.test.");
            assert_eq!(chain.len(), 2, "{chain:?}");
        }
        other => panic!("expected a CNAME loop, got {other}"),
    }
}

#[tokio::test]
async fn truncated_udp_answers_are_retried_over_tcp() {
    let lab = Lab::start().await;
    for server in [&lab.leaf, &lab.leaf2] {
        server.set_rules(vec![Rule {
            suffix: "big.example.test.".into(),
            record_type: None,
            behaviour: Behaviour::Oversized,
        }]);
    }
    let lookup = lab
        .iterative()
        .lookup(&name("big.example.test."), RecordType::TXT, soon())
        .await
        .unwrap();
    // The fixture pads the reply past 1232 bytes (in the additional section), so UDP carries
    // only TC=1 and the answer itself arrives over TCP.
    assert_eq!(txt_values(&lookup), vec![b"x".to_vec()]);
    let leaf_queries: Vec<_> = lab
        .leaf
        .queries()
        .into_iter()
        .chain(lab.leaf2.queries())
        .filter(|q| q.name == "big.example.test.")
        .collect();
    assert!(
        leaf_queries.iter().any(|q| !q.tcp) && leaf_queries.iter().any(|q| q.tcp),
        "{leaf_queries:?}"
    );
}

#[tokio::test]
async fn a_lame_server_is_skipped_for_the_next_one() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    for _ in 0..4 {
        dns.cache().clear();
        let lookup = dns
            .lookup(&name("www.lame.test."), RecordType::A, soon())
            .await
            .unwrap();
        assert_eq!(lookup.server.unwrap().ip(), IpAddr::from([127, 0, 0, 4]));
        assert!(
            matches!(&lookup.records[0].data, RData::A(a) if a.0 == std::net::Ipv4Addr::new(192, 0, 2, 66))
        );
    }
    drop(lab.lame);
}

#[tokio::test]
async fn timeouts_name_every_server_tried() {
    let lab = Lab::start().await;
    for server in [&lab.leaf, &lab.leaf2] {
        server.set_rules(vec![Rule {
            suffix: "slow.example.test.".into(),
            record_type: None,
            behaviour: Behaviour::Drop,
        }]);
    }
    let dns = client(
        Mode::Iterative {
            hints: RootHints::parse(". NS a.root.test.\na.root.test. A 127.0.0.2\n").unwrap(),
            port: lab.port,
        },
        Duration::from_millis(200),
    );
    let error = dns
        .lookup(&name("slow.example.test."), RecordType::A, soon())
        .await
        .unwrap_err();
    assert!(error.is_timeout(), "{error}");
    let DnsError::NoAnswer { attempts, .. } = &error else {
        panic!("{error}")
    };
    let mut servers: Vec<IpAddr> = attempts.iter().map(|a| a.server.ip()).collect();
    servers.sort();
    assert_eq!(
        servers,
        vec![IpAddr::from([127, 0, 0, 4]), IpAddr::from([127, 0, 0, 5])]
    );
    assert!(
        attempts
            .iter()
            .all(|a| a.failure == AttemptFailure::Timeout)
    );
    assert!(
        error
            .to_string()
            .contains(&format!("127.0.0.4:{} timed out", lab.port)),
        "{error}"
    );
}

#[tokio::test]
async fn spoofed_and_mismatched_responses_are_ignored_and_the_real_answer_wins() {
    let lab = Lab::start().await;
    let dns = client(
        Mode::Forward {
            upstreams: vec![lab.leaf.address()],
        },
        Duration::from_millis(500),
    );
    for behaviour in [Behaviour::SpoofThenAnswer] {
        lab.leaf.set_rules(vec![Rule {
            suffix: "www.example.test.".into(),
            record_type: None,
            behaviour,
        }]);
        dns.cache().clear();
        let lookup = dns
            .lookup(&name("www.example.test."), RecordType::A, soon())
            .await
            .unwrap();
        assert!(
            matches!(&lookup.records[0].data, RData::A(a) if a.0 == std::net::Ipv4Addr::new(192, 0, 2, 1))
        );
    }
    // Only-bad answers never count: wrong id, wrong question, other source port -> timeout.
    for behaviour in [
        Behaviour::WrongId,
        Behaviour::WrongQuestion,
        Behaviour::FromOtherPort,
        Behaviour::Garbage,
    ] {
        lab.leaf.set_rules(vec![Rule {
            suffix: "www.example.test.".into(),
            record_type: None,
            behaviour: behaviour.clone(),
        }]);
        dns.cache().clear();
        let error = dns
            .lookup(&name("www.example.test."), RecordType::A, soon())
            .await
            .unwrap_err();
        assert!(error.is_timeout(), "{behaviour:?}: {error}");
    }
}

#[tokio::test]
async fn forward_mode_uses_the_next_upstream_after_servfail() {
    let lab = Lab::start().await;
    lab.leaf.set_rules(vec![Rule {
        suffix: ".".into(),
        record_type: None,
        behaviour: Behaviour::ServFail,
    }]);
    let dns = client(
        Mode::Forward {
            upstreams: vec![lab.leaf.address(), lab.leaf2.address()],
        },
        Duration::from_millis(500),
    );
    let lookup = dns
        .lookup(&name("www.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(lookup.server, Some(lab.leaf2.address()));
    assert!(
        lab.leaf.queries().iter().all(|q| q.recursion_desired),
        "forward mode sets RD"
    );

    lab.leaf2.set_rules(vec![Rule {
        suffix: ".".into(),
        record_type: None,
        behaviour: Behaviour::Refused,
    }]);
    dns.cache().clear();
    let error = dns
        .lookup(&name("www.example.test."), RecordType::A, soon())
        .await
        .unwrap_err();
    let DnsError::NoAnswer { attempts, .. } = &error else {
        panic!("{error}")
    };
    let failures: Vec<_> = attempts.iter().map(|a| a.failure.clone()).collect();
    assert_eq!(
        failures,
        vec![
            AttemptFailure::Rcode("SERVFAIL"),
            AttemptFailure::Rcode("REFUSED"),
            AttemptFailure::Rcode("SERVFAIL"),
            AttemptFailure::Rcode("REFUSED"),
        ]
    );
}

#[tokio::test]
async fn answers_are_cached_and_capped() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    dns.lookup(&name("www.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    let before = lab.leaf.query_count() + lab.leaf2.query_count();
    let again = dns
        .lookup(&name("WWW.Example.Test."), RecordType::A, soon())
        .await
        .unwrap();
    assert_eq!(again.server, None, "answered from the cache");
    assert_eq!(lab.leaf.query_count() + lab.leaf2.query_count(), before);
    let (entries, _) = dns.cache().size();
    assert!(entries >= 3, "answer + delegations cached: {entries}");
}

#[tokio::test]
async fn tcp_connections_to_a_forwarder_are_reused_and_queries_leave_from_the_egress_address() {
    let lab = Lab::start().await;
    lab.leaf.set_rules(vec![Rule {
        suffix: "big.example.test.".into(),
        record_type: None,
        behaviour: Behaviour::Oversized,
    }]);
    let egress = IpAddr::from([127, 0, 0, 9]);
    let settings = DnsSettings {
        mode: Mode::Forward {
            upstreams: vec![lab.leaf.address()],
        },
        limits: Limits {
            query_timeout: Duration::from_millis(500),
            use_ipv6: false,
            ..Limits::default()
        },
        cache: CacheLimits {
            max_entries: 0,
            max_bytes: 0,
            max_answer_ttl: Duration::ZERO,
            max_delegation_ttl: Duration::ZERO,
        },
        transport: TransportConfig {
            egress_ipv4: Some(egress),
            ..TransportConfig::default()
        },
        dnssec: false,
        trust_anchors: None,
    };
    let metrics = DnsMetrics::unregistered().unwrap();
    let dns = DnsClient::new(settings, metrics.clone());
    for _ in 0..3 {
        dns.lookup(&name("big.example.test."), RecordType::TXT, soon())
            .await
            .unwrap();
    }
    let queries = lab.leaf.queries();
    assert!(
        queries.iter().all(|q| q.source.ip() == egress),
        "every query leaves from the egress address"
    );
    let udp_ports: std::collections::HashSet<u16> = queries
        .iter()
        .filter(|q| !q.tcp)
        .map(|q| q.source.port())
        .collect();
    assert_eq!(
        udp_ports.len(),
        3,
        "a fresh random source port per UDP query"
    );
    let tcp_ports: std::collections::HashSet<u16> = queries
        .iter()
        .filter(|q| q.tcp)
        .map(|q| q.source.port())
        .collect();
    assert_eq!(
        (queries.iter().filter(|q| q.tcp).count(), tcp_ports.len()),
        (3, 1),
        "three TCP queries on one reused connection"
    );
    assert_eq!(metrics.truncated.get(), 3);
    assert_eq!(
        metrics.queries.with_label_values(&["tcp", "NOERROR"]).get(),
        3
    );
}

#[tokio::test]
async fn spoof_attempts_are_counted() {
    let lab = Lab::start().await;
    lab.leaf.set_rules(vec![Rule {
        suffix: "www.example.test.".into(),
        record_type: None,
        behaviour: Behaviour::SpoofThenAnswer,
    }]);
    let metrics = DnsMetrics::unregistered().unwrap();
    let settings = DnsSettings {
        mode: Mode::Forward {
            upstreams: vec![lab.leaf.address()],
        },
        limits: Limits {
            query_timeout: Duration::from_millis(500),
            use_ipv6: false,
            ..Limits::default()
        },
        cache: CacheLimits {
            max_entries: 0,
            max_bytes: 0,
            max_answer_ttl: Duration::ZERO,
            max_delegation_ttl: Duration::ZERO,
        },
        transport: TransportConfig::default(),
        dnssec: false,
        trust_anchors: None,
    };
    let dns = DnsClient::new(settings, metrics.clone());
    dns.lookup(&name("www.example.test."), RecordType::A, soon())
        .await
        .unwrap();
    // The wrong-ID reply is dropped by the ID check; the other-port reply never reaches the
    // connected socket (the kernel filters it), so only the ID mismatch is counted here.
    assert_eq!(metrics.mismatched.with_label_values(&["id"]).get(), 1);
    assert_eq!(
        metrics.queries.with_label_values(&["udp", "NOERROR"]).get(),
        1
    );
}

#[tokio::test]
async fn a_cached_answer_is_read_without_a_future_and_equals_the_lookup() {
    let lab = Lab::start().await;
    let dns = lab.iterative();
    let www = name("www.example.test.");
    assert_eq!(dns.cached(&www, RecordType::A), None, "nothing cached yet");
    let looked = dns.lookup(&www, RecordType::A, soon()).await.unwrap();
    let again = dns.lookup(&www, RecordType::A, soon()).await.unwrap();
    assert_eq!(again.server, None, "the second lookup came from the cache");
    // Case-insensitive, and field for field what the cached lookup future gives.
    let cached = dns.cached(&name("WWW.Example.Test"), RecordType::A);
    assert_eq!(cached.as_ref(), Some(&again));
    assert_eq!(cached.map(|hit| hit.records), Some(looked.records));

    // A denial is cached and read the same way.
    let missing = name("missing.example.test.");
    let denied = dns.lookup(&missing, RecordType::A, soon()).await.unwrap();
    assert_eq!(denied.rcode, ResponseCode::NXDomain);
    let cached = dns.cached(&missing, RecordType::A).unwrap();
    assert_eq!(
        (cached.rcode, cached.records.len()),
        (ResponseCode::NXDomain, 0)
    );

    // A CNAME to follow needs the lookup: `cached` declines although the CNAME is cached.
    let alias = name("alias.example.test.");
    let followed = dns.lookup(&alias, RecordType::A, soon()).await.unwrap();
    assert_eq!(followed.chain.len(), 1);
    assert_eq!(dns.cached(&alias, RecordType::A), None);
    assert_eq!(
        dns.lookup(&alias, RecordType::A, soon()).await.unwrap(),
        Lookup {
            server: None,
            ..followed
        }
    );
}
