//! `make demo`: a whole MPIC validation on loopback, without the Internet, in a few seconds.
//!
//! Starts an authoritative DNS server for `demo.test.` and an HTTP server (the test fixtures),
//! five real `mpic-node` processes (one per RIR) that resolve through that DNS server, and a
//! primary that sends them four targets over QUIC with mutual TLS. Every result is
//! signature-verified by the primary library; the BR 3.2.2.9 quorum rule in force today decides
//! each target. Exits 0 when every target got the verdict shown in the README, 1 otherwise, so
//! `make test` keeps this walk-through true.

#![allow(
    clippy::print_stdout,
    reason = "a command-line walk-through prints its story"
)]

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use mpic_protocol::client::TargetVerdict;
use mpic_protocol::quorum::{Decision, QuorumPolicy, Shortfall};
use mpic_protocol::{CaaCheck, Check, DcvCheck, DcvMethod, Rir, Target};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::http_server::{HttpServer, Route};
use mpic_tests::node::primary;
use mpic_tests::{DevCredentials, NodeOptions, NodeProcess};

/// The CA the demo primary validates for.
const CA: &str = "ca.example";
/// The ACME token and key authorization the HTTP server publishes (RFC 8555 §8.3).
const TOKEN: &str = "demo-token-0123456789abcdef";
const KEY_AUTHORIZATION: &str = "demo-token-0123456789abcdef.demo-account-thumbprint";

/// The zone: one name per story.
const ZONE: &str = "\
@ 3600 IN SOA ns.demo.test. hostmaster.demo.test. 1 7200 3600 1209600 60
@ IN NS ns
ns IN A 127.0.0.1
; CAA names ca.example: issuance permitted (RFC 8659 §4.2)
shop IN CAA 0 issue \"ca.example\"
; CAA names another CA only: issuance forbidden for ca.example
bank IN CAA 0 issue \"other-ca.example\"
; the web server for http-01, on loopback
www IN A 127.0.0.1
; a dns-01 record left over from another order: not this key authorization's digest
_acme-challenge.www IN TXT \"stale-digest-from-an-earlier-order\"
";

/// The five perspectives, one per RIR (BR 3.2.2.9 wants remotes in two RIRs at least).
const PERSPECTIVES: [(&str, Rir); 5] = [
    ("demo-arin", Rir::Arin),
    ("demo-ripe", Rir::RipeNcc),
    ("demo-apnic", Rir::Apnic),
    ("demo-lacnic", Rir::Lacnic),
    ("demo-afrinic", Rir::Afrinic),
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("demo: a verdict differed from the one expected (see above)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("demo: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<bool> {
    let work = tempfile::tempdir()?;
    let dns = DnsServer::start(
        "127.0.0.1:0".parse()?,
        &[ZoneText {
            origin: "demo.test.",
            text: ZONE,
        }],
    )
    .await?;
    let web = HttpServer::start("127.0.0.1:0".parse()?).await?;
    web.route(
        &format!("/.well-known/acme-challenge/{TOKEN}"),
        Route::ok(KEY_AUTHORIZATION),
    );
    println!(
        "demo: authoritative DNS for demo.test. on {}, HTTP on {}",
        dns.address(),
        web.address()
    );

    let credentials = DevCredentials::generate(&work.path().join("dev"))
        .context("generating dev credentials (run `make build` first)")?;
    let mut nodes = Vec::new();
    for (id, rir) in PERSPECTIVES {
        nodes.push(NodeProcess::start(
            work.path(),
            &credentials,
            &node_options(id, rir, &dns, &web),
        )?);
    }
    println!("demo: {} mpic-node processes serving QUIC", nodes.len());

    let primary = primary(&credentials, &nodes.iter().collect::<Vec<_>>())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let policy = QuorumPolicy::in_force_at(now);
    println!(
        "demo: quorum rule in force today (BR 3.2.2.9): at least {} remotes, RIR diversity {}\n",
        policy.min_remotes,
        if policy.require_rir_diversity {
            "required"
        } else {
            "not required"
        }
    );
    let validation = primary
        .validate_all(targets(), Duration::from_secs(10), policy)
        .await?;
    let mut as_expected = true;
    for (verdict, expect_permit) in validation.targets.iter().zip([true, false, true, false]) {
        print_target(verdict);
        let permitted = verdict.verdict.permits_issuance();
        if permitted != expect_permit {
            println!(
                "  (expected {})",
                if expect_permit { "a pass" } else { "a fail" }
            );
            as_expected = false;
        }
    }
    primary.close().await;
    println!(
        "Next: README.md \"Two commands\" for `make run` and the example primary against your own \
         node; `mpic-node check caa|dcv <domain> --json` for one check from the command line; \
         deploy/mpic-node.example.toml for every setting."
    );
    Ok(as_expected)
}

/// A node resolving through the demo DNS server (forward mode; the demo zone is unsigned, so
/// DNSSEC validation is off here) and dialling the demo web server for http-01 (the test nodes
/// already allow loopback targets under `[dangerous]`).
fn node_options(id: &str, rir: Rir, dns: &DnsServer, web: &HttpServer) -> NodeOptions {
    NodeOptions::new(id, rir)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                dns.address()
            ),
        )
        .with(
            "dangerous",
            &format!("http_port = {}", web.address().port()),
        )
}

