//! The operator files in `deploy/` stay in step with the code: every metric the alerts and the
//! dashboard use is one the node exports, the dashboard is valid JSON, every alert has an
//! expression, and the systemd unit starts the binary the way the package installs it.

use std::collections::BTreeSet;

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// `mpic_node_*` names used in `text`, histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("mpic_node_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let mut name = &tail[..end];
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(stripped) = name.strip_suffix(suffix)
                && name.starts_with("mpic_node_check_duration")
            {
                name = stripped;
            }
        }
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn alerts_and_dashboard_use_only_exported_metrics() {
    // The metrics module and its files (`metrics/dns.rs`, `metrics/http.rs`, ...).
    let mut exported = metric_names(&read("node/src/metrics.rs"));
    let folder = format!("{}/../node/src/metrics", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&folder).unwrap_or_else(|error| panic!("{folder}: {error}")) {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            exported.extend(metric_names(&std::fs::read_to_string(&path).unwrap()));
        }
    }
    let alerts = read("deploy/prometheus/alerts.yml");
    let dashboard = read("deploy/grafana/mpic-node.json");
    for (file, text) in [("alerts.yml", &alerts), ("mpic-node.json", &dashboard)] {
        let used = metric_names(text);
        assert!(!used.is_empty(), "{file} uses no mpic_node metric");
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics the node does not export: {unknown:?}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&dashboard).unwrap();
    assert_eq!(json["uid"], "mpic-node");
    assert!(json["panels"].as_array().unwrap().len() >= 8);
    // Each rule: an alert name and an expression.
    let alert_count = alerts.matches("- alert: ").count();
    assert!(alert_count >= 10, "{alert_count} alerts");
    assert_eq!(alerts.matches("expr:").count(), alert_count);
    for needed in [
        "MpicNodeCheckErrorRatio",
        "MpicNodeSlowChecks",
        "MpicNodeSheddingLoad",
        "MpicNodeDnssecBogusSpike",
        "MpicNodeClockSkew",
        "MpicNodeCertificateExpiry",
    ] {
        assert!(alerts.contains(needed), "{needed} missing");
    }
}

#[test]
fn the_systemd_unit_runs_the_packaged_binary_with_notify_and_a_watchdog() {
    let unit = read("deploy/systemd/mpic-node.service");
    for line in [
        "Type=notify",
        "ExecStart=/usr/bin/mpic-node run --config /etc/mpic-node/mpic-node.toml",
        "WatchdogSec=",
        "User=mpic-node",
        "StateDirectory=mpic-node",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "RestartPreventExitStatus=2",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "{line} missing from the unit"
        );
    }
}
