//! DNS over TCP with connection reuse and pipelining (RFC 7766 §6.2.1): at most
//! [`MAX_TCP_PER_SERVER`] connections to a server, each carrying up to [`MAX_PIPELINED`] queries
//! at once, answers matched by message ID and question in whatever order they come (§6.2.1.1).
//! A server that closes a connection with queries pending is remembered as non-pipelining for
//! [`NON_PIPELINING_TTL`] and then gets one query per connection; the queries it dropped are
//! retried once by the caller. An answer with an unknown ID is counted and dropped; a connection
//! that answers a question it was not asked, or more answers than it got queries, is closed.
//! Connections idle for [`TCP_IDLE`] close. Every wait ends by the query's deadline.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Instant;

use super::super::wire::{self, Malformation, Mismatch, OutgoingQuery};
use crate::metrics::DnsMetrics;

/// TCP connections open to one server at most (RFC 7766 §6.2.2: clients should not open many;
/// providers cap concurrent sessions per source). Queries past every connection's pipelining
/// cap wait for room, up to their deadline.
pub const MAX_TCP_PER_SERVER: usize = 8;
/// Queries in flight on one connection at most: enough that eight connections carry a busy
/// zone's TCP share (256 queries at once), few enough that one lost connection costs little.
pub const MAX_PIPELINED: usize = 32;
/// How long a connection with nothing in flight is kept (RFC 7766 §6.2.3 suggests seconds).
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// How long a server that dropped pipelined queries gets one query per connection.
pub const NON_PIPELINING_TTL: Duration = Duration::from_secs(300);
/// Times a query chooses again when its connection closed before it was sent.
const MAX_STALE_CHOICES: usize = 4;
/// Servers whose TCP state is kept at most; those with no connection open are forgotten first.
const MAX_TCP_SERVERS: usize = 4096;

/// Why a TCP query got no answer.
#[derive(Debug)]
pub(super) enum TcpFailure {
    /// Connecting or writing failed.
    Io(io::Error),
    /// The answer with our ID did not answer our question (counted; the connection was
    /// closed), or the query could not be framed.
    Mismatched,
    /// The connection closed with the query pending: the caller may retry once.
    Closed,
    /// The chosen connection closed (idle) before the query went out: choose again.
    Stale,
    /// The deadline passed.
    Timeout,
}

impl From<io::Error> for TcpFailure {
    fn from(error: io::Error) -> Self {
        TcpFailure::Io(error)
    }
}

/// How a query got its connection: the `result` label of
/// `mpic_node_dns_tcp_connections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionUse {
    /// A new connection was opened for it.
    Opened,
    /// An open connection with nothing else in flight.
    Reused,
    /// An open connection with other queries in flight.
    Pipelined,
}

impl ConnectionUse {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionUse::Opened => "opened",
            ConnectionUse::Reused => "reused",
            ConnectionUse::Pipelined => "pipelined",
        }
    }
}

/// Why a connection closed: the `reason` label of `mpic_node_dns_tcp_closed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing in flight for [`TCP_IDLE`].
    Idle,
    /// The server closed or reset it, or a write failed.
    Server,
    /// It sent something that is not an answer to a query on it.
    Misbehaved,
}

impl CloseReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::Server => "server",
            CloseReason::Misbehaved => "misbehaved",
        }
    }
}

/// Every server's TCP connections.
#[derive(Debug, Default)]
pub(super) struct TcpPool {
    servers: Mutex<HashMap<SocketAddr, Arc<ServerTcp>>>,
}

/// One server's connections and what is known of its pipelining.
#[derive(Debug)]
struct ServerTcp {
    /// One permit per open (or opening) connection.
    slots: Arc<Semaphore>,
    /// The open pipelined connections.
    connections: Mutex<Vec<Arc<Connection>>>,
    /// Connections being opened: a query finding no room waits for one of them rather than
    /// opening yet another, so a burst fills connections before it multiplies them.
    connecting: AtomicUsize,
    /// Woken when a connection opens or closes or a query on one ends.
    changed: Notify,
    /// Until then, one query per connection.
    non_pipelining_until: Mutex<Option<Instant>>,
}

/// The waiters on one connection.
#[derive(Debug, Default)]
struct Pending {
    /// By message ID: the question asked and where its answer goes.
    waiters: HashMap<u16, (OutgoingQuery, oneshot::Sender<Result<Message, TcpFailure>>)>,
    /// False once the connection closed: nothing more is registered.
    closed: bool,
    /// Queries written, and answers that matched no waiter.
    sent: u64,
    unknown: u64,
}

