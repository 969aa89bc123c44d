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

/// `mpic-node <args>` under `prlimit --nofile=<soft>:<hard>`.
fn under_prlimit(soft: u64, hard: u64) -> Command {
    let mut command = Command::new("prlimit");
    command
        .arg(format!("--nofile={soft}:{hard}"))
        .arg(binary_path("mpic-node"));
    command
}

/// `mpic-node run` under `prlimit` until its ready line: the `Max open files` line of its
/// `/proc/<pid>/limits`, and what it logged, after SIGTERM.
fn run_under_prlimit(config: &std::path::Path, soft: u64, hard: u64) -> (String, String) {
    use std::io::BufRead as _;
    let log_path = config.with_file_name(format!("run-{soft}-{hard}.log"));
    let mut child = under_prlimit(soft, hard)
        .arg("run")
        .arg("--config")
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("ready ") {
                let _ = sender.send(line);
            }
        }
    });
    let ready = receiver.recv_timeout(std::time::Duration::from_secs(60));
    // prlimit execs the node: the child's pid is the node's.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(ready.is_ok(), "no ready line: {log}");
    assert_eq!(status.code(), Some(0), "{log}");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (line, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_file_limit_below_the_admission_needs_is_flagged_and_the_soft_limit_raised() {
    let lab = Lab::new();
    // Needs 4 requests × 100 targets × 2 + 64 = 864 descriptors.
    let options = NodeOptions::new("fd-node", Rir::Arin).with(
        "limits",
        "max_in_flight_requests = 4\nmax_in_flight_per_primary = 4\nmax_targets_per_request = 100",
    );
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let config = node.config_path.clone();
    node.terminate().unwrap();

    tokio::task::spawn_blocking(move || {
        let doctor = |soft, hard| {
            crate::support::json_output(
                under_prlimit(soft, hard)
                    .arg("doctor")
                    .arg("--config")
                    .arg(&config)
                    .args(["--offline", "--json"]),
            )
        };
        // A hard limit below the need: a warning naming the need and its terms, not a failure.
        let (code, report) = doctor(256, 256);
        assert_eq!(code, Some(0), "{report}");
        let (verdict, detail) = status(&report, "open files");
        assert_eq!(verdict, "warn", "{report}");
        assert!(
            detail.starts_with("hard open-file limit 256 is below")
                && detail.contains("864 (= limits.max_in_flight_requests 4 × limits.max_targets_per_request 100 × 2 + 64)")
                && detail.ends_with("(soft 256)"),
            "{detail}"
        );
        // A hard limit that covers it passes: the node will raise its soft limit to it.
        let (_, report) = doctor(256, 1000);
        let (verdict, detail) = status(&report, "open files");
        assert_eq!(verdict, "pass", "{report}");
        assert!(detail.starts_with("hard limit 1000 "), "{detail}");

        // At start the soft limit is raised to the hard one, and the raise is logged.
        let (limits, log) = run_under_prlimit(&config, 256, 1000);
        assert_eq!(limits, "Max open files 1000 1000 files", "{log}");
        assert!(log.contains("raised to the hard limit"), "{log}");
        assert!(!log.contains("is below"), "{log}");
        // Below the need even after raising: the node still starts, with a warning.
        let (limits, log) = run_under_prlimit(&config, 256, 256);
        assert_eq!(limits, "Max open files 256 256 files", "{log}");
        assert!(log.contains("open-file limit 256 is below"), "{log}");
        assert!(!log.contains("raised to the hard limit"), "{log}");
    })
    .await
    .unwrap();
}
