//! `mpic-primary check` against three real nodes whose DNS and HTTP traffic leaves from
//! different loopback addresses (`dns.egress_ipv4` / `http.egress_ipv4` = 127.0.0.2, .3, .4),
//! and fixtures that answer by source address:
//!
//! - two authoritative servers for `lab.test.`: ns1 has the new `new.lab.test` TXT record
//!   (serial 2026120602), ns2 does not yet (serial 2026120601); ARIN's queries reach ns1, the
//!   others ns2 (propagation);
//! - geo-DNS: APNIC's view of ns2 names another CA in `geo.lab.test` CAA (split horizon);
//! - an HTTP server that resets every connection from RIPE's address (firewall).
//!
//! Each scenario is asserted in the human, JSON and HTML output; the HTML page is rendered in
//! headless Chromium (the DOM it builds is checked, and a screenshot is kept in `target/`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use mpic_protocol::Rir;
use mpic_tests::by_source::SourceRouter;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::http_server::{HttpServer, Route};
use mpic_tests::{NodeOptions, NodeProcess, binary_path};
use serde_json::Value;

use crate::support::Lab;

const TOKEN: &str = "lab-token-0123456789abcdef";
const KEY_AUTHORIZATION: &str = "lab-token-0123456789abcdef.lab-account-thumbprint";
/// A date in the three-remote phase of BR 3.2.2.9 (three nodes, two RIRs at least).
const RULE_DATE: &str = "2026-04-01";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The perspectives: id, RIR, egress address, which DNS backend answers it.
const NODES: [(&str, Rir, [u8; 4], Backend); 3] = [
    ("lab-arin", Rir::Arin, [127, 0, 0, 2], Backend::Ns1),
    ("lab-ripe", Rir::RipeNcc, [127, 0, 0, 3], Backend::Ns2),
    ("lab-apnic", Rir::Apnic, [127, 0, 0, 4], Backend::Ns2Asia),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Ns1,
    Ns2,
    Ns2Asia,
}

fn zone(backend: Backend) -> String {
    let serial = if backend == Backend::Ns1 {
        2_026_120_602
    } else {
        2_026_120_601
    };
    let geo_ca = if backend == Backend::Ns2Asia {
        "other-ca.example"
    } else {
        "ca.example"
    };
    let new_record = if backend == Backend::Ns1 {
        "new IN TXT \"tok-2026-0123456789abcdef\""
    } else {
        ""
    };
    format!(
        "@ 3600 IN SOA ns1.lab.test. hostmaster.lab.test. {serial} 7200 3600 1209600 60\n\
         @ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.1\nns2 IN A 127.0.0.1\n\
         www IN A 127.0.0.1\ngeo 60 IN CAA 0 issue \"{geo_ca}\"\n{new_record}\n"
    )
}

struct Disagreement {
    lab: Lab,
    _nodes: Vec<NodeProcess>,
    _dns: Vec<DnsServer>,
    _router: SourceRouter,
    _web: HttpServer,
    perspectives: PathBuf,
}

