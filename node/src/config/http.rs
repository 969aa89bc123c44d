//! `[http]`: the fetcher behind http-01, website change and tls-alpn-01, validated into
//! [`HttpConfig`]; `http::FetchOptions::from_config` turns it (with the `[dangerous]` lab overrides)
//! into what the fetcher takes.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::dns::egress;
use super::raw::RawHttp;
use super::validate::{Problems, bounded, duration};

/// Body bytes read: a challenge file is tiny; a few KiB leaves room for a website-change page.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024;
/// Allowed `http.max_body_bytes`.
pub const MAX_BODY_BYTES_RANGE: RangeInclusive<usize> = 128..=1024 * 1024;
/// Response-head bytes: ample for real sites; refuses header floods.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
/// Allowed `http.max_header_bytes` (hyper needs at least 8 KiB of buffer).
pub const MAX_HEADER_BYTES_RANGE: RangeInclusive<usize> = 8 * 1024..=1024 * 1024;
/// One connect (and TLS handshake): Let's Encrypt dials for 10 s; 5 s leaves a fallback time.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One hop, connect to last body byte.
pub const DEFAULT_HOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Allowed `http.connect_timeout` and `http.hop_timeout`.
pub const TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(60);
/// Redirects followed (Let's Encrypt: 10; Open MPIC: 20).
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// Allowed `http.max_redirects`.
pub const MAX_REDIRECTS_RANGE: RangeInclusive<usize> = 0..=20;
/// An idle pooled connection is kept this long.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(2);
/// Allowed `http.idle_timeout`.
pub const IDLE_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(60);
/// Idle pooled connections kept in all.
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 256;
/// Allowed `http.max_idle_connections`.
pub const MAX_IDLE_CONNECTIONS_RANGE: RangeInclusive<usize> = 1..=65_536;
/// Longest `http.user_agent`.
pub const MAX_USER_AGENT_LEN: usize = 256;

/// The validated `[http]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// The User-Agent sent.
    pub user_agent: String,
    /// Body bytes read per response.
    pub max_body_bytes: usize,
    /// Response-head bytes accepted.
    pub max_header_bytes: usize,
    /// One connect and TLS handshake.
    pub connect_timeout: Duration,
    /// One hop.
    pub hop_timeout: Duration,
    /// Redirects followed.
    pub max_redirects: usize,
    /// Look up AAAA and try IPv6 first.
    pub use_ipv6: bool,
    /// IPv4 source address.
    pub egress_ipv4: Option<IpAddr>,
    /// IPv6 source address.
    pub egress_ipv6: Option<IpAddr>,
    /// Pool idle connections per (address, TLS name).
    pub reuse_connections: bool,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Idle connections kept in all.
    pub max_idle_connections: usize,
}

/// The User-Agent sent when `http.user_agent` is not set: the product and its version.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "mpic-node/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/mpic-node)"
);

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            hop_timeout: DEFAULT_HOP_TIMEOUT,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            use_ipv6: true,
            egress_ipv4: None,
            egress_ipv6: None,
            reuse_connections: true,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_idle_connections: DEFAULT_MAX_IDLE_CONNECTIONS,
        }
    }
}

pub(super) fn validate(raw: RawHttp, p: &mut Problems) -> Option<HttpConfig> {
    let user_agent = user_agent(raw.user_agent, p);
    let max_body_bytes = bounded(
        "http.max_body_bytes",
        raw.max_body_bytes,
        DEFAULT_MAX_BODY_BYTES,
        MAX_BODY_BYTES_RANGE,
        p,
    );
    let max_header_bytes = bounded(
        "http.max_header_bytes",
        raw.max_header_bytes,
        DEFAULT_MAX_HEADER_BYTES,
        MAX_HEADER_BYTES_RANGE,
        p,
    );
    let connect_timeout = duration(
        "http.connect_timeout",
        raw.connect_timeout,
        DEFAULT_CONNECT_TIMEOUT,
        TIMEOUT_RANGE,
        p,
    );
    let hop_timeout = duration(
        "http.hop_timeout",
        raw.hop_timeout,
        DEFAULT_HOP_TIMEOUT,
        TIMEOUT_RANGE,
        p,
    );
    let max_redirects = bounded(
        "http.max_redirects",
        raw.max_redirects,
        DEFAULT_MAX_REDIRECTS,
        MAX_REDIRECTS_RANGE,
        p,
    );
    let idle_timeout = duration(
        "http.idle_timeout",
        raw.idle_timeout,
        DEFAULT_IDLE_TIMEOUT,
        IDLE_TIMEOUT_RANGE,
        p,
    );
    let max_idle_connections = bounded(
        "http.max_idle_connections",
        raw.max_idle_connections,
        DEFAULT_MAX_IDLE_CONNECTIONS,
        MAX_IDLE_CONNECTIONS_RANGE,
        p,
    );
    let egress_ipv4 = egress("http.egress_ipv4", raw.egress_ipv4, true, p);
    let egress_ipv6 = egress("http.egress_ipv6", raw.egress_ipv6, false, p);
    Some(HttpConfig {
        user_agent: user_agent?,
        max_body_bytes: max_body_bytes?,
        max_header_bytes: max_header_bytes?,
        connect_timeout: connect_timeout?,
        hop_timeout: hop_timeout?,
        max_redirects: max_redirects?,
        use_ipv6: raw.use_ipv6.unwrap_or(true),
        egress_ipv4: egress_ipv4?,
        egress_ipv6: egress_ipv6?,
        reuse_connections: raw.reuse_connections.unwrap_or(true),
        idle_timeout: idle_timeout?,
        max_idle_connections: max_idle_connections?,
    })
}

/// `http.user_agent`: 1-[`MAX_USER_AGENT_LEN`] printable ASCII characters, or the default.
fn user_agent(text: Option<String>, p: &mut Problems) -> Option<String> {
    match text {
        None => Some(DEFAULT_USER_AGENT.to_owned()),
        Some(text)
            if !text.is_empty()
                && text.len() <= MAX_USER_AGENT_LEN
                && text.bytes().all(|b| (0x20..0x7f).contains(&b)) =>
        {
            Some(text)
        }
        Some(_) => {
            p.push(
                "http.user_agent",
                format!("expected 1-{MAX_USER_AGENT_LEN} printable ASCII characters (no control characters)"),
            );
            None
        }
    }
}
