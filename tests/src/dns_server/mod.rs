//! A loopback authoritative DNS server for tests and benchmarks: serves zone files over UDP
//! and TCP on one port, logs every query, and misbehaves on request.
//!
//! Answers follow RFC 1034 §4.3.2 (the `catalog` submodule holds the zones and the lookup;
//! `respond` turns a query into the bytes to send). [`Rule`]s make the server drop, delay,
//! truncate, spoof or garble replies, so the node's resolver can be tested against hostile
//! and broken authorities. Only loopback addresses are accepted.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use mpic_tests::dns_server::{Behaviour, DnsServer, Rule, ZoneText};
//!
//! let text = "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 60\nwww A 192.0.2.1\n";
//! let zones = [ZoneText { origin: "example.test.", text }];
//! let server = DnsServer::start("127.0.0.1:0".parse()?, &zones).await?;
//! server.set_rules(vec![Rule {
//!     suffix: "slow.example.test".into(),
//!     record_type: None,
//!     behaviour: Behaviour::Drop,
//! }]);
//! // ... point the resolver at server.address(), then check server.queries() ...
//! # Ok(()) }
//! ```

mod catalog;
mod dnssec_rr;
mod respond;
mod tcp;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hickory_proto::rr::RecordType;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinSet;

use catalog::Catalog;
use respond::{Outgoing, Plan, Request, Transport};
pub use tcp::TcpMode;

/// Most queries kept in the log; later ones are counted but not kept (a bench sends millions).
const QUERY_LOG_CAPACITY: usize = 100_000;

/// A TCP connection with no complete query for this long is closed (RFC 7766 §6.2.3 suggests
/// a few seconds for an authoritative server).
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Open TCP connections at most; further clients wait in the accept queue.
const MAX_TCP_CONNECTIONS: usize = 1024;

/// Tasks receiving on the shared UDP socket, so one query's work does not hold up the next.
const UDP_WORKERS: usize = 4;

/// Largest UDP datagram there is.
const MAX_DATAGRAM: usize = 65_535;

/// Attempts to find a port free for both UDP and TCP when the caller lets the OS pick.
const BIND_ATTEMPTS: usize = 20;

/// SO_RCVBUF asked for the UDP socket (the kernel caps it at `net.core.rmem_max`).
const RECEIVE_BUFFER: usize = 8 << 20;

/// One zone: origin + zone-file text (RFC 1035 master format, $ORIGIN/$TTL, @, relative names).
#[derive(Debug, Clone, Copy)]
pub struct ZoneText<'a> {
    /// The zone's origin (`example.test.`; the trailing dot is optional).
    pub origin: &'a str,
    /// The zone file. It must have an SOA at the apex and no records outside the origin.
    pub text: &'a str,
}

/// How the server misbehaves for matching queries (for tests of the resolver's robustness).
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Answer from the zones.
    Normal,
    /// Never answer.
    Drop,
    /// Answer normally after a delay (other queries are not held up).
    Delay(Duration),
    /// Over UDP answer TC=1 with empty sections; over TCP answer normally.
    Truncate,
    /// Answer only with a wrong message id (a spoof the client must ignore).
    WrongId,
    /// Answer only with the question name changed (prefixed `x.`).
    WrongQuestion,
    /// Over UDP: a wrong-id response and a response from another source port, then the real
    /// answer. Over TCP: a wrong-id response, then the real answer.
    SpoofThenAnswer,
    /// Answer only from a different UDP socket and port (the client must ignore it). Over
    /// TCP nothing is sent.
    FromOtherPort,
    /// Answer SERVFAIL with no records.
    ServFail,
    /// Answer REFUSED with no records.
    Refused,
    /// Answer NOTIMP with no records.
    NotImp,
    /// Answer FORMERR with no records.
    FormErr,
    /// Answer NOERROR, AA=0, with empty sections: neither an answer nor a referral.
    Lame,
    /// Answer normally plus a TXT record of about 1.5 KB (owned by the query name) in the
    /// additional section, so UDP must truncate and TCP carries everything.
    Oversized,
    /// Reply with bytes that carry the query's id and QR=1 but do not decode.
    Garbage,
}

