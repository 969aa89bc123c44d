//! The Open MPIC-compatible remote-perspective endpoint: an HTTPS (TLS 1.3, mutual TLS) JSON
//! listener taking `POST /caa` (`CaaCheckRequest`) and `POST /dcv` (`DcvCheckRequest`) as
//! `open-mpic-core` defines them, and answering `CaaCheckResponse`/`DcvCheckResponse` plus our
//! signed result in the extra field `mpic_node`. A CA running Open MPIC's coordinator can list
//! this node as one of its remote perspectives (design.md "Interoperability").
//!
//! It shares everything with the QUIC path: the same certificate, client CA and SPKI pins, the
//! same admission limits, dispatcher, signer, audit log and metrics. Off unless
//! `openmpic.listen` is set.

pub mod model;
pub mod respond;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use mpic_protocol::{PROTOCOL_VERSION, Request, Target};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{OpenMpicConfig, QuicConfig};
use crate::quic::auth::{self, Primary};
use crate::quic::stream::{record_check, sign_and_audit, unix_ms};
use crate::quic::{GaugeGuard, QuicError, Service};

/// Connections served at once; more are closed at accept (each holds a TLS session).
pub const MAX_CONNECTIONS: usize = 256;
/// Time for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this long, idle or not (keep-alive is for bursts).
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// The listener's TLS configuration, replaced by a SIGHUP reload (new connections use it).
pub type TlsHandle = Arc<std::sync::RwLock<Arc<rustls::ServerConfig>>>;

/// The listener's TLS configuration: the `[quic]` identity and client CA, ALPN `http/1.1`.
pub fn tls_config(quic: &QuicConfig) -> Result<Arc<rustls::ServerConfig>, QuicError> {
    crate::quic::tls_server_config(quic, b"http/1.1").map(Arc::new)
}

/// Response-head bytes and request-head buffer.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Accepts connections on `listener` until `shutdown`; requests in flight are tracked on
/// `tracker` so the drain waits for them.
pub async fn serve(
    listener: TcpListener,
    tls: TlsHandle,
    service: Arc<Service>,
    config: Arc<OpenMpicConfig>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "openmpic: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            service
                .metrics
                .shed_requests
                .with_label_values(&["openmpic_connections"])
                .inc();
            drop(tcp);
            continue;
        };
        let current = match tls.read() {
            Ok(current) => Arc::clone(&current),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        let (acceptor, service, config, shutdown) = (
            TlsAcceptor::from(current),
            Arc::clone(&service),
            Arc::clone(&config),
            shutdown.clone(),
        );
        tracker.spawn(async move {
            let _slot = slot;
            serve_connection(tcp, remote, acceptor, service, config, shutdown).await;
        });
    }
}

async fn serve_connection(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    config: Arc<OpenMpicConfig>,
    shutdown: CancellationToken,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::info!(%remote, %error, "openmpic: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%remote, "openmpic: TLS handshake timed out");
            return;
        }
    };
    let chain = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    let primary = match auth::authorize(chain.as_deref(), &service.pins()) {
        Ok(primary) => primary,
        Err(error) => {
            tracing::warn!(%remote, %error, "openmpic: primary refused");
            return;
        }
    };
    let limit = service.admission.connect(&primary.id);
    let handler = {
        let (service, primary) = (Arc::clone(&service), primary.clone());
        hyper::service::service_fn(move |request| {
            let (service, config, primary, limit) = (
                Arc::clone(&service),
                Arc::clone(&config),
                primary.clone(),
                Arc::clone(&limit),
            );
            async move {
                Ok::<_, Infallible>(handle(request, &service, &config, &primary, &limit).await)
            }
        })
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(service.limits.request_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192))
        .serve_connection(hyper_util::rt::TokioIo::new(tls), handler);
    tokio::pin!(connection);
    let lifetime = tokio::time::sleep(MAX_CONNECTION_LIFETIME);
    tokio::pin!(lifetime);
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%remote, %error, "openmpic: connection ended");
                }
                break;
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = &mut lifetime, if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    service.admission.disconnect(&primary.id);
}

type Body = Full<Bytes>;

async fn handle(
    request: HttpRequest<hyper::body::Incoming>,
    service: &Service,
    config: &OpenMpicConfig,
    primary: &Primary,
    limit: &Arc<Semaphore>,
) -> Response<Body> {
    let endpoint = match request.uri().path() {
        "/caa" => "caa",
        "/dcv" => "dcv",
        _ => "other",
    };
    let response = route(endpoint, request, service, config, primary, limit).await;
    service
        .metrics
        .openmpic_requests
        .with_label_values(&[endpoint, response.status().as_str()])
        .inc();
    response
}

