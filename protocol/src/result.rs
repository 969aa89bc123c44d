//! What a perspective answers: the signed result of one target, and protocol-level errors.

use serde::{Deserialize, Serialize};

use crate::perspective::{PerspectiveId, Rir};
use crate::request::Target;

/// One message from node to primary on a request stream. A stream carries either one
/// [`NodeMessage::Error`] or one [`NodeMessage::Result`] per target, then ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeMessage {
    /// The signed result of one target.
    Result(SignedResult),
    /// The request as a whole was refused; no results follow.
    Error(ProtocolError),
}

/// A request-level refusal (bad frame, overloaded, ...). Not signed: it carries no verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct ProtocolError {
    /// The closed kind: the stable code primaries act on.
    pub kind: ProtocolErrorKind,
    /// A human explanation.
    pub detail: String,
    /// For `overloaded`: how long the primary should wait before retrying on this node, in
    /// milliseconds (a tenant's configured retry hint). Absent from nodes that give none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// Kinds of request-level refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProtocolErrorKind {
    /// The frame could not be read: truncated, bad length, or not CBOR of a request.
    BadFrame,
    /// The frame is larger than the node accepts.
    FrameTooLarge,
    /// The request decoded but a field is invalid (request id, nonce, no targets).
    BadRequest,
    /// The protocol version is not spoken by this node.
    UnsupportedVersion,
    /// More targets than the node accepts in one request.
    TooManyTargets,
    /// The deadline had passed when the request arrived.
    DeadlinePassed,
    /// The node is at its in-flight limit (globally or for this primary): retry later or elsewhere.
    Overloaded,
    /// The node is shutting down and accepts no new work.
    ShuttingDown,
    /// The node failed internally.
    Internal,
    /// The primary's tenant may not use a check kind or method the request names.
    NotPermitted,
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

impl std::fmt::Display for ProtocolErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ProtocolErrorKind::BadFrame => "bad_frame",
            ProtocolErrorKind::FrameTooLarge => "frame_too_large",
            ProtocolErrorKind::BadRequest => "bad_request",
            ProtocolErrorKind::UnsupportedVersion => "unsupported_version",
            ProtocolErrorKind::TooManyTargets => "too_many_targets",
            ProtocolErrorKind::DeadlinePassed => "deadline_passed",
            ProtocolErrorKind::Overloaded => "overloaded",
            ProtocolErrorKind::ShuttingDown => "shutting_down",
            ProtocolErrorKind::Internal => "internal",
            ProtocolErrorKind::NotPermitted => "not_permitted",
            ProtocolErrorKind::Unknown => "unknown",
        };
        f.write_str(text)
    }
}

/// A result as it travels: the exact payload bytes and an Ed25519 signature over them (see
/// [`crate::signing`]). The payload is kept as bytes so any implementation can verify it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedResult {
    /// CBOR encoding of a [`ResultPayload`].
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Ed25519 signature (64 bytes) over the domain-separation prefix followed by `payload`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
    /// Identifier of the signing key (see [`crate::signing::KeyId`]).
    pub key_id: String,
}

/// The signed statement of one perspective about one target in one attempt (BR 5.4.1 logging
/// fields: perspective, identifier, method, result, timestamps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultPayload {
    /// Protocol version of the payload schema.
    pub version: u16,
    /// Echo of [`crate::Request::request_id`].
    pub request_id: String,
    /// Echo of [`crate::Request::nonce`].
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    /// Index of the target in the request.
    pub target_index: u32,
    /// Echo of the target (identifier and check).
    pub target: Target,
    /// Which perspective answered.
    pub perspective: PerspectiveInfo,
    /// When the node received the request, UNIX milliseconds.
    pub received_unix_ms: u64,
    /// When the node finished this target, UNIX milliseconds.
    pub completed_unix_ms: u64,
    /// The verdict.
    pub outcome: Outcome,
    /// Why it did not pass (absent on pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<Problem>,
    /// The weakest DNSSEC status among the answers the verdict rests on, when DNS was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
    /// What the perspective saw.
    #[serde(default)]
    pub evidence: Evidence,
    /// Identifier of the key that signs this payload (bound into the signature).
    pub key_id: String,
    /// The tenant (the CA) this result was issued for, when the node serves tenants: a result
    /// for one CA cannot be presented as another's. Absent on nodes without `[[tenants]]`, so
    /// their payloads are byte-identical to those of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The answering perspective as it describes itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerspectiveInfo {
    /// Unique perspective identifier.
    pub id: PerspectiveId,
    /// RIR region of the perspective's network.
    pub rir: Rir,
    /// Free-text location label (city, site).
    pub location: String,
    /// A shadow (report-only) perspective: its results are logged but must not count to quorum.
    #[serde(default)]
    pub shadow: bool,
}

