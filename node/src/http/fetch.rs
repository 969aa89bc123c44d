//! The fetcher: one HTTP GET, with redirects, resolved through the node's own DNS client.
//!
//! Per hop: look up AAAA and A afresh (DNSSEC status recorded; bogus stops the fetch), refuse
//! reserved addresses (the address guard), try IPv6 first and fall back to IPv4 only on a
//! network-level failure (never after an answer), speak HTTP/1.1 (TLS ≥ 1.2 for https hops,
//! certificate not verified, as Let's Encrypt does), cap header bytes, body bytes and time, then
//! apply the redirect policy.
//!
//! Connection reuse ([`FetchOptions::reuse_connections`]) keeps an idle HTTP/1.1 connection per
//! (resolved address, TLS server name) for a short time; a later hop or check reuses it only when
//! its own fresh lookup resolved to that same address. Off, every hop dials afresh and sends
//! `Connection: close`, as Boulder and Open MPIC do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use mpic_protocol::DnssecStatus;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use url::Url;

use super::address;
use super::connect::{dial_tcp, resolve};
use super::pool::{AbortOnDrop, Connection, Pool, PoolKey};
use super::redirect::{self, RedirectError, RedirectPolicy};
use super::tls::tls_client;
use crate::dns::Resolver;

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
            user_agent: concat!(
                "mpic-node/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/mpic-node)"
            )
            .into(),
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

/// One failed connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The address dialled.
    pub address: SocketAddr,
    /// What went wrong.
    pub error: String,
}

/// One request of the chain, for the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// The URL requested.
    pub url: String,
    /// The address that answered.
    pub address: Option<SocketAddr>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// Body bytes read.
    pub bytes: usize,
    /// Addresses that failed first.
    pub attempts: Vec<Attempt>,
    /// DNSSEC status of the address lookups (worst of AAAA and A).
    pub dnssec: Option<DnssecStatus>,
    /// The hop ran on a pooled connection.
    pub reused: bool,
}

impl Hop {
    /// The hop as signed evidence.
    pub fn evidence(&self) -> mpic_protocol::HttpEvidence {
        mpic_protocol::HttpEvidence {
            url: self.url.clone(),
            address: self.address.map(|a| a.to_string()),
            status: self.status,
            bytes: self.bytes as u64,
            failed_attempts: self
                .attempts
                .iter()
                .map(|a| format!("{}: {}", a.address, a.error))
                .collect(),
            dnssec: self.dnssec,
        }
    }
}

/// The final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Status of the last hop.
    pub status: u16,
    /// Body of the last hop (at most `max_body_bytes`).
    pub body: Vec<u8>,
    /// The body was longer than the cap.
    pub truncated: bool,
}

/// Why a fetch failed. Each message says what the operator of the site can fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be fetched at all.
    #[error("cannot fetch {url}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// DNS failed for the host.
    #[error("DNS lookup for {host} failed: {detail}")]
    Dns {
        /// The host.
        host: String,
        /// What failed.
        detail: String,
    },
    /// The address lookup was bogus.
    #[error("DNSSEC validation of {host}'s addresses failed: {detail}")]
    Dnssec {
        /// The host.
        host: String,
        /// The validator's reason.
        detail: String,
    },
    /// No A or AAAA record, or only reserved ones.
    #[error("{host} has no usable address: {detail}")]
    NoAddress {
        /// The host.
        host: String,
        /// Why (none found, or which reserved blocks).
        detail: String,
    },
    /// Every address failed at the network level.
    #[error("could not connect to {host}: {}", list(attempts))]
    Connection {
        /// The host.
        host: String,
        /// Each address and what happened.
        attempts: Vec<Attempt>,
    },
    /// The server answered with something that is not usable HTTP.
    #[error("{address} ({url}): {detail}")]
    Http {
        /// The URL.
        url: String,
        /// Who answered.
        address: SocketAddr,
        /// What was wrong.
        detail: String,
    },
    /// The deadline passed.
    #[error("{url}: no complete answer within the time allowed ({stage})")]
    Timeout {
        /// The URL.
        url: String,
        /// What was under way.
        stage: &'static str,
    },
    /// A redirect broke the rules.
    #[error("redirect from {from} refused: {error}")]
    Redirect {
        /// The URL that redirected.
        from: String,
        /// The rule broken.
        error: RedirectError,
    },
}

