//! `[dns]`: the DNS client's mode, servers, limits, cache and egress, validated into
//! [`DnsConfig`] (the DNS client turns it into its settings: `dns::settings`).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::RawDns;
use super::validate::{Problems, bounded, duration, socket_address};

/// One query's wait: long enough for a far server (typical RTT < 300 ms), short enough that a
/// dead server leaves time for the next within a check's budget.
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Allowed `dns.query_timeout`.
pub const QUERY_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(50)..=Duration::from_secs(30);
/// Queries per lookup: a deep delegation with a few dead servers needs ~20; more means a broken
/// or hostile zone (NXNSAttack-style fan-out).
pub const DEFAULT_MAX_QUERIES: usize = 64;
/// Allowed `dns.max_queries_per_lookup`.
pub const MAX_QUERIES_RANGE: RangeInclusive<usize> = 1..=1000;
/// Referrals per resolution: real names are rarely more than 5 cuts deep.
pub const DEFAULT_MAX_REFERRALS: usize = 16;
/// Allowed `dns.max_referrals`.
pub const MAX_REFERRALS_RANGE: RangeInclusive<usize> = 1..=64;
/// CNAMEs per lookup: CDNs use 2-4; Boulder allows a handful.
pub const DEFAULT_MAX_CNAME_CHAIN: usize = 8;
/// Allowed `dns.max_cname_chain`.
pub const MAX_CNAME_CHAIN_RANGE: RangeInclusive<usize> = 1..=32;
/// Answers are kept at most a minute: CAA and challenge records must be seen fresh by each
/// perspective for corroboration to mean anything.
pub const DEFAULT_MAX_CACHE_TTL: Duration = Duration::from_secs(60);
/// Allowed `dns.max_cache_ttl` (0 disables answer caching).
pub const MAX_CACHE_TTL_RANGE: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(3600);
/// Delegations change rarely and cost several queries to rediscover.
pub const DEFAULT_MAX_DELEGATION_TTL: Duration = Duration::from_secs(3600);
/// Allowed `dns.max_delegation_ttl`.
pub const MAX_DELEGATION_TTL_RANGE: RangeInclusive<Duration> =
    Duration::ZERO..=Duration::from_secs(2 * 86_400);
/// Cache entries: ~100 k names covers a busy perspective's working set.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 100_000;
/// Allowed `dns.cache_max_entries`.
pub const CACHE_MAX_ENTRIES_RANGE: RangeInclusive<usize> = 0..=10_000_000;
/// Cache bytes: 64 MiB, a small share of a colo server's memory.
pub const DEFAULT_CACHE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Allowed `dns.cache_max_bytes`.
pub const CACHE_MAX_BYTES_RANGE: RangeInclusive<usize> = 0..=(16 << 30);

/// Queries in flight to one server address: far above what one zone needs from a node (answers
/// take milliseconds), far below DNS providers' per-source concurrent-session caps.
pub const DEFAULT_SERVER_MAX_IN_FLIGHT: usize = 100;
/// Allowed `dns.server_max_in_flight`.
pub const SERVER_MAX_IN_FLIGHT_RANGE: RangeInclusive<usize> = 1..=10_000;
/// Queries per second to one server address: the order of the per-source limits large DNS
/// hosts publish, so the node is never the source a provider has to rate-limit.
pub const DEFAULT_SERVER_MAX_RATE: u32 = 1_000;
/// Allowed `dns.server_max_rate`.
pub const SERVER_MAX_RATE_RANGE: RangeInclusive<u32> = 1..=1_000_000;
/// Server addresses remembered (Unbound's `infra-cache-numhosts`).
pub const DEFAULT_SERVER_TABLE_ENTRIES: usize = 10_000;
/// Allowed `dns.server_table_entries`.
pub const SERVER_TABLE_ENTRIES_RANGE: RangeInclusive<usize> = 16..=10_000_000;

/// Where queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsModeConfig {
    /// Iterate from the root hints (the default for a production perspective).
    Iterative {
        /// A hints file replacing the built-in IANA hints.
        root_hints: Option<PathBuf>,
    },
    /// Ask these recursive resolvers (RD=1).
    Forward {
        /// The resolvers.
        upstreams: Vec<SocketAddr>,
    },
}

