//! The node's published perspective manifest ([`mpic_protocol::manifest`]): built from the
//! config and the signing keys, signed with the current result-signing key. Printed by
//! `mpic-node manifest` and served by the metrics listener at `/manifest.json`.

use mpic_protocol::SigningKey;
use mpic_protocol::manifest::{
    Egress, KeyStatus, MANIFEST_VERSION, Manifest, ManifestError, ManifestKey,
};

use crate::config::Config;

/// A retired key as the manifest lists it (from the state directory's record of rotations).
#[derive(Debug, Clone)]
pub struct Retired {
    /// Its key id.
    pub key_id: String,
    /// Its public key, base64.
    pub public_key: String,
    /// When it was retired, UNIX ms.
    pub retired_unix_ms: u64,
    /// Listed until, UNIX ms.
    pub until_unix_ms: u64,
}

/// The manifest of a node running `config` and signing with `key`; `retired` keys are listed
/// with their validity.
pub fn build(config: &Config, key: &SigningKey, retired: &[Retired], now_unix_ms: u64) -> Manifest {
    let address = |ip: Option<std::net::IpAddr>| ip.map(|ip| ip.to_string());
    let mut ipv4: Vec<String> = [config.http.egress_ipv4, config.dns.egress_ipv4]
        .into_iter()
        .filter_map(address)
        .collect();
    ipv4.dedup();
    let mut ipv6: Vec<String> = [config.http.egress_ipv6, config.dns.egress_ipv6]
        .into_iter()
        .filter_map(address)
        .collect();
    ipv6.dedup();
    let dns_source_addresses = [config.dns.egress_ipv4, config.dns.egress_ipv6]
        .into_iter()
        .filter_map(address)
        .collect();
    let mut keys = vec![ManifestKey {
        key_id: key.key_id().to_string(),
        public_key: key.verifying_key().to_base64(),
        status: KeyStatus::Current,
        retired_unix_ms: None,
        valid_until_unix_ms: None,
    }];
    keys.extend(retired.iter().map(|retired| ManifestKey {
        key_id: retired.key_id.clone(),
        public_key: retired.public_key.clone(),
        status: KeyStatus::Retired,
        retired_unix_ms: Some(retired.retired_unix_ms),
        valid_until_unix_ms: Some(retired.until_unix_ms),
    }));
    Manifest {
        version: MANIFEST_VERSION,
        perspective_id: config.perspective.id.clone(),
        rir: config.perspective.rir,
        location: config.perspective.location.clone(),
        egress: Egress {
            ipv4,
            ipv6,
            prefixes: config.manifest.egress_prefixes.clone(),
        },
        http_user_agent: config.http.user_agent.clone(),
        dns_source_addresses,
        keys,
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
        issued_unix_ms: now_unix_ms,
    }
}

/// The signed manifest as published: pretty JSON text with a trailing newline.
pub fn render(
    config: &Config,
    key: &SigningKey,
    retired: &[Retired],
    now_unix_ms: u64,
) -> Result<String, ManifestError> {
    let signed = build(config, key, retired, now_unix_ms).sign(key)?;
    let mut text = serde_json::to_string_pretty(&signed)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mpic_protocol::manifest::SignedManifest;

    use super::*;

    #[test]
    fn the_rendered_manifest_verifies_and_lists_what_to_allow_list() {
        let config = Config::from_toml_str(
            &format!(
                "{}\n[http]\negress_ipv4 = \"203.0.113.10\"\nuser_agent = \"ua/1\"\n\
                 [manifest]\negress_prefixes = [\"203.0.113.0/24\"]\n",
                include_str!("config/default.toml")
            ),
            Path::new("/tmp"),
        )
        .unwrap();
        let (key, _) = SigningKey::generate().unwrap();
        let retired = [Retired {
            key_id: "old".into(),
            public_key: "AAAA".into(),
            retired_unix_ms: 5,
            until_unix_ms: 10,
        }];
        let text = render(&config, &key, &retired, 42).unwrap();
        let signed: SignedManifest = serde_json::from_str(&text).unwrap();
        let manifest = signed.verify(key.verifying_key()).unwrap();
        assert_eq!(manifest.egress.ipv4, ["203.0.113.10"]);
        assert_eq!(manifest.egress.prefixes, ["203.0.113.0/24"]);
        assert_eq!(manifest.http_user_agent, "ua/1");
        assert_eq!(manifest.keys.len(), 2);
        assert_eq!(manifest.keys[1].valid_until_unix_ms, Some(10));
        assert_eq!(manifest.issued_unix_ms, 42);
    }
}
