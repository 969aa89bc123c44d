//! Wire protocol v1 of mpic-node: request and result types, frames, Ed25519 result signing, the
//! BR 3.2.2.9 quorum rule and (feature `client`) the primary-side QUIC client.
//!
//! The schema is written down for implementers in other languages in `SCHEMA.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod manifest;
pub mod perspective;
pub mod quorum;
pub mod request;
pub mod result;
pub mod signing;

#[cfg(feature = "client")]
pub mod client;

pub use perspective::{PerspectiveId, Rir};
pub use request::{
    ALPN, CERTIFICATE_TYPE_SMIME, CERTIFICATE_TYPE_TLS, CaaCheck, Check, DcvCheck, DcvMethod,
    PROTOCOL_VERSION, Request, RequestError, Target,
};
pub use result::{
    DnsEvidence, DnssecStatus, Evidence, FailedLookup, HttpEvidence, LookupFailurePermit,
    NodeMessage, Outcome, PerspectiveInfo, Problem, ProblemKind, ProtocolError, ProtocolErrorKind,
    ResultPayload, SignedResult, TlsEvidence,
};
pub use signing::{KeyId, SigningKey, VerifyError, VerifyingKey};

/// QUIC application close codes the node uses when it ends a connection.
pub mod close_code {
    /// The primary's client certificate is not admitted (not pinned, or revoked by reload).
    pub const UNAUTHORIZED: u32 = 0x10;
    /// The node is shutting down.
    pub const SHUTTING_DOWN: u32 = 0x11;
    /// The node is at its connection limit.
    pub const TOO_MANY_CONNECTIONS: u32 = 0x12;
    /// Normal close by either side.
    pub const DONE: u32 = 0x00;
}
