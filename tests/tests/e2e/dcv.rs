//! DNS-based DCV end to end through `mpic-node check dcv` against the fixture server: each
//! method passes on the right record and fails, with its problem kind, on a wrong or missing one.

use mpic_node::checks::dcv::acme_dns01;
use mpic_tests::dns_server::{DnsServer, ZoneText};

const KEY_AUTHORIZATION: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";

fn zone() -> String {
    format!(
        "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\n\
         _acme-challenge.dns01 IN TXT \"{}\"\n_acme-challenge.dns01 IN TXT \"unrelated\"\n\
         _dc.change IN TXT \"x-RandomValue0123456789abcdef-y\"\n\
         _validation-persist.persist IN TXT \"ca.example; accounturi=https://ca.example/acct/1\"\n\
         _validation-contactemail.contact IN TXT \"admin@contact.test\"\n\
         contact IN CAA 0 contactemail \"caa-admin@contact.test\"\n\
         contact IN CAA 0 issue \"ca.example\"\n",
        acme_dns01::expected_digest(KEY_AUTHORIZATION)
    )
}

fn check(server: &DnsServer, domain: &str, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    crate::support::check_dcv(server.address(), domain, "3s", args)
}

// Multi-threaded: the CLI runs as a blocking child process while the fixture answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_methods_pass_and_fail_through_the_cli() {
    let text = zone();
    let server = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: &text,
        }],
    )
    .await
    .unwrap();
    let persist = [
        "--method",
        "dns-persist-01",
        "--issuer-domain",
        "ca.example",
    ];
    let cases: Vec<(&str, Vec<&str>, Option<&str>)> = vec![
        (
            "dns01.test",
            vec![
                "--method",
                "acme-dns-01",
                "--key-authorization",
                KEY_AUTHORIZATION,
            ],
            None,
        ),
        (
            "*.dns01.test",
            vec![
                "--method",
                "acme-dns-01",
                "--key-authorization",
                KEY_AUTHORIZATION,
            ],
            None,
        ),
        (
            "dns01.test",
            vec![
                "--method",
                "acme-dns-01",
                "--key-authorization",
                "other.token",
            ],
            Some("unauthorized"),
        ),
        (
            "nothing.test",
            vec![
                "--method",
                "acme-dns-01",
                "--key-authorization",
                KEY_AUTHORIZATION,
            ],
            Some("unauthorized"),
        ),
        (
            "dns01.test",
            vec!["--method", "acme-dns-01"],
            Some("malformed"),
        ),
        (
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--expect",
                "RandomValue0123456789abcdef",
            ],
            None,
        ),
        (
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--expect",
                "randomvalue0123456789abcdef",
            ],
            Some("unauthorized"),
        ),
        (
            // Open MPIC's require_exact_case = false.
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--case-insensitive",
                "--expect",
                "randomvalue0123456789abcdef",
            ],
            None,
        ),
        (
            // Open MPIC's require_exact_match: the record holds more than the value.
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--exact-match",
                "--expect",
                "RandomValue0123456789abcdef",
            ],
            Some("unauthorized"),
        ),
        (
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--exact-match",
                "--expect",
                "x-RandomValue0123456789abcdef-y",
            ],
            None,
        ),
        (
            // Open MPIC's dns_record_type: the value is in a TXT record, not a CAA one.
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--record-type",
                "CAA",
                "--expect",
                "RandomValue0123456789abcdef",
            ],
            Some("unauthorized"),
        ),
        (
            // Shorter than any Random Value may be (and contained in the record): the request
            // is at fault, not the domain.
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "_dc",
                "--expect",
                "Random",
            ],
            Some("malformed"),
        ),
        (
            "change.test",
            vec![
                "--method",
                "dns-change",
                "--prefix",
                "nounderscore",
                "--expect",
                "RandomValue0123456789abcdef",
            ],
            Some("malformed"),
        ),
        (
            "persist.test",
            [
                &persist[..],
                &["--account-uri", "https://ca.example/acct/1"],
            ]
            .concat(),
            None,
        ),
        (
            "persist.test",
            [
                &persist[..],
                &["--account-uri", "https://ca.example/acct/2"],
            ]
            .concat(),
            Some("unauthorized"),
        ),
        (
            "contact.test",
            vec![
                "--method",
                "contact-email-txt",
                "--expect",
                "admin@contact.test",
            ],
            None,
        ),
        (
            "contact.test",
            vec![
                "--method",
                "contact-email-txt",
                "--expect",
                "other@contact.test",
            ],
            Some("unauthorized"),
        ),
        (
            "www.contact.test",
            vec![
                "--method",
                "contact-email-caa",
                "--expect",
                "caa-admin@contact.test",
            ],
            None,
        ),
        (
            "www.contact.test",
            vec![
                "--method",
                "contact-email-caa",
                "--expect",
                "admin@contact.test",
            ],
            Some("unauthorized"),
        ),
        (
            "www.contact.test",
            vec!["--method", "contact-phone-caa"],
            Some("unauthorized"),
        ),
        (
            "dns01.test",
            vec!["--method", "x-future-method", "--token", "t"],
            Some("unsupported"),
        ),
    ];
    for (domain, args, problem) in cases {
        let (code, json) = check(&server, domain, &args);
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
    // The evidence shows what was seen at the challenge name.
    let (_, json) = check(
        &server,
        "dns01.test",
        &[
            "--method",
            "acme-dns-01",
            "--key-authorization",
            "other.token",
        ],
    );
    let records = json["evidence"]["dns"][0]["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{json}");
    assert_eq!(
        json["evidence"]["dns"][0]["name"],
        "_acme-challenge.dns01.test."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_01_over_quic_is_signed_and_verified() {
    use mpic_protocol::{Check, DcvCheck, DcvMethod, Outcome, ProblemKind, Rir, Target};
    use mpic_tests::{NodeOptions, NodeProcess, node::primary};

    let text = zone();
    let server = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: &text,
        }],
    )
    .await
    .unwrap();
    let lab = crate::support::Lab::new();
    let options = NodeOptions::new("dcv-node", Rir::RipeNcc).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
            server.address()
        ),
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let dns01 = |identifier: &str, key_authorization: &str| Target {
        identifier: identifier.into(),
        check: Check::Dcv(DcvCheck {
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
            method: DcvMethod::AcmeDns01,
            expected: None,
            key_authorization: Some(key_authorization.into()),
            token: None,
            prefix: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: false,
        }),
    };
    let request = crate::support::request(vec![
        dns01("dns01.test", KEY_AUTHORIZATION),
        dns01("dns01.test", "wrong.key"),
    ]);
    let mut results = primary.query(0, &request).await.unwrap();
    results.sort_by_key(|r| r.target_index);
    assert_eq!(results[0].outcome, Outcome::Pass);
    assert_eq!(
        results[0].evidence.dns[0].name,
        "_acme-challenge.dns01.test."
    );
    assert_eq!(
        (
            results[1].outcome,
            results[1].problem.as_ref().map(|p| p.kind)
        ),
        (Outcome::Fail, Some(ProblemKind::Unauthorized))
    );
    node.wait_for_metric(
        "mpic_node_checks_total{kind=\"dcv\",method=\"acme-dns-01\",outcome=\"pass\",problem=\"none\"}",
        1.0,
    )
    .unwrap();
}

