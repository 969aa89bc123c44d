//! Sends one query to one server: UDP from a fresh socket (random source port, random ID) bound
//! to the configured egress address, TCP when the answer is truncated (never switched off, for
//! CAA or any type: a truncated answer is re-asked over TCP or the attempt fails), at most
//! [`MAX_TCP_PER_SERVER`] TCP connections per server, reused and pipelined (RFC 7766 §6.2.1,
//! the [`tcp`] submodule). Every exchange ends by its deadline.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::Message;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::error::{IgnoredResponses, NetworkError, Seconds};
use super::wire::{self, Mismatch, OutgoingQuery, QuerySpec};
use crate::metrics::DnsMetrics;

/// Largest UDP response read: we advertise 1232 bytes (EDNS), so anything near this is already
/// a misbehaving server; 4 KiB leaves room for servers that round up.
const MAX_UDP_RESPONSE: usize = 4096;

pub use tcp::{ConnectionUse, MAX_PIPELINED, MAX_TCP_PER_SERVER};
use tcp::{TcpFailure, TcpPool};

pub mod tcp;

/// How the exchange went over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// UDP only.
    Udp,
    /// TCP (after truncation, or directly).
    Tcp,
}

impl Carrier {
    /// The `transport` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Udp => "udp",
            Carrier::Tcp => "tcp",
        }
    }
}

/// An rcode as a metric label: the common ones by name, the rest as `other` (a closed set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcodeLabel {
    /// `NOERROR`.
    NoError,
    /// `FORMERR`.
    FormErr,
    /// `SERVFAIL`.
    ServFail,
    /// `NXDOMAIN`.
    NxDomain,
    /// `NOTIMP`.
    NotImp,
    /// `REFUSED`.
    Refused,
    /// Any other rcode.
    Other,
}

impl RcodeLabel {
    /// The label of `message`'s rcode.
    pub fn of(message: &Message) -> Self {
        use hickory_proto::op::ResponseCode;
        match message.metadata.response_code {
            ResponseCode::NoError => RcodeLabel::NoError,
            ResponseCode::FormErr => RcodeLabel::FormErr,
            ResponseCode::ServFail => RcodeLabel::ServFail,
            ResponseCode::NXDomain => RcodeLabel::NxDomain,
            ResponseCode::NotImp => RcodeLabel::NotImp,
            ResponseCode::Refused => RcodeLabel::Refused,
            _ => RcodeLabel::Other,
        }
    }

    /// The metric label (and the word an attempt's failure shows).
    pub fn as_str(self) -> &'static str {
        match self {
            RcodeLabel::NoError => "NOERROR",
            RcodeLabel::FormErr => "FORMERR",
            RcodeLabel::ServFail => "SERVFAIL",
            RcodeLabel::NxDomain => "NXDOMAIN",
            RcodeLabel::NotImp => "NOTIMP",
            RcodeLabel::Refused => "REFUSED",
            RcodeLabel::Other => "other",
        }
    }
}

/// A matched response.
#[derive(Debug)]
pub struct Exchange {
    /// The response.
    pub message: Message,
    /// Who answered.
    pub server: SocketAddr,
    /// Over which transport the final answer came.
    pub transport: Carrier,
    /// Time from first send to answer.
    pub elapsed: Duration,
}

/// One exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// No matching answer before the deadline.
    #[error("{server}: no answer within {} ms", millis(*elapsed))]
    Timeout {
        /// The server.
        server: SocketAddr,
        /// Time waited.
        elapsed: Duration,
    },
    /// Messages came but none matched the query before the deadline; they were ignored.
    #[error("{server}: {ignored}, no valid answer within {}", Seconds(*waited))]
    NoValidAnswer {
        /// The server.
        server: SocketAddr,
        /// The time the query had.
        waited: Duration,
        /// What arrived instead, by reason.
        ignored: IgnoredResponses,
    },
    /// A socket operation failed (refused, unreachable, reset).
    #[error("{server}: {source}")]
    Network {
        /// The server.
        server: SocketAddr,
        /// The error.
        source: NetworkError,
    },
    /// The server answered over TCP with something that is not the answer to our query.
    #[error("{server}: malformed or mismatched answer over TCP")]
    Malformed {
        /// The server.
        server: SocketAddr,
    },
    /// The answer over TCP still had TC set: it is not the whole answer.
    #[error("{server}: answer still truncated over TCP")]
    Truncated {
        /// The server.
        server: SocketAddr,
    },
    /// The query could not be encoded (a bad name).
    #[error(transparent)]
    Encode(#[from] wire::EncodeError),
}