/// A rule: queries whose name equals or is below `suffix` (case-insensitive), and whose type
/// matches `record_type` if Some, get `behaviour`. First matching rule wins.
#[derive(Debug, Clone)]
pub struct Rule {
    /// A domain name (trailing dot optional); `.` matches every query.
    pub suffix: String,
    /// The query type to match, or any type if `None`.
    pub record_type: Option<RecordType>,
    /// What to do with matching queries.
    pub behaviour: Behaviour,
}

/// One query as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedQuery {
    /// The question name as received, lower-cased, fully qualified (trailing dot).
    pub name: String,
    /// The question type.
    pub record_type: RecordType,
    /// Whether it came over TCP.
    pub tcp: bool,
    /// The message id.
    pub id: u16,
    /// The client's address.
    pub source: SocketAddr,
    /// The EDNS DO bit (false without EDNS).
    pub dnssec_ok: bool,
    /// The RD bit.
    pub recursion_desired: bool,
}

/// A running fixture server. Stops on [`DnsServer::stop`] or when dropped.
#[derive(Debug)]
pub struct DnsServer {
    /// Where UDP and TCP listen.
    address: SocketAddr,
    /// The state the tasks share.
    shared: Arc<Shared>,
    /// The UDP workers and the TCP accept loop; dropping the set aborts them.
    tasks: JoinSet<()>,
    /// Never sent on: dropping it tells every TCP connection and delayed reply to stop.
    shutdown: watch::Sender<()>,
}

/// State shared by the server tasks and the handle.
#[derive(Debug)]
struct Shared {
    /// The zones.
    catalog: Catalog,
    /// The current rules, replaced whole by `set_rules`.
    rules: RwLock<Arc<[Rule]>>,
    /// The first [`QUERY_LOG_CAPACITY`] queries.
    log: Mutex<Vec<LoggedQuery>>,
    /// Every query with a question, kept in the log or not.
    received: AtomicU64,
    /// Feeds the `Garbage` bytes.
    garbage_seed: AtomicU64,
    /// Arrivals in the last second, the busiest second seen, and the REFUSED-above cap.
    rate: Mutex<RateWindow>,
    /// When set, nothing is answered (queries are still logged and counted).
    silent: AtomicBool,
    /// How new TCP connections are served.
    tcp_mode: Mutex<TcpMode>,
    /// TCP connections accepted so far.
    tcp_accepted: AtomicU64,
}

/// A sliding one-second window over query arrivals: what the server saw per second, and the
/// cap above which it answers REFUSED (as providers' per-source rate limits do).
#[derive(Debug, Default)]
struct RateWindow {
    /// Arrival times within the last second.
    arrivals: VecDeque<tokio::time::Instant>,
    /// The most arrivals seen within any one second.
    busiest: usize,
    /// Answer REFUSED to a query that makes more than this many in one second.
    cap: Option<usize>,
    /// Queries refused for the cap.
    refused: u64,
}

impl RateWindow {
    /// Records one arrival; true when it is over the cap.
    fn arrive(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        while self
            .arrivals
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now);
        self.busiest = self.busiest.max(self.arrivals.len());
        let over = self.cap.is_some_and(|cap| self.arrivals.len() > cap);
        if over {
            self.refused += 1;
        }
        over
    }
}

impl DnsServer {
    /// Binds UDP and TCP on the same port of `bind` (port 0: OS picks) and serves the zones.
    /// Fails if `bind` is not a loopback address, a zone does not load, or a port is taken.
    pub async fn start(bind: SocketAddr, zones: &[ZoneText<'_>]) -> anyhow::Result<DnsServer> {
        if !bind.ip().is_loopback() {
            bail!("{bind}: the fixture DNS server binds loopback addresses only");
        }
        let catalog = Catalog::load(zones)?;
        let (udp, tcp) = bind_pair(bind).await?;
        let address = udp.local_addr().context("reading the UDP address")?;
        let other = UdpSocket::bind(SocketAddr::new(bind.ip(), 0))
            .await
            .with_context(|| format!("{}: binding the other-port UDP socket", bind.ip()))?;
        let shared = Arc::new(Shared {
            catalog,
            rules: RwLock::new(Arc::from(Vec::new())),
            log: Mutex::new(Vec::new()),
            received: AtomicU64::new(0),
            garbage_seed: AtomicU64::new(u64::from(address.port())),
            rate: Mutex::new(RateWindow::default()),
            silent: AtomicBool::new(false),
            tcp_mode: Mutex::new(TcpMode::default()),
            tcp_accepted: AtomicU64::new(0),
        });
        let (shutdown, _) = watch::channel(());
        let udp = Arc::new(udp);
        let other = Arc::new(other);
        let mut tasks = JoinSet::new();
        for _ in 0..UDP_WORKERS {
            tasks.spawn(serve_udp(
                Arc::clone(&shared),
                Arc::clone(&udp),
                Arc::clone(&other),
                shutdown.subscribe(),
            ));
        }
        tasks.spawn(tcp::serve(Arc::clone(&shared), tcp, shutdown.subscribe()));
        Ok(DnsServer {
            address,
            shared,
            tasks,
            shutdown,
        })
    }

    /// The address clients query; the same port serves UDP and TCP.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Replaces the rules; queries received from now on use the new ones.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let rules: Vec<Rule> = rules
            .into_iter()
            .map(|rule| Rule {
                suffix: normalize_suffix(&rule.suffix),
                ..rule
            })
            .collect();
        *self
            .shared
            .rules
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::from(rules);
    }

