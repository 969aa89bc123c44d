//! Why a lookup failed, with every server tried and what each did: the detail an operator needs
//! ("203.0.113.53:53 timed out after 2000 ms; 198.51.100.53:53 answered SERVFAIL").

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{Name, Record, RecordType};

use super::wire::Mismatch;

/// What went wrong with one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No answer in time.
    Timeout,
    /// Refused connection, unreachable, reset.
    Network(NetworkError),
    /// Garbage or a mismatched answer over TCP.
    Malformed,
    /// An error rcode (`SERVFAIL`, `REFUSED`, `NOTIMP`, `FORMERR`, ...).
    Rcode(&'static str),
    /// Not authoritative and no useful referral (a lame delegation).
    Lame,
    /// The answer was truncated even over TCP (or the TCP retry after a truncated UDP answer
    /// failed): a partial RRset is never read as the whole one, nor as a denial (Boulder PR
    /// 8839 for CAA).
    Truncated,
    /// Messages came, but none was the answer to the query (malformed, another ID or
    /// question...) before the query's time ran out. They are ignored, since a spoofer must
    /// not be able to end a lookup, and reported, so the server does not look dead.
    NoValidAnswer {
        /// What arrived, by reason.
        ignored: IgnoredResponses,
        /// The time the query had.
        waited: Duration,
    },
}

/// A socket error of one attempt (refused, unreachable, reset), shared so failures stay cheap to
/// clone, and compared by kind and OS error code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct NetworkError(pub Arc<io::Error>);

impl PartialEq for NetworkError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.raw_os_error() == other.0.raw_os_error()
    }
}

impl Eq for NetworkError {}

impl From<io::Error> for NetworkError {
    fn from(error: io::Error) -> Self {
        Self(Arc::new(error))
    }
}

impl From<io::ErrorKind> for NetworkError {
    fn from(kind: io::ErrorKind) -> Self {
        io::Error::from(kind).into()
    }
}

/// What a server sent during one attempt that was not the answer, counted by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoredResponses {
    /// Each reason seen, in the order first seen, with its count (at most one entry per
    /// reason: the set is closed, so this stays small).
    counts: Vec<(Mismatch, u32)>,
}

impl IgnoredResponses {
    /// Counts one ignored message.
    pub fn record(&mut self, reason: Mismatch) {
        match self.counts.iter_mut().find(|(seen, _)| *seen == reason) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => self.counts.push((reason, 1)),
        }
    }

    /// True when nothing was ignored.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// How many messages were ignored for `reason`.
    pub fn count(&self, reason: Mismatch) -> u32 {
        self.counts
            .iter()
            .find(|(seen, _)| *seen == reason)
            .map_or(0, |(_, count)| *count)
    }
}

impl fmt::Display for IgnoredResponses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (reason, count)) in self.counts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let plural = if *count == 1 { "" } else { "s" };
            match reason {
                Mismatch::Malformed(class) => {
                    write!(f, "{count} malformed response{plural} ({class})")
                }
                Mismatch::NotResponse => write!(f, "{count} non-response message{plural}"),
                Mismatch::Id => write!(f, "{count} response{plural} with a mismatched ID"),
                Mismatch::Question => {
                    write!(f, "{count} response{plural} with a mismatched question")
                }
                Mismatch::Source => write!(f, "{count} response{plural} from another source"),
            }?;
        }
        Ok(())
    }
}

/// A duration in seconds for a detail: `1.5 s`, `2 s`, `0.3 s` (to the millisecond).
pub(crate) struct Seconds(pub(crate) Duration);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = (self.0.as_micros() + 500) / 1000;
        let (whole, fraction) = (millis / 1000, millis % 1000);
        if fraction == 0 {
            return write!(f, "{whole} s");
        }
        let fraction = format!("{fraction:03}");
        write!(f, "{whole}.{} s", fraction.trim_end_matches('0'))
    }
}

/// One server asked during a lookup and how it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The server.
    pub server: SocketAddr,
    /// What happened.
    pub failure: AttemptFailure,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            AttemptFailure::Timeout => write!(f, "{} timed out", self.server),
            AttemptFailure::Network(detail) => write!(f, "{}: {detail}", self.server),
            AttemptFailure::Malformed => write!(f, "{} sent a malformed answer", self.server),
            AttemptFailure::Rcode(rcode) => write!(f, "{} answered {rcode}", self.server),
            AttemptFailure::Truncated => {
                write!(f, "{} sent an answer still truncated over TCP", self.server)
            }
            AttemptFailure::NoValidAnswer { ignored, waited } => write!(
                f,
                "{}: {ignored}, no valid answer within {}",
                self.server,
                Seconds(*waited)
            ),
            AttemptFailure::Lame => write!(
                f,
                "{} is lame (not authoritative, no referral)",
                self.server
            ),
        }
    }
}

