//! A loopback HTTP/1.1 fixture for the fetcher and the HTTP checks: each path answers as its
//! [`Route`] says, including hostile behaviours (endless body, a head that never ends, a
//! stalled head, non-HTTP bytes). Every connection is bounded by the test's own timeouts.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::{Bytes, Frame};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;

/// How one path answers.
#[derive(Debug, Clone)]
pub enum Route {
    /// Status, headers and body.
    Respond {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
    },
    /// 200 with a body that never ends (1 KiB chunks).
    EndlessBody,
    /// Raw bytes instead of HTTP, then close.
    Garbage,
    /// A response head of this many header bytes (a huge header).
    HugeHeaders(usize),
    /// Accept, then say nothing for this long.
    Stall(Duration),
}

impl Route {
    /// 200 with this body.
    pub fn ok(body: &str) -> Self {
        Route::Respond {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        Route::Respond {
            status,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }

    /// A bare status.
    pub fn status(status: u16) -> Self {
        Route::Respond {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

type Routes = Arc<Mutex<HashMap<String, Route>>>;

/// A running fixture; stops when dropped.
#[derive(Debug)]
pub struct HttpServer {
    address: SocketAddr,
    routes: Routes,
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
    refused: Arc<Mutex<Vec<std::net::IpAddr>>>,
    _task: Task,
}

/// Aborts the accept loop when the fixture is dropped.
#[derive(Debug)]
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl HttpServer {
    /// Starts on `bind` (port 0 for any) with no routes (404 for everything).
    pub async fn start(bind: SocketAddr) -> anyhow::Result<Self> {
        anyhow::ensure!(bind.ip().is_loopback(), "fixtures bind loopback only");
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let routes: Routes = Arc::default();
        let requests: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let (task_routes, task_requests) = (Arc::clone(&routes), Arc::clone(&requests));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let refused: Arc<Mutex<Vec<std::net::IpAddr>>> = Arc::default();
        let task_refused = Arc::clone(&refused);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                if task_refused.lock().is_ok_and(|r| r.contains(&peer.ip())) {
                    reset(stream);
                    continue;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (routes, requests) = (Arc::clone(&task_routes), Arc::clone(&task_requests));
                tokio::spawn(async move { serve(stream, routes, requests).await });
            }
        });
        Ok(Self {
            address,
            routes,
            requests,
            connections,
            refused,
            _task: Task(task),
        })
    }

    /// Starts one fixture on 127.0.0.1 and one on `[::1]` with the same port (so one lab port
    /// override serves both families); `None` for IPv6 when this machine has no `::1`.
    pub async fn start_dual() -> anyhow::Result<(Self, Option<Self>)> {
        for _ in 0..20 {
            let v4 = Self::start("127.0.0.1:0".parse()?).await?;
            let v6_address = SocketAddr::new("::1".parse()?, v4.address().port());
            match Self::start(v6_address).await {
                Ok(v6) => return Ok((v4, Some(v6))),
                Err(error) => {
                    let no_v6 = error
                        .downcast_ref::<std::io::Error>()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrNotAvailable);
                    if no_v6 {
                        return Ok((v4, None));
                    }
                }
            }
        }
        anyhow::bail!("no port free on both 127.0.0.1 and [::1]")
    }

    /// Resets every connection from `source` at once (a firewall that refuses one client
    /// address); other clients are served as before.
    pub fn refuse_from(&self, source: std::net::IpAddr) -> &Self {
        if let Ok(mut refused) = self.refused.lock() {
            refused.push(source);
        }
        self
    }

    /// Serves `source` again after [`HttpServer::refuse_from`].
    pub fn serve_again(&self, source: std::net::IpAddr) -> &Self {
        if let Ok(mut refused) = self.refused.lock() {
            refused.retain(|refused| *refused != source);
        }
        self
    }

    /// TCP connections accepted so far (refused ones not counted).
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Sets how `path` answers.
    pub fn route(&self, path: &str, route: Route) -> &Self {
        if let Ok(mut routes) = self.routes.lock() {
            routes.insert(path.to_owned(), route);
        }
        self
    }

    /// Every request seen: (Host header, path, User-Agent).
    pub fn requests(&self) -> Vec<(String, String, String)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// Closes with an RST (SO_LINGER 0) instead of a FIN, as a refusing firewall's reset looks.
fn reset(stream: tokio::net::TcpStream) {
    #[allow(
        deprecated,
        reason = "SO_LINGER 0 never blocks on drop: the kernel sends RST at once"
    )]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn serve(
    mut stream: tokio::net::TcpStream,
    routes: Routes,
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
) {
    // Peek at the request line to pick raw behaviours before hyper sees the connection.
    let mut head = [0u8; 1024];
    let Ok(n) = stream.peek(&mut head).await else {
        return;
    };
    let text = String::from_utf8_lossy(&head[..n]);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let route = routes.lock().ok().and_then(|r| r.get(&path).cloned());
    match route {
        Some(Route::Garbage) => {
            let _ = stream
                .write_all(b"\x16\x03\x01\x00\x05hello garbage, not HTTP\r\n\r\n")
                .await;
            return;
        }
        Some(Route::Stall(duration)) => {
            tokio::time::sleep(duration).await;
            return;
        }
        Some(Route::HugeHeaders(bytes)) => {
            let mut response = b"HTTP/1.1 200 OK\r\n".to_vec();
            while response.len() < bytes {
                response.extend_from_slice(
                    format!("X-Filler-{}: {}\r\n", response.len(), "y".repeat(200)).as_bytes(),
                );
            }
            response.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            let _ = stream.write_all(&response).await;
            return;
        }
        _ => {}
    }
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let routes = Arc::clone(&routes);
            let requests = Arc::clone(&requests);
            async move {
                let header = |name| {
                    request
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let path = request.uri().path().to_owned();
                if let Ok(mut seen) = requests.lock() {
                    seen.push((
                        header(hyper::header::HOST),
                        path.clone(),
                        header(hyper::header::USER_AGENT),
                    ));
                }
                let route = routes
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&path).cloned())
                    .unwrap_or(Route::status(404));
                Ok::<_, Infallible>(respond(route))
            }
        });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn respond(route: Route) -> hyper::Response<Body> {
    match route {
        Route::Respond {
            status,
            headers,
            body,
        } => {
            let mut builder = hyper::Response::builder().status(status);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder
                .body(Full::new(Bytes::from(body)).boxed())
                .unwrap_or_default()
        }
        Route::EndlessBody => hyper::Response::builder()
            .status(200)
            .body(Endless.boxed())
            .unwrap_or_default(),
        _ => hyper::Response::builder()
            .status(500)
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_default(),
    }
}

/// A body that never ends: 1 KiB data frames forever.
#[derive(Debug)]
struct Endless;

static CHUNK: [u8; 1024] = [b'x'; 1024];

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

#[cfg(test)]
mod serve_again_tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// One GET of `/p`: the status line, or `None` when the connection was reset or closed.
    async fn status_line(address: SocketAddr) -> Option<String> {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream
            .write_all(b"GET /p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8_lossy(&answer).into_owned();
        text.lines()
            .next()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
    }

    #[tokio::test]
    async fn refused_source_is_served_again() {
        let server = HttpServer::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        server.route("/p", Route::ok("x"));
        let loopback = std::net::IpAddr::from([127, 0, 0, 1]);
        server.refuse_from(loopback);
        assert_eq!(status_line(server.address()).await, None);
        server.serve_again(loopback);
        assert_eq!(
            status_line(server.address()).await.as_deref(),
            Some("HTTP/1.1 200 OK")
        );
        assert_eq!(server.connections(), 1);
    }
}
