//! Fresh address lookups for a target host: AAAA (when IPv6 is on) and A through the node's own
//! resolver, a DNSSEC-bogus answer refused, every address passed through the Reserved-IP guard,
//! IPv6 first.

use std::net::IpAddr;

use hickory_proto::rr::{Name, RecordType};
use mpic_protocol::{DnssecStatus, ProblemKind};
use tokio::time::Instant;

use super::address::{self, ReservedAddress};
use crate::dns::{DnsError, Resolver};

/// Why a host's addresses cannot be used (shared by the fetcher and the TLS-ALPN prober). Each
/// message names the host.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The host is not a valid DNS name.
    #[error("host {host:?}: {source}")]
    BadHost {
        /// The host as given.
        host: String,
        /// Why it is not a name.
        source: hickory_proto::ProtoError,
    },
    /// Every lookup failed and none found an address.
    #[error("DNS lookup for {host} failed: {}", join(failures))]
    Dns {
        /// The host.
        host: String,
        /// Each failed lookup (AAAA, then A).
        failures: Vec<DnsError>,
    },
    /// A lookup was DNSSEC-bogus.
    #[error(
        "DNSSEC validation of {host}'s addresses failed: {}",
        reason.as_deref().unwrap_or("bogus")
    )]
    Dnssec {
        /// The host.
        host: String,
        /// The validator's reason (zone, what failed, RFC 8914 code), when it gave one.
        reason: Option<String>,
    },
    /// The lookups found no A or AAAA record.
    #[error("{host} has no usable address: no A or AAAA records")]
    NoRecords {
        /// The host.
        host: String,
    },
    /// Every address found is reserved.
    #[error("{host} has no usable address: {}", join(refused))]
    OnlyReserved {
        /// The host (or the IP literal).
        host: String,
        /// Each address refused and its block.
        refused: Vec<ReservedAddress>,
    },
}

impl ResolveError {
    /// The problem kind a check reports this failure as.
    pub fn problem_kind(&self) -> ProblemKind {
        match self {
            ResolveError::BadHost { .. } => ProblemKind::Malformed,
            ResolveError::Dnssec { .. } => ProblemKind::Dnssec,
            ResolveError::Dns { .. }
            | ResolveError::NoRecords { .. }
            | ResolveError::OnlyReserved { .. } => ProblemKind::Dns,
        }
    }
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
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
    let name = Name::from_ascii(format!("{}.", host.trim_end_matches('.'))).map_err(|source| {
        ResolveError::BadHost {
            host: host.to_owned(),
            source,
        }
    })?;
    let (v6, v4) = tokio::join!(
        async {
            if use_ipv6 {
                Some(resolver.lookup(&name, RecordType::AAAA, deadline).await)
            } else {
                None
            }
        },
        resolver.lookup(&name, RecordType::A, deadline)
    );
    let mut found = Vec::new();
    let mut failures = Vec::new();
    let mut statuses = Vec::new();
    for result in [v6, Some(v4)].into_iter().flatten() {
        match result {
            Ok(lookup) => {
                if lookup.dnssec == Some(DnssecStatus::Bogus) {
                    return Err(ResolveError::Dnssec {
                        host: host.to_owned(),
                        reason: lookup.dnssec_detail,
                    });
                }
                statuses.extend(lookup.dnssec);
                found.extend(
                    lookup
                        .records
                        .iter()
                        .filter_map(|record| record.data.ip_addr()),
                );
            }
            Err(error) => failures.push(error),
        }
    }
    let dnssec = crate::dns::worst_status(statuses.into_iter());
    if found.is_empty() && !failures.is_empty() {
        return Err(ResolveError::Dns {
            host: host.to_owned(),
            failures,
        });
    }
    let mut refused = Vec::new();
    found.retain(|ip| match address::check_target(*ip, allow_private) {
        Ok(()) => true,
        Err(reserved) => {
            refused.push(reserved);
            false
        }
    });
    if found.is_empty() {
        let host = host.to_owned();
        return Err(if refused.is_empty() {
            ResolveError::NoRecords { host }
        } else {
            ResolveError::OnlyReserved { host, refused }
        });
    }
    found.sort_by_key(|ip| ip.is_ipv4());
    found.dedup();
    Ok((found, dnssec))
}

/// The one address of an IP identifier (RFC 8738), passed through the Reserved-IP guard; `host`
/// is how the identifier is written in the error.
pub fn literal(ip: IpAddr, host: &str, allow_private: bool) -> Result<Vec<IpAddr>, ResolveError> {
    address::check_target(ip, allow_private).map_err(|reserved| ResolveError::OnlyReserved {
        host: host.to_owned(),
        refused: vec![reserved],
    })?;
    Ok(vec![ip])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_names_the_host_as_the_checks_always_wrote_it() {
        let reserved =
            |text: &str| address::check_target(text.parse().unwrap(), false).unwrap_err();
        let cases = [
            (
                ResolveError::Dnssec {
                    host: "a.test".into(),
                    reason: None,
                },
                "DNSSEC validation of a.test's addresses failed: bogus",
                ProblemKind::Dnssec,
            ),
            (
                ResolveError::NoRecords {
                    host: "a.test".into(),
                },
                "a.test has no usable address: no A or AAAA records",
                ProblemKind::Dns,
            ),
            (
                ResolveError::OnlyReserved {
                    host: "a.test".into(),
                    refused: vec![reserved("10.0.0.1"), reserved("::1")],
                },
                "a.test has no usable address: 10.0.0.1 is a reserved address (private-use \
                 (RFC 1918)); the node never connects to reserved addresses (BR 1.6.1); ::1 is \
                 a reserved address (loopback (RFC 4291)); the node never connects to reserved \
                 addresses (BR 1.6.1)",
                ProblemKind::Dns,
            ),
            (
                literal("127.0.0.1".parse().unwrap(), "127.0.0.1", false).unwrap_err(),
                "127.0.0.1 has no usable address: 127.0.0.1 is a reserved address (loopback \
                 (RFC 1122)); the node never connects to reserved addresses (BR 1.6.1)",
                ProblemKind::Dns,
            ),
        ];
        for (error, message, kind) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.problem_kind(), kind, "{message}");
        }
        assert_eq!(
            literal("127.0.0.1".parse().unwrap(), "127.0.0.1", true).unwrap(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }
}
