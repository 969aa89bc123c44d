//! Why a lookup failed, with every server tried and what each did: the detail an operator needs
//! ("203.0.113.53:53 timed out after 2000 ms; 198.51.100.53:53 answered SERVFAIL").

use std::fmt;
use std::net::SocketAddr;

use hickory_proto::rr::RecordType;

/// What went wrong with one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// No answer in time.
    Timeout,
    /// Refused connection, unreachable, reset.
    Network(String),
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

/// A lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// Every server asked failed.
    #[error("{name} {record_type}: no server answered: {}", join(attempts))]
    NoAnswer {
        /// The name.
        name: String,
        /// The type.
        record_type: RecordType,
        /// Each server and what it did.
        attempts: Vec<Attempt>,
    },
    /// The CNAME chain loops.
    #[error("{name}: CNAME loop: {}", chain.join(" -> "))]
    CnameLoop {
        /// The name asked.
        name: String,
        /// The CNAME records up to the repeat.
        chain: Vec<String>,
    },
    /// The CNAME chain is longer than allowed.
    #[error("{name}: CNAME chain longer than {limit}")]
    CnameChainTooLong {
        /// The name asked.
        name: String,
        /// The cap.
        limit: usize,
    },
    /// A per-lookup cap was reached (queries, referrals, name-server depth).
    #[error("{name}: more than {limit} {what} needed (broken or hostile delegation?)")]
    Limit {
        /// The name being resolved.
        name: String,
        /// What ran out.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// No address could be found for any name server of a zone.
    #[error("no reachable name server address for zone {zone}")]
    NoServers {
        /// The zone.
        zone: String,
    },
    /// The lookup's deadline passed.
    #[error("{name} {record_type}: deadline passed before an answer")]
    DeadlineExceeded {
        /// The name.
        name: String,
        /// The type.
        record_type: RecordType,
    },
    /// The name is not a valid domain name.
    #[error("{name:?} is not a valid domain name: {detail}")]
    BadName {
        /// The text given.
        name: String,
        /// Why.
        detail: String,
    },
}

impl DnsError {
    /// True when the failure is only timeouts (the check's problem kind is `timeout`).
    pub fn is_timeout(&self) -> bool {
        match self {
            DnsError::DeadlineExceeded { .. } => true,
            DnsError::NoAnswer { attempts, .. } => {
                !attempts.is_empty()
                    && attempts
                        .iter()
                        .all(|a| a.failure == AttemptFailure::Timeout)
            }
            _ => false,
        }
    }
}
