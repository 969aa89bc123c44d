//! ACME tls-alpn-01 (RFC 8737, BR 3.2.2.4.20; IP identifiers per RFC 8738 §6): resolve afresh,
//! connect to port 443 (IPv6 first, IPv4 on a network-level failure), shake hands offering only
//! `acme-tls/1` with SNI = the name, and decide on the certificate.

pub mod certificate;
pub mod prober;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mpic_protocol::{Problem, ProblemKind, TlsEvidence};
use tokio::net::TcpStream;
use tokio::time::Instant;

use certificate::Identifier;

use crate::checks::dcv::request::TlsAlpnDcv;
use crate::checks::{CheckReport, Evidence, problem};
use crate::dns::Resolver;
use crate::egress::{self, DialError, Dialed, NoConnection, dial};
use crate::http::fetch::FetchOptions;

/// Runs one tls-alpn-01 check.
pub async fn check<R: Resolver>(
    options: &FetchOptions,
    tls: &Arc<rustls::ClientConfig>,
    resolver: &R,
    identifier: &str,
    dcv: &TlsAlpnDcv,
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
    dcv: &TlsAlpnDcv,
    deadline: Instant,
    evidence: &mut TlsEvidence,
) -> Result<(), Problem> {
    let malformed = |detail: String| problem(ProblemKind::Malformed, detail);
    let target = Identifier::parse(identifier).map_err(|error| malformed(error.to_string()))?;
    let digest = dcv.digest;
    let ips = addresses(options, resolver, &target, deadline, evidence).await?;
    let server_name = target.server_name();
    let dialed = connect(options, ips, identifier, deadline, evidence).await?;
    let address = dialed.address;
    let (tcp, connect_deadline) = dialed.connection;
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
    certificate::decide(handshake.alpn.as_deref(), &facts, &target, &digest).map_err(|detail| {
        let kind = if handshake.alpn.as_deref() == Some(certificate::ACME_TLS_ALPN) {
            ProblemKind::Unauthorized
        } else {
            ProblemKind::Tls
        };
        let prefix = if dialed.attempts.is_empty() {
            String::new()
        } else {
            format!("{}; then ", dial::list(&dialed.attempts))
        };
        problem(kind, format!("{prefix}{address}: {detail}"))
    })
}

/// The addresses to try: an IP identifier as is, a name looked up afresh (its DNSSEC status
/// kept as evidence); both through the Reserved-IP guard.
async fn addresses<R: Resolver>(
    options: &FetchOptions,
    resolver: &R,
    target: &Identifier,
    deadline: Instant,
    evidence: &mut TlsEvidence,
) -> Result<Vec<IpAddr>, Problem> {
    match target {
        Identifier::Ip(ip) => {
            egress::check_target(*ip, options.allow_private)
                .map_err(|reserved| problem(ProblemKind::Dns, reserved.to_string()))?;
            Ok(vec![*ip])
        }
        Identifier::Dns(name) => {
            let (ips, dnssec) = egress::resolve(
                resolver,
                name,
                options.use_ipv6,
                options.allow_private,
                deadline,
            )
            .await
            .map_err(|error| problem(error.problem_kind(), error.to_string()))?;
            evidence.dnssec = dnssec;
            Ok(ips)
        }
    }
}

/// Port 443 (or the lab's) on each address through the egress dial loop, IPv6 first; the
/// failed attempts go to the evidence.
async fn connect(
    options: &FetchOptions,
    ips: Vec<IpAddr>,
    identifier: &str,
    deadline: Instant,
    evidence: &mut TlsEvidence,
) -> Result<Dialed<(TcpStream, Instant)>, Problem> {
    let port = options.https_port.unwrap_or(443);
    let (_, dialed) = egress::first_reachable(ips, port, deadline, (), |address, ()| {
        dial_one(options, address, deadline)
    })
    .await;
    match dialed {
        Ok(dialed) => {
            evidence.failed_attempts = dialed.attempts.iter().map(ToString::to_string).collect();
            evidence.address = Some(dialed.address.to_string());
            Ok(dialed)
        }
        Err(NoConnection::Exhausted { attempts } | NoConnection::DeadlinePassed { attempts }) => {
            evidence.failed_attempts = attempts.iter().map(ToString::to_string).collect();
            Err(problem(
                ProblemKind::Connection,
                format!(
                    "could not connect to {identifier}: {}",
                    dial::list(&attempts)
                ),
            ))
        }
    }
}

/// One address of the dial loop: a TCP connect within `http.connect_timeout`; the connect
/// deadline is kept for the handshake that follows.
async fn dial_one(
    options: &FetchOptions,
    address: SocketAddr,
    deadline: Instant,
) -> ((), Result<(TcpStream, Instant), DialError>) {
    let connect_deadline = deadline.min(Instant::now() + options.connect_timeout);
    let tcp = egress::dial_tcp(
        address,
        options.egress_ipv4,
        options.egress_ipv6,
        connect_deadline,
    )
    .await;
    ((), tcp.map(|tcp| (tcp, connect_deadline)))
}
