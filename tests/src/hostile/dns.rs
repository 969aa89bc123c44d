//! A raw, scripted DNS server over UDP and TCP on one loopback port. A [`Script`] turns each
//! parsed query into the exact messages to send (none, one, or a flood), built with the byte
//! helpers below, so a test can send what no well-behaved library would produce: compression
//! pointer loops, 64 KiB RRsets, answers with the wrong id or question.
//!
//! Like a real server, a UDP reply larger than [`MAX_UDP_REPLY`] is replaced by its truncated
//! form (TC=1, question only), so the client retries over TCP where the whole message is sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinSet;

/// Largest UDP reply sent as is (the DNS Flag Day 2020 EDNS size the node advertises).
pub const MAX_UDP_REPLY: usize = 1232;

/// A TCP connection is closed after this long whatever happens, so a silent script cannot
/// pin a client or a task beyond any test's deadline.
const TCP_LIFETIME: Duration = Duration::from_secs(30);

/// Datagrams sent back to back before the UDP loop pauses for a millisecond: a flood of
/// hundreds of replies must not overrun the client's socket buffer, or the real answer (sent
/// last) would be lost with the spoofs and the test would measure the kernel, not the node.
const UDP_BURST: usize = 25;

/// Queries kept in the log (a flood test sends a few hundred).
const LOG_CAPACITY: usize = 10_000;

/// Size of a DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;

/// One received query, as the script sees it.
#[derive(Debug, Clone)]
pub struct Query {
    /// The message id.
    pub id: u16,
    /// The query name, lower-cased, with a trailing dot.
    pub name: String,
    /// The query type (16 for TXT).
    pub record_type: u16,
    /// The question section exactly as received (name with its 0x20 case, type, class).
    pub question: Vec<u8>,
    /// Whether it came over TCP.
    pub tcp: bool,
}

/// Decides what to send for each query; an empty list sends nothing.
pub type Script = Arc<dyn Fn(&Query) -> Vec<Vec<u8>> + Send + Sync>;

/// A running server; both tasks stop when it is dropped.
#[derive(Debug)]
pub struct HostileDns {
    address: SocketAddr,
    log: Log,
    _tasks: JoinSet<()>,
}

impl HostileDns {
    /// Starts on a free port of `ip` (a loopback address) with `script`.
    pub async fn start(ip: std::net::IpAddr, script: Script) -> anyhow::Result<Self> {
        anyhow::ensure!(ip.is_loopback(), "fixtures bind loopback only");
        let (udp, tcp) = bind_pair(ip).await?;
        let address = udp.local_addr()?;
        let log = Log::default();
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(udp, Arc::clone(&script), log.clone()));
        tasks.spawn(serve_tcp(tcp, script, log.clone()));
        Ok(Self {
            address,
            log,
            _tasks: tasks,
        })
    }

    /// The address for both transports.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Queries received so far over both transports.
    pub fn queries(&self) -> usize {
        self.log.count.load(Ordering::Relaxed)
    }

    /// Queries received so far over TCP.
    pub fn tcp_queries(&self) -> usize {
        self.log.tcp.load(Ordering::Relaxed)
    }

    /// The first queries received (up to 10 000), in order.
    pub fn log(&self) -> Vec<Query> {
        self.log
            .queries
            .lock()
            .map(|queries| queries.clone())
            .unwrap_or_default()
    }
}

/// Counts and keeps the queries received.
#[derive(Debug, Clone, Default)]
struct Log {
    count: Arc<AtomicUsize>,
    tcp: Arc<AtomicUsize>,
    queries: Arc<std::sync::Mutex<Vec<Query>>>,
}

impl Log {
    fn record(&self, query: &Query) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if query.tcp {
            self.tcp.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut queries) = self.queries.lock()
            && queries.len() < LOG_CAPACITY
        {
            queries.push(query.clone());
        }
    }
}

