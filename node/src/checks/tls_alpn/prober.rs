//! The network half of tls-alpn-01: a TLS handshake offering only `acme-tls/1`, which accepts
//! the self-signed challenge certificate (RFC 8737 §3: the chain is not checked) but still
//! verifies the handshake signature against the certificate's own public key. webpki refuses to
//! parse a certificate with the critical acmeIdentifier extension, so the signature is checked
//! with the raw SubjectPublicKeyInfo (as `../shared/design.md` says).

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::certificate::ACME_TLS_ALPN;
use crate::egress::dial::IoError;

/// Why the challenge handshake produced no certificate to inspect (the problem is `tls`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandshakeError {
    /// The name cannot be sent as SNI.
    #[error(
        "server name {server_name:?}: {}",
        rustls_pki_types::InvalidDnsNameError
    )]
    ServerName {
        /// The name.
        server_name: String,
    },
    /// The TLS handshake failed (refused ALPN, bad signature, garbage, closed).
    #[error("TLS handshake failed: {0}")]
    Failed(IoError),
    /// The handshake did not finish by its deadline.
    #[error("the TLS handshake did not finish in time")]
    TimedOut,
    /// The server sent no certificate.
    #[error("the server sent no certificate")]
    NoCertificate,
}

/// What the handshake produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// The end-entity certificate, DER.
    pub certificate: Vec<u8>,
}

/// The TLS client configuration of the prober: TLS 1.2 and 1.3, ALPN `acme-tls/1` only.
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RawKeyVerifier {
            algorithms: provider.signature_verification_algorithms,
        }))
        .with_no_client_auth();
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    config.enable_sni = true;
    Ok(Arc::new(config))
}

/// Shakes hands with `address` as `server_name` over `tcp`, by `deadline`, then closes.
pub async fn handshake(
    config: &Arc<rustls::ClientConfig>,
    tcp: TcpStream,
    server_name: &str,
    deadline: Instant,
) -> Result<Handshake, HandshakeError> {
    let name =
        ServerName::try_from(server_name.to_owned()).map_err(|_| HandshakeError::ServerName {
            server_name: server_name.to_owned(),
        })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let mut stream = match timeout_at(deadline, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(HandshakeError::Failed(error.into())),
        Err(_) => return Err(HandshakeError::TimedOut),
    };
    let (_, connection) = stream.get_ref();
    let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
    let certificate = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|der| der.as_ref().to_vec())
        .ok_or(HandshakeError::NoCertificate)?;
    // No application data (RFC 8737 §3); a close_notify, bounded, then drop.
    let _ = timeout_at(deadline, stream.shutdown()).await;
    Ok(Handshake { alpn, certificate })
}

/// Accepts any certificate (it is inspected after the handshake) and verifies handshake
/// signatures with the certificate's raw public key.
#[derive(Debug)]
struct RawKeyVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

fn spki(certificate: &CertificateDer<'_>) -> Result<Vec<u8>, rustls::Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    Ok(parsed.public_key().raw.to_vec())
}

impl ServerCertVerifier for RawKeyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The certificate must at least parse, so its key can check the handshake signature.
        spki(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = spki(cert)?;
        let key = SubjectPublicKeyInfoDer::from(key.as_slice());
        let entity = webpki::RawPublicKeyEntity::try_from(&key).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let candidates = self
            .algorithms
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme == dss.scheme)
            .flat_map(|(_, algorithms)| algorithms.iter());
        for algorithm in candidates {
            if entity
                .verify_signature(*algorithm, message, dss.signature())
                .is_ok()
            {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let key = spki(cert)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(key.as_slice()),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
