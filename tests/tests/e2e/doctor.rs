//! `mpic-node doctor` on a real config: a ready host passes (exit 0), a world-readable signing
//! key fails (exit 1) with the fix in the detail.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use mpic_protocol::Rir;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::{NodeOptions, NodeProcess, binary_path};

use crate::support::Lab;

fn doctor(config: &std::path::Path, target: &str) -> (Option<i32>, serde_json::Value) {
    crate::support::json_output(
        Command::new(binary_path("mpic-node"))
            .arg("doctor")
            .arg("--config")
            .arg(config)
            .args(["--target", target, "--json"]),
    )
}

fn status<'a>(report: &'a serde_json::Value, check: &str) -> (&'a str, &'a str) {
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["check"] == check)
        .unwrap_or_else(|| panic!("no row {check}: {report}"));
    (
        row["status"].as_str().unwrap(),
        row["detail"].as_str().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_ready_host_and_fails_a_readable_key() {
    let root =
        "@ 3600 IN SOA a.root.test. h.test. 1 7200 3600 1209600 60\n@ 3600 IN NS a.root.test.\n";
    let dns = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: ".",
            text: root,
        }],
    )
    .await
    .unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = target.local_addr().unwrap().to_string();
    let lab = Lab::new();
    let options = NodeOptions::new("doctor-node", Rir::RipeNcc).with(
        "dns",
        &format!(
            "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
            dns.address()
        ),
    );
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let config = node.config_path.clone();
    node.terminate().unwrap();

    let cfg = config.clone();
    let t = target.clone();
    let (code, report) = tokio::task::spawn_blocking(move || doctor(&cfg, &t))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["passed"], true);
    for check in [
        "config",
        "quic.certificate",
        "quic.client_ca",
        "quic.private_key",
        "signing.key",
        "state.directory",
        "dns",
    ] {
        assert_eq!(status(&report, check).0, "pass", "{check}: {report}");
    }
    assert_eq!(status(&report, &format!("reach {target} IPv4")).0, "pass");
    assert_eq!(status(&report, &format!("reach {target} IPv6")).0, "skip");
    // The test config allows private targets: flagged, not failed.
    assert_eq!(status(&report, "dangerous options").0, "warn");
    assert!(["pass", "warn"].contains(&status(&report, "clock").0));

    // A signing key others can read is a go-live blocker.
    let key = config.parent().unwrap().join("signing.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = tokio::task::spawn_blocking(move || doctor(&config, &target))
        .await
        .unwrap();
    assert_eq!(code, Some(1), "{report}");
    let (verdict, detail) = status(&report, "signing.key");
    assert_eq!(verdict, "fail");
    assert!(
        detail.contains("mode 0644") && detail.contains("chmod 0640"),
        "{detail}"
    );
}
