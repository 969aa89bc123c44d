//! The config file exactly as serde reads it: every table `deny_unknown_fields`, every optional
//! key an `Option` (its default lives in `super`, next to the rule that checks it).
//!
//! Values that need checking (addresses, durations, registries, ranges) are kept as text or
//! `i64` here so that `super::validate` can report every bad value at once, each under its key
//! path, instead of serde stopping at the first one.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    /// Who this perspective is. Required.
    pub(super) perspective: Option<RawPerspective>,
    /// The QUIC listener the primaries connect to. Required (it names the TLS files).
    pub(super) quic: Option<RawQuic>,
    /// The result-signing key. Required.
    pub(super) signing: Option<RawSigning>,
    /// Admission and request-size limits; every key has a default.
    #[serde(default)]
    pub(super) limits: RawLimits,
    /// The Prometheus listener; every key has a default.
    #[serde(default)]
    pub(super) metrics: RawMetrics,
    /// Drain behaviour on SIGTERM; every key has a default.
    #[serde(default)]
    pub(super) shutdown: RawShutdown,
    /// Log filter and format; every key has a default.
    #[serde(default)]
    pub(super) logging: RawLogging,
    /// Where generated material lives; every key has a default.
    #[serde(default)]
    pub(super) state: RawState,
    /// Options that weaken safety; all off by default.
    #[serde(default)]
    pub(super) dangerous: RawDangerous,
    /// The DNS client; every key has a default.
    #[serde(default)]
    pub(super) dns: RawDns,
    /// The HTTP fetcher and TLS-ALPN prober; every key has a default.
    #[serde(default)]
    pub(super) http: RawHttp,
    /// The audit log; every key has a default.
    #[serde(default)]
    pub(super) audit: RawAudit,
    /// The Open MPIC-compatible HTTP JSON listener; off by default.
    #[serde(default)]
    pub(super) openmpic: RawOpenMpic,
    /// CAA choices the CA makes in its CP/CPS; every key has a default.
    #[serde(default)]
    pub(super) caa: RawCaa,
    /// What the perspective manifest publishes; every key has a default.
    #[serde(default)]
    pub(super) manifest: RawManifest,
    /// The CAs served, with their quotas; none by default.
    #[serde(default)]
    pub(super) tenants: Vec<RawTenant>,
}

/// `[manifest]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    /// Default `[]`: egress prefixes (CIDR) to publish.
    pub(super) egress_prefixes: Option<Vec<String>>,
}

/// `[[tenants]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    /// Required: the tenant's name (`a-z 0-9 _ -`, 1-32 characters; a metric label).
    pub(super) name: Option<String>,
    /// Base64 SHA-256 digests of the tenant's client SubjectPublicKeyInfos.
    pub(super) client_spki_pins: Option<Vec<String>>,
    /// Subject common names of the tenant's client certificates (issued by `quic.client_ca`).
    pub(super) subject_names: Option<Vec<String>>,
    /// Default `100`: token-bucket refill, requests per second.
    pub(super) requests_per_second: Option<i64>,
    /// Default: `requests_per_second`. Token-bucket size.
    pub(super) burst: Option<i64>,
    /// Default `64`: this tenant's requests being worked on.
    pub(super) max_in_flight_requests: Option<i64>,
    /// Default: `limits.max_targets_per_request`. Targets in one request.
    pub(super) max_targets_per_request: Option<i64>,
    /// Default: all. Check kinds allowed (`caa`, `dcv`).
    pub(super) checks: Option<Vec<String>>,
    /// Default: all. DCV methods allowed (wire names).
    pub(super) methods: Option<Vec<String>>,
    /// Default `[]`: Issuer Domain Names for CAA targets that name none.
    pub(super) caa_domains: Option<Vec<String>>,
    /// Default `"1s"`: the retry hint sent with `overloaded`.
    pub(super) retry_after: Option<DurationText>,
}

/// `[caa]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCaa {
    /// Default `false`: match RFC 8657 `validationmethods` labels ignoring ASCII case.
    pub(super) case_insensitive_method_labels: Option<bool>,
}

/// `[openmpic]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpenMpic {
    /// Default `[]` (off): TCP socket addresses of the HTTPS listener.
    pub(super) listen: Option<Vec<String>>,
    /// Default `[]`: Issuer Domain Names for CAA requests that name none.
    pub(super) caa_domains: Option<Vec<String>>,
}

