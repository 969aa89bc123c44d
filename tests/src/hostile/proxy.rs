//! A hostile DNS proxy: a [`super::dns::HostileDns`] script that answers chosen queries itself (a referral
//! where a DS belongs, a DS RRset of a thousand records, ...) and forwards every other query to
//! an honest upstream server, so a test can spoil one step of an otherwise valid signed chain.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use super::dns::{Query, Script};

/// How long the proxy waits for its upstream before giving up on one query.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The EDNS payload size asked of the upstream (the proxy cuts to UDP size itself).
const UPSTREAM_PAYLOAD: u16 = 4096;

/// Decides the reply to a query itself (`Some`), or lets the upstream answer (`None`).
pub type Override = Arc<dyn Fn(&Query) -> Option<Vec<Vec<u8>>> + Send + Sync>;

/// A script forwarding to `upstream` except where `overrides` answers. Forwarding blocks the
/// serving task for at most two seconds; the upstream must run on another runtime (or
/// thread) than the proxy.
pub fn forwarding(upstream: SocketAddr, overrides: Override) -> Script {
    Arc::new(move |query: &Query| {
        if let Some(reply) = overrides(query) {
            return reply;
        }
        forward(upstream, query)
            .map(|bytes| vec![bytes])
            .unwrap_or_default()
    })
}

/// Sends `query`'s question (with DO set, RD clear) to `upstream` and returns the reply with
/// the query's id.
fn forward(upstream: SocketAddr, query: &Query) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(SocketAddr::new(upstream.ip(), 0)).ok()?;
    socket.set_read_timeout(Some(UPSTREAM_TIMEOUT)).ok()?;
    let mut bytes = Vec::with_capacity(query.question.len() + 23);
    bytes.extend_from_slice(&query.id.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    bytes.extend_from_slice(&query.question);
    // OPT (RFC 6891): root owner, type 41, class = payload size, TTL with DO (0x8000).
    bytes.extend_from_slice(&[0, 0, 41]);
    bytes.extend_from_slice(&UPSTREAM_PAYLOAD.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0x80, 0, 0, 0]);
    socket.send_to(&bytes, upstream).ok()?;
    let mut buffer = vec![0u8; 65_535];
    let (len, _) = socket.recv_from(&mut buffer).ok()?;
    buffer.truncate(len);
    Some(buffer)
}

/// Sets AA in a reply built by the [`super::dns`] helpers (they leave it clear).
pub fn authoritative(mut reply: Vec<u8>) -> Vec<u8> {
    if let Some(flags) = reply.get_mut(2) {
        *flags |= 0x04;
    }
    reply
}