fn list(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|attempt| format!("{} {}", attempt.address, attempt.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A fetch's result and the chain that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Every hop, in order.
    pub hops: Vec<Hop>,
    /// The answer or why there is none.
    pub result: Result<Fetched, FetchError>,
}

/// Anything a hop can speak HTTP over.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The fetcher: options, TLS client and (when reuse is on) the idle-connection pool.
#[derive(Debug)]
pub struct Fetcher {
    options: FetchOptions,
    tls: Arc<rustls::ClientConfig>,
    pool: Option<Pool>,
    metrics: Option<crate::metrics::HttpMetrics>,
}

impl Fetcher {
    /// A fetcher with these options.
    pub fn new(options: FetchOptions) -> Result<Self, rustls::Error> {
        let pool = options
            .reuse_connections
            .then(|| Pool::new(options.idle_timeout, options.max_idle_connections));
        Ok(Self {
            tls: tls_client()?,
            options,
            pool,
            metrics: None,
        })
    }

    /// Counts requests and connections in these metrics.
    pub fn with_metrics(mut self, metrics: crate::metrics::HttpMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, address: SocketAddr, result: &Result<HopAnswer, FetchError>) {
        if let Some(metrics) = &self.metrics {
            let label = match result {
                Ok(_) => "answered",
                Err(FetchError::Timeout { .. }) => "timeout",
                Err(_) => "http_error",
            };
            metrics.count_request(address.is_ipv6(), label);
        }
    }

    /// The options in force.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Idle connections in the pool now.
    pub fn idle_connections(&self) -> usize {
        self.pool.as_ref().map_or(0, Pool::len)
    }

    /// Fetches `url`, following redirects, by `deadline`.
    pub async fn fetch<R: Resolver>(&self, resolver: &R, url: Url, deadline: Instant) -> Outcome {
        let mut hops = Vec::new();
        let mut visited = vec![url.clone()];
        let mut current = url;
        loop {
            let mut hop = Hop {
                url: current.to_string(),
                ..Hop::default()
            };
            let answer = self.fetch_one(resolver, &current, deadline, &mut hop).await;
            hops.push(hop);
            let (status, location, fetched) = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    return Outcome {
                        hops,
                        result: Err(error),
                    };
                }
            };
            if !(300..400).contains(&status) {
                return Outcome {
                    hops,
                    result: Ok(fetched),
                };
            }
            match redirect::next_hop(
                &current,
                status,
                location.as_deref(),
                &visited,
                &self.options.redirects,
            ) {
                Ok(next) => {
                    visited.push(next.clone());
                    current = next;
                }
                Err(error) => {
                    let from = current.to_string();
                    return Outcome {
                        hops,
                        result: Err(FetchError::Redirect { from, error }),
                    };
                }
            }
        }
    }

    async fn fetch_one<R: Resolver>(
        &self,
        resolver: &R,
        url: &Url,
        deadline: Instant,
        hop: &mut Hop,
    ) -> Result<HopAnswer, FetchError> {
        let options = &self.options;
        let host = url.host_str().ok_or_else(|| FetchError::BadUrl {
            url: url.to_string(),
            reason: "no host".into(),
        })?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(FetchError::BadUrl {
                    url: url.to_string(),
                    reason: format!("scheme {other:?}"),
                });
            }
        };
        let port = url
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let dial_port = match port {
            80 => options.http_port.unwrap_or(80),
            443 => options.https_port.unwrap_or(443),
            other => other,
        };
        let hop_deadline = deadline.min(Instant::now() + options.hop_timeout);
        // An IP identifier (RFC 8738 §5) is dialled as is; every name is looked up afresh.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let ips = if let Some(ip) = literal {
            address::check_target(ip, options.allow_private).map_err(|detail| {
                FetchError::NoAddress {
                    host: host.to_owned(),
                    detail,
                }
            })?;
            vec![ip]
        } else {
            let (ips, dnssec) = resolve(
                resolver,
                host,
                options.use_ipv6,
                options.allow_private,
                hop_deadline,
            )
            .await
            .map_err(|error| error.into_fetch_error(&hop.url, host))?;
            hop.dnssec = dnssec;
            ips
        };
        let target = Request {
            url,
            host,
            port,
            https,
        };
        for ip in ips {
            let address = SocketAddr::new(ip, dial_port);
            let key = (address, https.then(|| host.to_owned()));
            if let Some(idle) = self.pool.as_ref().and_then(|pool| pool.take(&key)) {
                // A pooled connection the server closed meanwhile fails before any answer: dial
                // afresh below, as if it had never been there.
                if let Ok(answer) = self
                    .exchange(&target, idle, address, &key, hop_deadline, hop)
                    .await
                {
                    hop.reused = true;
                    if let Some(metrics) = &self.metrics {
                        metrics.count_connection(true);
                        metrics.count_request(address.is_ipv6(), "answered");
                    }
                    return Ok(answer);
                }
            }
            let stream = match connect(&self.tls, options, host, https, address, hop_deadline).await
            {
                Ok(stream) => stream,
                Err(error) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.count_request(address.is_ipv6(), "connect_failed");
                    }
                    hop.attempts.push(Attempt { address, error });
                    if Instant::now() >= hop_deadline {
                        return Err(FetchError::Timeout {
                            url: url.to_string(),
                            stage: "connecting",
                        });
                    }
                    continue;
                }
            };
            hop.address = Some(address);
            if let Some(metrics) = &self.metrics {
                metrics.count_connection(false);
            }
            let result = match handshake(options, stream, address, url, hop_deadline).await {
                Ok(connection) => {
                    self.exchange(&target, connection, address, &key, hop_deadline, hop)
                        .await
                }
                Err(error) => Err(error),
            };
            self.count(address, &result);
            return result;
        }
        Err(FetchError::Connection {
            host: host.to_owned(),
            attempts: hop.attempts.clone(),
        })
    }

    /// Sends the GET on `connection`, reads the capped body, and pools the connection again
    /// when reuse is on and the exchange ended cleanly.
    async fn exchange(
        &self,
        target: &Request<'_>,
        mut connection: Connection,
        address: SocketAddr,
        key: &PoolKey,
        hop_deadline: Instant,
        hop: &mut Hop,
    ) -> Result<HopAnswer, FetchError> {
        let options = &self.options;
        let url = target.url;
        let timeout = |stage| FetchError::Timeout {
            url: url.to_string(),
            stage,
        };
        let http = |detail: String| FetchError::Http {
            url: url.to_string(),
            address,
            detail,
        };
        let default_port = if target.https { 443 } else { 80 };
        let authority = if target.port == default_port {
            target.host.to_owned()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, &options.user_agent)
            .header(hyper::header::ACCEPT, "*/*");
        if self.pool.is_none() {
            request = request.header(hyper::header::CONNECTION, "close");
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|error| http(format!("cannot build the request: {error}")))?;
        // A pooled connection whose driver has not yet finished the previous response is not
        // ready for the next request (hyper refuses it at once): wait for it, within the hop.
        match timeout_at(hop_deadline, connection.sender.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(http(format!(
                    "the connection closed before the request ({error})"
                )));
            }
            Err(_) => return Err(timeout("waiting for the connection")),
        }
        let response = match timeout_at(hop_deadline, connection.sender.send_request(request)).await
        {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                return Err(http(format!(
                    "the server on port {} does not speak HTTP/1.1 ({error})",
                    address.port()
                )));
            }
            Err(_) => return Err(timeout("waiting for the response head")),
        };
        hop.address = Some(address);
        let status = response.status().as_u16();
        hop.status = Some(status);
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut truncated = false;
        loop {
            let frame = match timeout_at(hop_deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    return Err(http(format!(
                        "body failed after {} bytes: {error}",
                        bytes.len()
                    )));
                }
                Err(_) => return Err(timeout("reading the body")),
            };
            if let Ok(data) = frame.into_data() {
                let room = options.max_body_bytes.saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    truncated = true;
                    break;
                }
            }
        }
        hop.bytes = bytes.len();
        if let Some(pool) = &self.pool
            && !truncated
        {
            pool.put(key.clone(), connection);
        }
        Ok((
            status,
            location,
            Fetched {
                status,
                body: bytes,
                truncated,
            },
        ))
    }
}

