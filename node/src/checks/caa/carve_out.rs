//! The BR 3.2.2.8 lookup-failure carve-out, pure: which CAA lookup failures may count as
//! permission to issue, and on what proof. BR 3.2.2.8 (and S/MIME BR 4.2.2.1, same words):
//! "CAs are permitted to treat a record lookup failure as permission to issue if: the failure is
//! outside the CA's infrastructure; and the lookup has been retried at least once; and the CA has
//! confirmed that the domain is \"Insecure\" as defined in RFC 4035 Section 4.3."
//!
//! The node applies it only when the request opts in (`allow_lookup_failure`), only to a real
//! lookup failure (timeout, SERVFAIL, REFUSED, unreachable server: never a record, a malformed or
//! truncated answer, a lame server or a bogus DNSSEC answer), only when the resolver's own record
//! shows at least two queries, and only on a validated denial of DS above the name (`insecure`;
//! `indeterminate`, `bogus`, `secure` and "validation off" never qualify). Whether the failing
//! servers are outside the CA's infrastructure is the primary's call: the evidence names them.

use mpic_protocol::DnssecStatus;

use crate::dns::{AttemptFailure, DnsError};

/// Queries a lookup must have sent to count as "retried at least once" (BR 3.2.2.8).
pub const MIN_ATTEMPTS: usize = 2;

/// How one CAA lookup failed, as the carve-out sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// The server answered SERVFAIL.
    ServFail,
    /// The server answered REFUSED.
    Refused,
    /// The server could not be reached (network error, or no address for any name server).
    Unreachable,
    /// Every attempt failed in one of the four ways above, not all the same way.
    Mixed,
    /// A malformed or mismatched answer, or another error rcode (FORMERR, NOTIMP...).
    Malformed,
    /// An answer still truncated over TCP: a partial RRset.
    Truncated,
    /// A lame server (not authoritative, no referral): an answer, just a wrong one.
    Lame,
    /// The answer failed DNSSEC validation (BR 3.2.2.8.1: never permission).
    Bogus,
    /// A CNAME loop, a too-long chain or a per-lookup cap: a broken or hostile zone.
    Limit,
    /// The name is not a domain name, the TLD does not exist, or the node failed.
    Other,
}

impl FailureKind {
    /// True for the failures BR 3.2.2.8 means by "record lookup failure".
    pub fn is_lookup_failure(self) -> bool {
        matches!(
            self,
            FailureKind::Timeout
                | FailureKind::ServFail
                | FailureKind::Refused
                | FailureKind::Unreachable
                | FailureKind::Mixed
        )
    }

    /// The wire word in [`mpic_protocol::FailedLookup::failure`].
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::ServFail => "servfail",
            FailureKind::Refused => "refused",
            FailureKind::Unreachable => "unreachable",
            FailureKind::Mixed => "mixed",
            FailureKind::Malformed => "malformed",
            FailureKind::Truncated => "truncated",
            FailureKind::Lame => "lame",
            FailureKind::Bogus => "bogus",
            FailureKind::Limit => "limit",
            FailureKind::Other => "other",
        }
    }
}

/// One failed CAA lookup: how it failed and each query sent (`server: what happened`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupFailure {
    /// The kind.
    pub kind: FailureKind,
    /// Every query the resolver sent for the failing step, in order.
    pub attempts: Vec<String>,
}

fn attempt_kind(failure: &AttemptFailure) -> FailureKind {
    match failure {
        AttemptFailure::Timeout | AttemptFailure::NoValidAnswer { .. } => FailureKind::Timeout,
        AttemptFailure::Network(_) => FailureKind::Unreachable,
        AttemptFailure::Rcode("SERVFAIL") => FailureKind::ServFail,
        AttemptFailure::Rcode("REFUSED") => FailureKind::Refused,
        AttemptFailure::Rcode(_) | AttemptFailure::Malformed => FailureKind::Malformed,
        AttemptFailure::Truncated => FailureKind::Truncated,
        AttemptFailure::Lame => FailureKind::Lame,
    }
}

