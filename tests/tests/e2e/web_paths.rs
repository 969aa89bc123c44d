//! ACME tls-alpn-01 against the TLS-ALPN fixture in-process, and the HTTP and TLS methods through
//! `mpic-node check dcv` and over QUIC. Each case asserts the outcome and the problem kind.

use std::time::Duration;

use mpic_node::checks::tls_alpn::certificate::expected_digest;
use mpic_protocol::{Check, DcvCheck, DcvMethod, Outcome, ProblemKind, Target};
use mpic_tests::dns_server::DnsServer;
use mpic_tests::http_server::{HttpServer, Route};
use mpic_tests::tls_alpn_server::{ChallengeCert, TlsAlpnServer, TlsBehaviour};
use tokio::time::Instant;

use crate::web::{challenge, dcv, detail, dispatcher, dns, lab, run, verdict};

fn alpn(key_authorization: &str) -> DcvCheck {
    DcvCheck {
        key_authorization: Some(key_authorization.into()),
        ..dcv(DcvMethod::AcmeTlsAlpn01)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn_01_outcomes_against_the_fixture() {
    const KEY: &str = "tok.thumbprint";
    let dns = dns().await;
    let digest = expected_digest(KEY);
    let correct = ChallengeCert::correct("ok.test", digest);
    let acme = vec![b"acme-tls/1".to_vec()];
    type Case = (
        &'static str,
        TlsBehaviour,
        (Outcome, Option<ProblemKind>),
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "correct",
            TlsBehaviour::Serve {
                certificate: correct.clone(),
                alpn: acme.clone(),
            },
            (Outcome::Pass, None),
            "",
        ),
        (
            "ignores ALPN",
            TlsBehaviour::Serve {
                certificate: ChallengeCert {
                    names: vec!["www.ok.test".into()],
                    acme_identifier: None,
                    critical: false,
                },
                alpn: Vec::new(),
            },
            (Outcome::Fail, Some(ProblemKind::Tls)),
            "did not negotiate ALPN",
        ),
        (
            "not critical",
            TlsBehaviour::Serve {
                certificate: ChallengeCert {
                    critical: false,
                    ..correct.clone()
                },
                alpn: acme.clone(),
            },
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
            "not marked critical",
        ),
        (
            "wrong digest",
            TlsBehaviour::Serve {
                certificate: ChallengeCert::correct("ok.test", expected_digest("other.key")),
                alpn: acme.clone(),
            },
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
            "SHA-256 of the key authorization",
        ),
        (
            "two SANs",
            TlsBehaviour::Serve {
                certificate: ChallengeCert {
                    names: vec!["ok.test".into(), "www.ok.test".into()],
                    ..correct.clone()
                },
                alpn: acme.clone(),
            },
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
            "exactly one entry",
        ),
        (
            "garbage",
            TlsBehaviour::Garbage,
            (Outcome::Fail, Some(ProblemKind::Tls)),
            "TLS handshake failed",
        ),
    ];
    for (name, behaviour, expected, text) in cases {
        let server = TlsAlpnServer::start("127.0.0.1:0".parse().unwrap(), behaviour)
            .await
            .unwrap();
        let dispatcher = dispatcher(&dns, lab(1, server.address().port()));
        let report = run(&dispatcher, "ok.test", alpn(KEY)).await;
        assert_eq!(verdict(&report), expected, "{name}: {}", detail(&report));
        assert!(
            detail(&report).contains(text),
            "{name}: {}",
            detail(&report)
        );
        if name == "correct" {
            let tls = report.evidence.tls.as_ref().unwrap();
            assert_eq!(tls.alpn.as_deref(), Some("acme-tls/1"));
            assert_eq!(tls.subject_alt_names, ["dns:ok.test"]);
            assert_eq!(tls.certificate_sha256.as_ref().map(String::len), Some(64));
            // The fixture records the SNI once its side of the handshake is done.
            let waited = Instant::now() + Duration::from_secs(2);
            while server.server_names().is_empty() && Instant::now() < waited {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(server.server_names(), ["ok.test"]);
        }
    }
}

fn cli(dns: &DnsServer, domain: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    crate::support::check_dcv(dns.address(), domain, "5s", args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_the_http_and_tls_methods() {
    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    server.route(&challenge("tok"), Route::ok("tok.thumbprint"));
    server.route("/.well-known/pki-validation/f.txt", Route::ok("value-123"));
    let tls = TlsAlpnServer::start(
        "127.0.0.1:0".parse().unwrap(),
        TlsBehaviour::Serve {
            certificate: ChallengeCert::correct("ok.test", expected_digest("tok.thumbprint")),
            alpn: vec![b"acme-tls/1".to_vec()],
        },
    )
    .await
    .unwrap();
    let http_port = server.address().port().to_string();
    let https_port = tls.address().port().to_string();
    let lab = [
        "--allow-private",
        "--http-port",
        &http_port,
        "--https-port",
        &https_port,
    ];
    let http01 = [
        "--method",
        "acme-http-01",
        "--token",
        "tok",
        "--key-authorization",
        "tok.thumbprint",
    ];
    let (code, json) = cli(&dns, "ok.test", &[&http01[..], &lab[..]].concat());
    assert_eq!(
        (code, json["outcome"].as_str()),
        (Some(0), Some("pass")),
        "{json}"
    );
    assert_eq!(json["evidence"]["http"][0]["status"], 200);
    let (code, json) = cli(&dns, "ok.test", &[&http01[..], &lab[1..]].concat());
    assert_eq!(
        (code, json["problem"]["kind"].as_str()),
        (Some(1), Some("dns")),
        "{json}"
    );
    let website = [
        "--method",
        "website-change",
        "--token",
        "f.txt",
        "--expect",
        "value-123",
    ];
    let (code, json) = cli(&dns, "ok.test", &[&website[..], &lab[..]].concat());
    assert_eq!(
        (code, json["outcome"].as_str()),
        (Some(0), Some("pass")),
        "{json}"
    );
    let alpn = [
        "--method",
        "acme-tls-alpn-01",
        "--key-authorization",
        "tok.thumbprint",
    ];
    let (code, json) = cli(&dns, "ok.test", &[&alpn[..], &lab[..]].concat());
    assert_eq!(
        (code, json["outcome"].as_str()),
        (Some(0), Some("pass")),
        "{json}"
    );
    assert_eq!(json["evidence"]["tls"]["alpn"], "acme-tls/1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_over_quic_is_signed_and_counted() {
    use mpic_protocol::Rir;
    use mpic_tests::{NodeOptions, NodeProcess, node::primary};

    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    server.route(&challenge("tok"), Route::ok("tok.thumbprint\n"));
    let lab = crate::support::Lab::new();
    let options = NodeOptions::new("web-node", Rir::Arin)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                dns.address()
            ),
        )
        .with(
            "dangerous",
            &format!("http_port = {}", server.address().port()),
        );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let target = |token: &str| Target {
        identifier: "ok.test".into(),
        check: Check::Dcv(DcvCheck {
            token: Some(token.into()),
            key_authorization: Some("tok.thumbprint".into()),
            ..dcv(DcvMethod::AcmeHttp01)
        }),
    };
    let request = crate::support::request(vec![target("tok"), target("missing")]);
    let mut results = primary.query(0, &request).await.unwrap();
    results.sort_by_key(|r| r.target_index);
    assert_eq!(
        results[0].outcome,
        Outcome::Pass,
        "{:?}",
        results[0].problem
    );
    assert_eq!(results[0].evidence.http[0].status, Some(200));
    assert_eq!(
        (
            results[1].outcome,
            results[1].problem.as_ref().map(|p| p.kind)
        ),
        (Outcome::Fail, Some(ProblemKind::Malformed)),
        "the key authorization does not start with the token"
    );
    node.wait_for_metric(
        "mpic_node_checks_total{kind=\"dcv\",method=\"acme-http-01\",outcome=\"pass\",problem=\"none\"}",
        1.0,
    )
    .unwrap();
    node.wait_for_metric(
        "mpic_node_http_requests_total{family=\"ipv4\",result=\"answered\"}",
        1.0,
    )
    .unwrap();
    node.wait_for_metric("mpic_node_http_connections_total{reused=\"false\"}", 1.0)
        .unwrap();
}
