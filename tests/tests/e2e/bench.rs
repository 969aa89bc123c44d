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