    /// Every query received so far, oldest first (at most the first 100 000).
    pub fn queries(&self) -> Vec<LoggedQuery> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Empties the query log (the count keeps running).
    pub fn clear_queries(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// How many queries with a question arrived since the start (undecodable packets and
    /// packets shorter than a header are not counted).
    pub fn query_count(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// How many logged queries asked `name` (any case, trailing dot optional) for
    /// `record_type`: this server's count for one question.
    pub fn count(&self, name: &str, record_type: RecordType) -> usize {
        let name = normalize_suffix(name);
        self.shared
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|query| query.record_type == record_type && query.name == name)
            .count()
    }

    /// Answers REFUSED to every query that makes more than `cap` arrivals within one second
    /// (a sliding window), as a provider's per-source rate limit does; `None` lifts the cap.
    pub fn refuse_above(&self, cap: Option<usize>) {
        self.shared
            .rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cap = cap;
    }

    /// The most queries that arrived within any one second (a sliding window) so far.
    pub fn busiest_second(&self) -> usize {
        self.shared
            .rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .busiest
    }

    /// Queries answered REFUSED because they were over the [`DnsServer::refuse_above`] cap.
    pub fn refused_over_cap(&self) -> u64 {
        self.shared
            .rate
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
    }

    /// Silent: answer nothing at all, over UDP or TCP (queries are still logged), as a dead
    /// or firewalled server; `false` answers again.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::Relaxed);
    }

