//! Finding and reaching a target's addresses, shared by the fetcher and the TLS-ALPN prober:
//! fresh AAAA/A lookups through the node's resolver with the reserved-address guard, and TCP
//! connects from the configured egress address under a deadline.

use std::net::{IpAddr, SocketAddr};

use mpic_protocol::DnssecStatus;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::address;
use super::fetch::FetchError;
use crate::dns::Resolver;

/// Why a host's addresses cannot be used (shared by the fetcher and the TLS-ALPN prober).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The host is not a valid DNS name.
    BadHost(String),
    /// The lookups failed.
    Dns(String),
    /// A lookup was DNSSEC-bogus.
    Dnssec(String),
    /// No address, or only reserved ones.
    NoAddress(String),
}

impl ResolveError {
    pub(crate) fn into_fetch_error(self, url: &str, host: &str) -> FetchError {
        let host = host.to_owned();
        match self {
            ResolveError::BadHost(reason) => FetchError::BadUrl {
                url: url.to_owned(),
                reason,
            },
            ResolveError::Dns(detail) => FetchError::Dns { host, detail },
            ResolveError::Dnssec(detail) => FetchError::Dnssec { host, detail },
            ResolveError::NoAddress(detail) => FetchError::NoAddress { host, detail },
        }
    }
}

/// The addresses of `host` from fresh AAAA (when `use_ipv6`) and A lookups, IPv6 first, reserved
/// ones removed unless `allow_private`; with the weakest DNSSEC status of the lookups.
pub async fn resolve<R: Resolver>(
    resolver: &R,
    host: &str,
    use_ipv6: bool,
    allow_private: bool,
    deadline: Instant,
) -> Result<(Vec<IpAddr>, Option<DnssecStatus>), ResolveError> {
    let name = hickory_proto::rr::Name::from_ascii(format!("{}.", host.trim_end_matches('.')))
        .map_err(|error| ResolveError::BadHost(format!("host {host:?}: {error}")))?;
    let (v6, v4) = tokio::join!(
        async {
            if use_ipv6 {
                Some(
                    resolver
                        .lookup(&name, hickory_proto::rr::RecordType::AAAA, deadline)
                        .await,
                )
            } else {
                None
            }
        },
        resolver.lookup(&name, hickory_proto::rr::RecordType::A, deadline)
    );
    let mut found = Vec::new();
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for result in [v6, Some(v4)].into_iter().flatten() {
        match result {
            Ok(lookup) => {
                if lookup.dnssec == Some(DnssecStatus::Bogus) {
                    return Err(ResolveError::Dnssec(
                        lookup.dnssec_detail.unwrap_or_else(|| "bogus".into()),
                    ));
                }
                statuses.extend(lookup.dnssec);
                found.extend(
                    lookup
                        .records
                        .iter()
                        .filter_map(|record| record.data.ip_addr()),
                );
            }
            Err(error) => failures.push(error.to_string()),
        }
    }
    let dnssec = crate::dns::worst_status(statuses.into_iter());
    if found.is_empty() && !failures.is_empty() {
        return Err(ResolveError::Dns(failures.join("; ")));
    }
    let mut refused = Vec::new();
    found.retain(|ip| match address::check_target(*ip, allow_private) {
        Ok(()) => true,
        Err(reason) => {
            refused.push(reason);
            false
        }
    });
    if found.is_empty() {
        return Err(ResolveError::NoAddress(if refused.is_empty() {
            "no A or AAAA records".to_owned()
        } else {
            refused.join("; ")
        }));
    }
    found.sort_by_key(|ip| ip.is_ipv4());
    found.dedup();
    Ok((found, dnssec))
}

/// Opens a TCP connection to `address` from the configured egress address, by `deadline`. The
/// error text says what an operator would check.
pub async fn dial_tcp(
    address: SocketAddr,
    egress_ipv4: Option<IpAddr>,
    egress_ipv6: Option<IpAddr>,
    deadline: Instant,
) -> Result<TcpStream, String> {
    let (socket, egress) = match address {
        SocketAddr::V4(_) => (tokio::net::TcpSocket::new_v4(), egress_ipv4),
        SocketAddr::V6(_) => (tokio::net::TcpSocket::new_v6(), egress_ipv6),
    };
    let socket = socket.map_err(|error| format!("cannot open a socket: {error}"))?;
    if let Some(egress) = egress {
        socket
            .bind(SocketAddr::new(egress, 0))
            .map_err(|error| format!("cannot bind the egress address {egress}: {error}"))?;
    }
    let started = Instant::now();
    match timeout_at(deadline, socket.connect(address)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(error)) => Err(format!("connect failed: {error}")),
        Err(_) => Err(format!(
            "connect timed out after {} ms (firewall or geo-block?)",
            started.elapsed().as_millis()
        )),
    }
}