/// `[audit]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    /// Default: standard output. A file to append one JSON line per result to.
    pub(super) path: Option<String>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    /// Default `"mpic-node/<version> (+https://github.com/mpic-node)"`: the User-Agent sent.
    pub(super) user_agent: Option<String>,
    /// Default `8192`: body bytes read per response.
    pub(super) max_body_bytes: Option<i64>,
    /// Default `16384`: response-head bytes accepted.
    pub(super) max_header_bytes: Option<i64>,
    /// Default `"5s"`: one TCP connect (and TLS handshake).
    pub(super) connect_timeout: Option<DurationText>,
    /// Default `"10s"`: one request, connect to last body byte.
    pub(super) hop_timeout: Option<DurationText>,
    /// Default `10`: redirects followed.
    pub(super) max_redirects: Option<i64>,
    /// Default `true`: look up AAAA and try IPv6 first.
    pub(super) use_ipv6: Option<bool>,
    /// Default: the OS picks. Source address for IPv4 connections.
    pub(super) egress_ipv4: Option<String>,
    /// Default: the OS picks. Source address for IPv6 connections.
    pub(super) egress_ipv6: Option<String>,
    /// Default `true`: keep idle connections per (address, TLS name) and reuse them.
    pub(super) reuse_connections: Option<bool>,
    /// Default `"2s"`: how long an idle connection is kept.
    pub(super) idle_timeout: Option<DurationText>,
    /// Default `256`: idle connections kept in all.
    pub(super) max_idle_connections: Option<i64>,
}

/// `[dns]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDns {
    /// Default `"iterative"`: `"iterative"` (from the root hints) or `"forward"`.
    pub(super) mode: Option<String>,
    /// Required in forward mode: recursive resolvers, `ip:port`.
    pub(super) upstreams: Option<Vec<String>>,
    /// Default: the built-in IANA hints. A file of root NS and A/AAAA lines.
    pub(super) root_hints: Option<String>,
    /// Default `53`: port of every authoritative server in iterative mode.
    pub(super) authoritative_port: Option<i64>,
    /// Default `"2s"`: wait for one server before trying the next.
    pub(super) query_timeout: Option<DurationText>,
    /// Default `64`: queries one lookup may send.
    pub(super) max_queries_per_lookup: Option<i64>,
    /// Default `16`: referrals one resolution may follow.
    pub(super) max_referrals: Option<i64>,
    /// Default `8`: CNAMEs one lookup may follow.
    pub(super) max_cname_chain: Option<i64>,
    /// Default `"60s"`: longest an answer is cached.
    pub(super) max_cache_ttl: Option<DurationText>,
    /// Default `"1h"`: longest a delegation (NS + glue) is cached.
    pub(super) max_delegation_ttl: Option<DurationText>,
    /// Default `100000`: cache entries.
    pub(super) cache_max_entries: Option<i64>,
    /// Default `67108864`: cache bytes (estimated).
    pub(super) cache_max_bytes: Option<i64>,
    /// Default `false`: randomise query-name case (0x20) and require it echoed.
    pub(super) case_randomisation: Option<bool>,
    /// Default `true`: also use name servers' IPv6 addresses.
    pub(super) use_ipv6: Option<bool>,
    /// Default: the OS picks. Source address for IPv4 queries.
    pub(super) egress_ipv4: Option<String>,
    /// Default: the OS picks. Source address for IPv6 queries.
    pub(super) egress_ipv6: Option<String>,
    /// Default `"validate"`: `"validate"` or `"off"`.
    pub(super) dnssec: Option<String>,
    /// Default: the IANA root anchors. DS or DNSKEY lines in presentation format.
    pub(super) trust_anchor: Option<String>,
    /// Default `100`: queries in flight to one server address.
    pub(super) server_max_in_flight: Option<i64>,
    /// Default `1000`: queries per second to one server address.
    pub(super) server_max_rate: Option<i64>,
    /// Default `10000`: server addresses whose RTT, backoff and budget are remembered.
    pub(super) server_table_entries: Option<i64>,
}