/// The verdict on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Corroborated: the value was found (DCV) or issuance is permitted (CAA).
    Pass,
    /// Not corroborated; `problem` says why.
    Fail,
    /// The node does not implement this check kind or method; never a pass.
    Unsupported,
}

impl Outcome {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Unsupported => "unsupported",
        }
    }
}

/// Why a target did not pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Closed kind: stable wire code and metric label.
    pub kind: ProblemKind,
    /// Human detail naming the address, record or rule involved.
    pub detail: String,
}

/// Closed set of problem kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// DNS lookup failed (SERVFAIL, REFUSED, timeout at a server, malformed answer).
    Dns,
    /// DNSSEC validation failed (bogus) or could not be completed.
    Dnssec,
    /// CAA forbids issuance.
    Caa,
    /// Could not connect (refused, unreachable, reset).
    Connection,
    /// TLS handshake or certificate problem.
    Tls,
    /// The expected value was not found.
    Unauthorized,
    /// The target or the check's parameters are malformed.
    Malformed,
    /// The deadline ran out.
    Timeout,
    /// A redirect was refused by the BR redirect rules.
    Redirect,
    /// The check kind or method is not implemented by this node.
    Unsupported,
    /// The node failed internally.
    Internal,
    /// A kind this version does not know.
    #[serde(other)]
    Unknown,
}

impl ProblemKind {
    /// The wire name (also the metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Dns => "dns",
            ProblemKind::Dnssec => "dnssec",
            ProblemKind::Caa => "caa",
            ProblemKind::Connection => "connection",
            ProblemKind::Tls => "tls",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Malformed => "malformed",
            ProblemKind::Timeout => "timeout",
            ProblemKind::Redirect => "redirect",
            ProblemKind::Unsupported => "unsupported",
            ProblemKind::Internal => "internal",
            ProblemKind::Unknown => "unknown",
        }
    }
}

/// DNSSEC status of an answer (RFC 4033 §5, RFC 4035 §4.3).
///
/// The derived `Ord` follows the declaration order (secure, insecure, bogus, indeterminate) and
/// exists only so the type can key ordered collections; it is **not** a severity order. To pick
/// the worst of several statuses compare [`DnssecStatus::severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnssecStatus {
    /// The chain verifies from the trust anchor.
    Secure,
    /// Provably unsigned: a validated denial of DS above the name.
    Insecure,
    /// Should verify and does not; never a pass.
    Bogus,
    /// Could not be determined; proves nothing.
    Indeterminate,
}

impl DnssecStatus {
    /// How bad the status is for a verdict that rests on it, higher is worse: secure (0) <
    /// insecure (1) < indeterminate (2) < bogus (3). Bogus is worst because it is evidence of
    /// tampering or breakage; indeterminate only proves nothing. The weakest status among the
    /// answers a verdict rests on is the one with the highest severity.
    pub fn severity(self) -> u8 {
        match self {
            DnssecStatus::Secure => 0,
            DnssecStatus::Insecure => 1,
            DnssecStatus::Indeterminate => 2,
            DnssecStatus::Bogus => 3,
        }
    }
}

/// What the perspective saw while checking. Sections are filled by the checks that use them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// DNS lookups made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsEvidence>,
    /// HTTP requests made (one per redirect hop), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpEvidence>,
    /// The TLS-ALPN-01 handshake, if one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsEvidence>,
    /// Present only on a CAA `pass` given under the BR 3.2.2.8 lookup-failure carve-out (the
    /// request set `allow_lookup_failure`): the outcome detail `permitted_by_lookup_failure`,
    /// with the retries and the DNSSEC proof it rests on. Absent on every ordinary permit, so
    /// a primary and an auditor can tell the two apart. Added in protocol v1 additively: an
    /// older primary ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted_by_lookup_failure: Option<LookupFailurePermit>,
}