/// Classifies a resolver error. A lookup whose queries failed in different eligible ways is
/// `Mixed`; one ineligible attempt (a malformed answer among timeouts) makes the whole lookup
/// ineligible. A deadline or a missing server address records no query, so it never counts as
/// retried.
pub fn classify(error: &DnsError) -> LookupFailure {
    let (kind, attempts) = match error {
        DnsError::NoAnswer { attempts, .. } => {
            let mut kinds = attempts.iter().map(|a| attempt_kind(&a.failure));
            let first = kinds.next().unwrap_or(FailureKind::Other);
            let kind = kinds.fold(first, |kind, next| match (kind, next) {
                (a, b) if a == b => a,
                (a, _) if !a.is_lookup_failure() => a,
                (_, b) if !b.is_lookup_failure() => b,
                _ => FailureKind::Mixed,
            });
            (kind, attempts.iter().map(ToString::to_string).collect())
        }
        DnsError::DeadlineExceeded { .. } => (FailureKind::Timeout, Vec::new()),
        DnsError::NoServers { .. } => (FailureKind::Unreachable, Vec::new()),
        DnsError::CnameLoop { .. }
        | DnsError::CnameChainTooLong { .. }
        | DnsError::Limit { .. } => (FailureKind::Limit, Vec::new()),
        _ => (FailureKind::Other, Vec::new()),
    };
    LookupFailure { kind, attempts }
}

/// Why the carve-out does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request did not set `allow_lookup_failure`.
    #[error("the request did not ask for it")]
    NotRequested,
    /// The failure is not a record lookup failure in the BR's sense.
    #[error("a {} result is not a lookup failure", kind.as_str())]
    NotALookupFailure {
        /// The failure.
        kind: FailureKind,
    },
    /// Fewer queries than [`MIN_ATTEMPTS`] were sent.
    #[error("the lookup was sent {attempts} time(s), not retried at least once")]
    NotRetried {
        /// Queries sent.
        attempts: usize,
    },
    /// DNSSEC validation is off (`dns.dnssec = "off"`): "Insecure" cannot be confirmed.
    #[error("DNSSEC validation is off, so the domain cannot be confirmed insecure")]
    ValidationOff,
    /// The zone's status is not a proven `insecure`.
    #[error("the domain's zone is {status:?}, not proven insecure (RFC 4035 §4.3)")]
    NotInsecure {
        /// The status found.
        status: DnssecStatus,
    },
}

/// The first two conditions, decidable before any proof is sought: the request asked for the
/// carve-out, the failure is a lookup failure, and the lookup was retried at least once.
pub fn eligible(requested: bool, failure: &LookupFailure) -> Result<(), Refusal> {
    if !requested {
        return Err(Refusal::NotRequested);
    }
    if !failure.kind.is_lookup_failure() {
        return Err(Refusal::NotALookupFailure { kind: failure.kind });
    }
    if failure.attempts.len() < MIN_ATTEMPTS {
        return Err(Refusal::NotRetried {
            attempts: failure.attempts.len(),
        });
    }
    Ok(())
}

/// The third condition: the zone's DNSSEC status (`None` when validation is off) is
/// `insecure`, which the validator gives only for a validated denial of DS.
pub fn proven_insecure(zone: Option<DnssecStatus>) -> Result<(), Refusal> {
    match zone {
        None => Err(Refusal::ValidationOff),
        Some(DnssecStatus::Insecure) => Ok(()),
        Some(status) => Err(Refusal::NotInsecure { status }),
    }
}

/// The whole rule: [`eligible`], then [`proven_insecure`].
pub fn decide(
    requested: bool,
    failure: &LookupFailure,
    zone: Option<DnssecStatus>,
) -> Result<(), Refusal> {
    eligible(requested, failure)?;
    proven_insecure(zone)
}
