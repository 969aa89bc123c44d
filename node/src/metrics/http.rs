//! The HTTP fetcher's metrics.

use prometheus::{IntCounterVec, Opts, Registry};

use super::HttpRequestResult;

/// Metrics of the HTTP fetcher (cheap to clone: each is a shared handle).
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    /// `mpic_node_http_requests_total{family,result}`: one per address tried, by address family
    /// (`ipv4`, `ipv6`) and result (`answered`, `connect_failed`, `http_error`, `timeout`).
    pub requests: IntCounterVec,
    /// `mpic_node_http_connections_total{reused}`: connections used, `true` from the pool.
    pub connections: IntCounterVec,
}

impl HttpMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "mpic_node_http_requests_total",
                "HTTP requests (one per address tried) by address family and result",
            ),
            &["family", "result"],
        )?;
        let connections = IntCounterVec::new(
            Opts::new(
                "mpic_node_http_connections_total",
                "HTTP connections used, by whether they came from the idle pool",
            ),
            &["reused"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        Ok(Self {
            requests,
            connections,
        })
    }

    /// Metrics registered in a private registry (tests and tools that need no exposition).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        Self::new(&Registry::new())
    }

    /// Counts one request to an address of `family`.
    pub fn count_request(&self, ipv6: bool, result: HttpRequestResult) {
        let family = if ipv6 { "ipv6" } else { "ipv4" };
        self.requests
            .with_label_values(&[family, result.as_str()])
            .inc();
    }

    /// Counts one connection used.
    pub fn count_connection(&self, reused: bool) {
        let label = if reused { "true" } else { "false" };
        self.connections.with_label_values(&[label]).inc();
    }
}
