//! The Open MPIC-compatible remote-perspective endpoint: an HTTPS (TLS 1.3, mutual TLS) JSON
//! listener taking `POST /caa` (`CaaCheckRequest`) and `POST /dcv` (`DcvCheckRequest`) as
//! `open-mpic-core` defines them, and answering `CaaCheckResponse`/`DcvCheckResponse` plus our
//! signed result in the extra field `mpic_node`. A CA running Open MPIC's coordinator can list
//! this node as one of its remote perspectives (design.md "Interoperability").
//!
//! A transport adapter over [`crate::service`], like the QUIC listener: the same certificate,
//! client CA and SPKI pins, the same admission limits, and each request answered by
//! [`Service::answer`] (the same dispatcher, signer, audit log and metrics). Off unless
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
use crate::metrics::{OpenMpicEndpoint, RequestOutcome, ShedScope};
use crate::service::auth::{self, Primary};
use crate::service::tenants::Tenant;
use crate::service::tls::{self, TlsConfigError};
use crate::service::{Admitted, AnswerError, NodeState, Service, unix_ms};

/// Connections served at once; more are closed at accept (each holds a TLS session).
pub const MAX_CONNECTIONS: usize = 256;
/// Time for the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this long, idle or not (keep-alive is for bursts).
pub const MAX_CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// The listener's TLS configuration: the `[quic]` identity and client CA, ALPN `http/1.1`.
/// It lives in [`NodeState::openmpic_tls`], so a SIGHUP reload replaces it for new connections.
pub fn tls_config(quic: &QuicConfig) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    tls::server_config(quic, b"http/1.1").map(Arc::new)
}

/// Response-head bytes and request-head buffer.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Accepts connections on `listener` until `shutdown`; requests in flight are tracked on
/// `tracker` so the drain waits for them.
pub async fn serve(
    listener: TcpListener,
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
            service.metrics().count_shed(ShedScope::OpenMpicConnections);
            drop(tcp);
            continue;
        };
        let Some(current) = service.state().openmpic_tls.clone() else {
            // Cannot happen: the daemon starts this listener only with a TLS configuration,
            // and a reload keeps it. Refuse the connection rather than serve it without TLS.
            tracing::error!(%remote, "openmpic: no TLS configuration; connection closed");
            continue;
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
    let state = service.state();
    let authorized = auth::authorize(chain.as_deref(), &state.pins).and_then(|primary| {
        if state.tenants.admits(&primary) {
            Ok(primary)
        } else {
            Err(auth::AuthError::NoTenant(primary.name))
        }
    });
    drop(state);
    let primary = match authorized {
        Ok(primary) => primary,
        Err(error) => {
            tracing::warn!(%remote, %error, "openmpic: primary refused");
            return;
        }
    };
    let limit = service.admission().connect(&primary.id);
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
        .header_read_timeout(service.state().limits.request_read_timeout)
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
    service.admission().disconnect(&primary.id);
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
        "/caa" => OpenMpicEndpoint::Caa,
        "/dcv" => OpenMpicEndpoint::Dcv,
        _ => OpenMpicEndpoint::Other,
    };
    let response = route(endpoint, request, service, config, primary, limit).await;
    service
        .metrics()
        .count_openmpic_request(endpoint, response.status());
    response
}

async fn route(
    endpoint: OpenMpicEndpoint,
    request: HttpRequest<hyper::body::Incoming>,
    service: &Service,
    config: &OpenMpicConfig,
    primary: &Primary,
    limit: &Arc<Semaphore>,
) -> Response<Body> {
    if endpoint == OpenMpicEndpoint::Other {
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
    let state = service.state();
    if !state.admits(primary) {
        return error(
            StatusCode::FORBIDDEN,
            "unauthorized",
            "client key no longer admitted (pins or tenants changed by a reload)",
        );
    }
    let received_unix_ms = unix_ms();
    let tenant = state.tenants.identify(primary);
    let Ok(admitted) = service.admit(limit, tenant) else {
        return overloaded(tenant);
    };
    let body = match read_body(request, &state).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let caa_domains = admitted
        .tenant()
        .map(|tenant| &tenant.config.caa_domains)
        .filter(|domains| !domains.is_empty())
        .unwrap_or(&config.caa_domains);
    let (target, trace) = match parse(endpoint, &body, caa_domains) {
        Ok(parsed) => parsed,
        Err(refused) => {
            return error(StatusCode::BAD_REQUEST, "bad_request", &refused.to_string());
        }
    };
    if let Some(refused) = not_permitted(&admitted, &target) {
        return refused;
    }
    let response = check(
        service,
        &state,
        &admitted,
        primary,
        target,
        trace,
        received_unix_ms,
    )
    .await
    .and_then(|response| serde_json::to_vec(&response).map_err(CheckError::Json));
    match response {
        Ok(json) => json_response(StatusCode::OK, json),
        Err(failure) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &failure.to_string(),
        ),
    }
}

