//! CAA end to end: the real `mpic-node check caa` CLI (its JSON and exit-status contract) and
//! the QUIC path, both resolving through the fixture authoritative server.

use std::process::Command;

use mpic_protocol::{CaaCheck, Check, Outcome, ProblemKind, Rir, Target};
use mpic_tests::dns_server::{Behaviour, DnsServer, Rule, ZoneText};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::primary};

use crate::support::{Lab, request};

const ZONE: &str = "\
@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60
@ IN NS ns
ns IN A 127.0.0.1
permit.caa IN CAA 0 issue \"ca.example\"
deny.caa IN CAA 0 issue \"other.example\"
parent.caa IN CAA 0 issue \";\"
sub.parent.caa IN A 192.0.2.1
critical.caa IN CAA 128 tbs \"unknown\"
wild.caa IN CAA 0 issuewild \"ca.example\"
wild.caa IN CAA 0 issue \";\"
none.caa IN A 192.0.2.2
alias.caa IN CNAME permit.caa
broken.caa IN A 192.0.2.3
acct.caa IN CAA 0 issue \"ca.example; accounturi=https://ca.example/acct/1; validationmethods=dns-01\"
parent.acct.caa IN CAA 0 issue \"ca.example; accounturi=https://ca.example/acct/parent\"
tbr.caa IN CAA 0 issue \"ca.example; validationmethods=ca-tbr-7\"
upper.caa IN CAA 0 issue \"ca.example; validationmethods=DNS-01\"
example IN CAA 0 issuewild \"ca.example\"
mail.caa IN CAA 0 issuemail \"ca.example\"
mail.caa IN CAA 0 issue \";\"
nomail.caa IN CAA 0 issuemail \";\"
nomail.caa IN CAA 0 issue \"ca.example\"
example IN CAA 0 issue \";\"
";

async fn fixture() -> DnsServer {
    let server = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: ZONE,
        }],
    )
    .await
    .unwrap();
    server.set_rules(vec![Rule {
        suffix: "broken.caa.test.".into(),
        record_type: None,
        behaviour: Behaviour::ServFail,
    }]);
    server
}

fn cli(server: &DnsServer, domain: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let output = Command::new(binary_path("mpic-node"))
        .args([
            "check",
            "caa",
            domain,
            "--issuer-domain",
            "ca.example",
            "--json",
            "--dnssec",
            "off",
            "--timeout",
            "3s",
        ])
        .args(["--resolver", &server.address().to_string()])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{domain}: not JSON: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

// Multi-threaded: the CLI runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_decides_caa_with_the_json_contract() {
    let server = fixture().await;
    let account = [
        "--account-uri",
        "https://ca.example/acct/1",
        "--method",
        "acme-dns-01",
    ];
    let other_account = [
        "--account-uri",
        "https://ca.example/acct/2",
        "--method",
        "acme-dns-01",
    ];
    let other_method = [
        "--account-uri",
        "https://ca.example/acct/1",
        "--method",
        "acme-http-01",
    ];
    // RFC 8657 §3 with BR 4.2.2.1.2's Parent Accounts: --account-uri repeats, any one matches.
    let with_parent = [
        "--account-uri",
        "https://ca.example/acct/1",
        "--account-uri",
        "https://ca.example/acct/parent",
    ];
    let without_parent = ["--account-uri", "https://ca.example/acct/1"];
    let cases: [(&str, &[&str], &str, Option<&str>); 22] = [
        ("permit.caa.test", &[], "pass", None),
        ("deny.caa.test", &[], "fail", Some("caa")),
        ("sub.parent.caa.test", &[], "fail", Some("caa")),
        ("critical.caa.test", &[], "fail", Some("caa")),
        ("none.caa.test", &[], "pass", None),
        ("*.wild.caa.test", &[], "pass", None),
        ("wild.caa.test", &["--wildcard"], "pass", None),
        ("wild.caa.test", &[], "fail", Some("caa")),
        ("alias.caa.test", &[], "pass", None),
        ("broken.caa.test", &[], "fail", Some("dns")),
        ("acct.caa.test", &account, "pass", None),
        ("acct.caa.test", &other_account, "fail", Some("caa")),
        ("acct.caa.test", &other_method, "fail", Some("caa")),
        ("parent.acct.caa.test", &with_parent, "pass", None),
        ("parent.acct.caa.test", &without_parent, "fail", Some("caa")),
        ("parent.acct.caa.test", &[], "fail", Some("caa")),
        // BR 4.2.2.1.2: ACME dns-01 is a BR 3.2.2.4.7 DNS change, so ca-tbr-7 names it.
        ("tbr.caa.test", &["--method", "acme-dns-01"], "pass", None),
        ("tbr.caa.test", &["--method", "dns-change"], "pass", None),
        (
            "tbr.caa.test",
            &["--method", "acme-http-01"],
            "fail",
            Some("caa"),
        ),
        // Labels match exactly unless [caa] says otherwise.
        (
            "upper.caa.test",
            &["--method", "acme-dns-01"],
            "fail",
            Some("caa"),
        ),
        // Boulder PR 8643: the wildcard's labels are lowercased after `*.` is removed.
        ("*.ExAmPlE.test", &[], "pass", None),
        ("ExAmPlE.test", &[], "fail", Some("caa")),
    ];
    for (domain, extra, outcome, problem) in cases {
        let (code, json) = cli(&server, domain, extra);
        assert_eq!(json["outcome"], outcome, "{domain} {extra:?}: {json}");
        assert_eq!(
            code,
            Some(if outcome == "pass" { 0 } else { 1 }),
            "{domain}: {json}"
        );
        assert_eq!(
            json["problem"]["kind"].as_str(),
            problem,
            "{domain}: {json}"
        );
        assert!(json["elapsed_ms"].is_u64(), "{json}");
        assert!(json.get("dnssec").is_some(), "{json}");
    }
    // The evidence names each level climbed, with what was found there.
    let (_, json) = cli(&server, "sub.parent.caa.test", &[]);
    let names: Vec<&str> = json["evidence"]["dns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "sub.parent.caa.test.",
            "parent.caa.test.",
            "caa.test.",
            "test."
        ]
    );
    assert!(
        json["evidence"]["dns"][1]["records"][0]
            .as_str()
            .unwrap()
            .contains("CAA 0 issue \";\""),
        "{json}"
    );
}

