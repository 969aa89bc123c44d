//! The fetcher's idle-connection pool: HTTP/1.1 connections kept per (resolved address and
//! port, TLS server name) for a short idle time, and handed only to a request that resolved to
//! that same address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use tokio::time::Instant;

/// An HTTP/1.1 connection: the request sender and the task driving it (aborted on drop).
pub(crate) struct Connection {
    pub(crate) sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    pub(crate) _driver: AbortOnDrop,
}

/// (Resolved address and port, TLS server name for https).
pub(crate) type PoolKey = (SocketAddr, Option<String>);

/// Idle connections, newest last per key; expired ones are dropped when met.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<(Instant, Connection)>>>,
    timeout: Duration,
    max: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Pool {
    /// An empty pool keeping connections idle at most `timeout`, at most `max` in all.
    pub(crate) fn new(timeout: Duration, max: usize) -> Self {
        Self {
            idle: Mutex::default(),
            timeout,
            max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.idle
            .lock()
            .map(|idle| idle.values().map(Vec::len).sum())
            .unwrap_or(0)
    }

    pub(crate) fn take(&self, key: &PoolKey) -> Option<Connection> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        let now = Instant::now();
        let mut found = None;
        while let Some((since, connection)) = list.pop() {
            if now.duration_since(since) < self.timeout && !connection.sender.is_closed() {
                found = Some(connection);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    pub(crate) fn put(&self, key: PoolKey, connection: Connection) {
        if connection.sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let now = Instant::now();
        let mut count = 0;
        idle.retain(|_, list| {
            list.retain(|(since, c)| {
                now.duration_since(*since) < self.timeout && !c.sender.is_closed()
            });
            count += list.len();
            !list.is_empty()
        });
        if count < self.max {
            idle.entry(key).or_default().push((now, connection));
        }
    }
}

/// Aborts a background task (a connection's driver, a signal loop) when dropped.
pub(crate) struct AbortOnDrop(pub(crate) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