/// Egress and behaviour settings.
#[derive(Debug, Clone, Default)]
pub struct TransportConfig {
    /// Source address for IPv4 queries (None: the OS picks).
    pub egress_ipv4: Option<IpAddr>,
    /// Source address for IPv6 queries.
    pub egress_ipv6: Option<IpAddr>,
    /// Randomise the case of query names (0x20) and require it echoed.
    pub case_randomisation: bool,
}

/// The DNS transport.
#[derive(Debug)]
pub struct Transport {
    config: TransportConfig,
    tcp: TcpPool,
    metrics: DnsMetrics,
}

impl Transport {
    /// A transport with these settings.
    pub fn new(config: TransportConfig, metrics: DnsMetrics) -> Self {
        Self {
            config,
            tcp: TcpPool::default(),
            metrics,
        }
    }

    /// Asks `server`: UDP first, TCP if the answer is truncated (RFC 7766 §5).
    pub async fn exchange(
        &self,
        server: SocketAddr,
        spec: &QuerySpec,
        deadline: Instant,
    ) -> Result<Exchange, TransportError> {
        let started = Instant::now();
        let query = self.build(spec)?;
        let message = self.udp(server, &query, deadline, started).await?;
        if !message.metadata.truncation {
            self.count(&message, Carrier::Udp);
            return Ok(Exchange {
                message,
                server,
                transport: Carrier::Udp,
                elapsed: started.elapsed(),
            });
        }
        self.metrics.truncated.inc();
        // Boxed: the TCP exchange's state is large and rarely needed; unboxed it would make
        // every UDP query in flight carry it.
        Box::pin(self.exchange_tcp(server, spec, deadline)).await
    }

    /// Asks `server` over TCP, pipelined on one of its connections (see [`tcp`]). A query
    /// whose connection closed under it is retried once, within the same deadline.
    pub async fn exchange_tcp(
        &self,
        server: SocketAddr,
        spec: &QuerySpec,
        deadline: Instant,
    ) -> Result<Exchange, TransportError> {
        let started = Instant::now();
        let mut query = self.build(spec)?;
        let egress = self.egress_for(server);
        let mut retried = false;
        let failure = loop {
            let asked = self
                .tcp
                .query(server, &mut query, egress, deadline, &self.metrics)
                .await;
            match asked {
                Ok(message) => {
                    self.count(&message, Carrier::Tcp);
                    if message.metadata.truncation {
                        // A TCP answer with TC is partial (RFC 7766 §8 says it should not
                        // happen): never read it as the whole RRset or as a denial.
                        return Err(TransportError::Truncated { server });
                    }
                    return Ok(Exchange {
                        message,
                        server,
                        transport: Carrier::Tcp,
                        elapsed: started.elapsed(),
                    });
                }
                Err(TcpFailure::Closed) if !retried && Instant::now() < deadline => {
                    retried = true;
                    self.metrics.tcp_retried.inc();
                }
                Err(failure) => break failure,
            }
        };
        Err(match failure {
            TcpFailure::Io(source) => {
                self.count_error(Carrier::Tcp);
                TransportError::Network {
                    server,
                    source: source.into(),
                }
            }
            TcpFailure::Closed | TcpFailure::Stale => {
                self.count_error(Carrier::Tcp);
                TransportError::Network {
                    server,
                    source: io::ErrorKind::ConnectionAborted.into(),
                }
            }
            TcpFailure::Mismatched => TransportError::Malformed { server },
            TcpFailure::Timeout => {
                self.metrics.timeouts.inc();
                TransportError::Timeout {
                    server,
                    elapsed: started.elapsed(),
                }
            }
        })
    }

    fn build(&self, spec: &QuerySpec) -> Result<OutgoingQuery, TransportError> {
        let case_bits = self.config.case_randomisation.then(rand::random::<u64>);
        Ok(wire::build_query(spec, rand::random::<u16>(), case_bits)?)
    }