/// The validated `[dns]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Iterative or forward.
    pub mode: DnsModeConfig,
    /// Port of authoritative servers in iterative mode (53 except in test labs).
    pub authoritative_port: u16,
    /// One query's wait.
    pub query_timeout: Duration,
    /// Queries per lookup.
    pub max_queries_per_lookup: usize,
    /// Referrals per resolution.
    pub max_referrals: usize,
    /// CNAMEs per lookup.
    pub max_cname_chain: usize,
    /// Longest an answer is cached.
    pub max_cache_ttl: Duration,
    /// Longest a delegation is cached.
    pub max_delegation_ttl: Duration,
    /// Cache entries.
    pub cache_max_entries: usize,
    /// Cache bytes.
    pub cache_max_bytes: usize,
    /// 0x20 case randomisation.
    pub case_randomisation: bool,
    /// Use name servers' IPv6 addresses.
    pub use_ipv6: bool,
    /// IPv4 source address.
    pub egress_ipv4: Option<IpAddr>,
    /// IPv6 source address.
    pub egress_ipv6: Option<IpAddr>,
    /// Validate DNSSEC (BR 3.2.2.8.1, SC-085) or not.
    pub dnssec: DnssecMode,
    /// Trust anchor file replacing the built-in IANA root anchors (test labs).
    pub trust_anchor: Option<PathBuf>,
    /// Queries in flight to one server address at most.
    pub server_max_in_flight: usize,
    /// Queries per second to one server address at most.
    pub server_max_rate: u32,
    /// Server addresses whose RTT, backoff and budget are remembered.
    pub server_table_entries: usize,
}

/// `dns.dnssec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnssecMode {
    /// Ask for signatures and validate every answer to the trust anchor (the default).
    Validate,
    /// No DNSSEC: every answer's status is absent. For diagnosis and benchmarks only.
    Off,
}

impl Default for DnsConfig {
    /// Every key at its default: iterative from the IANA hints, validating.
    fn default() -> Self {
        Self {
            mode: DnsModeConfig::Iterative { root_hints: None },
            authoritative_port: 53,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
            max_queries_per_lookup: DEFAULT_MAX_QUERIES,
            max_referrals: DEFAULT_MAX_REFERRALS,
            max_cname_chain: DEFAULT_MAX_CNAME_CHAIN,
            max_cache_ttl: DEFAULT_MAX_CACHE_TTL,
            max_delegation_ttl: DEFAULT_MAX_DELEGATION_TTL,
            cache_max_entries: DEFAULT_CACHE_MAX_ENTRIES,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            case_randomisation: false,
            use_ipv6: true,
            egress_ipv4: None,
            egress_ipv6: None,
            dnssec: DnssecMode::Validate,
            trust_anchor: None,
            server_max_in_flight: DEFAULT_SERVER_MAX_IN_FLIGHT,
            server_max_rate: DEFAULT_SERVER_MAX_RATE,
            server_table_entries: DEFAULT_SERVER_TABLE_ENTRIES,
        }
    }
}

pub(super) fn egress(
    key: &str,
    text: Option<String>,
    want_v4: bool,
    p: &mut Problems,
) -> Option<Option<IpAddr>> {
    let Some(text) = text else { return Some(None) };
    match text.parse::<IpAddr>() {
        Ok(ip) if ip.is_ipv4() == want_v4 => Some(Some(ip)),
        Ok(ip) => {
            let (family, kind) = if want_v4 {
                ("an IPv4", "IPv4")
            } else {
                ("an IPv6", "IPv6")
            };
            p.push(
                key,
                format!("{ip} is not {family} address (expected one of this host's own {kind} addresses)"),
            );
            None
        }
        Err(_) => {
            p.push(
                key,
                format!("{text:?} is not an IP address (expected the host's own source address)"),
            );
            None
        }
    }
}

/// `dns.mode` with its `upstreams` or `root_hints`.
fn mode(raw: &RawDns, base_dir: &Path, p: &mut Problems) -> Option<DnsModeConfig> {
    match raw.mode.as_deref().unwrap_or("iterative") {
        "iterative" => {
            if raw.upstreams.is_some() {
                p.push("dns.upstreams", "is only used with mode = \"forward\" (remove it, or set dns.mode = \"forward\")");
                None
            } else {
                Some(DnsModeConfig::Iterative {
                    root_hints: raw.root_hints.as_ref().map(|path| base_dir.join(path)),
                })
            }
        }
        "forward" => {
            if raw.root_hints.is_some() {
                p.push("dns.root_hints", "is only used with mode = \"iterative\"");
            }
            match raw.upstreams.as_deref() {
                None | Some([]) => {
                    p.push("dns.upstreams", "is required with mode = \"forward\" (expected resolvers such as [\"127.0.0.1:53\"])");
                    None
                }
                Some(texts) => {
                    let parsed: Vec<Option<SocketAddr>> = texts
                        .iter()
                        .enumerate()
                        .map(|(i, text)| socket_address(&format!("dns.upstreams[{i}]"), text, p))
                        .collect();
                    parsed
                        .into_iter()
                        .collect::<Option<Vec<_>>>()
                        .map(|upstreams| DnsModeConfig::Forward { upstreams })
                }
            }
        }
        other => {
            p.push(
                "dns.mode",
                format!("{other:?} is not a mode (expected \"iterative\" or \"forward\")"),
            );
            None
        }
    }
}