/// One pipelined connection; its reader task delivers answers to `pending`.
#[derive(Debug)]
struct Connection {
    writer: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    pending: Mutex<Pending>,
    /// Queries that chose this connection and have not finished.
    in_flight: AtomicUsize,
    server: Weak<ServerTcp>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TcpPool {
    /// Asks `server` over TCP: on a pipelined connection, or on a connection of its own when
    /// the server is known not to pipeline. `query`'s ID may be changed to one not in flight
    /// on the chosen connection.
    pub(super) async fn query(
        &self,
        server: SocketAddr,
        query: &mut OutgoingQuery,
        egress: IpAddr,
        deadline: Instant,
        metrics: &DnsMetrics,
    ) -> Result<Message, TcpFailure> {
        let state = self.server(server);
        if state.non_pipelining(Instant::now()) {
            return state
                .one_query(server, query, egress, deadline, metrics)
                .await;
        }
        // A connection that idles out just as it is chosen is no failure of the server: the
        // query, not yet sent, chooses again (a few times at most, all within the deadline).
        for _ in 0..MAX_STALE_CHOICES {
            let chosen =
                tokio::time::timeout_at(deadline, state.connection(server, egress, metrics)).await;
            let (connection, usage) = match chosen {
                Err(_) => return Err(TcpFailure::Timeout),
                Ok(Err(error)) => return Err(error),
                Ok(Ok(chosen)) => chosen,
            };
            // A connection opened is counted as opened whatever becomes of this query on it
            // (the server may close it before the query is written); reuse counts only when
            // the query went out on it.
            let opened = matches!(usage, ConnectionUse::Opened);
            if opened {
                count_use(metrics, usage);
            }
            let ticket = Ticket {
                connection: Arc::clone(&connection),
                id: None,
            };
            match connection.ask(query, deadline, ticket).await {
                Err(TcpFailure::Stale) => continue,
                result => {
                    if !opened {
                        count_use(metrics, usage);
                    }
                    return result;
                }
            }
        }
        Err(TcpFailure::Closed)
    }

    /// TCP connections open (or opening) to `server` now.
    pub(super) fn in_use(&self, server: SocketAddr) -> usize {
        lock(&self.servers)
            .get(&server)
            .map_or(0, |state| state.in_use())
    }

    /// The semaphore counting `server`'s connections (tests hold its permits).
    #[cfg(test)]
    pub(super) fn slots(&self, server: SocketAddr) -> Arc<Semaphore> {
        Arc::clone(&self.server(server).slots)
    }

    fn server(&self, server: SocketAddr) -> Arc<ServerTcp> {
        let mut servers = lock(&self.servers);
        if servers.len() >= MAX_TCP_SERVERS && !servers.contains_key(&server) {
            servers.retain(|_, state| state.in_use() > 0);
        }
        Arc::clone(servers.entry(server).or_insert_with(|| {
            Arc::new(ServerTcp {
                slots: Arc::new(Semaphore::new(MAX_TCP_PER_SERVER)),
                connections: Mutex::new(Vec::new()),
                connecting: AtomicUsize::new(0),
                changed: Notify::new(),
                non_pipelining_until: Mutex::new(None),
            })
        }))
    }
}

fn count_use(metrics: &DnsMetrics, usage: ConnectionUse) {
    metrics
        .tcp_connections
        .with_label_values(&[usage.as_str()])
        .inc();
}

impl ServerTcp {
    fn in_use(&self) -> usize {
        MAX_TCP_PER_SERVER.saturating_sub(self.slots.available_permits())
    }

    fn non_pipelining(&self, now: Instant) -> bool {
        lock(&self.non_pipelining_until).is_some_and(|until| now < until)
    }

    /// An open connection with room (the least loaded), else a new one if a slot is free,
    /// else waits for either. The chosen connection counts the query in flight.
    async fn connection(
        self: &Arc<Self>,
        server: SocketAddr,
        egress: IpAddr,
        metrics: &DnsMetrics,
    ) -> Result<(Arc<Connection>, ConnectionUse), TcpFailure> {
        loop {
            // Registered before looking, so a change between the look and the wait wakes us.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(chosen) = self.pick() {
                return Ok(chosen);
            }
            let opening = (self.connecting.load(Ordering::Acquire) == 0)
                .then(|| Arc::clone(&self.slots).try_acquire_owned().ok())
                .flatten();
            if let Some(slot) = opening {
                let connecting = Connecting::new(self);
                let stream = connect(server, egress).await?;
                let connection = Connection::start(stream, slot, self, metrics.clone());
                connection.in_flight.fetch_add(1, Ordering::AcqRel);
                lock(&self.connections).push(Arc::clone(&connection));
                // Wakes the waiters, who find the new connection.
                drop(connecting);
                return Ok((connection, ConnectionUse::Opened));
            }
            changed.await;
        }
    }

