//! Turns the validated `[dns]` table ([`DnsConfig`]) into the client's [`DnsSettings`], reading
//! the root hints and trust anchor files it names.

use std::path::PathBuf;

use super::cache::CacheLimits;
use super::root_hints::{RootHints, RootHintsError};
use super::servers::ServerLimits;
use super::transport::TransportConfig;
use super::{DnsSettings, Limits, Mode};
use crate::config::{DnsConfig, DnsModeConfig, DnssecMode};

/// Why the DNS settings could not be built from the configured files.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The root hints file.
    #[error(transparent)]
    RootHints(#[from] RootHintsError),
    /// The trust anchor file cannot be read.
    #[error("dns.trust_anchor: cannot read {path}: {source}")]
    TrustAnchorRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trust anchor file does not parse.
    #[error("dns.trust_anchor: {path}: {source}")]
    TrustAnchor {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: super::dnssec::anchors::AnchorError,
    },
}

impl DnsSettings {
    /// The client settings `[dns]` asks for; reads the root hints and trust anchor files when
    /// configured.
    pub fn from_config(config: &DnsConfig) -> Result<Self, SettingsError> {
        let trust_anchors = match &config.trust_anchor {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    SettingsError::TrustAnchorRead {
                        path: path.clone(),
                        source,
                    }
                })?;
                Some(
                    super::dnssec::anchors::TrustAnchors::parse(&text).map_err(|source| {
                        SettingsError::TrustAnchor {
                            path: path.clone(),
                            source,
                        }
                    })?,
                )
            }
            None => None,
        };
        let mode = match &config.mode {
            DnsModeConfig::Forward { upstreams } => Mode::Forward {
                upstreams: upstreams.clone(),
            },
            DnsModeConfig::Iterative { root_hints } => Mode::Iterative {
                hints: match root_hints {
                    Some(path) => RootHints::from_file(path)?,
                    None => RootHints::iana(),
                },
                port: config.authoritative_port,
            },
        };
        Ok(DnsSettings {
            mode,
            limits: Limits {
                query_timeout: config.query_timeout,
                max_queries: config.max_queries_per_lookup,
                max_referrals: config.max_referrals,
                max_cname_chain: config.max_cname_chain,
                use_ipv6: config.use_ipv6,
                servers: ServerLimits {
                    max_in_flight: config.server_max_in_flight,
                    max_rate: config.server_max_rate,
                    max_servers: config.server_table_entries,
                },
                ..Limits::default()
            },
            cache: CacheLimits {
                max_entries: config.cache_max_entries,
                max_bytes: config.cache_max_bytes,
                max_answer_ttl: config.max_cache_ttl,
                max_delegation_ttl: config.max_delegation_ttl,
            },
            transport: TransportConfig {
                egress_ipv4: config.egress_ipv4,
                egress_ipv6: config.egress_ipv6,
                case_randomisation: config.case_randomisation,
            },
            dnssec: config.dnssec == DnssecMode::Validate,
            trust_anchors,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_iterates_from_the_iana_hints_on_port_53() {
        let settings = DnsSettings::from_config(&DnsConfig::default()).unwrap();
        assert!(matches!(settings.mode, Mode::Iterative { port: 53, .. }));
        assert!(settings.dnssec);
        // The config's defaults and the client's own are the same numbers.
        assert_eq!(settings.limits.servers, ServerLimits::default());
    }
}
