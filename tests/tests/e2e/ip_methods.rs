//! The address methods end to end against the fixture DNS server, through `mpic-node check dcv`
//! and over QUIC: `ip-address` (BR 3.2.2.4.8) passes when an A/AAAA answer of the name itself
//! holds the expected address (a CNAME at the name fails: BR 3.2.2.4 as amended by SC-101v2),
//! `reverse-address-lookup` (BR 3.2.2.5.3) when the PTR record of the IP identifier names the
//! expected FQDN; each fails `unauthorized` naming what it saw.

use mpic_node::checks::dcv::ip_address::reverse_name;
use mpic_tests::dns_server::{DnsServer, ZoneText};

const SOA: &str =
    "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n@ IN NS ns.test.\n";

fn forward_zone() -> String {
    format!(
        "{SOA}ns IN A 127.0.0.1\nhost IN A 192.0.2.7\nhost IN AAAA 2001:db8::7\n\
         alias IN CNAME host\nv6only IN AAAA 2001:db8::8\n"
    )
}

fn reverse_v4_zone() -> String {
    format!("{SOA}7 IN PTR Host.TEST.\n9 IN PTR other.test.\n")
}

fn reverse_v6_zone() -> String {
    let v6 = reverse_name("2001:db8::7".parse().unwrap());
    format!("{SOA}{v6} IN PTR host.test.\n")
}

async fn server() -> DnsServer {
    let (forward, v4, v6) = (forward_zone(), reverse_v4_zone(), reverse_v6_zone());
    DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[
            ZoneText {
                origin: "test.",
                text: &forward,
            },
            ZoneText {
                origin: "2.0.192.in-addr.arpa.",
                text: &v4,
            },
            ZoneText {
                origin: "8.b.d.0.1.0.0.2.ip6.arpa.",
                text: &v6,
            },
        ],
    )
    .await
    .unwrap()
}

// Multi-threaded: the CLI runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_methods_pass_and_fail_through_the_cli() {
    let server = server().await;
    let ip = |expect: &'static str| vec!["--method", "ip-address", "--expect", expect];
    let ptr = |expect: &'static str| vec!["--method", "reverse-address-lookup", "--expect", expect];
    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        ("host.test", ip("192.0.2.7"), None),
        ("host.test", ip("2001:DB8::7"), None),
        // BR 3.2.2.4 (SC-101v2): 3.2.2.4.8 may not use a CNAME target as the ADN.
        (
            "alias.test",
            ip("192.0.2.1, 192.0.2.7"),
            Some("unauthorized"),
        ),
        ("v6only.test", ip("2001:db8::8"), None),
        ("host.test", ip("192.0.2.8"), Some("unauthorized")),
        ("nothing.test", ip("192.0.2.7"), Some("unauthorized")),
        ("*.host.test", ip("192.0.2.7"), Some("malformed")),
        ("host.test", ip("host.test"), Some("malformed")),
        (
            "host.test",
            vec!["--method", "ip-address"],
            Some("malformed"),
        ),
        ("192.0.2.7", ptr("host.test"), None),
        ("192.0.2.7", ptr("host.test."), None),
        ("2001:db8::7", ptr("HOST.test"), None),
        ("192.0.2.9", ptr("host.test"), Some("unauthorized")),
        ("192.0.2.10", ptr("host.test"), Some("unauthorized")),
        ("host.test", ptr("host.test"), Some("malformed")),
    ];
    let mut record_type = ip("192.0.2.7");
    record_type.extend(["--record-type", "AAAA"]);
    let mut cases = cases;
    cases.push(("host.test", record_type, Some("unauthorized")));
    for (domain, args, problem) in cases {
        let (code, json) = crate::support::check_dcv(server.address(), domain, "3s", &args);
        let expected_outcome = if problem.is_none() { "pass" } else { "fail" };
        assert_eq!(
            json["outcome"], expected_outcome,
            "{domain} {args:?}: {json}"
        );
        assert_eq!(
            json["problem"]["kind"].as_str(),
            problem,
            "{domain} {args:?}: {json}"
        );
        assert_eq!(
            code,
            Some(if problem.is_none() { 0 } else { 1 }),
            "{domain} {args:?}"
        );
    }
    // A failure names what was seen.
    let (_, json) =
        crate::support::check_dcv(server.address(), "host.test", "3s", &ip("192.0.2.8"));
    let detail = json["problem"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("192.0.2.7") && detail.contains("2001:db8::7"),
        "{json}"
    );
    let (_, json) =
        crate::support::check_dcv(server.address(), "192.0.2.9", "3s", &ptr("host.test"));
    let detail = json["problem"]["detail"].as_str().unwrap();
    assert!(detail.contains("other.test."), "{json}");
    assert_eq!(
        json["evidence"]["dns"][0]["name"], "9.2.0.192.in-addr.arpa.",
        "{json}"
    );
    assert_eq!(json["evidence"]["dns"][0]["record_type"], "PTR", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_methods_over_quic_are_signed_and_verified() {
    use mpic_protocol::{Check, DcvCheck, DcvMethod, Outcome, ProblemKind, Rir, Target};
    use mpic_tests::{NodeOptions, NodeProcess, node::primary};

    let server = server().await;
    let lab = crate::support::Lab::new();
    let options = NodeOptions::new("ip-node", Rir::Apnic).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
            server.address()
        ),
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let target = |identifier: &str, method: DcvMethod, expected: &str| Target {
        identifier: identifier.into(),
        check: Check::Dcv(DcvCheck {
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
            method,
            expected: Some(expected.into()),
            key_authorization: None,
            token: None,
            prefix: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: false,
        }),
    };
    let request = crate::support::request(vec![
        target("alias.test", DcvMethod::IpAddress, "192.0.2.7"),
        target("host.test", DcvMethod::IpAddress, "198.51.100.1"),
        target("192.0.2.7", DcvMethod::ReverseAddressLookup, "host.test"),
        target("192.0.2.9", DcvMethod::ReverseAddressLookup, "host.test"),
    ]);
    let mut results = primary.query(0, &request).await.unwrap();
    results.sort_by_key(|r| r.target_index);
    let outcomes: Vec<_> = results
        .iter()
        .map(|r| (r.outcome, r.problem.as_ref().map(|p| p.kind)))
        .collect();
    assert_eq!(
        outcomes,
        [
            // BR 3.2.2.4 (SC-101v2): 3.2.2.4.8 may not use the CNAME target as the ADN.
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
            (Outcome::Pass, None),
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ]
    );
    // The CNAME seen is evidence, though it was not used.
    assert!(
        results[0].evidence.dns[0]
            .records
            .iter()
            .any(|r| r.contains("CNAME")),
        "{:?}",
        results[0].evidence
    );
    assert_eq!(results[2].evidence.dns[0].name, "7.2.0.192.in-addr.arpa.");
    node.wait_for_metric(
        "mpic_node_checks_total{kind=\"dcv\",method=\"reverse-address-lookup\",outcome=\"pass\",problem=\"none\"}",
        1.0,
    )
    .unwrap();
}
