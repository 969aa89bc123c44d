//! The DNS client's metrics (labels from closed sets: transport, rcode, reason, status, limit).

use std::sync::{Arc, Weak};

use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

/// What serves `/dns-servers.json`: the resolver's server table (implemented in `dns`, which
/// sits above `metrics`, so the listener reaches it through this trait).
pub trait ServerTable: Send + Sync + std::fmt::Debug {
    /// The table as JSON.
    fn live_json(&self) -> Result<String, serde_json::Error>;
}

/// Metrics of the DNS client (cheap to clone: each is a shared handle).
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    /// `mpic_node_dns_queries_total{transport,rcode}`: answered queries by transport and rcode.
    pub queries: IntCounterVec,
    /// `mpic_node_dns_timeouts_total`: queries with no matching answer in time.
    pub timeouts: IntCounter,
    /// `mpic_node_dns_network_errors_total{transport}`: refused, unreachable, reset.
    pub errors: IntCounterVec,
    /// `mpic_node_dns_mismatched_responses_total{reason}`: datagrams dropped as not ours
    /// (`id`, `question`, `source`, `malformed`, `not_response`): spoofing attempts show here.
    pub mismatched: IntCounterVec,
    /// `mpic_node_dns_truncated_total`: UDP answers with TC that were retried over TCP.
    pub truncated: IntCounter,
    /// `mpic_node_dns_cache_lookups_total{result}`: `hit` or `miss`.
    pub cache: IntCounterVec,
    /// `mpic_node_dnssec_validations_total{status}`: validated lookups by DNSSEC status.
    pub dnssec: IntCounterVec,
    /// `mpic_node_dns_coalesced_total`: lookups that waited for an identical question already
    /// in flight instead of sending their own queries.
    pub coalesced: IntCounter,
    /// `mpic_node_dns_server_queued_total`: queries that waited for a server's in-flight or
    /// rate budget before being sent.
    pub queued: IntCounter,
    /// `mpic_node_dns_server_budget_exceeded_total{limit}`: queries not sent because a
    /// server's budget (`in_flight` or `rate`) could not be met before the deadline.
    pub rate_limited: IntCounterVec,
    /// `mpic_node_dns_server_backoffs_total{reason}`: servers backed off after a `timeout`,
    /// `refused`, `servfail` or `lame` answer.
    pub backed_off: IntCounterVec,
    /// `mpic_node_dns_tcp_connections_total{result}`: TCP queries by how they got their
    /// connection: `opened` a new one, `reused` an idle one, `pipelined` on one with other
    /// queries in flight (RFC 7766 §6.2.1).
    pub tcp_connections: IntCounterVec,
    /// `mpic_node_dns_tcp_closed_total{reason}`: TCP connections closed, `idle`, by the
    /// `server` (or a failed write), or because one `misbehaved`.
    pub tcp_closed: IntCounterVec,
    /// `mpic_node_dns_tcp_retried_total`: TCP queries retried once because their connection
    /// closed with them pending.
    pub tcp_retried: IntCounter,
    /// `mpic_node_dns_fast_failures_total`: zone lookups failed at once because every server of
    /// the zone was backed off after timing out (no query sent; probes go out as backoffs end).
    pub fast_failures: IntCounter,
    /// The server table of the node's resolver, served at `/dns-servers.json` (weak: the
    /// resolver owns it; after a reload the new resolver's table replaces it).
    servers: Arc<parking_lot::RwLock<Option<Weak<dyn ServerTable>>>>,
    /// Handles of the common `queries` series, resolved once (a label lookup hashes and locks;
    /// this is the per-query hot path).
    common_queries: Vec<((&'static str, &'static str), IntCounter)>,
}

