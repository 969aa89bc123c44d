//! DNSSEC end to end: the node's resolver validates answers from zones signed by a real signer
//! (ldns-signzone; `tests/vectors/dnssec/make.sh`) served by the fixture, from the anchor in
//! `anchor.test.ds`. Each case asserts the exact status; bogus cases also the reason.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::dnssec::anchors::TrustAnchors;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode, Resolver as _};
use mpic_node::metrics::DnsMetrics;
use mpic_protocol::DnssecStatus;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use tokio::time::Instant;

pub(crate) const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/dnssec");

fn vector(file: &str) -> String {
    std::fs::read_to_string(format!("{VECTORS}/{file}")).unwrap()
}

/// Every vector zone, with `edit` applied to (origin, text) first.
async fn fixture(edit: impl Fn(&str, String) -> String) -> DnsServer {
    fixture_at("127.0.0.1:0".parse().unwrap(), edit)
        .await
        .unwrap()
}

pub(crate) async fn fixture_at(
    bind: std::net::SocketAddr,
    edit: impl Fn(&str, String) -> String,
) -> anyhow::Result<DnsServer> {
    let files = [
        ("test.", "test.signed"),
        ("child.test.", "child.signed"),
        ("ed.test.", "ed.signed"),
        ("rsa.test.", "rsa.signed"),
        ("rsa512.test.", "rsa512.signed"),
        ("p384.test.", "p384.signed"),
        ("unsupported.test.", "unsupported.zone"),
        ("nsec3.test.", "nsec3.signed"),
        ("optout.test.", "optout.signed"),
        ("expired.test.", "expired.signed"),
        ("wrongds.test.", "wrongds.signed"),
        ("unsigned.test.", "unsigned.zone"),
        ("insecure.optout.test.", "insecure.optout.zone"),
    ];
    let texts: Vec<(&str, String)> = files
        .iter()
        .map(|(origin, file)| (*origin, edit(origin, vector(file))))
        .collect();
    let zones: Vec<ZoneText<'_>> = texts
        .iter()
        .map(|(origin, text)| ZoneText { origin, text })
        .collect();
    DnsServer::start(bind, &zones).await
}

fn client(server: &DnsServer, validate: bool) -> DnsClient {
    client_with(
        Mode::Forward {
            upstreams: vec![server.address()],
        },
        validate,
    )
}

pub(crate) fn client_with(mode: Mode, validate: bool) -> DnsClient {
    let settings = DnsSettings {
        mode,
        limits: Limits {
            query_timeout: Duration::from_secs(2),
            use_ipv6: false,
            ..Limits::default()
        },
        cache: CacheLimits {
            max_entries: 10_000,
            max_bytes: 1 << 22,
            max_answer_ttl: Duration::from_secs(60),
            max_delegation_ttl: Duration::from_secs(3600),
        },
        transport: TransportConfig::default(),
        dnssec: validate,
        trust_anchors: Some(TrustAnchors::parse(&vector("anchor.test.ds")).unwrap()),
    };
    DnsClient::new(settings, DnsMetrics::unregistered().unwrap())
}