// S/MIME (RFC 9495 §4): with --smime only issuemail governs, issue is ignored, and the reverse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_checks_issuemail_for_smime() {
    let server = fixture().await;
    let cases: [(&str, &[&str], &str, Option<&str>); 8] = [
        ("mail.caa.test", &["--smime"], "pass", None),
        ("mail.caa.test", &[], "fail", Some("caa")),
        ("nomail.caa.test", &["--smime"], "fail", Some("caa")),
        ("nomail.caa.test", &[], "pass", None),
        // A relevant RRset without issuemail does not restrict S/MIME.
        ("deny.caa.test", &["--smime"], "pass", None),
        ("sub.parent.caa.test", &["--smime"], "pass", None),
        ("none.caa.test", &["--smime"], "pass", None),
        // A critical unknown tag forbids S/MIME too (RFC 8659 §4.1).
        ("critical.caa.test", &["--smime"], "fail", Some("caa")),
    ];
    for (domain, extra, outcome, problem) in cases {
        let (code, json) = cli(&server, domain, extra);
        assert_eq!(json["outcome"], outcome, "{domain} {extra:?}: {json}");
        assert_eq!(
            code,
            Some(if outcome == "pass" { 0 } else { 1 }),
            "{domain}: {json}"
        );
        assert_eq!(
            json["problem"]["kind"].as_str(),
            problem,
            "{domain} {extra:?}: {json}"
        );
    }
    let (_, json) = cli(&server, "nomail.caa.test", &["--smime"]);
    assert!(
        json["problem"]["detail"]
            .as_str()
            .unwrap()
            .contains("CAA issuemail records name \";\" (nobody)"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_climbs_a_mixed_case_wildcard_in_lower_case() {
    let server = fixture().await;
    let (code, json) = cli(&server, "*.ExAmPlE.test", &[]);
    assert_eq!(
        (code, json["outcome"].as_str()),
        (Some(0), Some("pass")),
        "{json}"
    );
    let names: Vec<&str> = json["evidence"]["dns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["example.test.", "test."], "{json}");
    let (code, json) = cli(&server, "ExAmPlE.test", &[]);
    assert_eq!(code, Some(1), "{json}");
    let detail = json["problem"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("relevant CAA RRset at example.test."),
        "{detail}"
    );
}

#[test]
fn the_cli_rejects_bad_usage_with_status_2() {
    let output = Command::new(binary_path("mpic-node"))
        .args(["check", "caa", "example.com"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "missing --issuer-domain");
    let output = Command::new(binary_path("mpic-node"))
        .args([
            "check",
            "caa",
            "example.com",
            "--issuer-domain",
            "ca.example",
            "--root-hints",
            "/nonexistent/hints",
        ])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_over_quic_returns_signed_verdicts_per_target() {
    let server = fixture().await;
    let lab = Lab::new();
    let options = NodeOptions::new("caa-node", Rir::Arin).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
            server.address()
        ),
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let target = |identifier: &str| Target {
        identifier: identifier.into(),
        check: Check::Caa(CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            ..CaaCheck::default()
        }),
    };
    let request = request(vec![
        target("permit.caa.test"),
        target("deny.caa.test"),
        target("broken.caa.test"),
    ]);
    let mut results = primary.query(0, &request).await.unwrap();
    results.sort_by_key(|r| r.target_index);
    let verdicts: Vec<(Outcome, Option<ProblemKind>)> = results
        .iter()
        .map(|r| (r.outcome, r.problem.as_ref().map(|p| p.kind)))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (Outcome::Pass, None),
            (Outcome::Fail, Some(ProblemKind::Caa)),
            (Outcome::Fail, Some(ProblemKind::Dns))
        ]
    );
    assert!(!results[0].evidence.dns.is_empty());
    node.wait_for_metric(
        "mpic_node_checks_total{kind=\"caa\",method=\"caa\",outcome=\"pass\",problem=\"none\"}",
        1.0,
    )
    .unwrap();
}

/// The QUIC path with RFC 8657 parameters: `account_uris` (BR 4.2.2.1.2 Parent Accounts) and a v1
/// `account_uri` both count, and `[caa] case_insensitive_method_labels` is really applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_over_quic_matches_account_sets_and_method_labels() {
    let server = fixture().await;
    let lab = Lab::new();
    let dns = format!(
        "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
        server.address()
    );
    let exact = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("caa-exact", Rir::Arin).with("dns", &dns),
    )
    .unwrap();
    let folding = NodeProcess::start(
        lab.dir.path(),
        &lab.credentials,
        &NodeOptions::new("caa-folding", Rir::RipeNcc)
            .with("dns", &dns)
            .with("caa", "case_insensitive_method_labels = true"),
    )
    .unwrap();
    let primary = primary(&lab.credentials, &[&exact, &folding]).unwrap();
    let target = |identifier: &str, check: CaaCheck| Target {
        identifier: identifier.into(),
        check: Check::Caa(CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            ..check
        }),
    };
    let accounts = |uris: &[&str]| CaaCheck {
        account_uris: uris.iter().map(|uri| (*uri).to_owned()).collect(),
        ..CaaCheck::default()
    };
    let method = |method: &str| CaaCheck {
        method: Some(method.into()),
        ..CaaCheck::default()
    };
    let targets = vec![
        target(
            "parent.acct.caa.test",
            accounts(&[
                "https://ca.example/acct/1",
                "https://ca.example/acct/parent",
            ]),
        ),
        target(
            "parent.acct.caa.test",
            accounts(&["https://ca.example/acct/1"]),
        ),
        target(
            "parent.acct.caa.test",
            CaaCheck {
                account_uri: Some("https://ca.example/acct/1".into()),
                account_uris: vec!["https://ca.example/acct/parent".into()],
                ..CaaCheck::default()
            },
        ),
        target(
            "acct.caa.test",
            CaaCheck {
                account_uri: Some("https://ca.example/acct/1".into()),
                method: Some("acme-dns-01".into()),
                ..CaaCheck::default()
            },
        ),
        target("tbr.caa.test", method("acme-dns-01")),
        target("tbr.caa.test", method("acme-tls-alpn-01")),
        target("upper.caa.test", method("acme-dns-01")),
    ];
    let pass = (Outcome::Pass, None);
    let caa = (Outcome::Fail, Some(ProblemKind::Caa));
    let expected_exact = vec![pass, caa, pass, pass, pass, caa, caa];
    let mut expected_folding = expected_exact.clone();
    expected_folding[6] = pass;
    for (index, expected) in [(0, expected_exact), (1, expected_folding)] {
        let mut results = primary
            .query(index, &request(targets.clone()))
            .await
            .unwrap();
        results.sort_by_key(|r| r.target_index);
        let verdicts: Vec<(Outcome, Option<ProblemKind>)> = results
            .iter()
            .map(|r| (r.outcome, r.problem.as_ref().map(|p| p.kind)))
            .collect();
        assert_eq!(verdicts, expected, "node {index}: {results:#?}");
    }
}