impl DnsMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let queries = IntCounterVec::new(
            Opts::new(
                "mpic_node_dns_queries_total",
                "DNS queries answered, by transport and rcode",
            ),
            &["transport", "rcode"],
        )?;
        let timeouts = IntCounter::new(
            "mpic_node_dns_timeouts_total",
            "DNS queries with no matching answer in time",
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "mpic_node_dns_network_errors_total",
                "DNS queries that failed at the socket",
            ),
            &["transport"],
        )?;
        let mismatched = IntCounterVec::new(
            Opts::new(
                "mpic_node_dns_mismatched_responses_total",
                "DNS datagrams dropped because they do not match the query",
            ),
            &["reason"],
        )?;
        let truncated = IntCounter::new(
            "mpic_node_dns_truncated_total",
            "Truncated UDP answers retried over TCP",
        )?;
        let cache = IntCounterVec::new(
            Opts::new(
                "mpic_node_dns_cache_lookups_total",
                "DNS cache lookups by result",
            ),
            &["result"],
        )?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(timeouts.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(mismatched.clone()))?;
        registry.register(Box::new(truncated.clone()))?;
        let dnssec = IntCounterVec::new(
            Opts::new(
                "mpic_node_dnssec_validations_total",
                "Lookups validated, by DNSSEC status (secure, insecure, bogus, indeterminate)",
            ),
            &["status"],
        )?;
        registry.register(Box::new(cache.clone()))?;
        registry.register(Box::new(dnssec.clone()))?;
        let (coalesced, queued, rate_limited, backed_off) = server_metrics(registry)?;
        let (tcp_connections, tcp_closed, tcp_retried) = tcp_metrics(registry)?;
        let fast_failures = IntCounter::new(
            "mpic_node_dns_fast_failures_total",
            "Zone lookups failed at once: every server of the zone backed off after timeouts",
        )?;
        registry.register(Box::new(fast_failures.clone()))?;
        let mut common_queries = Vec::new();
        for transport in ["udp", "tcp"] {
            for rcode in ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"] {
                let counter = queries.with_label_values(&[transport, rcode]);
                common_queries.push(((transport, rcode), counter));
            }
        }
        Ok(Self {
            queries,
            timeouts,
            errors,
            mismatched,
            truncated,
            cache,
            dnssec,
            coalesced,
            queued,
            rate_limited,
            backed_off,
            tcp_connections,
            tcp_closed,
            tcp_retried,
            fast_failures,
            servers: Arc::new(parking_lot::RwLock::new(None)),
            common_queries,
        })
    }

    /// Counts one validated lookup.
    pub fn count_dnssec(&self, status: mpic_protocol::DnssecStatus) {
        let label = match status {
            mpic_protocol::DnssecStatus::Secure => "secure",
            mpic_protocol::DnssecStatus::Insecure => "insecure",
            mpic_protocol::DnssecStatus::Bogus => "bogus",
            mpic_protocol::DnssecStatus::Indeterminate => "indeterminate",
        };
        self.dnssec.with_label_values(&[label]).inc();
    }

    /// Counts one answered query.
    pub fn count_query(&self, transport: &'static str, rcode: &'static str) {
        match self
            .common_queries
            .iter()
            .find(|((t, r), _)| *t == transport && *r == rcode)
        {
            Some((_, counter)) => counter.inc(),
            None => self.queries.with_label_values(&[transport, rcode]).inc(),
        }
    }

    /// Makes `servers` the table `/dns-servers.json` shows (the resolver calls this).
    pub fn watch_servers<T: ServerTable + 'static>(&self, servers: &Arc<T>) {
        let servers: Arc<dyn ServerTable> = Arc::clone(servers) as Arc<dyn ServerTable>;
        *self.servers.write() = Some(Arc::downgrade(&servers));
    }

    /// The watched server table as JSON; `None` before a resolver exists (or after it went).
    pub fn live_servers(&self) -> Option<Result<String, serde_json::Error>> {
        let servers = self.servers.read().as_ref()?.upgrade()?;
        Some(servers.live_json())
    }

    /// Metrics registered in a private registry (tests and tools that need no exposition).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Self::new(&Registry::new())
    }
}

/// The counters of coalescing and the per-server budget and backoff (issue 19), registered.
fn server_metrics(
    registry: &Registry,
) -> Result<(IntCounter, IntCounter, IntCounterVec, IntCounterVec), prometheus::Error> {
    let coalesced = IntCounter::new(
        "mpic_node_dns_coalesced_total",
        "Lookups that shared an identical question already in flight",
    )?;
    let queued = IntCounter::new(
        "mpic_node_dns_server_queued_total",
        "DNS queries that waited for a server's in-flight or rate budget",
    )?;
    let rate_limited = IntCounterVec::new(
        Opts::new(
            "mpic_node_dns_server_budget_exceeded_total",
            "DNS queries not sent: a server's budget could not be met before the deadline",
        ),
        &["limit"],
    )?;
    let backed_off = IntCounterVec::new(
        Opts::new(
            "mpic_node_dns_server_backoffs_total",
            "Authoritative servers backed off, by reason",
        ),
        &["reason"],
    )?;
    registry.register(Box::new(coalesced.clone()))?;
    registry.register(Box::new(queued.clone()))?;
    registry.register(Box::new(rate_limited.clone()))?;
    registry.register(Box::new(backed_off.clone()))?;
    Ok((coalesced, queued, rate_limited, backed_off))
}

/// The counters of TCP connection reuse and pipelining (issue 19), registered.
fn tcp_metrics(
    registry: &Registry,
) -> Result<(IntCounterVec, IntCounterVec, IntCounter), prometheus::Error> {
    let connections = IntCounterVec::new(
        Opts::new(
            "mpic_node_dns_tcp_connections_total",
            "DNS queries over TCP, by how they got their connection (opened, reused, pipelined)",
        ),
        &["result"],
    )?;
    let closed = IntCounterVec::new(
        Opts::new(
            "mpic_node_dns_tcp_closed_total",
            "DNS TCP connections closed, by reason (idle, server, misbehaved)",
        ),
        &["reason"],
    )?;
    let retried = IntCounter::new(
        "mpic_node_dns_tcp_retried_total",
        "DNS TCP queries retried because their connection closed with them pending",
    )?;
    registry.register(Box::new(connections.clone()))?;
    registry.register(Box::new(closed.clone()))?;
    registry.register(Box::new(retried.clone()))?;
    Ok((connections, closed, retried))
}
