//! Reaching a target: a TCP connect from the configured egress address under a deadline, and
//! the one IPv6-first / IPv4-fallback loop over a host's addresses that both the HTTP fetcher
//! and the TLS-ALPN prober use. Each failed address is kept as a typed [`DialAttempt`] for the
//! evidence and the problem detail.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// An I/O error shared by the clones of the attempt that carries it (the evidence, the problem
/// and the hop all keep the list).
#[derive(Debug, Clone)]
pub struct IoError(Arc<io::Error>);

impl IoError {
    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }
}

impl From<io::Error> for IoError {
    fn from(error: io::Error) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Why one address could not be reached: a network-level failure, after which the next address
/// is tried. The message says what an operator would check.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The OS would not give the node a socket.
    #[error("cannot open a socket: {0}")]
    Socket(IoError),
    /// The configured egress address cannot be bound.
    #[error("cannot bind the egress address {egress}: {source}")]
    Bind {
        /// The egress address (`http.egress_ipv4` / `http.egress_ipv6`).
        egress: IpAddr,
        /// The OS's reason.
        source: IoError,
    },
    /// The target refused the connection (nothing listens, or a firewall rejects).
    #[error("connect failed: {0}")]
    Refused(IoError),
    /// No route to the target's host or network.
    #[error("connect failed: {0}")]
    Unreachable(IoError),
    /// The connection was reset or aborted while opening.
    #[error("connect failed: {0}")]
    Reset(IoError),
    /// Any other connect failure the OS reported.
    #[error("connect failed: {0}")]
    Failed(IoError),
    /// No answer to the SYN within the connect timeout.
    #[error(
        "connect timed out after {} ms (firewall or geo-block?)",
        after.as_millis()
    )]
    TimedOut {
        /// How long the node waited.
        after: Duration,
    },
    /// The host is not a valid TLS server name.
    #[error("SNI {host:?}: {}", rustls_pki_types::InvalidDnsNameError)]
    ServerName {
        /// The host.
        host: String,
    },
    /// The TLS handshake of an https hop failed.
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(IoError),
    /// The TLS handshake of an https hop did not finish within the connect timeout.
    #[error("TLS handshake timed out")]
    TlsTimedOut,
}

impl DialError {
    /// The connect failure `error` as its typed kind.
    fn connect(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => DialError::Refused(error.into()),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
                DialError::Unreachable(error.into())
            }
            io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
                DialError::Reset(error.into())
            }
            _ => DialError::Failed(error.into()),
        }
    }
}

/// One address that failed, and how.
#[derive(Debug, Clone)]
pub struct DialAttempt {
    /// The address dialled.
    pub address: SocketAddr,
    /// What went wrong.
    pub error: DialError,
}

impl fmt::Display for DialAttempt {
    /// `[::1]:80: connect failed: …`, the form of the evidence and the tls-alpn problems.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.address, self.error)
    }
}

impl DialAttempt {
    /// `[::1]:80 connect failed: …` (no colon after the address), the form the HTTP problem
    /// details have always used.
    pub fn spaced(&self) -> impl fmt::Display + '_ {
        Spaced(self)
    }
}

struct Spaced<'a>(&'a DialAttempt);

impl fmt::Display for Spaced<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0.address, self.0.error)
    }
}

/// `attempts` rendered with [`DialAttempt`]'s `Display`, joined by `"; "`.
pub fn list(attempts: &[DialAttempt]) -> String {
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Opens a TCP connection to `address` from the configured egress address, by `deadline`.
pub async fn dial_tcp(
    address: SocketAddr,
    egress_ipv4: Option<IpAddr>,
    egress_ipv6: Option<IpAddr>,
    deadline: Instant,
) -> Result<TcpStream, DialError> {
    let (socket, egress) = match address {
        SocketAddr::V4(_) => (tokio::net::TcpSocket::new_v4(), egress_ipv4),
        SocketAddr::V6(_) => (tokio::net::TcpSocket::new_v6(), egress_ipv6),
    };
    let socket = socket.map_err(|error| DialError::Socket(error.into()))?;
    if let Some(egress) = egress {
        socket
            .bind(SocketAddr::new(egress, 0))
            .map_err(|error| DialError::Bind {
                egress,
                source: error.into(),
            })?;
    }
    let started = Instant::now();
    match timeout_at(deadline, socket.connect(address)).await {
        Ok(Ok(tcp)) => {
            let _ = tcp.set_nodelay(true);
            Ok(tcp)
        }
        Ok(Err(error)) => Err(DialError::connect(error)),
        Err(_) => Err(DialError::TimedOut {
            after: started.elapsed(),
        }),
    }
}

/// What the loop reached: the address, the connection (or whatever `connect` made of it) and
/// the addresses that failed before it.
#[derive(Debug)]
pub struct Dialed<T> {
    /// The address that answered.
    pub address: SocketAddr,
    /// What `connect` returned for it.
    pub connection: T,
    /// The addresses that failed first, in order.
    pub attempts: Vec<DialAttempt>,
}

/// No address could be reached.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoConnection {
    /// Every address failed at the network level.
    #[error("every address failed: {}", list(attempts))]
    Exhausted {
        /// Each address and what happened.
        attempts: Vec<DialAttempt>,
    },
    /// The deadline passed after a failed attempt; the remaining addresses were not tried.
    #[error("the deadline passed while connecting: {}", list(attempts))]
    DeadlinePassed {
        /// The addresses tried and what happened.
        attempts: Vec<DialAttempt>,
    },
}