/// Zone for the ADN rules of BR 3.2.2.4 (SC-101v2): CNAMEs at the ADN and at the record name.
const ADN_ZONE: &str = "@ 3600 IN SOA ns.test. hostmaster.test. 1 7200 3600 1209600 60\n\
    @ IN NS ns\nns IN A 127.0.0.1\n\
    target IN TXT \"x-RandomValue0123456789abcdef-y\"\ntarget IN A 192.0.2.7\n\
    alias IN CNAME target\n\
    _validation-persist.target IN TXT \"ca.example; accounturi=https://ca.example/acct/1\"\n\
    _validation-persist.delegated IN CNAME _validation-persist.target\n\
    delegated IN A 192.0.2.8\n";

// BR 3.2.2.4 (SC-101v2) table, CNAME column: DNS Change (3.2.2.4.7) may use the target of the
// ADN's CNAME; IP Address (3.2.2.4.8) and Persistent TXT (3.2.2.4.22) may not, though every
// method may follow a CNAME at the record's own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adn_cname_rules_per_method_through_the_cli() {
    let server = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: ADN_ZONE,
        }],
    )
    .await
    .unwrap();
    let change = [
        "--method",
        "dns-change",
        "--expect",
        "RandomValue0123456789abcdef",
    ];
    let ip = ["--method", "ip-address", "--expect", "192.0.2.7"];
    let persist = [
        "--method",
        "dns-persist-01",
        "--issuer-domain",
        "ca.example",
        "--account-uri",
        "https://ca.example/acct/1",
    ];
    // (case, domain, args, problem kind; None = pass)
    let cases: Vec<(&str, &str, &[&str], Option<&str>)> = vec![
        ("3.2.2.4.7 at the ADN", "target.test", &change, None),
        ("3.2.2.4.7 via the ADN's CNAME", "alias.test", &change, None),
        ("3.2.2.4.8 at the ADN", "target.test", &ip, None),
        (
            "3.2.2.4.8 via the ADN's CNAME",
            "alias.test",
            &ip,
            Some("unauthorized"),
        ),
        ("3.2.2.4.22 at the ADN", "target.test", &persist, None),
        (
            "3.2.2.4.22 CNAME at the record name",
            "delegated.test",
            &persist,
            None,
        ),
        (
            "3.2.2.4.22 ADN is a CNAME",
            "alias.test",
            &persist,
            Some("unauthorized"),
        ),
    ];
    for (case, domain, args, problem) in cases {
        let (code, json) = check(&server, domain, args);
        let expected_outcome = if problem.is_none() { "pass" } else { "fail" };
        assert_eq!(json["outcome"], expected_outcome, "{case}: {json}");
        assert_eq!(json["problem"]["kind"].as_str(), problem, "{case}: {json}");
        assert_eq!(code, Some(if problem.is_none() { 0 } else { 1 }), "{case}");
    }
    // The refusal names the rule, and the evidence shows the chain that was not used.
    let (_, json) = check(&server, "alias.test", &ip);
    let detail = json["problem"]["detail"].as_str().unwrap();
    assert!(detail.contains("BR 3.2.2.4.8"), "{detail}");
    assert!(detail.contains("target.test"), "{detail}");
    assert_eq!(json["evidence"]["dns"][0]["name"], "alias.test.", "{json}");
}
