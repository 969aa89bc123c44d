//! One HTTP/1.1 exchange on an open connection: the handshake, the GET with the node's headers,
//! the response head and the body read up to its cap, each step under the hop's deadline.

use std::net::SocketAddr;

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, timeout_at};
use url::Url;

use super::connect::Io;
use super::options::FetchOptions;
use super::outcome::{FetchError, Fetched, Hop, HttpFailure};
use super::pool::{AbortOnDrop, Connection, Pool, PoolKey};

/// What one hop asks for.
pub(crate) struct Request<'a> {
    pub(crate) url: &'a Url,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) https: bool,
}

/// A hop's answer: status, `Location` header, and the answer as the fetch returns it.
pub(crate) type HopAnswer = (u16, Option<String>, Fetched);

/// The pieces an exchange works with besides the connection.
pub(crate) struct Exchange<'a> {
    pub(crate) options: &'a FetchOptions,
    /// The idle pool (when reuse is on), for the connection once it is done.
    pub(crate) pool: Option<&'a Pool>,
    pub(crate) address: SocketAddr,
    pub(crate) key: &'a PoolKey,
    pub(crate) hop_deadline: Instant,
}

impl Exchange<'_> {
    fn timeout(&self, url: &Url, stage: &'static str) -> FetchError {
        FetchError::Timeout {
            url: url.to_string(),
            stage,
        }
    }

    fn http(&self, url: &Url, failure: HttpFailure) -> FetchError {
        FetchError::Http {
            url: url.to_string(),
            address: self.address,
            failure,
        }
    }

    /// Sends the GET on `connection`, reads the capped body, and pools the connection again
    /// when reuse is on and the exchange ended cleanly.
    pub(crate) async fn run(
        &self,
        target: &Request<'_>,
        mut connection: Connection,
        hop: &mut Hop,
    ) -> Result<HopAnswer, FetchError> {
        let url = target.url;
        let response = self.send(target, &mut connection).await?;
        hop.address = Some(self.address);
        let status = response.status().as_u16();
        hop.status = Some(status);
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        let mut truncated = false;
        loop {
            let frame = match timeout_at(self.hop_deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                Ok(Some(Err(source))) => {
                    let read = bytes.len();
                    return Err(self.http(url, HttpFailure::Body { read, source }));
                }
                Err(_) => return Err(self.timeout(url, "reading the body")),
            };
            if let Ok(data) = frame.into_data() {
                let room = self.options.max_body_bytes.saturating_sub(bytes.len());
                bytes.extend_from_slice(&data[..data.len().min(room)]);
                if data.len() > room {
                    truncated = true;
                    break;
                }
            }
        }
        hop.bytes = bytes.len();
        if let Some(pool) = self.pool
            && !truncated
        {
            pool.put(self.key.clone(), connection);
        }
        let fetched = Fetched {
            status,
            body: bytes,
            truncated,
        };
        Ok((status, location, fetched))
    }

    /// Builds and sends the GET, once the connection is ready; returns the response head.
    async fn send(
        &self,
        target: &Request<'_>,
        connection: &mut Connection,
    ) -> Result<hyper::Response<hyper::body::Incoming>, FetchError> {
        let url = target.url;
        let default_port = if target.https { 443 } else { 80 };
        let authority = if target.port == default_port {
            target.host.to_owned()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let mut request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, &self.options.user_agent)
            .header(hyper::header::ACCEPT, "*/*");
        if self.pool.is_none() {
            request = request.header(hyper::header::CONNECTION, "close");
        }
        let request = request
            .body(Empty::<Bytes>::new())
            .map_err(|error| self.http(url, HttpFailure::Request(error)))?;
        // A pooled connection whose driver has not yet finished the previous response is not
        // ready for the next request (hyper refuses it at once): wait for it, within the hop.
        match timeout_at(self.hop_deadline, connection.sender.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                return Err(self.http(url, HttpFailure::ClosedBeforeRequest(error)));
            }
            Err(_) => return Err(self.timeout(url, "waiting for the connection")),
        }
        match timeout_at(self.hop_deadline, connection.sender.send_request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(source)) => Err(self.http(
                url,
                HttpFailure::NotHttp {
                    port: self.address.port(),
                    source,
                },
            )),
            Err(_) => Err(self.timeout(url, "waiting for the response head")),
        }
    }
}

/// The HTTP/1.1 handshake on a fresh stream; the connection's driver task is aborted when the
/// connection is dropped.
pub(crate) async fn handshake(
    options: &FetchOptions,
    stream: Box<dyn Io>,
    address: SocketAddr,
    url: &Url,
    hop_deadline: Instant,
) -> Result<Connection, FetchError> {
    match timeout_at(
        hop_deadline,
        hyper::client::conn::http1::Builder::new()
            .max_buf_size(options.max_header_bytes.max(8192))
            .handshake::<_, Empty<Bytes>>(TokioIo::new(stream)),
    )
    .await
    {
        Ok(Ok((sender, connection))) => Ok(Connection {
            sender,
            // The connection task ends with the connection: aborted on drop, whatever happens.
            _driver: AbortOnDrop(tokio::spawn(async move {
                let _ = connection.await;
            })),
        }),
        Ok(Err(error)) => Err(FetchError::Http {
            url: url.to_string(),
            address,
            failure: HttpFailure::Handshake(error),
        }),
        Err(_) => Err(FetchError::Timeout {
            url: url.to_string(),
            stage: "HTTP handshake",
        }),
    }
}