/// `[perspective]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPerspective {
    /// Required: the perspective id (`A-Z a-z 0-9 . _ -`, 1-64 characters).
    pub(super) id: Option<String>,
    /// Required: `ARIN`, `RIPE`, `APNIC`, `LACNIC` or `AFRINIC`.
    pub(super) rir: Option<String>,
    /// Required: free text for operators and audit logs, 1-128 characters.
    pub(super) location: Option<String>,
    /// Default `false`: a report-only perspective whose results must not count toward quorum.
    pub(super) shadow: Option<bool>,
}

/// `[quic]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQuic {
    /// Default `["[::]:4433"]`: UDP socket addresses to listen on.
    pub(super) listen: Option<Vec<String>>,
    /// Required: node certificate chain, PEM.
    pub(super) certificate: Option<String>,
    /// Required: node private key, PKCS#8 PEM.
    pub(super) private_key: Option<String>,
    /// Required: CA bundle the primaries' client certificates must chain to, PEM.
    pub(super) client_ca: Option<String>,
    /// Default `[]`: base64 SHA-256 digests of admitted client SubjectPublicKeyInfos.
    pub(super) client_spki_pins: Option<Vec<String>>,
    /// Default `"30s"`: close a connection idle for this long.
    pub(super) idle_timeout: Option<DurationText>,
    /// Default `"10s"`: send a keep-alive this often; shorter than `idle_timeout`.
    pub(super) keep_alive_interval: Option<DurationText>,
    /// Default `1024`: concurrent connections across all primaries.
    pub(super) max_connections: Option<i64>,
    /// Default `256`: concurrent bidirectional streams per connection.
    pub(super) max_streams_per_connection: Option<i64>,
}

/// `[signing]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSigning {
    /// Required: Ed25519 result-signing key, PKCS#8 PEM.
    pub(super) key: Option<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    /// Default `1024`: requests being worked on across all primaries.
    pub(super) max_in_flight_requests: Option<i64>,
    /// Default `256`: requests being worked on for one primary.
    pub(super) max_in_flight_per_primary: Option<i64>,
    /// Default `100`: targets in one request.
    pub(super) max_targets_per_request: Option<i64>,
    /// Default `65536`: bytes in one request frame.
    pub(super) max_request_bytes: Option<i64>,
    /// Default `"5s"`: time a primary has to send its whole request.
    pub(super) request_read_timeout: Option<DurationText>,
    /// Default `"30s"`: cap on a request's own deadline.
    pub(super) max_deadline: Option<DurationText>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    /// Default `"127.0.0.1:9464"`: TCP socket address of the Prometheus listener.
    pub(super) listen: Option<String>,
}

/// `[shutdown]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawShutdown {
    /// Default `"10s"`: how long in-flight work may run on after SIGTERM.
    pub(super) grace_period: Option<DurationText>,
}

/// `[logging]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLogging {
    /// Default `"info"`: a `tracing` EnvFilter directive string.
    pub(super) level: Option<String>,
    /// Default `"text"`: `"text"` or `"json"`.
    pub(super) format: Option<String>,
}

/// `[state]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    /// Default `"/var/lib/mpic-node"`: where generated material lives.
    pub(super) directory: Option<String>,
}

/// `[dangerous]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDangerous {
    /// Default `false`: create dev credentials when the configured files are missing.
    pub(super) generate_dev_credentials: Option<bool>,
    /// Default `false`: let checks reach private and reserved addresses.
    pub(super) allow_private_targets: Option<bool>,
    /// Default: none. Dial this port where a check would dial TCP 80 (test labs).
    pub(super) http_port: Option<i64>,
    /// Default: none. Dial this port where a check would dial TCP 443 (test labs).
    pub(super) https_port: Option<i64>,
    /// Default `false`: write no audit log (benchmarks only).
    pub(super) disable_audit_log: Option<bool>,
}

/// A duration as written in the file (`"30s"`, `"250ms"`), parsed later by `humantime` so a bad
/// one is collected with the other problems. Its own visitor makes a bare number (`30`) fail
/// with "expected a duration string such as \"30s\"" rather than serde's generic wording.
#[derive(Debug)]
pub(super) struct DurationText(pub(super) String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a duration string such as \"30s\" or \"250ms\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationText, E> {
                Ok(DurationText(text.to_owned()))
            }
        }

        deserializer.deserialize_str(DurationVisitor)
    }
}
