//! HTTP-based DCV end to end: the node's fetcher against loopback fixtures (both families where
//! the machine has `::1`), in-process through the dispatcher; the helpers here serve
//! `web_paths` too. Each case asserts the outcome and the problem kind.

use std::time::Duration;

use mpic_node::dispatch::{Dispatcher, WebClients};
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode};
use mpic_node::http::fetch::FetchOptions;
use mpic_node::metrics::DnsMetrics;
use mpic_node::signing::CheckReport;
use mpic_protocol::{Check, DcvCheck, DcvMethod, Outcome, ProblemKind, Target};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::http_server::{HttpServer, Route};
use tokio::time::Instant;

const ZONE: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n\
    @ IN NS ns\nns IN A 127.0.0.1\n\
    ok IN A 127.0.0.1\n\
    dual IN A 127.0.0.1\ndual IN AAAA ::1\n\
    v6only IN AAAA ::1\n";

pub(crate) async fn dns() -> DnsServer {
    DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: ZONE,
        }],
    )
    .await
    .unwrap()
}

pub(crate) fn dispatcher(dns: &DnsServer, options: FetchOptions) -> Dispatcher {
    let settings = DnsSettings {
        mode: Mode::Forward {
            upstreams: vec![dns.address()],
        },
        limits: Limits {
            query_timeout: Duration::from_secs(1),
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
    Dispatcher::new(
        DnsClient::new(settings, DnsMetrics::unregistered().unwrap()),
        WebClients::new(options).unwrap(),
    )
}

/// Lab options: private targets allowed, ports 80/443 mapped to the fixtures'.
pub(crate) fn lab(http_port: u16, https_port: u16) -> FetchOptions {
    FetchOptions {
        allow_private: true,
        http_port: Some(http_port),
        https_port: Some(https_port),
        hop_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_body_bytes: 8192,
        ..FetchOptions::default()
    }
}

pub(crate) fn dcv(method: DcvMethod) -> DcvCheck {
    DcvCheck {
        method,
        url_scheme: None,
        record_type: None,
        exact_match: false,
        case_insensitive: false,
        expected: None,
        key_authorization: None,
        token: None,
        prefix: None,
        issuer_domain: None,
        account_uri: None,
        wildcard: false,
    }
}

pub(crate) fn http01(token: &str) -> DcvCheck {
    DcvCheck {
        token: Some(token.into()),
        key_authorization: Some(format!("{token}.thumbprint")),
        ..dcv(DcvMethod::AcmeHttp01)
    }
}

pub(crate) fn challenge(token: &str) -> String {
    format!("/.well-known/acme-challenge/{token}")
}

pub(crate) async fn run(dispatcher: &Dispatcher, identifier: &str, check: DcvCheck) -> CheckReport {
    let target = Target {
        identifier: identifier.into(),
        check: Check::Dcv(check),
    };
    dispatcher
        .run(&target, Instant::now() + Duration::from_secs(8))
        .await
}

pub(crate) fn verdict(report: &CheckReport) -> (Outcome, Option<ProblemKind>) {
    (report.outcome, report.problem.as_ref().map(|p| p.kind))
}

pub(crate) fn detail(report: &CheckReport) -> String {
    report
        .problem
        .as_ref()
        .map(|p| p.detail.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_01_outcomes_against_the_fixture() {
    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = server.address().port();
    let dispatcher = dispatcher(&dns, lab(port, 1));
    let pass = |token: &str| Route::ok(&format!("{token}.thumbprint\r\n"));
    server.route(&challenge("pass"), pass("pass"));
    server.route(&challenge("wrong"), Route::ok("not-it"));
    server.route(&challenge("relative"), Route::redirect(302, "target"));
    server.route(
        &challenge("absolute"),
        Route::redirect(301, &format!("http://ok.test{}", challenge("relative"))),
    );
    server.route(&challenge("target"), pass("relative"));
    server.route(
        &challenge("port8080"),
        Route::redirect(302, "http://ok.test:8080/x"),
    );
    server.route(&challenge("ftp"), Route::redirect(307, "ftp://ok.test/x"));
    server.route(&challenge("see-other"), Route::redirect(303, "/x"));
    server.route(
        &challenge("loop"),
        Route::redirect(302, &challenge("loop2")),
    );
    server.route(
        &challenge("loop2"),
        Route::redirect(302, &challenge("loop")),
    );
    for hop in 0..12 {
        server.route(
            &challenge(&format!("chain{hop}")),
            Route::redirect(302, &challenge(&format!("chain{}", hop + 1))),
        );
    }
    server.route(&challenge("endless"), Route::EndlessBody);
    server.route(&challenge("huge"), Route::HugeHeaders(64 * 1024));
    server.route(&challenge("garbage"), Route::Garbage);
    server.route(&challenge("stall"), Route::Stall(Duration::from_secs(5)));

    let cases: [(&str, Outcome, Option<ProblemKind>, &str); 15] = [
        ("pass", Outcome::Pass, None, ""),
        (
            "wrong",
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            "not the key authorization",
        ),
        (
            "missing",
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            "HTTP status 404",
        ),
        ("relative", Outcome::Pass, None, ""),
        (
            "absolute",
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            "not the key authorization",
        ),
        (
            "port8080",
            Outcome::Fail,
            Some(ProblemKind::Redirect),
            "8080",
        ),
        ("ftp", Outcome::Fail, Some(ProblemKind::Redirect), "ftp"),
        (
            "see-other",
            Outcome::Fail,
            Some(ProblemKind::Redirect),
            "303",
        ),
        ("loop", Outcome::Fail, Some(ProblemKind::Redirect), "loop"),
        ("chain0", Outcome::Fail, Some(ProblemKind::Redirect), "10"),
        (
            "endless",
            Outcome::Fail,
            Some(ProblemKind::Unauthorized),
            "longer than the 8192 bytes",
        ),
        (
            "huge",
            Outcome::Fail,
            Some(ProblemKind::Connection),
            "HTTP/1.1",
        ),
        (
            "garbage",
            Outcome::Fail,
            Some(ProblemKind::Connection),
            "HTTP/1.1",
        ),
        (
            "stall",
            Outcome::Fail,
            Some(ProblemKind::Timeout),
            "response head",
        ),
        ("pass", Outcome::Pass, None, ""),
    ];
    for (token, outcome, kind, text) in cases {
        let started = std::time::Instant::now();
        let report = run(&dispatcher, "ok.test", http01(token)).await;
        assert_eq!(
            verdict(&report),
            (outcome, kind),
            "{token}: {}",
            detail(&report)
        );
        assert!(
            detail(&report).contains(text),
            "{token}: {}",
            detail(&report)
        );
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{token} took {:?}",
            started.elapsed()
        );
    }
    // "relative" redirects to a file holding its key authorization; "absolute" chains two hops
    // to that same file, which is not absolute's key authorization. Check the hops themselves.
    let report = run(&dispatcher, "ok.test", http01("absolute")).await;
    let urls: Vec<&str> = report
        .evidence
        .http
        .iter()
        .map(|h| h.url.as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "http://ok.test/.well-known/acme-challenge/absolute",
            "http://ok.test/.well-known/acme-challenge/relative",
            "http://ok.test/.well-known/acme-challenge/target",
        ]
    );
    assert_eq!(report.evidence.http[2].status, Some(200));
    let chain = run(&dispatcher, "ok.test", http01("chain0")).await;
    assert_eq!(
        chain.evidence.http.len(),
        11,
        "10 redirects followed, the 11th refused"
    );
    let endless = run(&dispatcher, "ok.test", http01("endless")).await;
    assert_eq!(endless.evidence.http[0].bytes, 8192);
    // The server saw our Host and User-Agent.
    let seen = server.requests();
    let (host, _, agent) = seen
        .iter()
        .find(|(_, path, _)| path == &challenge("pass"))
        .unwrap();
    assert_eq!(host, "ok.test");
    assert!(agent.starts_with("mpic-node/"), "{agent}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_that_lands_on_the_right_file_passes() {
    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dispatcher = dispatcher(&dns, lab(server.address().port(), 1));
    server.route(
        &challenge("moved"),
        Route::redirect(308, "http://dual.test/new-home"),
    );
    server.route("/new-home", Route::ok("moved.thumbprint\n"));
    let report = run(&dispatcher, "ok.test", http01("moved")).await;
    assert_eq!(
        verdict(&report),
        (Outcome::Pass, None),
        "{}",
        detail(&report)
    );
    assert_eq!(report.evidence.http.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_first_ipv6_only_and_fallback_to_ipv4() {
    let dns = dns().await;
    let (v4, v6) = HttpServer::start_dual().await.unwrap();
    let Some(v6) = v6 else {
        eprintln!("skipped: this machine has no ::1");
        return;
    };
    for server in [&v4, &v6] {
        server.route(&challenge("t"), Route::ok("t.thumbprint"));
    }
    let dispatcher = dispatcher(&dns, lab(v4.address().port(), 1));
    let port = v4.address().port();
    for (name, address) in [
        ("dual.test", format!("[::1]:{port}")),
        ("v6only.test", format!("[::1]:{port}")),
    ] {
        let report = run(&dispatcher, name, http01("t")).await;
        assert_eq!(
            verdict(&report),
            (Outcome::Pass, None),
            "{name}: {}",
            detail(&report)
        );
        assert_eq!(
            report.evidence.http[0].address.as_deref(),
            Some(address.as_str()),
            "{name}"
        );
    }
    // IPv6 broken (nothing listens on [::1] at this port): the IPv4 answer counts, and the
    // evidence lists the failed IPv6 attempt.
    let lonely = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    lonely.route(&challenge("t"), Route::ok("t.thumbprint"));
    let dispatcher = dispatcher_for_port(&dns, lonely.address().port());
    let report = run(&dispatcher, "dual.test", http01("t")).await;
    assert_eq!(
        verdict(&report),
        (Outcome::Pass, None),
        "{}",
        detail(&report)
    );
    let hop = &report.evidence.http[0];
    assert_eq!(hop.address, Some(lonely.address().to_string()));
    assert_eq!(hop.failed_attempts.len(), 1, "{hop:?}");
    assert!(hop.failed_attempts[0].starts_with("[::1]:"), "{hop:?}");
    // A wrong answer over IPv6 is final: no IPv4 retry after an answer.
    v6.route(&challenge("t"), Route::status(404));
    let report = run(&dispatcher_for_port(&dns, port), "dual.test", http01("t")).await;
    assert_eq!(
        verdict(&report),
        (Outcome::Fail, Some(ProblemKind::Unauthorized))
    );
    assert_eq!(
        report.evidence.http[0].address,
        Some(format!("[::1]:{port}"))
    );
}

fn dispatcher_for_port(dns: &DnsServer, port: u16) -> Dispatcher {
    dispatcher(dns, lab(port, 1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_addresses_are_refused_without_the_lab_switch() {
    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    server.route(&challenge("t"), Route::ok("t.thumbprint"));
    let options = FetchOptions {
        allow_private: false,
        ..lab(server.address().port(), 1)
    };
    let dispatcher = dispatcher(&dns, options);
    for identifier in ["ok.test", "127.0.0.1"] {
        let report = run(&dispatcher, identifier, http01("t")).await;
        assert_eq!(
            verdict(&report),
            (Outcome::Fail, Some(ProblemKind::Dns)),
            "{identifier}"
        );
        assert!(
            detail(&report).contains("reserved address"),
            "{}",
            detail(&report)
        );
    }
    assert_eq!(server.connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn website_change_finds_the_value_in_the_file() {
    let dns = dns().await;
    let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dispatcher = dispatcher(&dns, lab(server.address().port(), 1));
    server.route(
        "/.well-known/pki-validation/mpic.txt",
        Route::ok("CA validation\nrv-7f3a9c2e11\n"),
    );
    let website = |file: &str, value: &str| DcvCheck {
        token: Some(file.into()),
        expected: Some(value.into()),
        ..dcv(DcvMethod::WebsiteChange)
    };
    let cases = [
        ("mpic.txt", "rv-7f3a9c2e11", (Outcome::Pass, None)),
        (
            "mpic.txt",
            "rv-other",
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ),
        (
            "absent.txt",
            "rv-7f3a9c2e11",
            (Outcome::Fail, Some(ProblemKind::Unauthorized)),
        ),
        (
            "rv-7f3a9c2e11.txt",
            "rv-7f3a9c2e11",
            (Outcome::Fail, Some(ProblemKind::Malformed)),
        ),
    ];
    for (file, value, expected) in cases {
        let report = run(&dispatcher, "ok.test", website(file, value)).await;
        assert_eq!(
            verdict(&report),
            expected,
            "{file} {value}: {}",
            detail(&report)
        );
    }
    let wildcard = run(
        &dispatcher,
        "*.ok.test",
        website("mpic.txt", "rv-7f3a9c2e11"),
    )
    .await;
    assert_eq!(
        verdict(&wildcard),
        (Outcome::Fail, Some(ProblemKind::Malformed))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_reuse_is_per_address_and_switchable() {
    let dns = dns().await;
    for (reuse, connections) in [(true, 1), (false, 5)] {
        let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        server.route(&challenge("t"), Route::ok("t.thumbprint"));
        let options = FetchOptions {
            reuse_connections: reuse,
            ..lab(server.address().port(), 1)
        };
        let dispatcher = dispatcher(&dns, options);
        for _ in 0..5 {
            let report = run(&dispatcher, "ok.test", http01("t")).await;
            assert_eq!(
                verdict(&report),
                (Outcome::Pass, None),
                "{}",
                detail(&report)
            );
        }
        assert_eq!(server.connections(), connections, "reuse = {reuse}");
    }
}
