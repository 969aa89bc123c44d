//! SIGHUP reload end to end: a broken config is rejected and the node keeps serving; a new
//! signing key takes over (the old one stays listed by `info`); a pin list that no longer
//! admits the primary closes its connection at its next request.

use std::process::Command;

use mpic_protocol::{Rir, VerifyingKey};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::primary};

use crate::support::{Lab, probe_target, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rejects_a_broken_config_rotates_the_key_and_applies_pins() {
    let lab = Lab::new();
    let options = NodeOptions::new("reload-node", Rir::Afrinic);
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let config = node.config_path.clone();
    let original = std::fs::read_to_string(&config).unwrap();
    let old_key = node.verifying_key.key_id().to_string();
    let first = primary(&lab.credentials, &[&node]).unwrap();
    let results = first
        .query(0, &request(vec![probe_target("a.test")]))
        .await
        .unwrap();
    assert_eq!(results[0].key_id, old_key);

    // 1. A broken config: rejected, the node keeps serving with the old key.
    std::fs::write(
        &config,
        original.replace("rir = \"AFRINIC\"", "rir = \"MARS\""),
    )
    .unwrap();
    node.signal("HUP").unwrap();
    node.wait_for_metric("mpic_node_config_reloads_total{result=\"rejected\"}", 1.0)
        .unwrap();
    let results = first
        .query(0, &request(vec![probe_target("b.test")]))
        .await
        .unwrap();
    assert_eq!(results[0].key_id, old_key);
    assert!(node.log().contains("reload rejected"), "{}", node.log());

    // 2. A new signing key: results are signed with it, `info` lists the old one as retired.
    let new_path = config.parent().unwrap().join("signing-2.key");
    let keygen = Command::new(binary_path("mpic-node"))
        .args(["keygen", "--out"])
        .arg(&new_path)
        .output()
        .unwrap();
    let public = String::from_utf8_lossy(&keygen.stdout)
        .lines()
        .find_map(|l| {
            l.strip_prefix("public_key = \"")
                .map(|r| r.trim_end_matches('"').to_owned())
        })
        .unwrap();
    let old_path = config.parent().unwrap().join("signing.key");
    assert!(
        !node.log().contains("primary connected"),
        "debug lines before the reload"
    );
    std::fs::write(
        &config,
        original
            .replace(
                &old_path.display().to_string(),
                &new_path.display().to_string(),
            )
            .replace("level = \"info\"", "level = \"info,mpic_node=debug\""),
    )
    .unwrap();
    node.signal("HUP").unwrap();
    node.wait_for_metric("mpic_node_config_reloads_total{result=\"applied\"}", 1.0)
        .unwrap();
    node.verifying_key = VerifyingKey::from_base64(&public).unwrap();
    let rotated = primary(&lab.credentials, &[&node]).unwrap();
    let results = rotated
        .query(0, &request(vec![probe_target("c.test")]))
        .await
        .unwrap();
    assert_eq!(results[0].key_id, node.verifying_key.key_id().to_string());
    assert_ne!(results[0].key_id, old_key);
    // logging.level took effect: the new connection's debug line is there.
    assert!(node.log().contains("primary connected"), "{}", node.log());
    // The primary that still trusts only the old key cannot verify new results.
    assert!(
        first
            .query(0, &request(vec![probe_target("d.test")]))
            .await
            .is_err()
    );
    let info = Command::new(binary_path("mpic-node"))
        .args(["info", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["key_id"], results[0].key_id.as_str());
    assert_eq!(
        info["retired_keys"][0]["key_id"],
        old_key.as_str(),
        "{info}"
    );

    // 3. Pins that no longer admit this primary: its connection closes at the next request.
    let pinned = std::fs::read_to_string(&config).unwrap().replace(
        "[quic]\n",
        "[quic]\nclient_spki_pins = [\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"]\n",
    );
    std::fs::write(&config, pinned).unwrap();
    node.signal("HUP").unwrap();
    node.wait_for_metric("mpic_node_config_reloads_total{result=\"applied\"}", 2.0)
        .unwrap();
    let refused = rotated
        .query(0, &request(vec![probe_target("e.test")]))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(node.terminate().unwrap().success());
}
