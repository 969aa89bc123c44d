//! A TCP server that sends as slowly as a hostile peer can: a burst, then one byte per
//! interval of a repeating pattern (a slow body, a slowloris response head, a TLS handshake
//! that never completes), or nothing at all. It records when each client gave up, so a test
//! can assert the node hung up within its deadline rather than merely reported a timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

/// Longest any one connection is served, so no drip outlives the test that started it.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);

/// Connections served at most; later ones are closed at once (the load stays bounded).
const MAX_CONNECTIONS: usize = 64;

/// How the server talks on each connection.
#[derive(Debug, Clone)]
pub struct Drip {
    /// Read the client's bytes up to the end of an HTTP request head (`\r\n\r\n`) before
    /// answering; otherwise start at once (a TLS server answers the ClientHello, but a hostile
    /// one need not wait for it).
    pub wait_for_request_head: bool,
    /// Sent at once.
    pub burst: Vec<u8>,
    /// Bursts that replace `burst` for HTTP requests whose path is the first item (only with
    /// `wait_for_request_head`), so one server can answer many malformed ways.
    pub by_path: Vec<(String, Vec<u8>)>,
    /// Then sent one byte per `interval`, repeating from the start when it runs out; empty
    /// means send nothing more and just hold the connection open.
    pub pattern: Vec<u8>,
    /// The pause between two dripped bytes.
    pub interval: Duration,
}

impl Drip {
    /// Accepts and never sends a byte.
    pub fn silent() -> Self {
        Self {
            wait_for_request_head: false,
            burst: Vec::new(),
            by_path: Vec::new(),
            pattern: Vec::new(),
            interval: Duration::from_millis(200),
        }
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// When the connection was accepted.
    pub accepted: Instant,
    /// When the client closed or reset it (`None` while it is still open).
    pub closed: Option<Instant>,
    /// Bytes sent to the client.
    pub sent: usize,
}

/// A running server; stops (and closes every connection) when dropped.
#[derive(Debug)]
pub struct DripServer {
    address: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
    _tasks: JoinSet<()>,
}

impl DripServer {
    /// Starts on `bind` (loopback; port 0 for any).
    pub async fn start(bind: SocketAddr, drip: Drip) -> anyhow::Result<Self> {
        anyhow::ensure!(bind.ip().is_loopback(), "fixtures bind loopback only");
        let listener = TcpListener::bind(bind).await?;
        let address = listener.local_addr()?;
        let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
        let mut tasks = JoinSet::new();
        tasks.spawn(accept_loop(listener, drip, Arc::clone(&sessions)));
        Ok(Self {
            address,
            sessions,
            _tasks: tasks,
        })
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every connection so far, in accept order.
    pub fn sessions(&self) -> Vec<Session> {
        self.sessions
            .lock()
            .map(|sessions| sessions.clone())
            .unwrap_or_default()
    }
}

async fn accept_loop(listener: TcpListener, drip: Drip, sessions: Arc<Mutex<Vec<Session>>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let index = match sessions.lock() {
            Ok(mut sessions) if sessions.len() < MAX_CONNECTIONS => {
                sessions.push(Session {
                    accepted: Instant::now(),
                    closed: None,
                    sent: 0,
                });
                sessions.len() - 1
            }
            _ => continue,
        };
        let (drip, sessions) = (drip.clone(), Arc::clone(&sessions));
        connections.spawn(async move {
            let sent = tokio::time::timeout(CONNECTION_LIFETIME, serve(stream, &drip)).await;
            if let (Ok(sent), Ok(mut sessions)) = (sent, sessions.lock())
                && let Some(session) = sessions.get_mut(index)
            {
                session.closed = Some(Instant::now());
                session.sent = sent;
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

/// Serves one connection until the client goes away; returns the bytes sent.
async fn serve(mut stream: tokio::net::TcpStream, drip: &Drip) -> usize {
    let mut scratch = [0u8; 4096];
    let mut burst = &drip.burst;
    if drip.wait_for_request_head {
        let mut head = Vec::new();
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => return 0,
                Ok(n) => head.extend_from_slice(scratch.get(..n).unwrap_or_default()),
            }
        }
        let text = String::from_utf8_lossy(&head);
        let path = text.split_whitespace().nth(1).unwrap_or_default();
        if let Some((_, bytes)) = drip.by_path.iter().find(|(p, _)| p == path) {
            burst = bytes;
        }
    }
    if stream.write_all(burst).await.is_err() {
        return 0;
    }
    let mut sent = burst.len();
    let mut next = drip.pattern.iter().cycle();
    loop {
        // Whatever the client sends is read and dropped; end of stream or a reset means it hung
        // up, which is what the test waits for.
        tokio::select! {
            read = stream.read(&mut scratch) => match read {
                Ok(0) | Err(_) => return sent,
                Ok(_) => {}
            },
            () = tokio::time::sleep(drip.interval) => {
                if let Some(byte) = next.next() {
                    if stream.write_all(&[*byte]).await.is_err() {
                        return sent;
                    }
                    sent += 1;
                }
            }
        }
    }
}
