//! A loopback DNS front that answers by the client's source address: each UDP query is relayed
//! to the backend fixture server chosen for its source IP (one server per "view"), and the
//! reply is sent back from the front's own address. With nodes whose `dns.egress_ipv4` differ
//! (`127.0.0.x`), this gives split-horizon answers, or one authoritative server that lags
//! behind another, per perspective. UDP only: keep the answers small (no truncation).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use tokio::net::UdpSocket;

/// How long the front waits for a backend's reply before dropping the query.
const BACKEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A running front; stops when dropped.
#[derive(Debug)]
pub struct SourceRouter {
    address: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SourceRouter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SourceRouter {
    /// Listens on `bind` (loopback only) and relays queries from each source IP in `routes`
    /// to its backend, and every other query to `default`.
    pub async fn start(
        bind: SocketAddr,
        routes: HashMap<IpAddr, SocketAddr>,
        default: SocketAddr,
    ) -> anyhow::Result<Self> {
        ensure!(bind.ip().is_loopback(), "fixtures bind loopback only");
        let socket = Arc::new(UdpSocket::bind(bind).await?);
        let address = socket.local_addr()?;
        let routes = Arc::new(routes);
        let task = tokio::spawn(async move {
            let mut buffer = vec![0u8; 65_535];
            loop {
                let Ok((length, client)) = socket.recv_from(&mut buffer).await else {
                    continue;
                };
                let query = buffer[..length].to_vec();
                let backend = routes.get(&client.ip()).copied().unwrap_or(default);
                let socket = Arc::clone(&socket);
                tokio::spawn(async move {
                    if let Ok(reply) = relay(&query, backend).await {
                        let _ = socket.send_to(&reply, client).await;
                    }
                });
            }
        });
        Ok(Self { address, task })
    }

    /// The address nodes query.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

async fn relay(query: &[u8], backend: SocketAddr) -> anyhow::Result<Vec<u8>> {
    let upstream = UdpSocket::bind(SocketAddr::new(backend.ip(), 0)).await?;
    upstream.connect(backend).await?;
    upstream.send(query).await?;
    let mut reply = vec![0u8; 65_535];
    let length = tokio::time::timeout(BACKEND_TIMEOUT, upstream.recv(&mut reply)).await??;
    reply.truncate(length);
    Ok(reply)
}
