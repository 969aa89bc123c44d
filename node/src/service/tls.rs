//! The node's TLS 1.3 server identity from the `[quic]` table (certificate, key, client CA),
//! shared by the QUIC listener and the Open MPIC HTTPS listener.

use std::sync::Arc;

use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};

use crate::config::QuicConfig;
use crate::credentials::{self, CredentialsError};

/// The TLS server configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// Certificates or keys could not be loaded.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The TLS configuration was refused (e.g. key does not match certificate).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// A certificate of the client CA bundle was refused.
    #[error("client CA (quic.client_ca): {0}")]
    ClientCa(#[source] rustls::Error),
    /// No client-certificate verifier could be built from the client CA bundle.
    #[error("client CA (quic.client_ca): {0}")]
    ClientCaVerifier(#[from] VerifierBuilderError),
}

/// The TLS 1.3 server configuration from `config`, demanding a client certificate from
/// `quic.client_ca` and offering the one ALPN protocol `alpn`.
pub fn server_config(
    config: &QuicConfig,
    alpn: &[u8],
) -> Result<rustls::ServerConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = credentials::load_certificates(&config.certificate)?;
    let key = credentials::load_private_key(&config.private_key)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in credentials::load_certificates(&config.client_ca)? {
        roots.add(ca).map_err(TlsConfigError::ClientCa)?;
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    Ok(tls)
}
