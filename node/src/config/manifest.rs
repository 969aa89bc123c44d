//! `[manifest]`: what the published perspective manifest says beyond what other tables already
//! hold — the egress prefixes validation traffic may come from. Validated into
//! [`ManifestConfig`].

use std::net::IpAddr;

use super::raw::RawManifest;
use super::validate::Problems;

/// Most `manifest.egress_prefixes` entries.
pub const MAX_EGRESS_PREFIXES: usize = 64;

/// The validated `[manifest]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestConfig {
    /// Egress prefixes in CIDR form (`203.0.113.0/24`, `2001:db8::/48`), as written.
    pub egress_prefixes: Vec<String>,
}

pub(super) fn validate(raw: RawManifest, p: &mut Problems) -> Option<ManifestConfig> {
    let prefixes = raw.egress_prefixes.unwrap_or_default();
    if prefixes.len() > MAX_EGRESS_PREFIXES {
        p.push(
            "manifest.egress_prefixes",
            format!(
                "has {} entries (expected at most {MAX_EGRESS_PREFIXES})",
                prefixes.len()
            ),
        );
        return None;
    }
    let mut valid = true;
    for (i, prefix) in prefixes.iter().enumerate() {
        if !is_prefix(prefix) {
            p.push(
                format!("manifest.egress_prefixes[{i}]"),
                format!("{prefix:?} is not a prefix (expected e.g. \"203.0.113.0/24\")"),
            );
            valid = false;
        }
    }
    valid.then_some(ManifestConfig {
        egress_prefixes: prefixes,
    })
}

/// `address/length` with a length the address family allows.
fn is_prefix(text: &str) -> bool {
    let Some((address, length)) = text.split_once('/') else {
        return false;
    };
    let (Ok(address), Ok(length)) = (address.parse::<IpAddr>(), length.parse::<u8>()) else {
        return false;
    };
    length <= if address.is_ipv4() { 32 } else { 128 }
}

#[cfg(test)]
mod tests {
    use super::is_prefix;

    #[test]
    fn prefixes_need_an_address_and_a_length_of_its_family() {
        assert!(is_prefix("203.0.113.0/24"));
        assert!(is_prefix("2001:db8::/48"));
        assert!(!is_prefix("203.0.113.0/33"));
        assert!(!is_prefix("203.0.113.0"));
        assert!(!is_prefix("example/24"));
    }
}
