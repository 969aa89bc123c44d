//! The I/O half of the CAA check (BR 3.2.2.8, RFC 8659 §3): query CAA at the name and each
//! parent (in parallel, as Boulder does), hand the per-level results to the pure climb and
//! decision in [`super::policy`], and turn the verdict into a check report with evidence.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use mpic_protocol::{CaaCheck, DnsEvidence, DnssecStatus, Evidence, Outcome, Problem, ProblemKind};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::policy::{
    self, CaaDecision, CaaRecord, CaaRequest, ClimbFailure, LevelResult, PolicyOptions, Relevant,
};
use crate::dns::{DnsError, Lookup, Resolver};
use crate::signing::CheckReport;

/// The relevant RRset found by the climb (RFC 8659 §3), with the evidence of every level.
#[derive(Debug, Clone, Default)]
pub struct Climb {
    /// The relevant records (empty if no level had any).
    pub records: Vec<CaaRecord>,
    /// The name whose RRset is relevant, if any.
    pub found_at: Option<String>,
    /// Every lookup made, in climb order.
    pub evidence: Vec<DnsEvidence>,
}

/// Why the climb could not produce a relevant RRset.
#[derive(Debug, Clone)]
pub struct ClimbError {
    /// The problem to report (`dns`, `dnssec`, `timeout` or `malformed`).
    pub problem: Problem,
    /// The lookups made before the failure was known.
    pub evidence: Vec<DnsEvidence>,
}

/// Queries CAA at the name (without `*.`) and every parent in parallel (as Boulder does), and
/// picks the relevant RRset. Any failure at or below the relevant level is an error: a lookup
/// failure, or a bogus DNSSEC answer, is never permission from this node (BR 3.2.2.8; the
/// primary may apply the carve-out with its own evidence).
pub async fn climb<R>(
    resolver: &R,
    identifier: &str,
    deadline: Instant,
) -> Result<Climb, ClimbError>
where
    R: Resolver + Clone + 'static,
{
    let names = policy::climb_names(identifier);
    if names.is_empty() {
        return Err(climb_error(
            ProblemKind::Malformed,
            format!("{identifier:?} has no name to check CAA for"),
            Vec::new(),
        ));
    }
    let mut parsed = Vec::with_capacity(names.len());
    for name in &names {
        match Name::from_ascii(format!("{name}.")) {
            Ok(parsed_name) => parsed.push(parsed_name),
            Err(error) => {
                return Err(climb_error(
                    ProblemKind::Malformed,
                    format!("{name:?} is not a domain name: {error}"),
                    Vec::new(),
                ));
            }
        }
    }

    // Every level at once: the climb is short and latency matters more than a few queries.
    let mut lookups = JoinSet::new();
    for (level, name) in parsed.into_iter().enumerate() {
        let resolver = resolver.clone();
        lookups.spawn(async move {
            (
                level,
                resolver.lookup(&name, RecordType::CAA, deadline).await,
            )
        });
    }
    let mut results: Vec<Option<Result<Lookup, DnsError>>> = vec![None; names.len()];
    while let Some(joined) = lookups.join_next().await {
        if let Ok((level, result)) = joined {
            if let Some(slot) = results.get_mut(level) {
                *slot = Some(result);
            }
        }
    }

    let last = names.len() - 1;
    let mut evidence = Vec::new();
    let mut levels = Vec::with_capacity(names.len());
    let mut failure_kinds = Vec::with_capacity(names.len());
    for (level, result) in results.iter().enumerate() {
        let (level_result, kind) = match result {
            Some(Ok(lookup)) => {
                evidence.push(lookup.evidence());
                if lookup.dnssec == Some(DnssecStatus::Bogus) {
                    let detail = format!(
                        "DNSSEC validation of CAA at {}. failed (bogus): {}",
                        names[level],
                        lookup.dnssec_detail.as_deref().unwrap_or("no detail")
                    );
                    (LevelResult::Failed { detail }, ProblemKind::Dnssec)
                } else if lookup.rcode == ResponseCode::NXDomain
                    && level == last
                    && lookup.chain.is_empty()
                {
                    (LevelResult::NxDomainTld, ProblemKind::Dns)
                } else if lookup.records.is_empty() {
                    // NXDOMAIN, NODATA and a dangling CNAME all mean "empty, climb on" (RFC 8659 §3).
                    (LevelResult::Empty, ProblemKind::Dns)
                } else {
                    (
                        LevelResult::Records(
                            lookup.records.iter().filter_map(caa_record).collect(),
                        ),
                        ProblemKind::Dns,
                    )
                }
            }
            Some(Err(error)) => {
                evidence.push(failed_evidence(&names[level], error));
                let kind = if error.is_timeout() {
                    ProblemKind::Timeout
                } else {
                    ProblemKind::Dns
                };
                (
                    LevelResult::Failed {
                        detail: error.to_string(),
                    },
                    kind,
                )
            }
            None => (
                LevelResult::Failed {
                    detail: "lookup task failed".into(),
                },
                ProblemKind::Internal,
            ),
        };
        levels.push(level_result);
        failure_kinds.push(kind);
    }

    match policy::relevant_level(&levels) {
        Ok(Relevant::NoneFound) => Ok(Climb {
            records: Vec::new(),
            found_at: None,
            evidence,
        }),
        Ok(Relevant::Found { level }) => {
            let records = match levels.get(level) {
                Some(LevelResult::Records(records)) => records.clone(),
                _ => Vec::new(),
            };
            Ok(Climb {
                records,
                found_at: names.get(level).cloned(),
                evidence,
            })
        }
        Err(ClimbFailure { level, detail }) => {
            let kind = failure_kinds
                .get(level)
                .copied()
                .unwrap_or(ProblemKind::Dns);
            let name = names.get(level).cloned().unwrap_or_default();
            let detail =
                format!("CAA lookup for {name} failed, so issuance cannot be permitted: {detail}");
            Err(climb_error(kind, detail, evidence))
        }
    }
}