async fn start() -> Disagreement {
    let lab = Lab::new();
    let mut dns = Vec::new();
    for backend in [Backend::Ns1, Backend::Ns2, Backend::Ns2Asia] {
        let text = zone(backend);
        let zones = [ZoneText {
            origin: "lab.test.",
            text: &text,
        }];
        dns.push(
            DnsServer::start("127.0.0.1:0".parse().unwrap(), &zones)
                .await
                .unwrap(),
        );
    }
    let routes: HashMap<IpAddr, SocketAddr> = NODES
        .iter()
        .map(|(_, _, egress, backend)| {
            let index = match backend {
                Backend::Ns1 => 0,
                Backend::Ns2 => 1,
                Backend::Ns2Asia => 2,
            };
            (IpAddr::from(*egress), dns[index].address())
        })
        .collect();
    let router = SourceRouter::start("127.0.0.1:0".parse().unwrap(), routes, dns[0].address())
        .await
        .unwrap();
    let web = HttpServer::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    web.route(
        &format!("/.well-known/acme-challenge/{TOKEN}"),
        Route::ok(KEY_AUTHORIZATION),
    );
    web.refuse_from(IpAddr::from([127, 0, 0, 3]));

    let mut nodes = Vec::new();
    let mut file = String::new();
    for (id, rir, egress, _) in NODES {
        let egress = IpAddr::from(egress);
        let options = NodeOptions::new(id, rir)
            .with(
                "dns",
                &format!(
                    "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"\negress_ipv4 = \"{egress}\"",
                    router.address()
                ),
            )
            .with("http", &format!("egress_ipv4 = \"{egress}\""))
            .with(
                "dangerous",
                &format!("http_port = {}", web.address().port()),
            );
        let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
        file.push_str(&format!(
            "[[perspective]]\nid = \"{id}\"\nrir = \"{rir}\"\naddress = \"{}\"\npublic_key = \"{}\"\n\
             tls_name = \"localhost\"\nlocation = \"loopback {egress}\"\negress = [\"{egress}\"]\n\n",
            node.quic,
            node.verifying_key.to_base64()
        ));
        nodes.push(node);
    }
    let perspectives = lab.dir.path().join("perspectives.toml");
    std::fs::write(&perspectives, file).unwrap();
    Disagreement {
        lab,
        _nodes: nodes,
        _dns: dns,
        _router: router,
        _web: web,
        perspectives,
    }
}

/// One run's three renderings.
struct Output {
    human: String,
    human_code: Option<i32>,
    json: Value,
    json_code: Option<i32>,
    html: String,
    html_path: PathBuf,
}

async fn check(setup: &Disagreement, name: &str, args: &[&str]) -> Output {
    let html_path = setup.lab.dir.path().join(format!("{name}.html"));
    let run = |extra: Vec<String>| {
        let mut command = Command::new(binary_path("mpic-primary"));
        command
            .arg("check")
            .args(args)
            .arg("--perspectives")
            .arg(&setup.perspectives)
            .arg("--ca")
            .arg(setup.lab.credentials.path("ca.pem"))
            .arg("--cert")
            .arg(setup.lab.credentials.path("primary.pem"))
            .arg("--key")
            .arg(setup.lab.credentials.path("primary.key"))
            .args(["--at", RULE_DATE, "--timeout", "10s"])
            .args(extra);
        tokio::task::spawn_blocking(move || command.output())
    };
    let human = run(vec!["--html".into(), html_path.display().to_string()])
        .await
        .unwrap()
        .expect("mpic-primary runs (did `make build` build it?)");
    let json = run(vec!["--json".into()]).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&json.stderr);
    let output = Output {
        human: String::from_utf8_lossy(&human.stdout).into_owned(),
        human_code: human.status.code(),
        json: serde_json::from_slice(&json.stdout)
            .unwrap_or_else(|e| panic!("{name}: JSON output ({e}); stderr: {stderr}")),
        json_code: json.status.code(),
        html: std::fs::read_to_string(&html_path).unwrap(),
        html_path,
    };
    eprintln!("--- {name} ---\n{}", output.human);
    output
}