/// What one hop asks for.
struct Request<'a> {
    url: &'a Url,
    host: &'a str,
    port: u16,
    https: bool,
}

type HopAnswer = (u16, Option<String>, Fetched);

async fn connect(
    tls: &Arc<rustls::ClientConfig>,
    options: &FetchOptions,
    host: &str,
    https: bool,
    address: SocketAddr,
    hop_deadline: Instant,
) -> Result<Box<dyn Io>, String> {
    let connect_deadline = hop_deadline.min(Instant::now() + options.connect_timeout);
    let tcp = dial_tcp(
        address,
        options.egress_ipv4,
        options.egress_ipv6,
        connect_deadline,
    )
    .await?;
    if !https {
        return Ok(Box::new(tcp));
    }
    let server_name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("SNI {host:?}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    match timeout_at(connect_deadline, connector.connect(server_name, tcp)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(error)) => Err(format!("TLS handshake failed: {error}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

async fn handshake(
    options: &FetchOptions,
    stream: Box<dyn Io>,
    address: SocketAddr,
    url: &Url,
    hop_deadline: Instant,
) -> Result<Connection, FetchError> {
    match timeout_at(
        hop_deadline,
        hyper::client::conn::http1::Builder::new()
            .max_buf_size(options.max_header_bytes.max(8192))
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream)),
    )
    .await
    {
        Ok(Ok((sender, connection))) => Ok(Connection {
            sender,
            // The connection task ends with the connection: aborted on drop, whatever happens.
            _driver: AbortOnDrop(tokio::spawn(async move {
                let _ = connection.await;
            })),
        }),
        Ok(Err(error)) => Err(FetchError::Http {
            url: url.to_string(),
            address,
            detail: format!("HTTP handshake failed: {error}"),
        }),
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            stage: "HTTP handshake",
        }),
    }
}
