//! What a fetch produces: every hop as evidence, the final answer, or a typed [`FetchError`]
//! whose message says what the operator of the site can fix.

use std::net::SocketAddr;

use mpic_protocol::DnssecStatus;

use super::redirect::RedirectError;
use crate::egress::{DialAttempt, ResolveError};

/// One request of the chain, for the evidence.
#[derive(Debug, Clone, Default)]
pub struct Hop {
    /// The URL requested.
    pub url: String,
    /// The address that answered.
    pub address: Option<SocketAddr>,
    /// The HTTP status.
    pub status: Option<u16>,
    /// Body bytes read.
    pub bytes: usize,
    /// Addresses that failed first.
    pub attempts: Vec<DialAttempt>,
    /// DNSSEC status of the address lookups (worst of AAAA and A).
    pub dnssec: Option<DnssecStatus>,
    /// The hop ran on a pooled connection.
    pub reused: bool,
}

impl Hop {
    /// The hop as signed evidence.
    pub fn evidence(&self) -> mpic_protocol::HttpEvidence {
        mpic_protocol::HttpEvidence {
            url: self.url.clone(),
            address: self.address.map(|a| a.to_string()),
            status: self.status,
            bytes: self.bytes as u64,
            failed_attempts: self.attempts.iter().map(ToString::to_string).collect(),
            dnssec: self.dnssec,
        }
    }
}

/// The final answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Status of the last hop.
    pub status: u16,
    /// Body of the last hop (at most `max_body_bytes`).
    pub body: Vec<u8>,
    /// The body was longer than the cap.
    pub truncated: bool,
}

/// What was wrong with a server's HTTP.
#[derive(Debug, thiserror::Error)]
pub enum HttpFailure {
    /// The request could not be built from the URL.
    #[error("cannot build the request: {0}")]
    Request(hyper::http::Error),
    /// The connection closed before the request was sent.
    #[error("the connection closed before the request ({0})")]
    ClosedBeforeRequest(hyper::Error),
    /// The answer to the request is not HTTP/1.1.
    #[error("the server on port {port} does not speak HTTP/1.1 ({source})")]
    NotHttp {
        /// The port dialled.
        port: u16,
        /// hyper's reason.
        source: hyper::Error,
    },
    /// The body broke off or was malformed.
    #[error("body failed after {read} bytes: {source}")]
    Body {
        /// Body bytes read before the failure.
        read: usize,
        /// hyper's reason.
        source: hyper::Error,
    },
    /// The HTTP/1.1 handshake failed.
    #[error("HTTP handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// Why a fetch failed. Each message says what the operator of the site can fix.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL has no host.
    #[error("cannot fetch {url}: no host")]
    NoHost {
        /// The URL.
        url: String,
    },
    /// The URL's scheme is neither http nor https.
    #[error("cannot fetch {url}: scheme {scheme:?}")]
    Scheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// The host's addresses cannot be used (bad name, DNS failure, bogus, none or reserved).
    #[error("{}", resolve_message(url, source))]
    Resolve {
        /// The URL.
        url: String,
        /// Why.
        source: ResolveError,
    },
    /// Every address failed at the network level.
    #[error("could not connect to {host}: {}", spaced(attempts))]
    Connection {
        /// The host.
        host: String,
        /// Each address and what happened.
        attempts: Vec<DialAttempt>,
    },
    /// The server answered with something that is not usable HTTP.
    #[error("{address} ({url}): {failure}")]
    Http {
        /// The URL.
        url: String,
        /// Who answered.
        address: SocketAddr,
        /// What was wrong.
        failure: HttpFailure,
    },
    /// The deadline passed.
    #[error("{url}: no complete answer within the time allowed ({stage})")]
    Timeout {
        /// The URL.
        url: String,
        /// What was under way.
        stage: &'static str,
    },
    /// A redirect broke the rules.
    #[error("redirect from {from} refused: {error}")]
    Redirect {
        /// The URL that redirected.
        from: String,
        /// The rule broken.
        error: RedirectError,
    },
}

/// A host that is not a name is the URL's fault ("cannot fetch …"); the other lookup failures
/// name the host themselves.
fn resolve_message(url: &str, error: &ResolveError) -> String {
    match error {
        ResolveError::BadHost { .. } => format!("cannot fetch {url}: {error}"),
        _ => error.to_string(),
    }
}

/// The attempts as the HTTP problem details write them (see [`DialAttempt::spaced`]).
pub(crate) fn spaced(attempts: &[DialAttempt]) -> String {
    attempts
        .iter()
        .map(|attempt| attempt.spaced().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A fetch's result and the chain that led to it.
#[derive(Debug)]
pub struct Outcome {
    /// Every hop, in order.
    pub hops: Vec<Hop>,
    /// The answer or why there is none.
    pub result: Result<Fetched, FetchError>,
}
