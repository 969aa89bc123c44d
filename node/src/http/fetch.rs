//! The fetcher: one HTTP GET, with redirects, resolved through the node's own DNS client.
//!
//! Per hop, through [`crate::egress`]: look up AAAA and A afresh (DNSSEC status recorded; bogus
//! stops the fetch), refuse reserved addresses (the address guard), try IPv6 first and fall back
//! to IPv4 only on a network-level failure (never after an answer). Then speak HTTP/1.1 (TLS ≥
//! 1.2 for https hops, certificate not verified, as Let's Encrypt does), cap header bytes, body
//! bytes and time, and apply the redirect policy.
//!
//! Connection reuse ([`FetchOptions::reuse_connections`]) keeps an idle HTTP/1.1 connection per
//! (resolved address, TLS server name) for a short time; a later hop or check reuses it only when
//! its own fresh lookup resolved to that same address. Off, every hop dials afresh and sends
//! `Connection: close`, as Boulder and Open MPIC do.

use crate::metrics::HttpRequestResult;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::time::Instant;
use url::Url;

pub use super::options::FetchOptions;
pub use super::outcome::{FetchError, Fetched, Hop, HttpFailure, Outcome};

use super::connect::{Io, connect};
use super::exchange::{Exchange, HopAnswer, Request, handshake};
use super::pool::{Pool, PoolKey};
use super::redirect;
use super::tls::tls_client;
use crate::dns::Resolver;
use crate::egress::{DialError, NoConnection, first_reachable, lookup};

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
                Ok(_) => HttpRequestResult::Answered,
                Err(FetchError::Timeout { .. }) => HttpRequestResult::Timeout,
                Err(_) => HttpRequestResult::HttpError,
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
        let (target, dial_port) = request(url, options)?;
        let host = target.host;
        let hop_deadline = deadline.min(Instant::now() + options.hop_timeout);
        let ips = self
            .addresses(resolver, url, host, hop_deadline, hop)
            .await?;
        let (_, dialed) =
            first_reachable(ips, dial_port, hop_deadline, &mut *hop, |address, hop| {
                self.reach(&target, address, hop_deadline, hop)
            })
            .await;
        let dialed = match dialed {
            Ok(dialed) => dialed,
            Err(NoConnection::DeadlinePassed { attempts }) => {
                hop.attempts = attempts;
                return Err(FetchError::Timeout {
                    url: url.to_string(),
                    stage: "connecting",
                });
            }
            Err(NoConnection::Exhausted { attempts }) => {
                hop.attempts = attempts;
                return Err(FetchError::Connection {
                    host: host.to_owned(),
                    attempts: hop.attempts.clone(),
                });
            }
        };
        hop.attempts = dialed.attempts;
        let address = dialed.address;
        let stream = match dialed.connection {
            Reached::Answered(answer) => return Ok(answer),
            Reached::Stream(stream) => stream,
        };
        hop.address = Some(address);
        if let Some(metrics) = &self.metrics {
            metrics.count_connection(false);
        }
        let key = self.key(&target, address);
        let result = match handshake(options, stream, address, url, hop_deadline).await {
            Ok(connection) => {
                self.exchange(address, &key, hop_deadline)
                    .run(&target, connection, hop)
                    .await
            }
            Err(error) => Err(error),
        };
        self.count(address, &result);
        result
    }

    /// The addresses to try for `url`'s host: an IP identifier (RFC 8738 §5) as is, a name
    /// looked up afresh (its DNSSEC status recorded on the hop); both through the guard.
    async fn addresses<R: Resolver>(
        &self,
        resolver: &R,
        url: &Url,
        host: &str,
        hop_deadline: Instant,
        hop: &mut Hop,
    ) -> Result<Vec<IpAddr>, FetchError> {
        let options = &self.options;
        let resolve_error = |source| FetchError::Resolve {
            url: url.to_string(),
            source,
        };
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if let Some(ip) = literal {
            return lookup::literal(ip, host, options.allow_private).map_err(resolve_error);
        }
        let (ips, dnssec) = lookup::resolve(
            resolver,
            host,
            options.use_ipv6,
            options.allow_private,
            hop_deadline,
        )
        .await
        .map_err(resolve_error)?;
        hop.dnssec = dnssec;
        Ok(ips)
    }

    /// One address of the dial loop: an answer on a pooled connection when one is idle and
    /// still works, else a fresh connection. `Err` is a network-level failure (the loop goes on
    /// to the next address).
    async fn reach<'h>(
        &self,
        target: &Request<'_>,
        address: SocketAddr,
        hop_deadline: Instant,
        hop: &'h mut Hop,
    ) -> (&'h mut Hop, Result<Reached, DialError>) {
        let key = self.key(target, address);
        if let Some(idle) = self.pool.as_ref().and_then(|pool| pool.take(&key)) {
            // A pooled connection the server closed meanwhile fails before any answer: dial
            // afresh below, as if it had never been there.
            let exchange = self.exchange(address, &key, hop_deadline);
            if let Ok(answer) = exchange.run(target, idle, hop).await {
                hop.reused = true;
                if let Some(metrics) = &self.metrics {
                    metrics.count_connection(true);
                    metrics.count_request(address.is_ipv6(), HttpRequestResult::Answered);
                }
                return (hop, Ok(Reached::Answered(answer)));
            }
        }
        let options = &self.options;
        let connected = connect(
            &self.tls,
            options,
            target.host,
            target.https,
            address,
            hop_deadline,
        )
        .await;
        if connected.is_err()
            && let Some(metrics) = &self.metrics
        {
            metrics.count_request(address.is_ipv6(), HttpRequestResult::ConnectFailed);
        }
        (hop, connected.map(Reached::Stream))
    }

    fn key(&self, target: &Request<'_>, address: SocketAddr) -> PoolKey {
        (address, target.https.then(|| target.host.to_owned()))
    }

    fn exchange<'a>(
        &'a self,
        address: SocketAddr,
        key: &'a PoolKey,
        hop_deadline: Instant,
    ) -> Exchange<'a> {
        Exchange {
            options: &self.options,
            pool: self.pool.as_ref(),
            address,
            key,
            hop_deadline,
        }
    }
}

/// What the dial loop reached at one address.
enum Reached {
    /// A pooled connection answered.
    Answered(HopAnswer),
    /// A fresh connection, ready for the HTTP handshake.
    Stream(Box<dyn Io>),
}

/// The hop's request (host, port, scheme) and the TCP port to dial (the lab overrides apply).
fn request<'a>(url: &'a Url, options: &FetchOptions) -> Result<(Request<'a>, u16), FetchError> {
    let host = url.host_str().ok_or_else(|| FetchError::NoHost {
        url: url.to_string(),
    })?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(FetchError::Scheme {
                url: url.to_string(),
                scheme: other.to_owned(),
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
    let target = Request {
        url,
        host,
        port,
        https,
    };
    Ok((target, dial_port))
}