    fn pick(&self) -> Option<(Arc<Connection>, ConnectionUse)> {
        let mut connections = lock(&self.connections);
        connections.retain(|connection| !lock(&connection.pending).closed);
        let chosen = connections
            .iter()
            .map(|connection| (connection.in_flight.load(Ordering::Acquire), connection))
            .filter(|(in_flight, _)| *in_flight < MAX_PIPELINED)
            .min_by_key(|(in_flight, _)| *in_flight)
            .map(|(in_flight, connection)| (in_flight, Arc::clone(connection)));
        let (before, connection) = chosen?;
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        let usage = if before == 0 {
            ConnectionUse::Reused
        } else {
            ConnectionUse::Pipelined
        };
        Some((connection, usage))
    }

    /// One query on a connection of its own, closed after the answer (a non-pipelining server).
    async fn one_query(
        &self,
        server: SocketAddr,
        query: &OutgoingQuery,
        egress: IpAddr,
        deadline: Instant,
        metrics: &DnsMetrics,
    ) -> Result<Message, TcpFailure> {
        let exchange = async {
            let _slot = Arc::clone(&self.slots)
                .acquire_owned()
                .await
                .map_err(|_| TcpFailure::Closed)?;
            count_use(metrics, ConnectionUse::Opened);
            let mut stream = connect(server, egress).await?;
            stream.write_all(&frame(query)?).await?;
            let body = read_frame(&mut stream).await?;
            wire::match_response(query, &body).map_err(|reason| {
                count_mismatch(metrics, reason);
                TcpFailure::Mismatched
            })
        };
        tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or(Err(TcpFailure::Timeout))
    }

    /// A connection ended: forget it, remember a server that dropped pipelined queries.
    fn closed(&self, dropped_queries: bool) {
        if dropped_queries {
            *lock(&self.non_pipelining_until) = Some(Instant::now() + NON_PIPELINING_TTL);
        }
        lock(&self.connections).retain(|connection| !lock(&connection.pending).closed);
    }
}

/// Counts a connection being opened while it lives; when it ends (connected, failed or
/// cancelled) the waiters look again.
struct Connecting<'a>(&'a ServerTcp);

impl<'a> Connecting<'a> {
    fn new(server: &'a ServerTcp) -> Self {
        server.connecting.fetch_add(1, Ordering::AcqRel);
        Self(server)
    }
}

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

/// A query's place on a connection: when dropped (answer, timeout, cancellation) the query
/// leaves the connection's waiters and its in-flight count.
struct Ticket {
    connection: Arc<Connection>,
    id: Option<u16>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            lock(&self.connection.pending).waiters.remove(&id);
        }
        self.connection.in_flight.fetch_sub(1, Ordering::AcqRel);
        if let Some(server) = self.connection.server.upgrade() {
            server.changed.notify_waiters();
        }
    }
}

impl Connection {
    /// Starts the reader task of `stream`, which holds `slot` until the connection closes.
    fn start(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        server: &Arc<ServerTcp>,
        metrics: DnsMetrics,
    ) -> Arc<Self> {
        let (reader, writer) = stream.into_split();
        let connection = Arc::new(Connection {
            writer: tokio::sync::Mutex::new(Some(writer)),
            pending: Mutex::new(Pending::default()),
            in_flight: AtomicUsize::new(0),
            server: Arc::downgrade(server),
        });
        tokio::spawn(read_loop(Arc::clone(&connection), reader, slot, metrics));
        connection
    }

