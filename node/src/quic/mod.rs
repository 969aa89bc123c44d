//! The QUIC server (ALPN `mpic/1`, TLS 1.3 only, mutual TLS): accepts primaries' connections,
//! authorizes them, and serves each bidirectional stream as one request. A transport adapter:
//! the state, admission, and the run → record → sign → audit path live in [`crate::service`].

pub(crate) mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use mpic_protocol::{ALPN, close_code};
use quinn::crypto::rustls::{NoInitialCipherSuite, QuicServerConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::QuicConfig;
use crate::metrics::QuicConnectionResult;
use crate::service::tls::{self, TlsConfigError};
use crate::service::{GaugeGuard, Service, auth};

/// The QUIC listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// The TLS identity (certificates, key, client CA) could not be built.
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),
    /// The TLS configuration offers no cipher suite QUIC can start with.
    #[error("TLS configuration: {0}")]
    Quic(#[from] NoInitialCipherSuite),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Builds the QUIC server configuration from the `[quic]` table.
pub fn server_config(config: &QuicConfig) -> Result<quinn::ServerConfig, QuicError> {
    let mut tls = tls::server_config(config, ALPN)?;
    // No 0-RTT: a replayed request must not be accepted before the handshake proves freshness.
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(config.max_streams_per_connection.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(quinn::IdleTimeout::try_from(config.idle_timeout).ok())
        .keep_alive_interval(Some(config.keep_alive_interval));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

/// Binds one endpoint per listen address.
pub fn bind(
    config: &QuicConfig,
    server: &quinn::ServerConfig,
) -> Result<Vec<quinn::Endpoint>, QuicError> {
    config
        .listen
        .iter()
        .map(|&address| {
            quinn::Endpoint::server(server.clone(), address)
                .map_err(|source| QuicError::Bind { address, source })
        })
        .collect()
}

/// Accepts connections on `endpoint` until `shutdown`; every request task is registered on
/// `tracker` so shutdown can wait for them to drain.
pub async fn serve(
    endpoint: quinn::Endpoint,
    service: Arc<Service>,
    max_connections: usize,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let incoming = tokio::select! {
            () = shutdown.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { break };
        if endpoint.open_connections() > max_connections {
            service
                .metrics()
                .count_quic_connection(QuicConnectionResult::OverLimit);
            incoming.refuse();
            continue;
        }
        let service = Arc::clone(&service);
        let shutdown = shutdown.clone();
        let tracker = tracker.clone();
        // Connections are not tracked: they live until the endpoint closes after the drain.
        // Their requests are, so shutdown waits for exactly the work in flight.
        tokio::spawn(async move {
            if let Err(error) = serve_connection(incoming, service, shutdown, tracker).await {
                tracing::debug!(%error, "connection ended");
            }
        });
    }
}

async fn serve_connection(
    incoming: quinn::Incoming,
    service: Arc<Service>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) -> Result<(), quinn::ConnectionError> {
    let remote = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(error) => {
            service
                .metrics()
                .count_quic_connection(QuicConnectionResult::HandshakeFailed);
            tracing::info!(%remote, %error, "QUIC handshake failed");
            return Err(error);
        }
    };
    let Some(primary) = authorize(&service, &connection, remote) else {
        return Ok(());
    };
    service
        .metrics()
        .count_quic_connection(QuicConnectionResult::Accepted);
    let _open = GaugeGuard::new(&service.metrics().quic_connections_open);
    let limit = service.admission().connect(&primary.id);
    let span = tracing::info_span!("connection", %remote, primary = %primary.id, primary_name = %primary.name);
    // `instrument`, not `span.enter()` (an entered guard must not be held across `.await`).
    let result = accept_streams(&connection, &service, &primary, &limit, &shutdown, &tracker)
        .instrument(span)
        .await;
    service.admission().disconnect(&primary.id);
    result
}

/// The primary on `connection`, or `None` after closing it (`UNAUTHORIZED`) when the pins in
/// force do not admit it.
fn authorize(
    service: &Service,
    connection: &quinn::Connection,
    remote: SocketAddr,
) -> Option<auth::Primary> {
    let chain = connection.peer_identity().and_then(|identity| {
        identity
            .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
            .ok()
    });
    let state = service.state();
    let authorized =
        auth::authorize(chain.as_deref().map(Vec::as_slice), &state.pins).and_then(|primary| {
            if state.tenants.admits(&primary) {
                Ok(primary)
            } else {
                Err(auth::AuthError::NoTenant(primary.name))
            }
        });
    match authorized {
        Ok(primary) => Some(primary),
        Err(error) => {
            service
                .metrics()
                .count_quic_connection(QuicConnectionResult::Unauthorized);
            tracing::warn!(%remote, %error, "primary refused");
            connection.close(
                close_code::UNAUTHORIZED.into(),
                error.to_string().as_bytes(),
            );
            None
        }
    }
}

/// Serves each bidirectional stream of an authorized connection as one request until the
/// connection ends (or a reload unpins its primary); while draining, refuses new ones.
async fn accept_streams(
    connection: &quinn::Connection,
    service: &Arc<Service>,
    primary: &auth::Primary,
    limit: &Arc<tokio::sync::Semaphore>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<(), quinn::ConnectionError> {
    tracing::debug!("primary connected");
    loop {
        match connection.accept_bi().await {
            Ok((mut send, _recv)) if shutdown.is_cancelled() => {
                // Draining: every new request gets a typed refusal, in-flight ones finish.
                let service = Arc::clone(service);
                tracker.spawn(async move {
                    stream::refuse(
                        &service,
                        &mut send,
                        mpic_protocol::ProtocolErrorKind::ShuttingDown,
                        "node is shutting down; retry on another perspective".into(),
                    )
                    .await;
                });
            }
            Ok(_) if !service.state().admits(primary) => {
                // A reload removed this primary from the pins or its tenant from
                // `[[tenants]]`: no more requests from it.
                tracing::warn!(
                    "primary no longer admitted (pins or tenants changed by a reload); closing its connection"
                );
                connection.close(
                    close_code::UNAUTHORIZED.into(),
                    b"client key no longer admitted (pins or tenants changed by a reload)",
                );
                return Ok(());
            }
            Ok((send, recv)) => {
                let (service, limit) = (Arc::clone(service), Arc::clone(limit));
                tracker.spawn(
                    stream::serve_request(service, primary.clone(), limit, send, recv)
                        .in_current_span(),
                );
            }
            Err(
                quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::LocallyClosed,
            ) => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