/// Why a CAA check passed although a lookup failed (BR 3.2.2.8: "CAs are permitted to treat a
/// record lookup failure as permission to issue if [...] the lookup has been retried at least
/// once; and the CA has confirmed that the domain is \"Insecure\" as defined in RFC 4035
/// Section 4.3"). Whether the failure was outside the CA's infrastructure is for the primary to
/// judge from the servers named here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupFailurePermit {
    /// Every CAA lookup of the climb that failed and was treated as permission, in climb order.
    pub failed_lookups: Vec<FailedLookup>,
}

/// One CAA lookup treated as permission under the BR 3.2.2.8 carve-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLookup {
    /// The name queried (fully qualified).
    pub name: String,
    /// How it failed: `timeout`, `servfail`, `refused`, `unreachable`, or `mixed` when the
    /// attempts failed in different ones of these ways.
    pub failure: String,
    /// How many times the query was sent (at least 2: the lookup was retried at least once).
    pub attempts: u32,
    /// Each attempt, `server: what happened`, in order.
    #[serde(default)]
    pub attempt_details: Vec<String>,
    /// How the node resolved: `iterative` (the servers asked are the domain's own
    /// authoritative servers) or `forward` (they are the node's configured upstream resolvers,
    /// so whether the failure was outside the CA's infrastructure is for the operator to judge).
    #[serde(default)]
    pub resolution: String,
    /// The DNSSEC status proven for the name's zone: always `insecure`.
    pub dnssec: DnssecStatus,
    /// The proof: the validated denial of DS that ends the chain from the trust anchor.
    pub proof: String,
}

/// One HTTP request (one hop of a redirect chain) as seen by the perspective.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpEvidence {
    /// The URL requested.
    pub url: String,
    /// The address that answered, `ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Body bytes read.
    #[serde(default)]
    pub bytes: u64,
    /// Addresses that failed before one answered, each `ip:port: what happened`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<String>,
    /// DNSSEC status of the host's address lookups (the weakest of AAAA and A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
}

/// The TLS-ALPN-01 handshake (RFC 8737) as seen by the perspective.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsEvidence {
    /// The address that answered, `ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Addresses that failed before one answered, each `ip:port: what happened`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<String>,
    /// The negotiated ALPN protocol, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// SHA-256 of the end-entity certificate's DER, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_sha256: Option<String>,
    /// The certificate's subjectAltName entries (`dns:name`, `ip:address`, `other`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
    /// DNSSEC status of the host's address lookups (the weakest of AAAA and A).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
}

/// One DNS lookup as seen by the perspective.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsEvidence {
    /// The name queried.
    pub name: String,
    /// The record type queried (`CAA`, `TXT`, ...).
    pub record_type: String,
    /// The response code (`NOERROR`, `NXDOMAIN`, ...), or the failure.
    pub rcode: String,
    /// The answer records in presentation format, CNAMEs included.
    #[serde(default)]
    pub records: Vec<String>,
    /// DNSSEC status of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec: Option<DnssecStatus>,
    /// The server that answered, `ip:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::DnssecStatus;

    #[test]
    fn dnssec_severity_orders_secure_insecure_indeterminate_bogus() {
        use DnssecStatus::{Bogus, Indeterminate, Insecure, Secure};
        let cases = [
            ("secure is best", Secure, 0),
            ("insecure", Insecure, 1),
            ("indeterminate", Indeterminate, 2),
            ("bogus is worst", Bogus, 3),
        ];
        for (name, status, severity) in cases {
            assert_eq!(status.severity(), severity, "{name}");
        }
        let worst = [Secure, Bogus, Insecure, Indeterminate]
            .into_iter()
            .max_by_key(|status| status.severity());
        assert_eq!(worst, Some(Bogus));
        // The derived order is not the severity order (it ranks bogus below indeterminate).
        assert!(Bogus < Indeterminate && Bogus.severity() > Indeterminate.severity());
    }
}
