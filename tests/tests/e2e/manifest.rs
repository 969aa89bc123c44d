//! The perspective manifest end to end: `mpic-node manifest` and the metrics listener's
//! `/manifest.json` both verify with the node's key, list what the config says, and fail
//! verification once altered.

use std::process::Command;

use mpic_protocol::Rir;
use mpic_protocol::manifest::{KeyStatus, ManifestError, SignedManifest};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::http_get};

use crate::support::Lab;

#[test]
fn the_manifest_verifies_with_the_node_key_and_fails_when_altered() {
    let lab = Lab::new();
    let options = NodeOptions::new("manifest-node", Rir::Lacnic)
        .with(
            "http",
            "user_agent = \"example-ca-validation/1.0\"\negress_ipv4 = \"127.0.0.1\"",
        )
        .with(
            "manifest",
            "egress_prefixes = [\"127.0.0.0/8\", \"::1/128\"]",
        );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();

    let printed = Command::new(binary_path("mpic-node"))
        .args(["manifest", "--config"])
        .arg(&node.config_path)
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let served = http_get(node.metrics, "/manifest.json").unwrap();
    for text in [String::from_utf8(printed.stdout).unwrap(), served] {
        let signed: SignedManifest = serde_json::from_str(&text).unwrap();
        let manifest = signed.verify(&node.verifying_key).unwrap();
        assert_eq!(manifest.perspective_id.as_str(), "manifest-node");
        assert_eq!(manifest.rir, Rir::Lacnic);
        assert_eq!(manifest.location, "loopback");
        assert_eq!(manifest.http_user_agent, "example-ca-validation/1.0");
        assert_eq!(manifest.egress.ipv4, ["127.0.0.1"]);
        assert_eq!(manifest.egress.prefixes, ["127.0.0.0/8", "::1/128"]);
        assert_eq!(manifest.software_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(manifest.keys.len(), 1);
        assert_eq!(manifest.keys[0].status, KeyStatus::Current);
        assert_eq!(
            manifest.keys[0].key_id,
            node.verifying_key.key_id().to_string()
        );

        let mut altered = signed.clone();
        altered.payload = altered.payload.replace("127.0.0.0/8", "0.0.0.0/0");
        assert_ne!(altered.payload, signed.payload);
        assert!(matches!(
            altered.verify(&node.verifying_key),
            Err(ManifestError::Signature(_))
        ));
    }
}