/// `dns.dnssec`: `validate` (the default) or `off`.
fn dnssec_mode(text: Option<&str>, p: &mut Problems) -> Option<DnssecMode> {
    match text.unwrap_or("validate") {
        "validate" => Some(DnssecMode::Validate),
        "off" => Some(DnssecMode::Off),
        other => {
            p.push(
                "dns.dnssec",
                format!("{other:?} is not a DNSSEC mode (expected \"validate\" or \"off\")"),
            );
            None
        }
    }
}

/// `dns.server_max_in_flight`, `dns.server_max_rate` and `dns.server_table_entries`.
fn server_budget(raw: &RawDns, p: &mut Problems) -> (Option<usize>, Option<u32>, Option<usize>) {
    let server_max_in_flight = bounded(
        "dns.server_max_in_flight",
        raw.server_max_in_flight,
        DEFAULT_SERVER_MAX_IN_FLIGHT,
        SERVER_MAX_IN_FLIGHT_RANGE,
        p,
    );
    let server_max_rate = bounded(
        "dns.server_max_rate",
        raw.server_max_rate,
        DEFAULT_SERVER_MAX_RATE,
        SERVER_MAX_RATE_RANGE,
        p,
    );
    let server_table_entries = bounded(
        "dns.server_table_entries",
        raw.server_table_entries,
        DEFAULT_SERVER_TABLE_ENTRIES,
        SERVER_TABLE_ENTRIES_RANGE,
        p,
    );
    (server_max_in_flight, server_max_rate, server_table_entries)
}