/// The perspectives on each side of the first finding of `cause`, from the JSON.
fn sides(json: &Value, cause: &str) -> Vec<Vec<String>> {
    let findings = json["targets"][0]["findings"].as_array().unwrap();
    let finding = findings
        .iter()
        .find(|f| f["cause"] == cause)
        .unwrap_or_else(|| panic!("no {cause} finding in {findings:#?}"));
    finding["sides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|side| {
            side["perspectives"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

fn assert_all(output: &Output, exit: i32, human: &[&str], html: &[&str]) {
    assert_eq!(output.human_code, Some(exit), "{}", output.human);
    assert_eq!(output.json_code, Some(exit));
    assert_eq!(
        output.json["permitted"].as_bool(),
        Some(exit == 0),
        "{:#}",
        output.json
    );
    for text in human {
        assert!(
            output.human.contains(text),
            "no {text:?} in\n{}",
            output.human
        );
    }
    for text in html {
        assert!(output.html.contains(text), "no {text:?} in the HTML page");
    }
    for external in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(
            !output.html.contains(external),
            "the page is self-contained: no {external:?}"
        );
    }
}

/// Renders the page in headless Chromium: the DOM it builds must hold `texts`; a screenshot
/// goes to `target/mpic-primary-<name>.png` (the README's picture is one of these).
fn render_in_chromium(page: &Path, name: &str, texts: &[&str]) {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} not found: install the Debian package `chromium` (tools/setup does)"
    );
    let profile = tempfile::tempdir().unwrap();
    let common = |command: &mut Command| {
        command.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1000",
        ]);
        command.arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut dump = Command::new(CHROMIUM);
    common(&mut dump);
    let dom = dump
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    for text in texts {
        assert!(
            dom_text.contains(text),
            "Chromium's DOM has no {text:?}; stderr: {}",
            String::from_utf8_lossy(&dom.stderr)
        );
    }
    let target_dir = binary_path("mpic-primary")
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap();
    let screenshot = target_dir.join(format!("mpic-primary-{name}.png"));
    let mut shot = Command::new(CHROMIUM);
    common(&mut shot);
    let status = shot
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000),
        "no screenshot at {}: {}",
        screenshot.display(),
        String::from_utf8_lossy(&status.stderr)
    );
    let _ = std::fs::copy(page, target_dir.join(format!("mpic-primary-{name}.html")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_explains_split_horizon_firewall_and_propagation() {
    let setup = start().await;

    // Split horizon: APNIC's view names another CA; 2 of 3 corroborate in two RIRs.
    let caa = check(
        &setup,
        "split-horizon",
        &[
            "geo.lab.test",
            "--check",
            "caa",
            "--issuer-domain",
            "ca.example",
        ],
    )
    .await;
    assert_all(
        &caa,
        0,
        &[
            "issuance permitted: 2 of 3 remote perspectives corroborate",
            "[split_horizon] geo.lab.test CAA: 2 different answers",
            "issue \"other-ca.example\"",
        ],
        &[
            "split_horizon",
            "&quot;other-ca.example&quot;",
            "issuance permitted",
        ],
    );
    assert_eq!(
        sides(&caa.json, "split_horizon"),
        [vec!["lab-arin", "lab-ripe"], vec!["lab-apnic"]]
    );
    render_in_chromium(
        &caa.html_path,
        "split-horizon",
        &["split_horizon", "other-ca.example", "lab-apnic"],
    );

    // Firewall: the web server resets RIPE's address (127.0.0.3); 2 of 3 corroborate.
    let http = check(
        &setup,
        "firewall",
        &[
            "www.lab.test",
            "--check",
            "dcv",
            "--method",
            "acme-http-01",
            "--token",
            TOKEN,
            "--key-authorization",
            KEY_AUTHORIZATION,
        ],
    )
    .await;
    assert_all(
        &http,
        0,
        &["[unreachable]", "lab-ripe connects from 127.0.0.3"],
        &["unreachable", "lab-ripe connects from 127.0.0.3"],
    );
    assert_eq!(
        sides(&http.json, "unreachable"),
        [vec!["lab-ripe"], vec!["lab-arin", "lab-apnic"]]
    );
    render_in_chromium(
        &http.html_path,
        "firewall",
        &["lab-ripe connects from 127.0.0.3"],
    );

    // Propagation: only ns1 has the new record; RIPE and APNIC ask ns2; refused.
    let txt = check(
        &setup,
        "propagation",
        &[
            "new.lab.test",
            "--check",
            "dcv",
            "--method",
            "dns-change",
            "--expect",
            "tok-2026-0123456789abcdef",
            "--record-type",
            "TXT",
        ],
    )
    .await;
    assert_all(
        &txt,
        1,
        &[
            "issuance refused: 2 of 3 remote perspectives did not corroborate",
            "[propagation] new.lab.test TXT: present for 1 perspective(s), absent for 2",
            "tok-2026-0123456789abcdef",
        ],
        &["propagation", "issuance refused", "NXDOMAIN"],
    );
    assert_eq!(
        sides(&txt.json, "propagation"),
        [vec!["lab-arin"], vec!["lab-ripe", "lab-apnic"]]
    );
    render_in_chromium(&txt.html_path, "propagation", &["propagation", "lab-ripe"]);
}
