//! The fixture's TCP side: an accept loop and one task per connection, answering in order
//! (RFC 1035 §4.2.2), concurrently and so out of order (RFC 7766 §6.2.1.1: a delayed answer
//! lets later ones overtake it), or once and then closing (a server that does not pipeline).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

use super::respond::{Outgoing, Plan, Transport};
use super::{MAX_TCP_CONNECTIONS, Shared, TCP_IDLE_TIMEOUT};

/// How the server treats the queries on one TCP connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TcpMode {
    /// One after another: each is answered (after its delay) before the next is read.
    #[default]
    InOrder,
    /// Each query is answered by its own task as soon as its delay is over, so answers come in
    /// whatever order the delays give (a pipelining server, RFC 7766 §6.2.1.1).
    Concurrent,
    /// The first query is answered, then the connection is closed with anything else on it
    /// unread (a server that does not pipeline).
    OneAnswerThenClose,
}

/// The TCP accept loop: one task per connection, at most [`MAX_TCP_CONNECTIONS`] at once.
pub(super) async fn serve(
    shared: Arc<Shared>,
    listener: TcpListener,
    shutdown: watch::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Ok((stream, source)) = listener.accept().await else {
            // Out of file descriptors or a reset before accept: back off briefly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.tcp_accepted.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mode = *shared
                .tcp_mode
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tokio::select! {
                () = connection(&shared, stream, source, mode) => {}
                _ = shutdown.changed() => {}
            }
            drop(slot);
        });
    }
}

/// One TCP connection: length-prefixed queries until the client closes, sends a partial
/// message, or stays idle for [`TCP_IDLE_TIMEOUT`].
async fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    source: std::net::SocketAddr,
    mode: TcpMode,
) {
    let _ = stream.set_nodelay(true);
    let (mut reader, writer) = stream.into_split();
    let writer = Arc::new(tokio::sync::Mutex::new(writer));
    let mut replies = tokio::task::JoinSet::new();
    loop {
        let mut prefix = [0_u8; 2];
        let read = tokio::time::timeout(TCP_IDLE_TIMEOUT, reader.read_exact(&mut prefix)).await;
        if !matches!(read, Ok(Ok(_))) {
            break;
        }
        let mut message = vec![0_u8; usize::from(u16::from_be_bytes(prefix))];
        let read = tokio::time::timeout(TCP_IDLE_TIMEOUT, reader.read_exact(&mut message)).await;
        if !matches!(read, Ok(Ok(_))) {
            break;
        }
        let plan = shared.handle(&message, source, Transport::Tcp);
        match mode {
            TcpMode::InOrder => {
                if !reply(&writer, plan).await {
                    break;
                }
            }
            TcpMode::Concurrent => {
                replies.spawn(reply_owned(Arc::clone(&writer), plan));
            }
            TcpMode::OneAnswerThenClose => {
                reply(&writer, plan).await;
                // Dropping both halves closes the connection; queries behind it are lost.
                return;
            }
        }
    }
    // Answers still being delayed go out before the connection closes (bounded by their delay).
    while replies.join_next().await.is_some() {}
}

async fn reply_owned(writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>, plan: Plan) {
    reply(&writer, plan).await;
}

/// Sends `plan` after its delay; false when the connection is gone.
async fn reply(writer: &tokio::sync::Mutex<OwnedWriteHalf>, plan: Plan) -> bool {
    if !plan.delay.is_zero() {
        tokio::time::sleep(plan.delay).await;
    }
    for send in plan.sends {
        // Other-port replies have no TCP equivalent: they are not sent.
        let Outgoing::Reply(bytes) = send else {
            continue;
        };
        let Ok(len) = u16::try_from(bytes.len()) else {
            continue;
        };
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        if writer.lock().await.write_all(&framed).await.is_err() {
            return false;
        }
    }
    true
}
