//! Opening one hop's connection: a TCP connect through [`crate::egress`] and, for an https hop,
//! the TLS handshake, both within `http.connect_timeout`. A failure here is network-level: the
//! fetcher's dial loop records it and tries the next address.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};

use super::fetch::FetchOptions;
use crate::egress::{DialError, dial_tcp};

/// Anything a hop can speak HTTP over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to `address` for `host` (TLS with SNI `host` when `https`), within the connect
/// timeout and by `hop_deadline`.
pub(crate) async fn connect(
    tls: &Arc<rustls::ClientConfig>,
    options: &FetchOptions,
    host: &str,
    https: bool,
    address: SocketAddr,
    hop_deadline: Instant,
) -> Result<Box<dyn Io>, DialError> {
    let connect_deadline = hop_deadline.min(Instant::now() + options.connect_timeout);
    let tcp = dial_tcp(
        address,
        options.egress_ipv4,
        options.egress_ipv6,
        connect_deadline,
    )
    .await?;
    if !https {
        return Ok(Box::new(tcp));
    }
    let server_name = rustls_pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        DialError::ServerName {
            host: host.to_owned(),
        }
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
    match timeout_at(connect_deadline, connector.connect(server_name, tcp)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(error)) => Err(DialError::TlsHandshake(error.into())),
        Err(_) => Err(DialError::TlsTimedOut),
    }
}