fn join(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// hickory's refusal of a text as a domain name. Compared by its message, so errors holding it
/// can still be compared in tests.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub hickory_proto::ProtoError);

impl PartialEq for InvalidName {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl Eq for InvalidName {}

impl From<hickory_proto::ProtoError> for InvalidName {
    fn from(error: hickory_proto::ProtoError) -> Self {
        Self(error)
    }
}

impl From<&'static str> for InvalidName {
    fn from(message: &'static str) -> Self {
        Self(message.into())
    }
}

/// A per-lookup cap (see [`super::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Queries sent by one lookup.
    Queries,
    /// Referrals followed.
    Referrals,
    /// Nested name-server-name resolution.
    NsDepth,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cap::Queries => "queries",
            Cap::Referrals => "referrals",
            Cap::NsDepth => "levels of name-server resolution",
        })
    }
}

/// A lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// Every server asked failed.
    #[error("{name} {record_type}: no server answered: {}", join(attempts))]
    NoAnswer {
        /// The name.
        name: Name,
        /// The type.
        record_type: RecordType,
        /// Each server and what it did.
        attempts: Vec<Attempt>,
    },
    /// The CNAME chain loops.
    #[error("{name}: CNAME loop: {}", join_records(chain))]
    CnameLoop {
        /// The name asked.
        name: Name,
        /// The CNAME records up to the repeat.
        chain: Vec<Record>,
    },
    /// The CNAME chain is longer than allowed.
    #[error("{name}: CNAME chain longer than {limit}")]
    CnameChainTooLong {
        /// The name asked.
        name: Name,
        /// The cap.
        limit: usize,
    },
    /// A per-lookup cap was reached (queries, referrals, name-server depth).
    #[error("{name}: more than {limit} {what} needed (broken or hostile delegation?)")]
    Limit {
        /// The name being resolved.
        name: Name,
        /// What ran out.
        what: Cap,
        /// The cap.
        limit: usize,
    },
    /// No address could be found for any name server of a zone.
    #[error("no reachable name server address for zone {zone}")]
    NoServers {
        /// The zone.
        zone: Name,
    },
    /// Iterative resolution was asked of a client configured to forward (a bug, not the
    /// network: the client routes each step by its mode).
    #[error("no reachable name server address for zone (iterative mode not configured)")]
    NotIterative,
    /// The lookup's deadline passed.
    #[error("{name} {record_type}: deadline passed before an answer")]
    DeadlineExceeded {
        /// The name.
        name: Name,
        /// The type.
        record_type: RecordType,
    },
    /// The node held its query back: the server's budget (its in-flight cap or its rate, see
    /// `[dns]` `server_max_in_flight` and `server_max_rate`) could not be met before the
    /// deadline. Politeness, not a failure of the server: nothing was sent to it.
    #[error(
        "{name} {record_type}: {server}: the node's {limit} for this server could not be met before the deadline (too many checks for one DNS host; raise dns.server_max_rate or the check timeout)"
    )]
    ServerBudget {
        /// The name.
        name: Name,
        /// The type.
        record_type: RecordType,
        /// The server whose budget ran out.
        server: SocketAddr,
        /// Which budget.
        limit: super::servers::BudgetLimit,
    },
    /// Every server of the zone is backed off after timing out: the lookup fails at once
    /// instead of waiting out more timeouts (as Unbound does); each server gets one probe
    /// when its backoff ends. Nothing was sent, so this never counts as a retried lookup.
    #[error(
        "{name} {record_type}: every server of the zone is backed off after timing out ({}); failing at once, a probe goes out when a backoff ends",
        join_backed_off(servers)
    )]
    ServersBackedOff {
        /// The name.
        name: Name,
        /// The type.
        record_type: RecordType,
        /// Each server of the zone and its backoff.
        servers: Vec<BackedOff>,
    },
    /// The name is not a valid domain name.
    #[error("{name:?} is not a valid domain name: {detail}")]
    BadName {
        /// The text given.
        name: String,
        /// Why.
        detail: InvalidName,
    },
}

/// A server held back because it is backed off after timing out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackedOff {
    /// The server.
    pub server: SocketAddr,
    /// Timeouts in a row.
    pub failures: u32,
    /// Time until it may be probed again.
    pub probe_in: Duration,
}

impl fmt::Display for BackedOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} timeouts in a row, next probe in {} ms",
            self.server,
            self.failures,
            self.probe_in.as_millis()
        )
    }
}

fn join_backed_off(servers: &[BackedOff]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn join_records(records: &[Record]) -> String {
    records
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

impl DnsError {
    /// True when the failure is only timeouts (the check's problem kind is `timeout`); an
    /// attempt that got only ignored messages ran out of time too.
    pub fn is_timeout(&self) -> bool {
        match self {
            DnsError::DeadlineExceeded { .. }
            | DnsError::ServerBudget { .. }
            | DnsError::ServersBackedOff { .. } => true,
            DnsError::NoAnswer { attempts, .. } => {
                !attempts.is_empty()
                    && attempts.iter().all(|a| {
                        matches!(
                            a.failure,
                            AttemptFailure::Timeout | AttemptFailure::NoValidAnswer { .. }
                        )
                    })
            }
            _ => false,
        }
    }
}
