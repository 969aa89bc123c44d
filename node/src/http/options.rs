//! How the fetcher behaves: the caps, timeouts, lab overrides and egress addresses it is built
//! with (from `[http]` and `[dangerous]`, see `config::http`).

use std::net::IpAddr;
use std::time::Duration;

use super::redirect::RedirectPolicy;
use crate::config::{DangerousConfig, HttpConfig};

/// How the fetcher behaves.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The User-Agent sent (CAs publish theirs; some sites allow-list it).
    pub user_agent: String,
    /// Most body bytes read; the rest is not read (the result says it was truncated).
    pub max_body_bytes: usize,
    /// Most bytes of a response head (status line and headers).
    pub max_header_bytes: usize,
    /// Longest wait for one TCP connect (and TLS handshake).
    pub connect_timeout: Duration,
    /// Longest wait for one hop, from connect to the last body byte.
    pub hop_timeout: Duration,
    /// Connect to reserved addresses too (`[dangerous] allow_private_targets`; labs only).
    pub allow_private: bool,
    /// Look up AAAA and try IPv6 first.
    pub use_ipv6: bool,
    /// The redirect rules.
    pub redirects: RedirectPolicy,
    /// Lab override of the TCP port dialled for port 80 (`None` in production).
    pub http_port: Option<u16>,
    /// Lab override of the TCP port dialled for port 443 (`None` in production).
    pub https_port: Option<u16>,
    /// Source address for IPv4 connections (`None`: the OS picks).
    pub egress_ipv4: Option<IpAddr>,
    /// Source address for IPv6 connections (`None`: the OS picks).
    pub egress_ipv6: Option<IpAddr>,
    /// Keep idle connections per (address, TLS name) and reuse them.
    pub reuse_connections: bool,
    /// How long an idle connection is kept.
    pub idle_timeout: Duration,
    /// Most idle connections kept in all.
    pub max_idle_connections: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            user_agent: crate::config::http::DEFAULT_USER_AGENT.into(),
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            connect_timeout: Duration::from_secs(5),
            hop_timeout: Duration::from_secs(10),
            allow_private: false,
            use_ipv6: true,
            redirects: RedirectPolicy::default(),
            http_port: None,
            https_port: None,
            egress_ipv4: None,
            egress_ipv6: None,
            reuse_connections: true,
            idle_timeout: Duration::from_secs(2),
            max_idle_connections: 256,
        }
    }
}

impl FetchOptions {
    /// The fetcher's options `[http]` asks for, with the `[dangerous]` lab overrides applied.
    pub fn from_config(http: &HttpConfig, dangerous: &DangerousConfig) -> Self {
        Self {
            user_agent: http.user_agent.clone(),
            max_body_bytes: http.max_body_bytes,
            max_header_bytes: http.max_header_bytes,
            connect_timeout: http.connect_timeout,
            hop_timeout: http.hop_timeout,
            allow_private: dangerous.allow_private_targets,
            use_ipv6: http.use_ipv6,
            redirects: RedirectPolicy {
                max_hops: http.max_redirects,
                ..RedirectPolicy::default()
            },
            http_port: dangerous.http_port,
            https_port: dangerous.https_port,
            egress_ipv4: http.egress_ipv4,
            egress_ipv6: http.egress_ipv6,
            reuse_connections: http.reuse_connections,
            idle_timeout: http.idle_timeout,
            max_idle_connections: http.max_idle_connections,
        }
    }
}