/// The 503 `overloaded` answer, with `Retry-After` in whole seconds: the tenant's hint rounded
/// up, else 1.
fn overloaded(tenant: Option<&Arc<Tenant>>) -> Response<Body> {
    let seconds = tenant.map_or(1, |tenant| {
        tenant.config.retry_after.as_millis().div_ceil(1000).max(1)
    });
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "node or tenant is at its limit; retry later",
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&seconds.to_string()) {
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, value);
    }
    response
}

/// The 403 `not_permitted` answer when the admitted tenant may not use the target's check.
fn not_permitted(admitted: &Admitted, target: &Target) -> Option<Response<Body>> {
    let tenant = admitted.tenant()?;
    let kind = crate::dispatch::kind_label(&target.check);
    let method = crate::dispatch::method_label(&target.check);
    (!tenant.config.permits(kind, method)).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "not_permitted",
            &format!("tenant {} may not use {kind} check {method}", tenant.name()),
        )
    })
}

/// Why a body is not a request the endpoint takes (answered as a 400 `bad_request`).
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    /// Not the endpoint's JSON shape.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The shape is right but the request cannot become a target.
    #[error(transparent)]
    Target(#[from] model::Refusal),
}

/// The body as the endpoint's Open MPIC request → our target and the trace identifier.
fn parse(
    endpoint: OpenMpicEndpoint,
    body: &[u8],
    caa_domains: &[String],
) -> Result<(Target, Option<String>), BadRequest> {
    if endpoint == OpenMpicEndpoint::Caa {
        let request = serde_json::from_slice::<model::CaaRequest>(body)?;
        Ok((request.target(caa_domains)?, request.trace_identifier))
    } else {
        let request = serde_json::from_slice::<model::DcvRequest>(body)?;
        Ok((request.target()?, request.trace_identifier))
    }
}

async fn read_body(
    request: HttpRequest<hyper::body::Incoming>,
    state: &NodeState,
) -> Result<Bytes, Response<Body>> {
    let limit = state.limits.max_request_bytes;
    let timeout = state.limits.request_read_timeout;
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

/// Why an admitted Open MPIC request got no verdict (answered as a 500 `internal` error).
#[derive(Debug, thiserror::Error)]
enum CheckError {
    /// The system RNG failed: no nonce, so nothing is signed (never an all-zero nonce).
    #[error("no random nonce for the request: the system RNG failed")]
    Nonce,
    /// The target could not be answered.
    #[error(transparent)]
    Answer(#[from] AnswerError),
    /// The response could not be serialised.
    #[error("the response could not be serialised: {0}")]
    Json(#[source] serde_json::Error),
}

/// Answers one target through the service core (run, record, sign, audit), as a one-target
/// request with a fresh random nonce.
async fn check(
    service: &Service,
    state: &NodeState,
    admitted: &Admitted,
    primary: &Primary,
    target: Target,
    trace: Option<String>,
    received_unix_ms: u64,
) -> Result<respond::CheckResponse, CheckError> {
    let nonce: [u8; 32] = ring::rand::generate(&ring::rand::SystemRandom::new())
        .map(|random| random.expose())
        .map_err(|_| CheckError::Nonce)?;
    let request_id = trace
        .filter(|id| mpic_protocol::request::valid_request_id(id))
        .unwrap_or_else(|| format!("openmpic-{}", hex::encode(&nonce[..8])));
    let max_deadline = state.limits.max_deadline;
    let request = Request {
        version: PROTOCOL_VERSION,
        request_id,
        nonce: nonce.to_vec(),
        deadline_unix_ms: received_unix_ms
            + u64::try_from(max_deadline.as_millis()).unwrap_or(u64::MAX),
        targets: vec![target],
    };
    let deadline = Instant::now() + max_deadline;
    let answer = service
        .answer(admitted, primary, &request, 0, received_unix_ms, deadline)
        .await?;
    service.metrics().count_request(RequestOutcome::Answered);
    Ok(respond::build(
        &answer.payload,
        &answer.signed,
        &answer.report.evidence.dns,
    ))
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
