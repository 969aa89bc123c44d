//! Why a node's answer could not be used, and how QUIC connection errors map onto that.

use std::net::SocketAddr;
use std::time::Duration;

use crate::close_code;
use crate::frame::FrameError;
use crate::perspective::PerspectiveId;
use crate::quorum::QuorumError;
use crate::result::ProtocolError;
use crate::signing::VerifyError;

use super::NodeEndpoint;

/// Why a node's answer could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TLS configuration could not be built.
    #[error("invalid client TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The local UDP endpoint could not be opened.
    #[error("cannot open local QUIC endpoint: {0}")]
    Endpoint(std::io::Error),
    /// The node refused our certificate (TLS alert) or closed with the `unauthorized` code.
    #[error("perspective {node} refused this primary: {detail}")]
    Unauthorized {
        /// The perspective.
        node: PerspectiveId,
        /// What the node said.
        detail: String,
    },
    /// Could not connect or the connection failed.
    #[error("perspective {node} at {address}: {detail}")]
    Connection {
        /// The perspective.
        node: PerspectiveId,
        /// Its address.
        address: SocketAddr,
        /// What failed.
        detail: String,
    },
    /// No answer within the deadline.
    #[error("perspective {node} did not answer within {elapsed:?}")]
    Timeout {
        /// The perspective.
        node: PerspectiveId,
        /// Time waited.
        elapsed: Duration,
    },
    /// A frame could not be read.
    #[error("perspective {node} sent a bad frame: {source}")]
    Frame {
        /// The perspective.
        node: PerspectiveId,
        /// The frame error.
        source: FrameError,
    },
    /// The node refused the request (overloaded, bad request, ...).
    #[error("perspective {node} refused the request: {error}")]
    Refused {
        /// The perspective.
        node: PerspectiveId,
        /// The node's typed refusal.
        error: ProtocolError,
    },
    /// A result's signature or payload failed verification.
    #[error("perspective {node}: result failed verification: {source}")]
    Verify {
        /// The perspective.
        node: PerspectiveId,
        /// The verification failure.
        source: VerifyError,
    },
    /// A verified result does not belong to this attempt (replay, mis-routing, duplicate).
    #[error("perspective {node}: result does not match the request: {field} {detail}")]
    Mismatch {
        /// The perspective.
        node: PerspectiveId,
        /// The field that differs.
        field: &'static str,
        /// What differs.
        detail: String,
    },
    /// The node ended the stream before answering every target.
    #[error("perspective {node} answered {got} of {expected} targets")]
    Incomplete {
        /// The perspective.
        node: PerspectiveId,
        /// Results received.
        got: usize,
        /// Targets sent.
        expected: usize,
    },
    /// The quorum rule could not be evaluated (the node list is inconsistent).
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The node index does not exist.
    #[error("no perspective at index {0}")]
    NoSuchNode(usize),
    /// The system clock is before 1970.
    #[error("system clock is before the UNIX epoch")]
    Clock,
    /// The system random number generator failed.
    #[error("system random number generator failed")]
    Random,
}

/// Maps a QUIC connection error to what it means for the primary.
pub(super) fn classify(node: &NodeEndpoint, error: quinn::ConnectionError) -> ClientError {
    let id = node.perspective_id.clone();
    match error {
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from_u32(close_code::UNAUTHORIZED) =>
        {
            ClientError::Unauthorized {
                node: id,
                detail: String::from_utf8_lossy(&close.reason).into_owned(),
            }
        }
        quinn::ConnectionError::ConnectionClosed(close) => {
            let code = u64::from(close.error_code);
            // QUIC carries TLS alerts as transport errors 0x100 + alert (RFC 9001 §4.8).
            if (0x100..0x200).contains(&code) {
                let alert = code - 0x100;
                ClientError::Unauthorized {
                    node: id,
                    detail: format!(
                        "TLS alert {alert} ({}) during the handshake",
                        alert_name(alert)
                    ),
                }
            } else {
                ClientError::Connection {
                    node: id,
                    address: node.address,
                    detail: close.to_string(),
                }
            }
        }
        quinn::ConnectionError::TimedOut => ClientError::Timeout {
            node: id,
            elapsed: Duration::ZERO,
        },
        other => ClientError::Connection {
            node: id,
            address: node.address,
            detail: other.to_string(),
        },
    }
}

fn alert_name(alert: u64) -> &'static str {
    match alert {
        40 => "handshake failure",
        42 => "bad certificate",
        43 => "unsupported certificate",
        44 => "certificate revoked",
        45 => "certificate expired",
        46 => "certificate unknown",
        48 => "unknown CA",
        49 => "access denied",
        51 => "decrypt error: a certificate signature did not verify",
        116 => "certificate required",
        120 => "no application protocol",
        _ => "see RFC 8446 §6",
    }
}
