//! `mpic-bench` as `make test` uses it: its smoke run can fail (a node that cannot resolve makes
//! it exit non-zero), and `zone` prints what an external server must serve.

use std::process::Command;

use mpic_tests::binary_path;

#[test]
fn a_run_whose_checks_fail_exits_non_zero() {
    // DNS pointed at a closed loopback port: every check fails, so the run must fail.
    let output = Command::new(binary_path("mpic-bench"))
        .args([
            "loopback",
            "--names",
            "20",
            "--count",
            "4",
            "--concurrency",
            "4",
            "--quiet",
            "--timeout",
            "2s",
            "--dns",
            "127.0.0.1:9",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("checks did not pass"), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("failures         dns: 4")
            || stdout.contains("failures         timeout: 4"),
        "{stdout}"
    );
}

#[test]
fn zone_prints_every_record_the_mix_needs() {
    let output = Command::new(binary_path("mpic-bench"))
        .args(["zone", "--names", "2", "--http-ip", "192.0.2.80"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let zone = String::from_utf8_lossy(&output.stdout);
    for line in [
        "$ORIGIN bench.test.",
        "@ 1 IN CAA 0 issue \"ca.example\"",
        "n1 1 IN A 192.0.2.80",
        "_dc.n0 1 IN TXT \"x-RandomValue0123456789abcdef\"",
    ] {
        assert!(zone.contains(line), "{line} missing from:\n{zone}");
    }
    assert_eq!(zone.matches("_acme-challenge.").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_drives_a_running_node_serving_the_bench_zone() {
    use mpic_protocol::Rir;
    use mpic_tests::dns_server::{DnsServer, ZoneText};
    use mpic_tests::{NodeOptions, NodeProcess};

    // The zone exactly as `mpic-bench zone` prints it, served by the fixture server.
    let output = Command::new(binary_path("mpic-bench"))
        .args(["zone", "--names", "50"])
        .output()
        .unwrap();
    let zone = String::from_utf8(output.stdout).unwrap();
    let tld = "@ 3600 IN SOA ns.bench.test. h.bench.test. 1 7200 3600 1209600 300\n@ 3600 IN NS ns.bench.test.\n";
    let dns = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[
            ZoneText {
                origin: "bench.test.",
                text: &zone,
            },
            ZoneText {
                origin: "test.",
                text: tld,
            },
        ],
    )
    .await
    .unwrap();
    let lab = crate::support::Lab::new();
    let options = NodeOptions::new("remote-1", Rir::Lacnic).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
            dns.address()
        ),
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let spec = format!(
        "id=remote-1,addr={},key={},rir=LACNIC",
        node.quic,
        node.verifying_key.to_base64()
    );
    let json = lab.dir.path().join("remote.json");
    let output = tokio::task::spawn_blocking({
        let (ca, cert, key) = (
            lab.credentials.path("ca.pem"),
            lab.credentials.path("primary.pem"),
            lab.credentials.path("primary.key"),
        );
        let json = json.clone();
        move || {
            Command::new(binary_path("mpic-bench"))
                .args([
                    "remote", "--node", &spec, "--names", "50", "--count", "40", "--sans", "3",
                ])
                .args(["--mix", "caa=2,dns-01=1,dns-change=1", "--quiet", "--json"])
                .arg(&json)
                .arg("--ca")
                .arg(ca)
                .arg("--cert")
                .arg(cert)
                .arg("--key")
                .arg(key)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["run"]["checks"], 120, "{report}");
    assert_eq!(report["run"]["passed"], 120, "{report}");
    assert_eq!(report["run"]["requests"], 40);
    assert!(report["run"]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
}

#[test]
fn dnssec_bench_validates_in_both_modes() {
    // A short run of each mode: the bench itself fails on a lookup that is not secure or fails.
    for mode in [&[][..], &["--iterative"][..]] {
        let output = Command::new(binary_path("mpic-bench"))
            .args([
                "dnssec",
                "--seconds",
                "1",
                "--names",
                "200",
                "--concurrency",
                "8",
            ])
            .args(mode)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{mode:?}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("ratio validate / off"), "{stdout}");
        assert!(stdout.contains("(failed: 0)"), "{stdout}");
    }
}

#[test]
fn loopback_drives_tls_alpn_01_through_the_binary_and_the_engine() {
    // The loopback node (and engine) dial the fixture's TLS-ALPN server for tls-alpn-01, so
    // every check of the mix passes: 20 requests of 2 targets.
    let node = binary_path("mpic-node");
    for path in [
        vec!["--node-bin".to_owned(), node.display().to_string()],
        vec!["--engine".to_owned()],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("run.json");
        let output = Command::new(binary_path("mpic-bench"))
            .args(["loopback", "--names", "40", "--count", "20", "--sans", "2"])
            .args(["--concurrency", "4", "--quiet", "--timeout", "5s"])
            .args(["--mix", "caa=1,tls-alpn-01=1", "--json"])
            .arg(&json)
            .args(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{path:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report["mix"], "caa=1,tls-alpn-01=1", "{report}");
        assert_eq!(report["run"]["checks"], 40, "{path:?}: {report}");
        assert_eq!(report["run"]["passed"], 40, "{path:?}: {report}");
    }
}
