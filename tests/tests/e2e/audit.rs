//! The audit log end to end: one JSON line per signed result with the BR 5.4.1 fields, appended
//! to the configured file, which SIGHUP reopens after a rotation.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use mpic_protocol::{Check, DcvCheck, DcvMethod, Rir, Target};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::{NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, probe_target, request};

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn dns_change(identifier: &str) -> Target {
    Target {
        identifier: identifier.into(),
        check: Check::Dcv(DcvCheck {
            method: DcvMethod::DnsChange,
            expected: Some("rv-audit-0123456789abcdefghij".into()),
            prefix: Some("_dc".into()),
            key_authorization: None,
            token: None,
            issuer_domain: None,
            account_uri: None,
            wildcard: false,
            url_scheme: None,
            record_type: None,
            exact_match: false,
            case_insensitive: false,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_result_is_audited_and_sighup_reopens_the_file() {
    let zone = "@ 3600 IN SOA ns.test. h.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\n\
                _dc.audited IN TXT \"rv-audit-0123456789abcdefghij\"\n";
    let dns = DnsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        &[ZoneText {
            origin: "test.",
            text: zone,
        }],
    )
    .await
    .unwrap();
    let lab = Lab::new();
    let path = lab.dir.path().join("audit.jsonl");
    let options = NodeOptions::new("audit-node", Rir::Apnic)
        .with(
            "dns",
            &format!(
                "mode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"",
                dns.address()
            ),
        )
        .with("audit", &format!("path = \"{}\"", path.display()));
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let first = request(vec![dns_change("audited.test"), probe_target("probe.test")]);
    let results = primary.query(0, &first).await.unwrap();
    assert_eq!(results.len(), 2);

    let entries = lines(&path);
    assert_eq!(entries.len(), 2, "{entries:?}");
    let pass = entries
        .iter()
        .find(|e| e["identifier"] == "audited.test")
        .unwrap();
    assert_eq!(pass["request_id"], first.request_id.as_str());
    assert_eq!(pass["nonce"], hex_of(&first.nonce));
    assert_eq!(pass["perspective"], "audit-node");
    assert_eq!(pass["kind"], "dcv");
    assert_eq!(pass["method"], "dns-change");
    assert_eq!(pass["outcome"], "pass", "{pass}");
    assert!(pass["problem"].is_null());
    assert_eq!(pass["evidence"]["dns"][0]["name"], "_dc.audited.test.");
    assert_eq!(pass["key_id"], node.verifying_key.key_id().to_string());
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(pass["signature"].as_str().unwrap())
            .unwrap()
            .len(),
        64
    );
    assert_eq!(
        b64.decode(pass["primary_spki_sha256"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(!pass["primary"].as_str().unwrap().is_empty());
    assert!(pass["received_unix_ms"].as_u64() <= pass["completed_unix_ms"].as_u64());
    assert!(pass["time"].as_str().unwrap().ends_with('Z'));
    let probe = entries
        .iter()
        .find(|e| e["identifier"] == "probe.test")
        .unwrap();
    assert_eq!(probe["outcome"], "unsupported");
    assert_eq!(probe["problem"], "unsupported");

    // logrotate: move the file away, SIGHUP, and the next lines go to a new file.
    let rotated = lab.dir.path().join("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    node.signal("HUP").unwrap();
    for _ in 0..100 {
        if path.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(path.exists(), "SIGHUP did not reopen the audit file");
    let second = request(vec![dns_change("audited.test")]);
    primary.query(0, &second).await.unwrap();
    assert_eq!(lines(&rotated).len(), 2);
    let after = lines(&path);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["request_id"], second.request_id.as_str());
    // 0600: results are the CA's records, not the world's.
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
