//! The QUIC server (ALPN `mpic/1`, TLS 1.3 only, mutual TLS): accepts primaries' connections,
//! authorizes them, and serves each bidirectional stream as one request.

pub mod admission;
pub mod auth;
pub(crate) mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use mpic_protocol::{ALPN, close_code};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::{LimitsConfig, QuicConfig};
use crate::credentials::{self, CredentialsError};
use crate::dispatch::Dispatcher;
use crate::metrics::Metrics;
use crate::signing::ResultSigner;

use admission::Admission;

/// The QUIC listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// Certificates or keys could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The TLS configuration was refused (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client CA bundle could not be used.
    #[error("client CA (quic.client_ca): {0}")]
    ClientCa(String),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Everything a request needs, shared by all connections.
pub struct Service {
    /// Request limits.
    pub limits: LimitsConfig,
    /// Signs results as this perspective (replaced when a reload rotates the key).
    pub signer: std::sync::RwLock<Arc<ResultSigner>>,
    /// Runs checks.
    pub dispatcher: Dispatcher,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Admission control.
    pub admission: Admission,
    /// SPKI pins (empty: any certificate from the client CA); replaced by a reload.
    pub pins: std::sync::RwLock<Arc<Vec<[u8; 32]>>>,
    /// The audit log.
    pub audit: Arc<crate::audit::AuditLog>,
}

impl Service {
    /// The signer in force.
    pub fn signer(&self) -> Arc<ResultSigner> {
        match self.signer.read() {
            Ok(signer) => Arc::clone(&signer),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The pins in force.
    pub fn pins(&self) -> Arc<Vec<[u8; 32]>> {
        match self.pins.read() {
            Ok(pins) => Arc::clone(&pins),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Builds the QUIC server configuration from the `[quic]` table.
pub fn server_config(config: &QuicConfig) -> Result<quinn::ServerConfig, QuicError> {
    let mut tls = tls_server_config(config, ALPN)?;
    // No 0-RTT: a replayed request must not be accepted before the handshake proves freshness.
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls)
        .map_err(|e| QuicError::Tls(rustls::Error::General(e.to_string())))?;
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

/// The node's TLS 1.3 server identity from the `[quic]` table, demanding a client certificate
/// from `quic.client_ca`, offering the one ALPN protocol `alpn`. Shared by the QUIC listener and
/// the Open MPIC HTTPS listener.
pub fn tls_server_config(
    config: &QuicConfig,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, QuicError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = credentials::load_certificates(&config.certificate)?;
    let key = credentials::load_private_key(&config.private_key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in credentials::load_certificates(&config.client_ca)? {
        roots
            .add(ca)
            .map_err(|e| QuicError::ClientCa(e.to_string()))?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(|e| QuicError::ClientCa(e.to_string()))?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    Ok(tls)
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
        let metrics = &service.metrics;
        if endpoint.open_connections() > max_connections {
            metrics
                .quic_connections
                .with_label_values(&["over_limit"])
                .inc();
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
                .metrics
                .quic_connections
                .with_label_values(&["handshake_failed"])
                .inc();
            tracing::info!(%remote, %error, "QUIC handshake failed");
            return Err(error);
        }
    };
    let chain = connection.peer_identity().and_then(|identity| {
        identity
            .downcast::<Vec<rustls_pki_types::CertificateDer<'static>>>()
            .ok()
    });
    let primary = match auth::authorize(chain.as_deref().map(Vec::as_slice), &service.pins()) {
        Ok(primary) => primary,
        Err(error) => {
            service
                .metrics
                .quic_connections
                .with_label_values(&["unauthorized"])
                .inc();
            tracing::warn!(%remote, %error, "primary refused");
            connection.close(
                close_code::UNAUTHORIZED.into(),
                error.to_string().as_bytes(),
            );
            return Ok(());
        }
    };
    service
        .metrics
        .quic_connections
        .with_label_values(&["accepted"])
        .inc();
    let _open = GaugeGuard::new(&service.metrics.quic_connections_open);
    let limit = service.admission.connect(&primary.id);
    let span = tracing::info_span!("connection", %remote, primary = %primary.id, primary_name = %primary.name);
    // `instrument`, not `span.enter()` (an entered guard must not be held across `.await`).
    let result = async {
        tracing::debug!("primary connected");
        loop {
            let accepted = connection.accept_bi().await;
            match accepted {
                Ok((mut send, _recv)) if shutdown.is_cancelled() => {
                    // Draining: every new request gets a typed refusal, in-flight ones finish.
                    let service = Arc::clone(&service);
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
                Ok(_) if !auth::admitted(&primary.id, &service.pins()) => {
                    // A reload removed this primary from the pins: no more requests from it.
                    tracing::warn!(
                        "primary no longer pinned after a reload; closing its connection"
                    );
                    connection.close(
                        close_code::UNAUTHORIZED.into(),
                        b"client key no longer admitted (pins changed by a reload)",
                    );
                    break Ok(());
                }
                Ok((send, recv)) => {
                    let service = Arc::clone(&service);
                    let limit = Arc::clone(&limit);
                    let primary = primary.clone();
                    tracker.spawn(
                        stream::serve_request(service, primary, limit, send, recv)
                            .in_current_span(),
                    );
                }
                Err(
                    quinn::ConnectionError::ApplicationClosed(_)
                    | quinn::ConnectionError::LocallyClosed,
                ) => break Ok(()),
                Err(error) => break Err(error),
            }
        }
    }
    .instrument(span)
    .await;
    service.admission.disconnect(&primary.id);
    result
}

/// Increments a gauge now and decrements it when dropped, so no return path skips the decrement.
pub(crate) struct GaugeGuard {
    gauge: prometheus::IntGauge,
}

impl GaugeGuard {
    pub(crate) fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self {
            gauge: gauge.clone(),
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}