async fn route(
    endpoint: &str,
    request: HttpRequest<hyper::body::Incoming>,
    service: &Service,
    config: &OpenMpicConfig,
    primary: &Primary,
    limit: &Arc<Semaphore>,
) -> Response<Body> {
    if endpoint == "other" {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            "paths are /caa and /dcv",
        );
    }
    if request.method() != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST with a JSON body",
        );
    }
    if !auth::admitted(&primary.id, &service.pins()) {
        return error(
            StatusCode::FORBIDDEN,
            "unauthorized",
            "client key no longer admitted (pins changed by a reload)",
        );
    }
    let received_unix_ms = unix_ms();
    let _admitted = match service.admission.try_admit(limit) {
        Ok(admitted) => admitted,
        Err(shed) => {
            service
                .metrics
                .shed_requests
                .with_label_values(&[shed.label()])
                .inc();
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "node is at its in-flight limit; retry later",
            );
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("1"),
            );
            return response;
        }
    };
    let _in_flight = GaugeGuard::new(&service.metrics.requests_in_flight);
    let body = match read_body(request, service).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parsed = if endpoint == "caa" {
        serde_json::from_slice::<model::CaaRequest>(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let target = r.target(&config.caa_domains).map_err(|e| e.0)?;
                Ok((target, r.trace_identifier))
            })
    } else {
        serde_json::from_slice::<model::DcvRequest>(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                let target = r.target().map_err(|e| e.0)?;
                Ok((target, r.trace_identifier))
            })
    };
    let (target, trace) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, "bad_request", &message),
    };
    let response = check(service, primary, target, trace, received_unix_ms).await;
    match response.and_then(|r| serde_json::to_vec(&r).map_err(|e| e.to_string())) {
        Ok(json) => json_response(StatusCode::OK, json),
        Err(detail) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", &detail),
    }
}

async fn read_body(
    request: HttpRequest<hyper::body::Incoming>,
    service: &Service,
) -> Result<Bytes, Response<Body>> {
    let limit = service.limits.max_request_bytes;
    let timeout = service.limits.request_read_timeout;
    let body = Limited::new(request.into_body(), limit);
    match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "frame_too_large",
            &format!("request body is over limits.max_request_bytes = {limit}"),
        )),
        Ok(Err(e)) => Err(error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &e.to_string(),
        )),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "bad_frame",
            &format!("no complete request body within {} ms", timeout.as_millis()),
        )),
    }
}

/// Runs, records, signs and audits one check, as the QUIC path does for each target.
async fn check(
    service: &Service,
    primary: &Primary,
    target: Target,
    trace: Option<String>,
    received_unix_ms: u64,
) -> Result<respond::CheckResponse, String> {
    let nonce: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
        .map(|random| random.expose())
        .unwrap_or([0; 32]);
    let request_id = trace
        .filter(|id| mpic_protocol::request::valid_request_id(id))
        .unwrap_or_else(|| format!("openmpic-{}", hex::encode(&nonce[..8])));
    let max_deadline = service.limits.max_deadline;
    let request = Request {
        version: PROTOCOL_VERSION,
        request_id,
        nonce: nonce.to_vec(),
        deadline_unix_ms: received_unix_ms
            + u64::try_from(max_deadline.as_millis()).unwrap_or(u64::MAX),
        targets: vec![target],
    };
    let started = Instant::now();
    let report = service
        .dispatcher
        .run(&request.targets[0], started + max_deadline)
        .await;
    record_check(service, &request.targets[0], &report, started.elapsed());
    match sign_and_audit(service, primary, &request, 0, received_unix_ms, report) {
        Ok((signed, payload)) => {
            service
                .metrics
                .requests
                .with_label_values(&["answered"])
                .inc();
            Ok(respond::build(&payload, &signed))
        }
        Err(sign_error) => Err(format!("the result could not be signed: {sign_error}")),
    }
}

fn json_response(status: StatusCode, json: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// An error body: `{"error": kind, "detail": message}`.
fn error(status: StatusCode, kind: &str, detail: &str) -> Response<Body> {
    let json = serde_json::json!({ "error": kind, "detail": detail });
    json_response(status, json.to_string().into_bytes())
}
