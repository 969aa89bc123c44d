//! Every Prometheus metric the node exports, defined in one place and passed by `Arc`, and the
//! metrics listener (`/metrics`, `/healthz` for liveness, `/readyz` for readiness). Labels come from closed enums only: never a
//! domain, address or URL.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

mod dns;
mod http;
mod labels;
mod tenants;

pub use dns::{DnsMetrics, ServerTable};
pub use http::HttpMetrics;
use labels::CertificateLabel;
pub use labels::{
    HttpRequestResult, OpenMpicEndpoint, QuicConnectionResult, ReloadResult, RequestOutcome,
    ShedScope,
};
pub use tenants::TenantMetrics;

/// Latency buckets for checks, seconds: loopback checks take well under a millisecond, real ones
/// up to the deadline (tens of seconds).
const CHECK_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The node's metrics.
pub struct Metrics {
    registry: Registry,
    /// `mpic_node_build_info{version}`: always 1.
    pub build_info: IntGaugeVec,
    /// `mpic_node_dangerous_option_enabled{option}`: 1 for each `[dangerous]` option turned on.
    pub dangerous_options: IntGaugeVec,
    /// `mpic_node_requests_total{outcome}`: requests by how they ended (`answered` or a protocol
    /// error kind).
    pub requests: IntCounterVec,
    /// `mpic_node_requests_in_flight`: requests admitted and not yet finished.
    pub requests_in_flight: IntGauge,
    /// `mpic_node_shed_requests_total{scope}`: requests refused as `overloaded` (`global` or
    /// `primary` limit), and Open MPIC connections closed at accept because
    /// `openmpic::MAX_CONNECTIONS` were open (`openmpic_connections`); see [`ShedScope`].
    pub shed_requests: IntCounterVec,
    /// `mpic_node_quic_connections_open`: QUIC connections currently open.
    pub quic_connections_open: IntGauge,
    /// The signed perspective manifest served at `/manifest.json` (set at start and on reload).
    manifest: parking_lot::RwLock<Option<Arc<str>>>,
    /// Requests and checks per tenant (see [`TenantMetrics`]).
    pub tenants: TenantMetrics,
    /// `mpic_node_quic_connections_total{result}`: connection attempts by result (`accepted`,
    /// `handshake_failed`, `unauthorized`, `over_limit`).
    pub quic_connections: IntCounterVec,
    /// `mpic_node_checks_total{kind,method,outcome,problem}`: checks by kind, method, outcome and
    /// problem kind (`none` on pass).
    pub checks: IntCounterVec,
    /// `mpic_node_check_duration_seconds{kind}`: time per check.
    pub check_duration: HistogramVec,
    /// `mpic_node_results_signed_total`: signed results produced.
    pub results_signed: IntCounter,
    /// `mpic_node_certificate_expiry_timestamp_seconds{certificate}`: notAfter of the node's
    /// certificate (`node`) and of the primaries' CA (`client_ca`), UNIX seconds.
    pub certificate_expiry: IntGaugeVec,
    /// `mpic_node_audit_write_errors_total`: audit lines that could not be written.
    pub audit_write_errors: IntCounter,
    /// `mpic_node_config_reloads_total{result}`: SIGHUP reloads, `applied` or `rejected`.
    pub config_reloads: IntCounterVec,
    /// `mpic_node_openmpic_requests_total{endpoint,status}`: requests on the Open MPIC HTTP
    /// listener by path (`caa`, `dcv`, `other`) and HTTP status.
    pub openmpic_requests: IntCounterVec,
    /// `mpic_node_ready`: 1 while serving (every listener bound, not draining), else 0; what
    /// `/readyz` answers from.
    pub ready: IntGauge,
    /// The DNS client's metrics.
    pub dns: DnsMetrics,
    /// The HTTP fetcher's metrics.
    pub http: HttpMetrics,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Arc<Self>, prometheus::Error> {
        let registry = Registry::new();
        let r = &registry;
        let build_info = gauge_vec(r, &BUILD_INFO)?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let check_duration = HistogramVec::new(
            HistogramOpts::new("mpic_node_check_duration_seconds", "Time to run one check")
                .buckets(CHECK_BUCKETS.to_vec()),
            &["kind"],
        )?;
        r.register(Box::new(check_duration.clone()))?;
        Ok(Arc::new(Self {
            build_info,
            dangerous_options: gauge_vec(r, &DANGEROUS_OPTIONS)?,
            requests: counter_vec(r, &REQUESTS)?,
            requests_in_flight: gauge(r, &REQUESTS_IN_FLIGHT)?,
            shed_requests: counter_vec(r, &SHED_REQUESTS)?,
            quic_connections_open: gauge(r, &QUIC_CONNECTIONS_OPEN)?,
            manifest: parking_lot::RwLock::new(None),
            tenants: TenantMetrics::new(r)?,
            quic_connections: counter_vec(r, &QUIC_CONNECTIONS)?,
            checks: counter_vec(r, &CHECKS)?,
            check_duration,
            results_signed: counter(r, &RESULTS_SIGNED)?,
            ready: gauge(r, &READY)?,
            certificate_expiry: gauge_vec(r, &CERTIFICATE_EXPIRY)?,
            audit_write_errors: counter(r, &AUDIT_WRITE_ERRORS)?,
            config_reloads: counter_vec(r, &CONFIG_RELOADS)?,
            openmpic_requests: counter_vec(r, &OPENMPIC_REQUESTS)?,
            dns: DnsMetrics::new(r)?,
            http: HttpMetrics::new(r)?,
            registry,
        }))
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format except on invalid metric names,
        // which are constants here.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

impl Metrics {
    /// Sets `mpic_node_certificate_expiry_timestamp_seconds` from the node certificate and the
    /// client CA named in `quic` (at start and after each reload); a file that does not parse
    /// leaves its gauge as it was.
    pub fn record_certificate_expiry(&self, quic: &crate::config::QuicConfig) {
        for (label, path) in [
            (CertificateLabel::Node, &quic.certificate),
            (CertificateLabel::ClientCa, &quic.client_ca),
        ] {
            if let Some(not_after) = crate::credentials::load_certificates(path)
                .ok()
                .and_then(|chain| chain.first().and_then(crate::credentials::not_after))
            {
                self.certificate_expiry
                    .with_label_values(&[label.as_str()])
                    .set(not_after);
            }
        }
    }

    /// Counts a request by how it ended.
    pub fn count_request(&self, outcome: RequestOutcome) {
        self.requests.with_label_values(&[outcome.as_str()]).inc();
    }

    /// Sets the signed manifest `/manifest.json` serves.
    pub fn set_manifest(&self, text: String) {
        *self.manifest.write() = Some(Arc::from(text));
    }

    /// The signed manifest, once set.
    pub fn manifest(&self) -> Option<Arc<str>> {
        self.manifest.read().clone()
    }

    /// Counts work refused by a limit.
    pub fn count_shed(&self, scope: ShedScope) {
        self.shed_requests
            .with_label_values(&[scope.as_str()])
            .inc();
    }

    /// Counts a QUIC connection attempt.
    pub fn count_quic_connection(&self, result: QuicConnectionResult) {
        self.quic_connections
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// Counts a SIGHUP reload.
    pub fn count_reload(&self, result: ReloadResult) {
        self.config_reloads
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// Counts an Open MPIC request by endpoint and HTTP status.
    pub fn count_openmpic_request(&self, endpoint: OpenMpicEndpoint, status: StatusCode) {
        self.openmpic_requests
            .with_label_values(&[endpoint.as_str(), status.as_str()])
            .inc();
    }

    /// Flags a `[dangerous]` option as on; `option` is one of the closed set of key paths
    /// `Config::dangerous_options` returns (`dangerous.allow_private_targets`, ...).
    pub fn flag_dangerous_option(&self, option: &'static str) {
        self.dangerous_options.with_label_values(&[option]).set(1);
    }

    /// Counts one check and its duration. `kind` and `method` come from the dispatcher's closed
    /// label sets (`caa`/`dcv`/`unknown`, the DCV method names); outcome and problem kind are
    /// protocol enums (`none` without a problem).
    pub fn count_check(
        &self,
        kind: &'static str,
        method: &str,
        outcome: mpic_protocol::Outcome,
        problem: Option<mpic_protocol::ProblemKind>,
        elapsed: std::time::Duration,
    ) {
        let problem = problem.map_or("none", |kind| kind.as_str());
        self.checks
            .with_label_values(&[kind, method, outcome.as_str(), problem])
            .inc();
        self.check_duration
            .with_label_values(&[kind])
            .observe(elapsed.as_secs_f64());
    }
}

/// A metric family's name, help text and label names.
struct Family {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

/// `mpic_node_dangerous_option_enabled`.
const DANGEROUS_OPTIONS: Family = Family {
    name: "mpic_node_dangerous_option_enabled",
    help: "1 for each [dangerous] option turned on",
    labels: &["option"],
};

/// `mpic_node_requests_total`.
const REQUESTS: Family = Family {
    name: "mpic_node_requests_total",
    help: "Validation requests by how they ended",
    labels: &["outcome"],
};

/// `mpic_node_requests_in_flight`.
const REQUESTS_IN_FLIGHT: Family = Family {
    name: "mpic_node_requests_in_flight",
    help: "Requests admitted and not yet finished",
    labels: &[],
};

/// `mpic_node_shed_requests_total`.
const SHED_REQUESTS: Family = Family {
    name: "mpic_node_shed_requests_total",
    help: "Requests refused as overloaded, by the limit hit",
    labels: &["scope"],
};

/// `mpic_node_quic_connections_open`.
const QUIC_CONNECTIONS_OPEN: Family = Family {
    name: "mpic_node_quic_connections_open",
    help: "QUIC connections currently open",
    labels: &[],
};

/// `mpic_node_quic_connections_total`.
const QUIC_CONNECTIONS: Family = Family {
    name: "mpic_node_quic_connections_total",
    help: "QUIC connection attempts by result",
    labels: &["result"],
};

/// `mpic_node_checks_total`.
const CHECKS: Family = Family {
    name: "mpic_node_checks_total",
    help: "Checks by kind, method, outcome and problem kind",
    labels: &["kind", "method", "outcome", "problem"],
};

/// `mpic_node_results_signed_total`.
const RESULTS_SIGNED: Family = Family {
    name: "mpic_node_results_signed_total",
    help: "Signed results produced",
    labels: &[],
};

/// `mpic_node_ready`.
const READY: Family = Family {
    name: "mpic_node_ready",
    help: "1 while serving (listeners bound, not draining), else 0",
    labels: &[],
};

/// `mpic_node_certificate_expiry_timestamp_seconds`.
const CERTIFICATE_EXPIRY: Family = Family {
    name: "mpic_node_certificate_expiry_timestamp_seconds",
    help: "notAfter of the node certificate and of the client CA, UNIX seconds",
    labels: &["certificate"],
};

/// `mpic_node_audit_write_errors_total`.
const AUDIT_WRITE_ERRORS: Family = Family {
    name: "mpic_node_audit_write_errors_total",
    help: "Audit log lines that could not be written",
    labels: &[],
};

/// `mpic_node_config_reloads_total`.
const CONFIG_RELOADS: Family = Family {
    name: "mpic_node_config_reloads_total",
    help: "SIGHUP config reloads, applied or rejected",
    labels: &["result"],
};

/// `mpic_node_openmpic_requests_total`.
const OPENMPIC_REQUESTS: Family = Family {
    name: "mpic_node_openmpic_requests_total",
    help: "Requests on the Open MPIC HTTP listener by endpoint and HTTP status",
    labels: &["endpoint", "status"],
};

/// `mpic_node_build_info`.
const BUILD_INFO: Family = Family {
    name: "mpic_node_build_info",
    help: "Build information; the value is always 1",
    labels: &["version"],
};

/// A counter registered in `registry`.
fn counter(registry: &Registry, family: &Family) -> Result<IntCounter, prometheus::Error> {
    let metric = IntCounter::new(family.name, family.help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A counter family registered in `registry`.
fn counter_vec(registry: &Registry, family: &Family) -> Result<IntCounterVec, prometheus::Error> {
    let metric = IntCounterVec::new(Opts::new(family.name, family.help), family.labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A gauge registered in `registry`.
fn gauge(registry: &Registry, family: &Family) -> Result<IntGauge, prometheus::Error> {
    let metric = IntGauge::new(family.name, family.help)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A gauge family registered in `registry`.
fn gauge_vec(registry: &Registry, family: &Family) -> Result<IntGaugeVec, prometheus::Error> {
    let metric = IntGaugeVec::new(Opts::new(family.name, family.help), family.labels)?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Serves `/metrics`, `/healthz`, `/readyz`, `/manifest.json` and `/dns-servers.json` on an already bound listener until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: CancellationToken) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "metrics listener accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        connections.spawn(serve_connection(stream, peer, metrics));
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

async fn serve_connection(stream: tokio::net::TcpStream, peer: SocketAddr, metrics: Arc<Metrics>) {
    let service = hyper::service::service_fn(move |request: Request<hyper::body::Incoming>| {
        let metrics = Arc::clone(&metrics);
        async move { Ok::<_, Infallible>(route(&request, &metrics)) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(5))
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    // A scrape takes milliseconds; a connection that lingers past this is dropped.
    if let Ok(Err(error)) =
        tokio::time::timeout(std::time::Duration::from_secs(30), connection).await
    {
        tracing::debug!(%peer, %error, "metrics connection ended with an error");
    }
}

/// `/dns-servers.json`: the resolver's per-server state (its busiest servers), addresses
/// included, which metric labels never carry.
fn dns_servers(metrics: &Metrics) -> (StatusCode, &'static str, String) {
    match metrics.dns.live_servers() {
        Some(Ok(json)) => (StatusCode::OK, "application/json", json + "\n"),
        Some(Err(_)) | None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "the resolver is not started yet\n".to_owned(),
        ),
    }
}

fn route(request: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match request.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.render(),
        ),
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/manifest.json" => match metrics.manifest() {
            Some(text) => (StatusCode::OK, "application/json", text.to_string()),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "the manifest is not rendered yet\n".to_owned(),
            ),
        },
        "/dns-servers.json" => dns_servers(metrics),
        "/readyz" if metrics.ready.get() == 1 => {
            (StatusCode::OK, "text/plain", "ready\n".to_owned())
        }
        "/readyz" => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: starting or draining\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics, /healthz, /readyz, /manifest.json or /dns-servers.json\n"
                .to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
