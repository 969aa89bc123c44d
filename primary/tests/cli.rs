//! The `mpic-primary` binary's usage and configuration errors: exit status 2 and a message
//! naming the key path, before anything touches the network.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step must fail the test loudly"
)]

use std::process::Command;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

fn run(perspectives: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("perspectives.toml");
    std::fs::write(&file, perspectives).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_mpic-primary"))
        .args(["check", "example.com"])
        .arg("--perspectives")
        .arg(&file)
        .args([
            "--ca",
            "/nonexistent/ca.pem",
            "--cert",
            "/nonexistent/p.pem",
        ])
        .args(["--key", "/nonexistent/p.key"])
        .args(extra)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn usage_and_configuration_errors_exit_2() {
    let good = format!(
        "[[perspective]]\nid = \"a\"\nrir = \"ARIN\"\naddress = \"127.0.0.1:4433\"\npublic_key = \"{KEY}\"\n"
    );
    let cases: [(&str, String, &[&str], &str); 5] = [
        (
            "bad_rir",
            good.replace("ARIN", "MARS"),
            &["--check", "caa", "--issuer-domain", "ca.example"],
            "perspective[0].rir: unknown RIR \"MARS\"",
        ),
        (
            "unknown_key",
            good.clone() + "colour = \"blue\"\n",
            &["--check", "caa", "--issuer-domain", "ca.example"],
            "unknown field `colour`",
        ),
        (
            "missing_tls_files",
            good.clone(),
            &["--check", "caa", "--issuer-domain", "ca.example"],
            "--ca /nonexistent/ca.pem",
        ),
        (
            "bad_date",
            good.clone(),
            &["--check", "caa", "--at", "next tuesday"],
            "is not a date",
        ),
        (
            "unknown_check",
            good,
            &["--check", "ocsp"],
            "invalid value 'ocsp'",
        ),
    ];
    for (name, text, extra, message) in cases {
        let (code, stderr) = run(&text, extra);
        assert_eq!(code, Some(2), "case {name}: {stderr}");
        assert!(stderr.contains(message), "case {name}: {stderr}");
    }
}