/// Runs the CAA check for `identifier` (a domain name, possibly `*.`-prefixed).
pub async fn check<R>(
    resolver: &R,
    identifier: &str,
    request: &CaaCheck,
    options: &PolicyOptions,
    deadline: Instant,
) -> CheckReport
where
    R: Resolver + Clone + 'static,
{
    let wildcard = request.wildcard || identifier.starts_with("*.");
    // RFC 8659 covers domain names only; BR 3.2.2.8 has no CAA step for IP addresses.
    if identifier
        .trim_end_matches('.')
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return report(Outcome::Pass, None, Vec::new());
    }
    if request.issuer_domains.is_empty() {
        return report(
            Outcome::Fail,
            Some(problem(
                ProblemKind::Malformed,
                "the CAA check names no issuer domain".into(),
            )),
            Vec::new(),
        );
    }
    let found = match climb(resolver, identifier, deadline).await {
        Ok(found) => found,
        Err(ClimbError { problem, evidence }) => {
            return report(Outcome::Fail, Some(problem), evidence);
        }
    };
    let accounts: Vec<&str> = request.accounts().collect();
    let caa_request = CaaRequest {
        issuer_domains: &request.issuer_domains,
        wildcard,
        account_uris: &accounts,
        method: request.method.as_deref(),
    };
    match policy::decide(&found.records, &caa_request, options) {
        CaaDecision::Permitted(_) => report(Outcome::Pass, None, found.evidence),
        CaaDecision::Forbidden(refusal) => {
            let at = found
                .found_at
                .map(|name| format!(" (relevant CAA RRset at {name}.)"))
                .unwrap_or_default();
            report(
                Outcome::Fail,
                Some(problem(ProblemKind::Caa, format!("{refusal}{at}"))),
                found.evidence,
            )
        }
    }
}

fn climb_error(kind: ProblemKind, detail: String, evidence: Vec<DnsEvidence>) -> ClimbError {
    ClimbError {
        problem: problem(kind, detail),
        evidence,
    }
}

/// A CAA record as the policy's plain record: flags (critical bit 128 plus the reserved bits),
/// tag and value raw. A record kept raw by the lenient decoder (a tag over 15 octets, legal by
/// RFC 8659 §4.1) is read here too, so a critical unknown property still forbids issuance.
fn caa_record(record: &hickory_proto::rr::Record) -> Option<CaaRecord> {
    crate::dns::lenient::caa_parts(record).map(|(flags, tag, value)| CaaRecord {
        flags,
        tag,
        value,
    })
}

fn failed_evidence(name: &str, error: &DnsError) -> DnsEvidence {
    DnsEvidence {
        name: format!("{name}."),
        record_type: "CAA".into(),
        rcode: if error.is_timeout() {
            "TIMEOUT".into()
        } else {
            "FAILED".into()
        },
        records: vec![error.to_string()],
        dnssec: None,
        server: None,
    }
}

fn problem(kind: ProblemKind, detail: String) -> Problem {
    Problem { kind, detail }
}

fn report(outcome: Outcome, problem: Option<Problem>, dns: Vec<DnsEvidence>) -> CheckReport {
    let dnssec = crate::dns::worst_status(dns.iter().filter_map(|e| e.dnssec));
    CheckReport {
        outcome,
        problem,
        dnssec,
        evidence: Evidence {
            dns,
            ..Evidence::default()
        },
    }
}