async fn bind_pair(ip: std::net::IpAddr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    for _ in 0..20 {
        let udp = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let port = udp.local_addr()?.port();
        if let Ok(tcp) = TcpListener::bind(SocketAddr::new(ip, port)).await {
            return Ok((udp, tcp));
        }
    }
    anyhow::bail!("no port free for both UDP and TCP on {ip}")
}

async fn serve_udp(socket: UdpSocket, script: Script, log: Log) {
    let mut buffer = vec![0u8; 65_535];
    loop {
        let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
            continue;
        };
        let Some(query) = parse_query(buffer.get(..len).unwrap_or_default(), false) else {
            continue;
        };
        log.record(&query);
        for (sent, message) in script(&query).into_iter().enumerate() {
            let message = if message.len() > MAX_UDP_REPLY {
                truncated(&query)
            } else {
                message
            };
            let _ = socket.send_to(&message, peer).await;
            if sent % UDP_BURST == UDP_BURST - 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, script: Script, log: Log) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let (script, log) = (Arc::clone(&script), log.clone());
        connections.spawn(async move {
            let session = tcp_session(&mut stream, &script, &log);
            let _ = tokio::time::timeout(TCP_LIFETIME, session).await;
        });
        // Reap finished sessions so a long test does not accumulate handles.
        while connections.try_join_next().is_some() {}
    }
}

/// Answers length-prefixed queries on one connection until the peer closes it.
async fn tcp_session(
    stream: &mut tokio::net::TcpStream,
    script: &Script,
    log: &Log,
) -> std::io::Result<()> {
    loop {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).await?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut body).await?;
        let Some(query) = parse_query(&body, true) else {
            continue;
        };
        log.record(&query);
        for message in script(&query) {
            let Ok(len) = u16::try_from(message.len()) else {
                continue;
            };
            stream.write_all(&len.to_be_bytes()).await?;
            stream.write_all(&message).await?;
        }
    }
}

/// Parses a query's header and question; `None` for anything that is not a one-question query.
fn parse_query(bytes: &[u8], tcp: bool) -> Option<Query> {
    let header = bytes.get(..HEADER_LEN)?;
    if header[2] & 0x80 != 0 || u16::from_be_bytes([header[4], header[5]]) != 1 {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*bytes.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        let label = bytes.get(at + 1..at + 1 + len)?;
        labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
        at += 1 + len;
    }
    let fixed = bytes.get(at..at + 4)?;
    Some(Query {
        id: u16::from_be_bytes([header[0], header[1]]),
        name: format!("{}.", labels.join(".")),
        record_type: u16::from_be_bytes([fixed[0], fixed[1]]),
        question: bytes.get(HEADER_LEN..at + 4)?.to_vec(),
        tcp,
    })
}

/// A response header for `id`: QR=1, RD=1, RA=1, `rcode`, one question, `answers` answers.
pub fn header(id: u16, tc: bool, rcode: u8, answers: u16) -> Vec<u8> {
    let flags: u16 = 0x8180 | if tc { 0x0200 } else { 0 } | u16::from(rcode & 0x0f);
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend_from_slice(&flags.to_be_bytes());
    for count in [1, answers, 0, 0] {
        bytes.extend_from_slice(&count.to_be_bytes());
    }
    bytes
}

/// A NOERROR response to `query` carrying `records` (each made by [`record`]).
pub fn response(query: &Query, records: &[Vec<u8>]) -> Vec<u8> {
    message(query, records, &[], &[])
}

/// A NOERROR response to `query` with these answer, authority and additional records.
pub fn message(
    query: &Query,
    answers: &[Vec<u8>],
    authority: &[Vec<u8>],
    additional: &[Vec<u8>],
) -> Vec<u8> {
    let count = |records: &[Vec<u8>]| u16::try_from(records.len()).unwrap_or(u16::MAX);
    let mut bytes = header(query.id, false, 0, count(answers));
    bytes[8..10].copy_from_slice(&count(authority).to_be_bytes());
    bytes[10..12].copy_from_slice(&count(additional).to_be_bytes());
    bytes.extend_from_slice(&query.question);
    for record in answers.iter().chain(authority).chain(additional) {
        bytes.extend_from_slice(record);
    }
    bytes
}