pub(super) fn validate(raw: RawDns, base_dir: &Path, p: &mut Problems) -> Option<DnsConfig> {
    let mode = mode(&raw, base_dir, p);
    let (server_max_in_flight, server_max_rate, server_table_entries) = server_budget(&raw, p);
    let authoritative_port = bounded(
        "dns.authoritative_port",
        raw.authoritative_port,
        53u16,
        1..=u16::MAX,
        p,
    );
    let query_timeout = duration(
        "dns.query_timeout",
        raw.query_timeout,
        DEFAULT_QUERY_TIMEOUT,
        QUERY_TIMEOUT_RANGE,
        p,
    );
    let max_queries_per_lookup = bounded(
        "dns.max_queries_per_lookup",
        raw.max_queries_per_lookup,
        DEFAULT_MAX_QUERIES,
        MAX_QUERIES_RANGE,
        p,
    );
    let max_referrals = bounded(
        "dns.max_referrals",
        raw.max_referrals,
        DEFAULT_MAX_REFERRALS,
        MAX_REFERRALS_RANGE,
        p,
    );
    let max_cname_chain = bounded(
        "dns.max_cname_chain",
        raw.max_cname_chain,
        DEFAULT_MAX_CNAME_CHAIN,
        MAX_CNAME_CHAIN_RANGE,
        p,
    );
    let max_cache_ttl = duration(
        "dns.max_cache_ttl",
        raw.max_cache_ttl,
        DEFAULT_MAX_CACHE_TTL,
        MAX_CACHE_TTL_RANGE,
        p,
    );
    let max_delegation_ttl = duration(
        "dns.max_delegation_ttl",
        raw.max_delegation_ttl,
        DEFAULT_MAX_DELEGATION_TTL,
        MAX_DELEGATION_TTL_RANGE,
        p,
    );
    let cache_max_entries = bounded(
        "dns.cache_max_entries",
        raw.cache_max_entries,
        DEFAULT_CACHE_MAX_ENTRIES,
        CACHE_MAX_ENTRIES_RANGE,
        p,
    );
    let cache_max_bytes = bounded(
        "dns.cache_max_bytes",
        raw.cache_max_bytes,
        DEFAULT_CACHE_MAX_BYTES,
        CACHE_MAX_BYTES_RANGE,
        p,
    );
    let egress_ipv4 = egress("dns.egress_ipv4", raw.egress_ipv4, true, p);
    let egress_ipv6 = egress("dns.egress_ipv6", raw.egress_ipv6, false, p);
    let dnssec = dnssec_mode(raw.dnssec.as_deref(), p);
    Some(DnsConfig {
        mode: mode?,
        authoritative_port: authoritative_port?,
        query_timeout: query_timeout?,
        max_queries_per_lookup: max_queries_per_lookup?,
        max_referrals: max_referrals?,
        max_cname_chain: max_cname_chain?,
        max_cache_ttl: max_cache_ttl?,
        max_delegation_ttl: max_delegation_ttl?,
        cache_max_entries: cache_max_entries?,
        cache_max_bytes: cache_max_bytes?,
        case_randomisation: raw.case_randomisation.unwrap_or(false),
        use_ipv6: raw.use_ipv6.unwrap_or(true),
        egress_ipv4: egress_ipv4?,
        egress_ipv6: egress_ipv6?,
        dnssec: dnssec?,
        trust_anchor: raw.trust_anchor.map(|path| base_dir.join(path)),
        server_max_in_flight: server_max_in_flight?,
        server_max_rate: server_max_rate?,
        server_table_entries: server_table_entries?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    const BASE: &str = "[perspective]\nid = \"t\"\nrir = \"ARIN\"\nlocation = \"x\"\n[quic]\ncertificate = \"c\"\nprivate_key = \"k\"\nclient_ca = \"a\"\n[signing]\nkey = \"s\"\n";

    fn parse(dns: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&format!("{BASE}[dns]\n{dns}\n"), Path::new("/etc/mpic"))
    }

    fn problem_keys(dns: &str) -> Vec<String> {
        match parse(dns) {
            Err(ConfigError::Invalid(problems)) => problems.into_iter().map(|p| p.key).collect(),
            other => panic!("{dns}: expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_iterative_from_the_iana_hints() {
        let config = parse("").unwrap().dns;
        assert_eq!(config, DnsConfig::default());
        assert_eq!(config.mode, DnsModeConfig::Iterative { root_hints: None });
        assert_eq!(config.authoritative_port, 53);
        assert_eq!(config.query_timeout, DEFAULT_QUERY_TIMEOUT);
        assert_eq!(config.max_cache_ttl, Duration::from_secs(60));
        assert!(!config.case_randomisation);
        assert!(config.use_ipv6);
        assert_eq!(config.dnssec, DnssecMode::Validate);
        assert_eq!(
            (config.server_max_in_flight, config.server_max_rate),
            (100, 1000)
        );
        let config =
            parse("server_max_in_flight = 8\nserver_max_rate = 50\nserver_table_entries = 64")
                .unwrap()
                .dns;
        assert_eq!(
            (
                config.server_max_in_flight,
                config.server_max_rate,
                config.server_table_entries
            ),
            (8, 50, 64)
        );
    }

    #[test]
    fn forward_mode_takes_upstreams_and_relative_hints_resolve() {
        let config = parse("mode = \"forward\"\nupstreams = [\"127.0.0.1:53\", \"[::1]:5353\"]")
            .unwrap()
            .dns;
        assert_eq!(
            config.mode,
            DnsModeConfig::Forward {
                upstreams: vec![
                    "127.0.0.1:53".parse().unwrap(),
                    "[::1]:5353".parse().unwrap()
                ]
            }
        );
        let config = parse("root_hints = \"hints.zone\"").unwrap().dns;
        assert_eq!(
            config.mode,
            DnsModeConfig::Iterative {
                root_hints: Some(PathBuf::from("/etc/mpic/hints.zone"))
            }
        );
    }

    #[test]
    fn each_rule_names_its_key() {
        let cases: [(&str, &[&str]); 11] = [
            ("dnssec = \"maybe\"", &["dns.dnssec"]),
            ("mode = \"recursive\"", &["dns.mode"]),
            ("mode = \"forward\"", &["dns.upstreams"]),
            (
                "mode = \"forward\"\nupstreams = [\"8.8.8.8\"]",
                &["dns.upstreams[0]"],
            ),
            ("upstreams = [\"127.0.0.1:53\"]", &["dns.upstreams"]),
            ("query_timeout = \"1ms\"", &["dns.query_timeout"]),
            (
                "max_queries_per_lookup = 0",
                &["dns.max_queries_per_lookup"],
            ),
            ("authoritative_port = 70000", &["dns.authoritative_port"]),
            (
                "egress_ipv4 = \"::1\"\negress_ipv6 = \"nope\"",
                &["dns.egress_ipv4", "dns.egress_ipv6"],
            ),
            (
                "max_cache_ttl = \"2h\"\nmax_cname_chain = 99",
                &["dns.max_cname_chain", "dns.max_cache_ttl"],
            ),
            (
                "server_max_in_flight = 0\nserver_max_rate = 0\nserver_table_entries = 1",
                &[
                    "dns.server_max_in_flight",
                    "dns.server_max_rate",
                    "dns.server_table_entries",
                ],
            ),
        ];
        for (text, keys) in cases {
            let mut got = problem_keys(text);
            got.sort();
            let mut want: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{text}");
        }
    }
}