    /// Registers `query` under an ID free on this connection, writes it and waits for its
    /// answer up to `deadline`.
    async fn ask(
        &self,
        query: &mut OutgoingQuery,
        deadline: Instant,
        mut ticket: Ticket,
    ) -> Result<Message, TcpFailure> {
        let (answer, answered) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            if pending.closed {
                return Err(TcpFailure::Stale);
            }
            while pending.waiters.contains_key(&query.id) {
                query.id = rand::random::<u16>();
            }
            if let Some(header) = query.bytes.get_mut(..2) {
                header.copy_from_slice(&query.id.to_be_bytes());
            }
            let asked = OutgoingQuery {
                bytes: Vec::new(),
                ..query.clone()
            };
            pending.waiters.insert(query.id, (asked, answer));
            pending.sent += 1;
            ticket.id = Some(query.id);
        }
        let framed = frame(query)?;
        let write = async {
            let mut writer = self.writer.lock().await;
            let Some(stream) = writer.as_mut() else {
                return Err(TcpFailure::Closed);
            };
            let written = stream.write_all(&framed).await;
            if written.is_err() {
                // A failed write leaves the stream mid-message: nothing more may go on it.
                writer.take();
            }
            written.map_err(|_| TcpFailure::Closed)
        };
        let failure = match tokio::time::timeout_at(deadline, write).await {
            Ok(Ok(())) => None,
            Ok(Err(failure)) => Some(failure),
            Err(_) => {
                // Cut off mid-write, perhaps: the stream cannot carry another message.
                if let Ok(mut writer) = self.writer.try_lock() {
                    writer.take();
                }
                Some(TcpFailure::Timeout)
            }
        };
        if let Some(failure) = failure {
            // Nothing more can go on this connection: nobody may choose it again, and the
            // queries already on it are retried (a server that closed under them is then
            // asked one query per connection).
            lock(&self.pending).waiters.remove(&query.id);
            ticket.id = None;
            self.close(CloseReason::Server);
            return Err(failure);
        }
        let result = match tokio::time::timeout_at(deadline, answered).await {
            Err(_) => Err(TcpFailure::Timeout),
            Ok(Err(_)) => Err(TcpFailure::Closed),
            Ok(Ok(result)) => result,
        };
        drop(ticket);
        result
    }

    /// Hands `body` to the waiter with its ID. `Err` when the connection must close.
    fn deliver(&self, body: &[u8], metrics: &DnsMetrics) -> Result<(), ()> {
        let Some(id) = body.get(..2).map(|id| u16::from_be_bytes([id[0], id[1]])) else {
            count_mismatch(metrics, Mismatch::Malformed(Malformation::ShortHeader));
            return Err(());
        };
        let mut pending = lock(&self.pending);
        let Some((asked, answer)) = pending.waiters.remove(&id) else {
            // Late (its query timed out) or never asked: dropped; more of them than queries
            // sent is a server talking nonsense.
            count_mismatch(metrics, Mismatch::Id);
            pending.unknown += 1;
            return if pending.unknown > pending.sent {
                Err(())
            } else {
                Ok(())
            };
        };
        drop(pending);
        match wire::match_response(&asked, body) {
            Ok(message) => {
                let _ = answer.send(Ok(message));
                Ok(())
            }
            Err(reason) => {
                count_mismatch(metrics, reason);
                let _ = answer.send(Err(TcpFailure::Mismatched));
                Err(())
            }
        }
    }

    /// Closes: a server that closed it with queries pending is marked non-pipelining, then
    /// every waiter gets `Closed` (in that order, so their retries go one per connection).
    fn close(&self, reason: CloseReason) {
        let waiters = {
            let mut pending = lock(&self.pending);
            pending.closed = true;
            std::mem::take(&mut pending.waiters)
        };
        if let Some(server) = self.server.upgrade() {
            server.closed(!waiters.is_empty() && reason == CloseReason::Server);
        }
        for (_, (_, answer)) in waiters {
            let _ = answer.send(Err(TcpFailure::Closed));
        }
    }
}

/// Reads answers until the server closes, the connection misbehaves or idles out; then closes
/// it, frees its slot and tells the server's waiters.
async fn read_loop(
    connection: Arc<Connection>,
    mut reader: OwnedReadHalf,
    slot: OwnedSemaphorePermit,
    metrics: DnsMetrics,
) {
    let reason = loop {
        let mut prefix = [0_u8; 2];
        match tokio::time::timeout(TCP_IDLE, reader.read_exact(&mut prefix)).await {
            Err(_) if connection.in_flight.load(Ordering::Acquire) == 0 => {
                break CloseReason::Idle;
            }
            // Queries in flight end by their own deadlines; their tickets leave then.
            Err(_) => continue,
            Ok(Err(_)) => break CloseReason::Server,
            Ok(Ok(_)) => {}
        }
        let mut body = vec![0_u8; usize::from(u16::from_be_bytes(prefix))];
        match tokio::time::timeout(TCP_IDLE, reader.read_exact(&mut body)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => break CloseReason::Server,
            Err(_) => break CloseReason::Misbehaved,
        }
        if connection.deliver(&body, &metrics).is_err() {
            break CloseReason::Misbehaved;
        }
    };
    connection.close(reason);
    connection.writer.lock().await.take();
    drop(reader);
    drop(slot);
    metrics
        .tcp_closed
        .with_label_values(&[reason.as_str()])
        .inc();
    if let Some(server) = connection.server.upgrade() {
        server.changed.notify_waiters();
    }
}

fn count_mismatch(metrics: &DnsMetrics, reason: Mismatch) {
    metrics
        .mismatched
        .with_label_values(&[reason.as_str()])
        .inc();
}

/// `query` with its two-byte length (RFC 1035 §4.2.2).
fn frame(query: &OutgoingQuery) -> Result<Vec<u8>, TcpFailure> {
    let len = u16::try_from(query.bytes.len()).map_err(|_| TcpFailure::Mismatched)?;
    let mut framed = Vec::with_capacity(query.bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&query.bytes);
    Ok(framed)
}

async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut prefix = [0_u8; 2];
    stream.read_exact(&mut prefix).await?;
    let mut body = vec![0_u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

async fn connect(server: SocketAddr, egress: IpAddr) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }?;
    socket.bind(SocketAddr::new(egress, 0))?;
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