/// The truncated form of any answer to `query`: TC=1 and the question only.
pub fn truncated(query: &Query) -> Vec<u8> {
    let mut bytes = header(query.id, true, 0, 0);
    bytes.extend_from_slice(&query.question);
    bytes
}

/// A resource record: `owner` (wire form, e.g. [`QUESTION_NAME`] or [`name`]), type, class IN,
/// TTL 60 and `data`.
pub fn record(owner: &[u8], record_type: u16, data: &[u8]) -> Vec<u8> {
    record_in_class(owner, record_type, 1, data)
}

/// A resource record of any class (3 is CHAOS), TTL 60.
pub fn record_in_class(owner: &[u8], record_type: u16, class: u16, data: &[u8]) -> Vec<u8> {
    let mut bytes = owner.to_vec();
    bytes.extend_from_slice(&record_type.to_be_bytes());
    bytes.extend_from_slice(&class.to_be_bytes());
    bytes.extend_from_slice(&60u32.to_be_bytes());
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A compression pointer to the question name (offset 12).
pub const QUESTION_NAME: [u8; 2] = [0xc0, 0x0c];

/// TXT type code.
pub const TXT: u16 = 16;
/// CNAME type code.
pub const CNAME: u16 = 5;
/// A type code.
pub const A: u16 = 1;
/// CAA type code.
pub const CAA: u16 = 257;

/// A dotted name in uncompressed wire form (labels over 63 bytes are cut).
pub fn name(text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for label in text
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let label = label.as_bytes().get(..63).unwrap_or(label.as_bytes());
        bytes.push(u8::try_from(label.len()).unwrap_or(63));
        bytes.extend_from_slice(label);
    }
    bytes.push(0);
    bytes
}

/// TXT RDATA of one character-string per item (each cut to 255 bytes).
pub fn txt_data(strings: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for string in strings {
        let string = string.get(..255).unwrap_or(string);
        bytes.push(u8::try_from(string.len()).unwrap_or(255));
        bytes.extend_from_slice(string);
    }
    bytes
}

/// The shapes of a compression-pointer loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerLoop {
    /// The answer's owner name is a pointer to itself.
    SelfPointer,
    /// Two pointers pointing at each other: a CNAME whose target points at the next record's
    /// owner, which points back at that target.
    TwoCycle,
}

/// A response to `query` whose answer names never end in a label: decoding must refuse it.
pub fn pointer_loop(query: &Query, shape: PointerLoop) -> Vec<u8> {
    let mut bytes = header(
        query.id,
        false,
        0,
        if shape == PointerLoop::SelfPointer {
            1
        } else {
            2
        },
    );
    bytes.extend_from_slice(&query.question);
    let start = bytes.len();
    let pointer = |offset: usize| {
        let offset = u16::try_from(offset).unwrap_or(0x3fff) & 0x3fff;
        (0xc000 | offset).to_be_bytes()
    };
    match shape {
        PointerLoop::SelfPointer => {
            bytes.extend_from_slice(&record(&pointer(start), A, &[192, 0, 2, 1]));
        }
        PointerLoop::TwoCycle => {
            // Record 1: owner = question name, CNAME whose RDATA (at start + 12) points at
            // record 2's owner (at start + 14); record 2's owner points back at that RDATA.
            let rdata_at = start + 2 + 10;
            let second_at = rdata_at + 2;
            bytes.extend_from_slice(&record(&QUESTION_NAME, CNAME, &pointer(second_at)));
            bytes.extend_from_slice(&record(&pointer(rdata_at), A, &[192, 0, 2, 1]));
        }
    }
    bytes
}