async fn status(
    dns: &DnsClient,
    name: &str,
    record_type: RecordType,
) -> (DnssecStatus, ResponseCode, Option<String>) {
    let lookup = dns
        .lookup(
            &Name::from_ascii(name).unwrap(),
            record_type,
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    (lookup.dnssec.unwrap(), lookup.rcode, lookup.dnssec_detail)
}

#[tokio::test]
async fn each_vector_gets_its_exact_status() {
    let server = fixture(|_, text| text).await;
    let dns = client(&server, true);
    use DnssecStatus::{Bogus, Insecure, Secure};
    let cases: [(&str, RecordType, DnssecStatus, ResponseCode); 19] = [
        ("www.test.", RecordType::TXT, Secure, ResponseCode::NoError),
        (
            "www.child.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "www.child.test.",
            RecordType::CAA,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "www.ed.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "www.rsa.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "www.rsa512.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "www.p384.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        // Only an algorithm the node lacks: insecure (RFC 4035 §5.2), never bogus.
        (
            "www.unsupported.test.",
            RecordType::TXT,
            Insecure,
            ResponseCode::NoError,
        ),
        (
            "www.nsec3.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NoError,
        ),
        // Authenticated denial: NSEC and NSEC3, NXDOMAIN and NODATA.
        (
            "nope.child.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NXDomain,
        ),
        (
            "host.child.test.",
            RecordType::CAA,
            Secure,
            ResponseCode::NoError,
        ),
        (
            "nope.nsec3.test.",
            RecordType::TXT,
            Secure,
            ResponseCode::NXDomain,
        ),
        (
            "www.nsec3.test.",
            RecordType::CAA,
            Secure,
            ResponseCode::NoError,
        ),
        // Insecure: a delegation without DS (NSEC), and under an NSEC3 opt-out span.
        (
            "www.unsigned.test.",
            RecordType::TXT,
            Insecure,
            ResponseCode::NoError,
        ),
        (
            "www.insecure.optout.test.",
            RecordType::TXT,
            Insecure,
            ResponseCode::NoError,
        ),
        // CNAME from a signed zone into an unsigned one is insecure; into a signed one secure.
        (
            "alias.test.",
            RecordType::TXT,
            Insecure,
            ResponseCode::NoError,
        ),
        ("into.test.", RecordType::TXT, Secure, ResponseCode::NoError),
        // Bogus: expired signatures, a DS that matches no key.
        (
            "www.expired.test.",
            RecordType::TXT,
            Bogus,
            ResponseCode::NoError,
        ),
        (
            "www.wrongds.test.",
            RecordType::TXT,
            Bogus,
            ResponseCode::NoError,
        ),
    ];
    for (name, record_type, expected, rcode) in cases {
        let (got, got_rcode, detail) = status(&dns, name, record_type).await;
        assert_eq!(
            (got, got_rcode),
            (expected, rcode),
            "{name} {record_type}: {detail:?}"
        );
    }
    let (_, _, detail) = status(&dns, "www.expired.test.", RecordType::TXT).await;
    assert!(
        detail.as_deref().unwrap_or_default().contains("expired"),
        "{detail:?}"
    );
    let (_, _, detail) = status(&dns, "www.wrongds.test.", RecordType::TXT).await;
    assert!(
        detail
            .as_deref()
            .unwrap_or_default()
            .contains("no DNSKEY matches the DS"),
        "{detail:?}"
    );
}

#[tokio::test]
async fn tampered_rdata_is_bogus() {
    let server = fixture(|origin, text| {
        if origin == "child.test." {
            text.replace("\"secure-child\"", "\"tampered\"")
        } else {
            text
        }
    })
    .await;
    let dns = client(&server, true);
    let (got, _, detail) = status(&dns, "www.child.test.", RecordType::TXT).await;
    assert_eq!(got, DnssecStatus::Bogus, "{detail:?}");
    assert!(detail.unwrap_or_default().contains("does not verify"));
}

#[tokio::test]
async fn a_stripped_rrsig_is_bogus_not_insecure() {
    let server = fixture(|origin, text| {
        if origin == "test." {
            text.lines()
                .filter(|line| !(line.starts_with("www.test.") && line.contains("RRSIG\tTXT")))
                .map(|line| format!("{line}\n"))
                .collect()
        } else {
            text
        }
    })
    .await;
    let dns = client(&server, true);
    let (got, _, detail) = status(&dns, "www.test.", RecordType::TXT).await;
    assert_eq!(got, DnssecStatus::Bogus, "{detail:?}");
    assert!(detail.unwrap_or_default().contains("no RRSIG"));
}

#[tokio::test]
async fn a_stripped_ds_is_bogus_not_insecure() {
    // Without the DS (and its NSEC proof still saying DS exists), child.test. answers signed by
    // child keys cannot be validated with test.'s keys: stripping cannot downgrade to insecure.
    let server = fixture(|origin, text| {
        if origin == "test." {
            text.lines()
                .filter(|line| !(line.starts_with("child.test.") && line.contains("\tDS\t")))
                .map(|line| format!("{line}\n"))
                .collect()
        } else {
            text
        }
    })
    .await;
    let dns = client(&server, true);
    let (got, _, detail) = status(&dns, "www.child.test.", RecordType::TXT).await;
    assert_eq!(got, DnssecStatus::Bogus, "{detail:?}");
}

#[tokio::test]
async fn validation_off_reports_no_status() {
    let server = fixture(|_, text| text).await;
    let dns = client(&server, false);
    let lookup = dns
        .lookup(
            &Name::from_ascii("www.expired.test.").unwrap(),
            RecordType::TXT,
            Instant::now() + Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(lookup.dnssec, None);
    assert_eq!(lookup.records.len(), 1);
}

fn cli(server: &DnsServer, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let output = std::process::Command::new(mpic_tests::binary_path("mpic-node"))
        .args(["check"])
        .args(args)
        .args(["--json", "--timeout", "5s", "--dnssec", "validate"])
        .args(["--resolver", &server.address().to_string()])
        .args(["--trust-anchor", &format!("{VECTORS}/anchor.test.ds")])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

// Multi-threaded: the CLI runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reports_dnssec_status_and_bogus_never_passes() {
    let server = fixture(|_, text| text).await;
    let caa = |domain: &'static str| vec!["caa", domain, "--issuer-domain", "ca.example"];
    let cases: [(Vec<&str>, &str, Option<&str>, &str); 5] = [
        (caa("www.child.test"), "pass", None, "secure"),
        (caa("www.unsigned.test"), "pass", None, "insecure"),
        (caa("www.expired.test"), "fail", Some("dnssec"), "bogus"),
        (caa("www.nsec3.test"), "pass", None, "secure"),
        (
            vec![
                "dcv",
                "www.expired.test",
                "--method",
                "dns-change",
                "--expect",
                "expired-random-value-0123",
            ],
            "fail",
            Some("dnssec"),
            "bogus",
        ),
    ];
    for (args, outcome, problem, dnssec) in cases {
        let (code, json) = cli(&server, &args);
        assert_eq!(json["outcome"], outcome, "{args:?}: {json}");
        assert_eq!(
            json["problem"]["kind"].as_str(),
            problem,
            "{args:?}: {json}"
        );
        assert_eq!(json["dnssec"], dnssec, "{args:?}: {json}");
        assert_eq!(code, Some(if outcome == "pass" { 0 } else { 1 }));
    }
}

pub(crate) const ROOT_ZONE: &str = ". 3600 IN SOA a.root.test. h.root.test. 1 7200 3600 1209600 60\n\
    . IN NS a.root.test.\na.root.test. IN A 127.0.0.9\n\
    test. IN NS ns.test.\nns.test. IN A 127.0.0.1\n";

#[tokio::test]
async fn iterative_mode_validates_the_same_way() {
    // An unsigned loopback root on 127.0.0.9 delegates test. to 127.0.0.1 (the vectors' own
    // glue), both on one port; the anchor is test.'s DS as in forward mode.
    let mut started = None;
    for _ in 0..5 {
        let root = DnsServer::start(
            "127.0.0.9:0".parse().unwrap(),
            &[ZoneText {
                origin: ".",
                text: ROOT_ZONE,
            }],
        )
        .await
        .unwrap();
        let port = root.address().port();
        if let Ok(vectors) = fixture_at(
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            |_, text| text,
        )
        .await
        {
            started = Some((root, vectors, port));
            break;
        }
    }
    let (_root, _vectors, port) = started.expect("a port free on both 127.0.0.9 and 127.0.0.1");
    let hints = mpic_node::dns::root_hints::RootHints::parse(
        ". NS a.root.test.\na.root.test. A 127.0.0.9\n",
    )
    .unwrap();
    let dns = client_with(Mode::Iterative { hints, port }, true);
    use DnssecStatus::{Bogus, Insecure, Secure};
    let cases = [
        ("www.child.test.", Secure, ResponseCode::NoError),
        ("nope.nsec3.test.", Secure, ResponseCode::NXDomain),
        ("www.unsigned.test.", Insecure, ResponseCode::NoError),
        ("alias.test.", Insecure, ResponseCode::NoError),
        ("www.expired.test.", Bogus, ResponseCode::NoError),
        ("www.wrongds.test.", Bogus, ResponseCode::NoError),
    ];
    for (name, expected, rcode) in cases {
        let (got, got_rcode, detail) = status(&dns, name, RecordType::TXT).await;
        assert_eq!((got, got_rcode), (expected, rcode), "{name}: {detail:?}");
    }
}

#[tokio::test]
async fn a_validating_client_never_answers_from_the_cache_alone() {
    // `Resolver::cached` skips validation, so with DNSSEC on it must decline and leave every
    // answer (cached or not) to `lookup`, which validates it; else a CAA climb could read a
    // bogus parent from the cache as if it were fine.
    let server = fixture(|_, text| text).await;
    let name = Name::from_ascii("www.test.").unwrap();
    for validate in [true, false] {
        let dns = client(&server, validate);
        let status = dns
            .lookup(
                &name,
                RecordType::TXT,
                Instant::now() + Duration::from_secs(5),
            )
            .await
            .unwrap()
            .dnssec;
        assert_eq!(status, validate.then_some(DnssecStatus::Secure));
        let cached = dns.cached(&name, RecordType::TXT);
        assert_eq!(cached.is_some(), !validate, "validate = {validate}");
    }
}