impl NoConnection {
    /// The failed attempts, in order.
    pub fn attempts(&self) -> &[DialAttempt] {
        match self {
            NoConnection::Exhausted { attempts } | NoConnection::DeadlinePassed { attempts } => {
                attempts
            }
        }
    }

    /// The failed attempts, in order, by value.
    pub fn into_attempts(self) -> Vec<DialAttempt> {
        match self {
            NoConnection::Exhausted { attempts } | NoConnection::DeadlinePassed { attempts } => {
                attempts
            }
        }
    }
}

/// Tries `ips` on `port` in order (the lookups put IPv6 first), calling `connect` for each, and
/// returns the first success. A failure (`Err` from `connect`: a network-level failure only) is
/// recorded and the next address tried; once `deadline` has passed no further address is
/// tried. Whatever `connect` returns `Ok` for is final: an answer over IPv6, right or wrong, is
/// never retried over IPv4.
///
/// `state` is lent to each `connect` call and handed back with the result (the fetcher lends
/// its hop record this way; an `async` closure borrowing it would make the caller's future
/// `Send` only for one lifetime, which `tokio::spawn` refuses).
pub async fn first_reachable<S, T, F, Fut>(
    ips: Vec<IpAddr>,
    port: u16,
    deadline: Instant,
    mut state: S,
    mut connect: F,
) -> (S, Result<Dialed<T>, NoConnection>)
where
    F: FnMut(SocketAddr, S) -> Fut,
    Fut: Future<Output = (S, Result<T, DialError>)>,
{
    let mut attempts = Vec::new();
    for ip in ips {
        let address = SocketAddr::new(ip, port);
        let (returned, result) = connect(address, state).await;
        state = returned;
        match result {
            Ok(connection) => {
                let dialed = Dialed {
                    address,
                    connection,
                    attempts,
                };
                return (state, Ok(dialed));
            }
            Err(error) => {
                attempts.push(DialAttempt { address, error });
                if Instant::now() >= deadline {
                    return (state, Err(NoConnection::DeadlinePassed { attempts }));
                }
            }
        }
    }
    (state, Err(NoConnection::Exhausted { attempts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_render_as_the_evidence_and_the_problems_write_them() {
        let refused = DialAttempt {
            address: "[::1]:80".parse().unwrap(),
            error: DialError::connect(io::Error::from_raw_os_error(111)),
        };
        assert!(matches!(refused.error, DialError::Refused(_)));
        let timed_out = DialAttempt {
            address: "127.0.0.1:443".parse().unwrap(),
            error: DialError::TimedOut {
                after: Duration::from_millis(1500),
            },
        };
        let os = io::Error::from_raw_os_error(111).to_string();
        let cases = [
            (
                refused.to_string(),
                format!("[::1]:80: connect failed: {os}"),
            ),
            (
                refused.spaced().to_string(),
                format!("[::1]:80 connect failed: {os}"),
            ),
            (
                timed_out.to_string(),
                "127.0.0.1:443: connect timed out after 1500 ms (firewall or geo-block?)"
                    .to_owned(),
            ),
            (
                list(&[refused.clone(), timed_out]),
                format!(
                    "[::1]:80: connect failed: {os}; 127.0.0.1:443: connect timed out after \
                     1500 ms (firewall or geo-block?)"
                ),
            ),
            (
                DialError::ServerName { host: "a b".into() }.to_string(),
                "SNI \"a b\": invalid dns name".to_owned(),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    async fn fail(_: SocketAddr, state: ()) -> ((), Result<(), DialError>) {
        (state, Err(DialError::TlsTimedOut))
    }

    #[tokio::test]
    async fn the_loop_falls_back_in_order_and_stops_at_the_first_success() {
        let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let deadline = Instant::now() + Duration::from_secs(5);
        let connect = async |address: SocketAddr, mut tried: Vec<SocketAddr>| {
            tried.push(address);
            let result = if address.is_ipv6() {
                Err(DialError::TlsTimedOut)
            } else {
                Ok("v4")
            };
            (tried, result)
        };
        let (tried, dialed) = first_reachable(ips.clone(), 80, deadline, Vec::new(), connect).await;
        let dialed = dialed.unwrap();
        assert_eq!(dialed.connection, "v4");
        assert_eq!(dialed.address, "127.0.0.1:80".parse().unwrap());
        assert_eq!(dialed.attempts.len(), 1);
        assert_eq!(tried.len(), 2);
        let failed = first_reachable(ips, 80, deadline, (), fail)
            .await
            .1
            .unwrap_err();
        assert!(matches!(failed, NoConnection::Exhausted { .. }));
        assert_eq!(failed.attempts().len(), 2);
    }

    #[tokio::test]
    async fn the_loop_stops_once_the_deadline_passed() {
        let ips: Vec<IpAddr> = vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        let failed = first_reachable(ips, 80, Instant::now(), (), fail)
            .await
            .1
            .unwrap_err();
        assert!(matches!(failed, NoConnection::DeadlinePassed { .. }));
        assert_eq!(failed.attempts().len(), 1);
    }
}