fn targets() -> Vec<Target> {
    let caa = |identifier: &str| Target {
        identifier: identifier.into(),
        check: Check::Caa(CaaCheck {
            issuer_domains: vec![CA.into()],
            ..CaaCheck::default()
        }),
    };
    let acme = |method: DcvMethod| Target {
        identifier: "www.demo.test".into(),
        check: Check::Dcv(DcvCheck {
            method,
            expected: None,
            key_authorization: Some(KEY_AUTHORIZATION.into()),
            token: Some(TOKEN.into()),
            prefix: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: false,
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
        }),
    };
    vec![
        caa("shop.demo.test"),
        caa("bank.demo.test"),
        acme(DcvMethod::AcmeHttp01),
        acme(DcvMethod::AcmeDns01),
    ]
}

fn print_target(target: &TargetVerdict) {
    let check = match &target.target.check {
        Check::Dcv(dcv) => dcv.method.as_str().to_owned(),
        other => other.kind().to_owned(),
    };
    let tally = &target.verdict.tally;
    let decision = match &target.verdict.decision {
        Decision::Corroborated => "corroborated".to_owned(),
        Decision::NotCorroborated(Shortfall::TooManyFailures { failed, allowed }) => {
            format!("NOT corroborated ({failed} failed, {allowed} may)")
        }
        Decision::NotCorroborated(Shortfall::TooFewRemotes { used, required }) => {
            format!("NOT corroborated ({used} remotes used, {required} required)")
        }
        Decision::NotCorroborated(Shortfall::RirDiversity { corroborating_rirs }) => {
            format!("NOT corroborated (corroborating remotes in {corroborating_rirs} RIR only)")
        }
        Decision::Undecided => "undecided".to_owned(),
    };
    println!(
        "{} [{check}]: {}/{} remotes corroborate: {decision}; issuance {}",
        target.target.identifier,
        tally.corroborated,
        tally.used,
        if target.verdict.permits_issuance() {
            "permitted"
        } else {
            "NOT permitted"
        }
    );
    for report in &target.reports {
        match (&report.result, &report.error) {
            (Some(result), _) => println!(
                "  {:13} {:8} {} {}[signature verified, key {}]",
                report.perspective_id.to_string(),
                result.perspective.rir.to_string(),
                result.outcome.as_str(),
                result
                    .problem
                    .as_ref()
                    .map(|p| format!("{}: {} ", p.kind.as_str(), p.detail))
                    .unwrap_or_default(),
                result.key_id,
            ),
            (None, Some(error)) => println!("  {}: error: {error}", report.perspective_id),
            (None, None) => println!("  {}: no answer", report.perspective_id),
        }
    }
    println!();
}
