//! ACME tls-alpn-01 (RFC 8737, BR 3.2.2.4.20; IP identifiers per RFC 8738 §6): resolve afresh,
//! connect to port 443 (IPv6 first, IPv4 on a network-level failure), shake hands offering only
//! `acme-tls/1` with SNI = the name, and decide on the certificate.

pub mod certificate;
pub mod prober;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use mpic_protocol::{DcvCheck, Problem, ProblemKind, TlsEvidence};
use tokio::time::Instant;

use certificate::Identifier;

use crate::checks::{CheckReport, Evidence, problem};
use crate::dns::Resolver;
use crate::http::connect::{self, ResolveError};
use crate::http::fetch::FetchOptions;

/// The digest the acmeIdentifier must carry: SHA-256 of `key_authorization`, or `expected` as 64
/// hex digits (the form Open MPIC sends); when both are given they must agree.
pub fn wanted_digest(dcv: &DcvCheck) -> Result<[u8; 32], String> {
    let from_key = match dcv.key_authorization.as_deref() {
        Some(key)
            if key.is_empty() || key.len() > 1024 || !key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            return Err("key_authorization must be 1-1024 printable ASCII characters".into());
        }
        Some(key) => Some(certificate::expected_digest(key)),
        None => None,
    };
    let from_hex = match dcv.expected.as_deref() {
        Some(text) => {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(text, &mut digest).map_err(|_| {
                "expected must be the SHA-256 of the key authorization as 64 hex digits".to_owned()
            })?;
            Some(digest)
        }
        None => None,
    };
    match (from_key, from_hex) {
        (Some(a), Some(b)) if a != b => Err(
            "expected is not the SHA-256 of key_authorization; send one or make them agree".into(),
        ),
        (Some(digest), _) | (None, Some(digest)) => Ok(digest),
        (None, None) => Err("acme-tls-alpn-01 needs `key_authorization` (or `expected`)".into()),
    }
}

/// Runs one tls-alpn-01 check.
pub async fn check<R: Resolver>(
    options: &FetchOptions,
    tls: &Arc<rustls::ClientConfig>,
    resolver: &R,
    identifier: &str,
    dcv: &DcvCheck,
    deadline: Instant,
) -> CheckReport {
    let mut evidence = TlsEvidence::default();
    let verdict = run(
        options,
        tls,
        resolver,
        identifier,
        dcv,
        deadline,
        &mut evidence,
    )
    .await;
    let dnssec = evidence.dnssec;
    let evidence = Evidence {
        tls: Some(evidence),
        ..Evidence::default()
    };
    CheckReport::from_verdict(verdict, dnssec, evidence)
}

async fn run<R: Resolver>(
    options: &FetchOptions,
    tls: &Arc<rustls::ClientConfig>,
    resolver: &R,
    identifier: &str,
    dcv: &DcvCheck,
    deadline: Instant,
    evidence: &mut TlsEvidence,
) -> Result<(), Problem> {
    let malformed = |detail| problem(ProblemKind::Malformed, detail);
    if dcv.wildcard {
        return Err(malformed(
            "tls-alpn-01 cannot validate a wildcard certificate (RFC 8555 §7.1.3)".into(),
        ));
    }
    let target = Identifier::parse(identifier).map_err(malformed)?;
    let digest = wanted_digest(dcv).map_err(malformed)?;
    let ips = match &target {
        Identifier::Ip(ip) => {
            crate::http::address::check_target(*ip, options.allow_private)
                .map_err(|detail| problem(ProblemKind::Dns, detail))?;
            vec![*ip]
        }
        Identifier::Dns(name) => {
            let (ips, dnssec) = connect::resolve(
                resolver,
                name,
                options.use_ipv6,
                options.allow_private,
                deadline,
            )
            .await
            .map_err(|error| match error {
                ResolveError::BadHost(detail) => malformed(detail),
                ResolveError::Dns(detail) => problem(
                    ProblemKind::Dns,
                    format!("DNS lookup for {name} failed: {detail}"),
                ),
                ResolveError::Dnssec(detail) => problem(
                    ProblemKind::Dnssec,
                    format!("DNSSEC validation of {name}'s addresses failed: {detail}"),
                ),
                ResolveError::NoAddress(detail) => problem(
                    ProblemKind::Dns,
                    format!("{name} has no usable address: {detail}"),
                ),
            })?;
            evidence.dnssec = dnssec;
            ips
        }
    };
    let port = options.https_port.unwrap_or(443);
    let server_name = target.server_name();
    let mut failed = Vec::new();
    for ip in ips {
        let address = SocketAddr::new(ip, port);
        let connect_deadline = deadline.min(Instant::now() + options.connect_timeout);
        let tcp = match connect::dial_tcp(
            address,
            options.egress_ipv4,
            options.egress_ipv6,
            connect_deadline,
        )
        .await
        {
            Ok(tcp) => tcp,
            Err(error) => {
                failed.push(format!("{address}: {error}"));
                evidence.failed_attempts = failed.clone();
                continue;
            }
        };
        evidence.address = Some(address.to_string());
        // `http.connect_timeout` covers the TCP connect and the TLS handshake together (as on
        // the https fetch path): a server that accepts and then stalls is given up on then,
        // not held until the check's deadline.
        let handshake = prober::handshake(tls, tcp, &server_name, connect_deadline)
            .await
            .map_err(|detail| {
                problem(
                    ProblemKind::Tls,
                    format!("{address} (SNI {server_name}): {detail}"),
                )
            })?;
        evidence.alpn = handshake
            .alpn
            .as_ref()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let facts = certificate::inspect(&handshake.certificate)
            .map_err(|detail| problem(ProblemKind::Tls, format!("{address}: {detail}")))?;
        evidence.certificate_sha256 = Some(facts.sha256.clone());
        evidence.subject_alt_names = facts
            .names
            .iter()
            .take(certificate::MAX_REPORTED_NAMES)
            .cloned()
            .collect();
        return certificate::decide(handshake.alpn.as_deref(), &facts, &target, &digest).map_err(
            |detail| {
                let kind = if handshake.alpn.as_deref() == Some(certificate::ACME_TLS_ALPN) {
                    ProblemKind::Unauthorized
                } else {
                    ProblemKind::Tls
                };
                let prefix = if failed.is_empty() {
                    String::new()
                } else {
                    format!("{}; then ", failed.join("; "))
                };
                problem(kind, format!("{prefix}{address}: {detail}"))
            },
        );
    }
    Err(problem(
        ProblemKind::Connection,
        format!("could not connect to {identifier}: {}", failed.join("; ")),
    ))
}