    fn count(&self, message: &Message, transport: Carrier) {
        self.metrics
            .count_query(transport.as_str(), RcodeLabel::of(message).as_str());
    }

    fn count_error(&self, transport: Carrier) {
        self.metrics
            .errors
            .with_label_values(&[transport.as_str()])
            .inc();
    }

    async fn udp(
        &self,
        server: SocketAddr,
        query: &OutgoingQuery,
        deadline: Instant,
        started: Instant,
    ) -> Result<Message, TransportError> {
        let network = |source: io::Error| TransportError::Network {
            server,
            source: source.into(),
        };
        let socket = self.bind_udp(server).map_err(network)?;
        // connect() makes the kernel drop datagrams from any other source; we check again below.
        socket.connect(server).await.map_err(network)?;
        socket.send(&query.bytes).await.map_err(|source| {
            self.count_error(Carrier::Udp);
            network(source)
        })?;
        // What came that was not the answer: ignored (a spoofer must not end the lookup), but
        // named if no answer comes, so a server sending garbage does not look dead.
        let mut ignored = IgnoredResponses::default();
        loop {
            // Wait for a datagram holding no buffer, so thousands of queries in flight cost no
            // receive buffers; then read it into uninitialised capacity (no memset). A datagram
            // larger than this is cut and then fails to parse, which only a server ignoring our
            // 1232-byte EDNS size would send.
            match tokio::time::timeout_at(deadline, socket.readable()).await {
                Err(_) => {
                    self.metrics.timeouts.inc();
                    if !ignored.is_empty() {
                        return Err(TransportError::NoValidAnswer {
                            server,
                            waited: deadline.saturating_duration_since(started),
                            ignored,
                        });
                    }
                    return Err(TransportError::Timeout {
                        server,
                        elapsed: started.elapsed(),
                    });
                }
                Ok(Err(source)) => {
                    self.count_error(Carrier::Udp);
                    return Err(network(source));
                }
                Ok(Ok(())) => {}
            }
            let mut buffer = Vec::with_capacity(MAX_UDP_RESPONSE);
            let (len, source) = match socket.try_recv_buf_from(&mut buffer) {
                Ok(pair) => pair,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
                Err(source) => {
                    // ICMP port unreachable shows up here as ECONNREFUSED: fail fast.
                    self.count_error(Carrier::Udp);
                    return Err(network(source));
                }
            };
            let matched = if source == server {
                wire::match_response(query, &buffer[..len.min(buffer.len())])
            } else {
                Err(Mismatch::Source)
            };
            match matched {
                Ok(message) => return Ok(message),
                Err(reason) => {
                    self.metrics
                        .mismatched
                        .with_label_values(&[reason.as_str()])
                        .inc();
                    ignored.record(reason);
                }
            }
        }
    }

    fn bind_udp(&self, server: SocketAddr) -> io::Result<UdpSocket> {
        // Non-blocking from creation (one syscall instead of two).
        let socket = Socket::new(
            Domain::for_address(server),
            Type::DGRAM.nonblocking(),
            Some(Protocol::UDP),
        )?;
        // Port 0: the kernel picks a random ephemeral port per socket (RFC 5452 §9.2). Without a
        // configured egress address, connect() binds implicitly and the bind call is skipped.
        if let Some(egress) = self.configured_egress(server) {
            socket.bind(&SocketAddr::new(egress, 0).into())?;
        }
        UdpSocket::from_std(socket.into())
    }

    fn configured_egress(&self, server: SocketAddr) -> Option<IpAddr> {
        match server {
            SocketAddr::V4(_) => self.config.egress_ipv4,
            SocketAddr::V6(_) => self.config.egress_ipv6,
        }
    }

    fn egress_for(&self, server: SocketAddr) -> IpAddr {
        match server {
            SocketAddr::V4(_) => self
                .config
                .egress_ipv4
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)),
            SocketAddr::V6(_) => self
                .config
                .egress_ipv6
                .unwrap_or(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)),
        }
    }

    /// TCP connections open (or opening) to `server` now.
    pub fn tcp_in_use(&self, server: SocketAddr) -> usize {
        self.tcp.in_use(server)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The rcode as a metric label (closed set; anything else is `other`).
pub fn rcode_label(message: &Message) -> &'static str {
    RcodeLabel::of(message).as_str()
}

#[cfg(test)]
mod tests;
