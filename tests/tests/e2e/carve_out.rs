//! The BR 3.2.2.8 lookup-failure carve-out end to end, over the ldns-signed vectors served by
//! the fixture: CAA at `www.unsigned.test` (an unsigned delegation from the signed `test.`: a
//! validated denial of DS proves it insecure) and at `www.child.test` (a signed zone) is made to
//! time out or SERVFAIL. With `allow_lookup_failure` the insecure one passes, marked
//! `permitted_by_lookup_failure` with its retries and proof; without it, it fails. The signed
//! one fails either way, and nothing passes with validation off.

use std::process::Command;

use hickory_proto::rr::RecordType;
use mpic_protocol::{CaaCheck, Check, DnssecStatus, Outcome, ProblemKind, Rir, Target};
use mpic_tests::dns_server::{Behaviour, DnsServer, Rule};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::primary};

use crate::dnssec::{VECTORS, fixture_at};
use crate::support::{Lab, request};

/// The vectors, with CAA at the two names failing as `unsigned` and `signed` say.
async fn fixture(unsigned: Behaviour, signed: Behaviour) -> DnsServer {
    let server = fixture_at("127.0.0.1:0".parse().unwrap(), |_, text| text)
        .await
        .unwrap();
    let rule = |suffix: &str, behaviour| Rule {
        suffix: suffix.into(),
        record_type: Some(RecordType::CAA),
        behaviour,
    };
    server.set_rules(vec![
        rule("www.unsigned.test.", unsigned),
        rule("www.child.test.", signed),
    ]);
    server
}

/// One CLI case: domain, extra flags, outcome, problem kind, words of the problem detail.
type Case<'a> = (&'a str, Vec<&'a str>, &'a str, Option<&'a str>, &'a str);