    /// How TCP connections accepted from now on are served (see [`TcpMode`]).
    pub fn set_tcp_mode(&self, mode: TcpMode) {
        *self
            .shared
            .tcp_mode
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// TCP connections accepted since the start.
    pub fn tcp_connections(&self) -> u64 {
        self.shared.tcp_accepted.load(Ordering::Relaxed)
    }

    /// Stops serving. The listening sockets are closed when this returns; a delayed reply
    /// still waiting to be sent is cancelled.
    pub async fn stop(self) {
        let DnsServer {
            mut tasks,
            shutdown,
            ..
        } = self;
        drop(shutdown);
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

impl Shared {
    /// Logs `bytes` if it is a query and plans the reply.
    fn handle(&self, bytes: &[u8], source: SocketAddr, transport: Transport) -> Plan {
        let query = match respond::parse(bytes) {
            Request::Ignore => return Plan::default(),
            Request::Malformed(reply) => {
                return Plan {
                    delay: Duration::ZERO,
                    sends: vec![Outgoing::Reply(reply)],
                };
            }
            Request::Query(query) => query,
        };
        let mut behaviour = Behaviour::Normal;
        if let Some(question) = query.queries.first() {
            let mut name = question.name().to_ascii();
            name.make_ascii_lowercase();
            let record_type = question.query_type();
            let rules = Arc::clone(&self.rules.read().unwrap_or_else(PoisonError::into_inner));
            if let Some(rule) = rules
                .iter()
                .find(|rule| rule_applies(rule, &name, record_type))
            {
                behaviour = rule.behaviour.clone();
            }
            self.received.fetch_add(1, Ordering::Relaxed);
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() < QUERY_LOG_CAPACITY {
                log.push(LoggedQuery {
                    name,
                    record_type,
                    tcp: transport == Transport::Tcp,
                    id: query.metadata.id,
                    source,
                    dnssec_ok: query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
                    recursion_desired: query.metadata.recursion_desired,
                });
            }
            drop(log);
            let over = self
                .rate
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .arrive();
            if over {
                behaviour = Behaviour::Refused;
            }
        }
        if self.silent.load(Ordering::Relaxed) {
            return Plan::default();
        }
        let seed = match behaviour {
            Behaviour::Garbage => self.garbage_seed.fetch_add(0x9e37_79b9, Ordering::Relaxed),
            _ => 0,
        };
        respond::plan(&self.catalog, &query, &behaviour, transport, seed)
    }
}

/// Whether `rule` applies to a query for `name` (lower-case, fully qualified).
fn rule_applies(rule: &Rule, name: &str, record_type: RecordType) -> bool {
    if rule.record_type.is_some_and(|t| t != record_type) {
        return false;
    }
    let suffix = rule.suffix.as_str();
    suffix == "."
        || name == suffix
        || name
            .strip_suffix(suffix)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

/// `suffix` lower-cased and fully qualified, as the log spells names.
fn normalize_suffix(suffix: &str) -> String {
    let mut suffix = suffix.to_ascii_lowercase();
    if !suffix.ends_with('.') {
        suffix.push('.');
    }
    suffix
}

/// A UDP socket and a TCP listener on the same loopback port.
async fn bind_pair(bind: SocketAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    if bind.port() != 0 {
        return udp_then_tcp(bind)
            .await
            .with_context(|| format!("{bind}: binding UDP and TCP"));
    }
    for _ in 0..BIND_ATTEMPTS {
        match udp_then_tcp(bind).await {
            Ok(pair) => return Ok(pair),
            // The OS picked a UDP port whose TCP twin is taken: try another.
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(error) => return Err(error).with_context(|| format!("{bind}: binding")),
        }
    }
    bail!("{bind}: no port free for both UDP and TCP after {BIND_ATTEMPTS} attempts")
}

/// A UDP socket on `bind`, then a TCP listener on the port it got.
async fn udp_then_tcp(bind: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let udp = UdpSocket::bind(bind).await?;
    // A burst of thousands of queries (the bench's memory run sends 10,000 at once) overflows the
    // default receive buffer (~200 KiB, a few hundred datagrams) and the kernel drops the rest,
    // which the node then sees as timeouts. Ask for more; the kernel caps it at rmem_max.
    socket2::SockRef::from(&udp).set_recv_buffer_size(RECEIVE_BUFFER)?;
    let tcp = TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

/// One UDP worker: receive, plan, send. A delayed reply is sent from its own task so the
/// worker goes straight back to receiving.
async fn serve_udp(
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    other: Arc<UdpSocket>,
    shutdown: watch::Receiver<()>,
) {
    let mut buffer = vec![0_u8; MAX_DATAGRAM];
    loop {
        let Ok((len, source)) = socket.recv_from(&mut buffer).await else {
            // Errors on an unconnected UDP socket are transient (e.g. ICMP noise): go on.
            tokio::task::yield_now().await;
            continue;
        };
        let Some(bytes) = buffer.get(..len) else {
            continue;
        };
        let plan = shared.handle(bytes, source, Transport::Udp);
        if plan.delay.is_zero() {
            send_udp(&socket, &other, plan.sends, source).await;
            continue;
        }
        // Weak references, so that a pending delayed reply does not keep the sockets open
        // after `stop`.
        let (socket, other, mut shutdown) = (
            Arc::downgrade(&socket),
            Arc::downgrade(&other),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(plan.delay) => {
                    if let (Some(socket), Some(other)) = (socket.upgrade(), other.upgrade()) {
                        send_udp(&socket, &other, plan.sends, source).await;
                    }
                }
                _ = shutdown.changed() => {}
            }
        });
    }
}

/// Sends planned datagrams; send errors are the client's problem (it may have gone).
async fn send_udp(socket: &UdpSocket, other: &UdpSocket, sends: Vec<Outgoing>, to: SocketAddr) {
    for send in sends {
        let _ = match send {
            Outgoing::Reply(bytes) => socket.send_to(&bytes, to).await,
            Outgoing::FromOtherPort(bytes) => other.send_to(&bytes, to).await,
        };
    }
}
