//! A loopback TLS-ALPN-01 fixture (RFC 8737): a TLS server presenting a challenge certificate
//! made to order (names, acmeIdentifier value and criticality), negotiating the ALPN protocols
//! it is given, recording the SNI each client sent; or answering with non-TLS bytes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;

/// `id-pe-acmeIdentifier` as rcgen takes it.
const ACME_IDENTIFIER: [u64; 9] = [1, 3, 6, 1, 5, 5, 7, 1, 31];

/// The certificate to present.
#[derive(Debug, Clone)]
pub struct ChallengeCert {
    /// subjectAltName entries: DNS names, or IP addresses written as such.
    pub names: Vec<String>,
    /// The acmeIdentifier extnValue bytes (`04 20` + digest for a correct one); `None`: absent.
    pub acme_identifier: Option<Vec<u8>>,
    /// Whether the acmeIdentifier is marked critical.
    pub critical: bool,
}

impl ChallengeCert {
    /// A correct challenge certificate for `name` carrying `digest`.
    pub fn correct(name: &str, digest: [u8; 32]) -> Self {
        let mut value = vec![0x04, 0x20];
        value.extend_from_slice(&digest);
        Self {
            names: vec![name.to_owned()],
            acme_identifier: Some(value),
            critical: true,
        }
    }

    fn build(&self) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = self
            .names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(rcgen::SanType::IpAddress(ip)),
                Err(_) => Ok(rcgen::SanType::DnsName(name.as_str().try_into()?)),
            })
            .collect::<anyhow::Result<_>>()?;
        if let Some(value) = &self.acme_identifier {
            let mut extension =
                rcgen::CustomExtension::from_oid_content(&ACME_IDENTIFIER, value.clone());
            extension.set_criticality(self.critical);
            params.custom_extensions.push(extension);
        }
        let key = rcgen::KeyPair::generate()?;
        let certificate = params.self_signed(&key)?;
        Ok((
            certificate.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ))
    }
}

/// How the fixture answers.
#[derive(Debug, Clone)]
pub enum TlsBehaviour {
    /// TLS with this certificate, negotiating these ALPN protocols (empty: ignores ALPN, as a
    /// proxy that does not support tls-alpn-01 does).
    Serve {
        /// The certificate.
        certificate: ChallengeCert,
        /// Protocols the server accepts.
        alpn: Vec<Vec<u8>>,
    },
    /// Bytes that are not TLS, then close.
    Garbage,
    /// TLS with a correct challenge certificate for whatever name the client sends as SNI
    /// (made on first use, one shared key, cached), negotiating these ALPN protocols: one
    /// fixture answering many names, for load runs.
    PerName {
        /// The acmeIdentifier digest every certificate carries.
        digest: [u8; 32],
        /// Protocols the server accepts.
        alpn: Vec<Vec<u8>>,
    },
}

/// Most SNI names recorded (a load run's fixture must not grow without bound).
const RECORDED_NAMES: usize = 10_000;

/// Most certificates [`PerNameCertificates`] caches; beyond it the cache starts again.
const PER_NAME_CACHE: usize = 100_000;

/// A correct challenge certificate per SNI name, all on one key.
struct PerNameCertificates {
    digest: [u8; 32],
    key: rcgen::KeyPair,
    signing_key: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<std::collections::HashMap<String, Arc<rustls::sign::CertifiedKey>>>,
}

impl std::fmt::Debug for PerNameCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerNameCertificates")
            .finish_non_exhaustive()
    }
}

impl PerNameCertificates {
    fn new(digest: [u8; 32], provider: &rustls::crypto::CryptoProvider) -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate()?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing_key = provider.key_provider.load_private_key(der)?;
        Ok(Self {
            digest,
            key,
            signing_key,
            cache: Mutex::default(),
        })
    }

    fn certificate(&self, name: &str) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("certificate cache poisoned"))?;
        if let Some(certified) = cache.get(name) {
            return Ok(Arc::clone(certified));
        }
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
        let mut value = vec![0x04, 0x20];
        value.extend_from_slice(&self.digest);
        let mut extension = rcgen::CustomExtension::from_oid_content(&ACME_IDENTIFIER, value);
        extension.set_criticality(true);
        params.custom_extensions.push(extension);
        let certificate = params.self_signed(&self.key)?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(
            vec![certificate.der().clone()],
            Arc::clone(&self.signing_key),
        ));
        if cache.len() >= PER_NAME_CACHE {
            cache.clear();
        }
        cache.insert(name.to_owned(), Arc::clone(&certified));
        Ok(certified)
    }
}

impl rustls::server::ResolvesServerCert for PerNameCertificates {
    fn resolve(
        &self,
        client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.certificate(client_hello.server_name()?).ok()
    }
}

/// Serves one certificate whatever the client asks for.
#[derive(Debug)]
struct OneCertificate(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for OneCertificate {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// A running fixture; stops when dropped.
#[derive(Debug)]
pub struct TlsAlpnServer {
    address: SocketAddr,
    server_names: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsAlpnServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsAlpnServer {
    /// Starts on `bind` (a loopback address; port 0 for any).
    pub async fn start(bind: SocketAddr, behaviour: TlsBehaviour) -> anyhow::Result<Self> {
        anyhow::ensure!(bind.ip().is_loopback(), "fixtures bind loopback only");
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let acceptor = match &behaviour {
            TlsBehaviour::Serve { certificate, alpn } => {
                let (certificate, key) = certificate.build()?;
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                // `with_single_cert` would run webpki over the certificate, which refuses the
                // critical acmeIdentifier: serve it through a resolver instead.
                let signing_key = provider.key_provider.load_private_key(key)?;
                let certified = Arc::new(rustls::sign::CertifiedKey::new(
                    vec![certificate],
                    signing_key,
                ));
                let mut config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(OneCertificate(certified)));
                config.alpn_protocols = alpn.clone();
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
            TlsBehaviour::PerName { digest, alpn } => {
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let resolver = PerNameCertificates::new(*digest, &provider)?;
                let mut config = rustls::ServerConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(resolver));
                config.alpn_protocols = alpn.clone();
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
            }
            TlsBehaviour::Garbage => None,
        };
        let server_names: Arc<Mutex<Vec<String>>> = Arc::default();
        let names = Arc::clone(&server_names);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let names = Arc::clone(&names);
                tokio::spawn(async move {
                    let Some(acceptor) = acceptor else {
                        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        return;
                    };
                    let accept = acceptor.accept(stream);
                    if let Ok(Ok(mut tls)) =
                        tokio::time::timeout(std::time::Duration::from_secs(5), accept).await
                    {
                        if let Some(name) = tls.get_ref().1.server_name()
                            && let Ok(mut names) = names.lock()
                            && names.len() < RECORDED_NAMES
                        {
                            names.push(name.to_owned());
                        }
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Ok(Self {
            address,
            server_names,
            task,
        })
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The SNI of every completed handshake, in order (the first 10,000).
    pub fn server_names(&self) -> Vec<String> {
        self.server_names
            .lock()
            .map(|names| names.clone())
            .unwrap_or_default()
    }
}