fn cli(server: &DnsServer, domain: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let output = Command::new(binary_path("mpic-node"))
        .args(["check", "caa", domain, "--issuer-domain", "ca.example"])
        .args(["--json", "--timeout", "12s"])
        .args(["--resolver", &server.address().to_string()])
        .args(["--trust-anchor", &format!("{VECTORS}/anchor.test.ds")])
        .args(extra)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{domain} {extra:?}: not JSON: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

// Multi-threaded: the CLI runs as blocking child processes while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_passes_a_timed_out_caa_lookup_only_in_an_insecure_zone_when_asked() {
    let server = fixture(Behaviour::Drop, Behaviour::Drop).await;
    let allow = "--allow-lookup-failure";
    let cases: [Case<'_>; 5] = [
        ("www.unsigned.test", vec![allow], "pass", None, ""),
        (
            "www.unsigned.test",
            vec![],
            "fail",
            Some("timeout"),
            "timed out",
        ),
        (
            "www.child.test",
            vec![allow],
            "fail",
            Some("timeout"),
            "carve-out refused: www.child.test.: the domain's zone is Secure",
        ),
        (
            "www.child.test",
            vec![],
            "fail",
            Some("timeout"),
            "timed out",
        ),
        (
            "www.unsigned.test",
            vec![allow, "--dnssec", "off"],
            "fail",
            Some("timeout"),
            "carve-out refused: www.unsigned.test.: DNSSEC validation is off",
        ),
    ];
    // Each timed-out lookup waits two query timeouts: run the cases side by side.
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|(domain, extra, ..)| scope.spawn(|| cli(&server, domain, extra)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((domain, extra, outcome, problem, words), (code, json)) in cases.iter().zip(results) {
        let case = format!("{domain} {extra:?}: {json}");
        assert_eq!(json["outcome"], *outcome, "{case}");
        assert_eq!(json["problem"]["kind"].as_str(), *problem, "{case}");
        let detail = json["problem"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(words), "{case}");
        assert_eq!(code, Some(u8::from(*outcome != "pass").into()), "{case}");
        let permitted = *outcome == "pass";
        let expected_detail = permitted.then_some("permitted_by_lookup_failure");
        assert_eq!(json["outcome_detail"].as_str(), expected_detail, "{case}");
        assert_eq!(
            json["evidence"]["permitted_by_lookup_failure"].is_object(),
            permitted,
            "{case}"
        );
    }
    // The pass carries the retries and the proof.
    let (_, json) = cli(&server, "www.unsigned.test", &[allow]);
    let failed = &json["evidence"]["permitted_by_lookup_failure"]["failed_lookups"][0];
    assert_eq!(failed["name"], "www.unsigned.test.", "{json}");
    assert_eq!(failed["failure"], "timeout", "{json}");
    assert_eq!(failed["attempts"], 2, "{json}");
    assert_eq!(failed["resolution"], "forward", "{json}");
    assert_eq!(failed["dnssec"], "insecure", "{json}");
    assert_eq!(
        failed["proof"], "unsigned.test. is a delegation from test. without DS (validated denial)",
        "{json}"
    );
    assert_eq!(json["dnssec"], "insecure", "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quic_and_open_mpic_a_pass_says_permitted_by_lookup_failure() {
    let server = fixture(Behaviour::Drop, Behaviour::ServFail).await;
    let lab = Lab::new();
    let options = NodeOptions::new("carve-out-node", Rir::Arin)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\nquery_timeout = \"500ms\"\n\
                 dnssec = \"validate\"\ntrust_anchor = \"{VECTORS}/anchor.test.ds\"",
                server.address()
            ),
        )
        .with(
            "openmpic",
            "listen = [\"127.0.0.1:0\"]\ncaa_domains = [\"ca.example\"]",
        );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let target = |identifier: &str, allow: bool| Target {
        identifier: identifier.into(),
        check: Check::Caa(CaaCheck {
            issuer_domains: vec!["ca.example".into()],
            allow_lookup_failure: allow,
            ..CaaCheck::default()
        }),
    };
    let request = request(vec![
        target("www.unsigned.test", true),
        target("www.unsigned.test", false),
        target("www.child.test", true),
        target("www.child.test", false),
    ]);
    let mut results = primary.query(0, &request).await.unwrap();
    results.sort_by_key(|r| r.target_index);
    let verdicts: Vec<(Outcome, Option<ProblemKind>, bool)> = results
        .iter()
        .map(|r| {
            (
                r.outcome,
                r.problem.as_ref().map(|p| p.kind),
                r.evidence.permitted_by_lookup_failure.is_some(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (Outcome::Pass, None, true),
            (Outcome::Fail, Some(ProblemKind::Timeout), false),
            (Outcome::Fail, Some(ProblemKind::Dns), false),
            (Outcome::Fail, Some(ProblemKind::Dns), false),
        ]
    );
    let permit = results[0]
        .evidence
        .permitted_by_lookup_failure
        .as_ref()
        .unwrap();
    let failed = &permit.failed_lookups[0];
    assert_eq!(
        (
            failed.name.as_str(),
            failed.failure.as_str(),
            failed.attempts
        ),
        ("www.unsigned.test.", "timeout", 2)
    );
    assert_eq!(failed.dnssec, DnssecStatus::Insecure);
    assert_eq!(results[0].dnssec, Some(DnssecStatus::Insecure));
    let refused = &results[2].problem.as_ref().unwrap().detail;
    assert!(
        refused.contains("carve-out refused: www.child.test.: the domain's zone is Secure"),
        "{refused}"
    );

    // The same over the Open MPIC endpoint: pass + the detail, or the ordinary failure.
    let address = node
        .openmpic
        .expect("the ready line names the openmpic address");
    let https = crate::openmpic::client(&lab.credentials, true);
    let body = |domain: &str, allow: bool| {
        format!(
            r#"{{"domain_or_ip_target":"{domain}","caa_check_parameters":{{"allow_lookup_failure":{allow}}}}}"#
        )
    };
    let cases = [
        (
            "www.unsigned.test",
            true,
            (true, true, Some("permitted_by_lookup_failure")),
        ),
        ("www.unsigned.test", false, (false, false, None)),
        ("www.child.test", true, (false, false, None)),
    ];
    for (domain, allow, (completed, passed, detail)) in cases {
        let body = body(domain, allow);
        let (status, text) =
            crate::openmpic::post(address, std::sync::Arc::clone(&https), "/caa", &body)
                .await
                .unwrap();
        assert_eq!(status, 200, "{body}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let got = (
            json["check_completed"].as_bool(),
            json["check_passed"].as_bool(),
            json["mpic_node"]["outcome_detail"].as_str(),
        );
        assert_eq!(
            got,
            (Some(completed), Some(passed), detail),
            "{body}: {text}"
        );
        if passed {
            assert_eq!(
                json["details"]["outcome_detail"], "permitted_by_lookup_failure",
                "{text}"
            );
            assert_eq!(
                json["errors"][0]["error_type"], "mpic_node:permitted_by_lookup_failure",
                "{text}"
            );
        }
    }
}
