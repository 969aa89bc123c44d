//! The I/O half of the CAA check (BR 3.2.2.8, RFC 8659 §3): query CAA at the name and each
//! parent (in parallel, as Boulder does), hand the per-level results to the pure climb and
//! decision in [`super::policy`], and turn the verdict into a check report with evidence. When
//! the request opts in, a failed climb goes through the BR 3.2.2.8 carve-out ([`super::carve_out`]):
//! each failed level needs a retried lookup failure and a proof that its zone is insecure.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use mpic_protocol::{
    CERTIFICATE_TYPE_SMIME, CERTIFICATE_TYPE_TLS, CaaCheck, DnssecStatus, FailedLookup,
    LookupFailurePermit, Outcome, Problem, ProblemKind,
};
use tokio::time::Instant;

use super::carve_out::{self, FailureKind, LookupFailure};
use super::policy::{
    self, CaaDecision, CaaRecord, CaaRequest, CertificateType, ClimbFailure, LevelResult,
    PolicyOptions, Relevant,
};
use crate::checks::evidence::DnsLookupEvidence;
use crate::checks::{CheckReport, Evidence, problem};
use crate::dns::{DnsError, Lookup, Resolver};

/// The relevant RRset found by the climb (RFC 8659 §3), with the evidence of every level.
#[derive(Debug, Clone, Default)]
pub struct Climb {
    /// The relevant records (empty if no level had any).
    pub records: Vec<CaaRecord>,
    /// The name whose RRset is relevant, if any.
    pub found_at: Option<String>,
    /// Every lookup made, in climb order.
    pub evidence: Vec<DnsLookupEvidence>,
}

/// Why the climb could not produce a relevant RRset.
#[derive(Debug, Clone)]
pub struct ClimbError {
    /// The problem to report (`dns`, `dnssec`, `timeout` or `malformed`).
    pub problem: Problem,
    /// The lookups made before the failure was known.
    pub evidence: Vec<DnsLookupEvidence>,
    /// The per-level results, when the climb ran and a level failed (the carve-out's input).
    pub failed: Option<FailedClimb>,
}

/// A climb in which some level failed: every level's result and how each failed one failed.
#[derive(Debug, Clone)]
pub struct FailedClimb {
    /// The names climbed, the name first.
    pub names: Vec<String>,
    /// Each level's result.
    pub levels: Vec<LevelResult>,
    /// For each failed level, how it failed.
    pub failures: Vec<Option<LookupFailure>>,
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
    let (names, parsed) = climb_names(identifier).map_err(|error| *error)?;
    let results = lookup_levels(resolver, parsed, deadline).await;
    let last = names.len() - 1;
    let mut evidence = Vec::new();
    let mut levels = Vec::with_capacity(names.len());
    let mut failure_kinds = Vec::with_capacity(names.len());
    let mut failures = Vec::with_capacity(names.len());
    for (level, result) in results.iter().enumerate() {
        failures.push(level_failure(result));
        let (level_result, kind) = read_level(&names[level], level == last, result);
        evidence.push(match result {
            Ok(lookup) => DnsLookupEvidence::answered(lookup),
            Err(error) => failed_evidence(&names[level], error),
        });
        levels.push(level_result);
        failure_kinds.push(kind);
    }
    relevant(names, levels, &failure_kinds, failures, evidence).map_err(|error| *error)
}

/// The names to climb (the name first) in text and as DNS names.
fn climb_names(identifier: &str) -> Result<(Vec<String>, Vec<Name>), Box<ClimbError>> {
    let names = policy::climb_names(identifier);
    if names.is_empty() {
        return Err(Box::new(climb_error(
            ProblemKind::Malformed,
            format!("{identifier:?} has no name to check CAA for"),
            Vec::new(),
        )));
    }
    let mut parsed = Vec::with_capacity(names.len());
    for name in &names {
        match Name::from_ascii(format!("{name}.")) {
            Ok(parsed_name) => parsed.push(parsed_name),
            Err(error) => {
                return Err(Box::new(climb_error(
                    ProblemKind::Malformed,
                    format!("{name:?} is not a domain name: {error}"),
                    Vec::new(),
                )));
            }
        }
    }
    Ok((names, parsed))
}

/// Every level's CAA lookup at once: the climb is short and latency matters more than a few
/// queries. The lookups run concurrently inside the caller's task (no task per level: a spawn
/// per level cost more CPU than the climb's own logic); a lookup that another check is already
/// making is shared by the resolver's coalescing, so dropping this future cancels no one else's
/// query. Levels the cache answers outright (typically the parents) are read first and make no
/// future at all: a lookup's future is ~1 KB, held for as long as the slowest level waits.
async fn lookup_levels<R>(
    resolver: &R,
    parsed: Vec<Name>,
    deadline: Instant,
) -> Vec<Result<Lookup, DnsError>>
where
    R: Resolver,
{
    let cached: Vec<Option<Lookup>> = parsed
        .iter()
        .map(|name| resolver.cached(name, RecordType::CAA))
        .collect();
    let misses = parsed
        .iter()
        .zip(&cached)
        .filter(|(_, hit)| hit.is_none())
        .map(|(name, _)| resolver.lookup(name, RecordType::CAA, deadline));
    // join_all gives one result per miss, in order: they fill the gaps in that order.
    let mut looked = futures_util::future::join_all(misses).await.into_iter();
    cached
        .into_iter()
        .filter_map(|hit| hit.map(Ok).or_else(|| looked.next()))
        .collect()
}

/// How a level failed, for the carve-out (`None`: it did not).
fn level_failure(result: &Result<Lookup, DnsError>) -> Option<LookupFailure> {
    match result {
        Ok(lookup) if lookup.dnssec == Some(DnssecStatus::Bogus) => Some(LookupFailure {
            kind: FailureKind::Bogus,
            attempts: Vec::new(),
        }),
        Ok(_) => None,
        Err(error) => Some(carve_out::classify(error)),
    }
}

/// What one level's lookup says for the policy, and the problem kind if it is the level that
/// fails the climb.
fn read_level(
    name: &str,
    is_last: bool,
    result: &Result<Lookup, DnsError>,
) -> (LevelResult, ProblemKind) {
    match result {
        Ok(lookup) if lookup.dnssec == Some(DnssecStatus::Bogus) => {
            let detail = format!(
                "DNSSEC validation of CAA at {name}. failed (bogus): {}",
                lookup.dnssec_detail.as_deref().unwrap_or("no detail")
            );
            (LevelResult::Failed { detail }, ProblemKind::Dnssec)
        }
        Ok(lookup)
            if lookup.rcode == ResponseCode::NXDomain && is_last && lookup.chain.is_empty() =>
        {
            (LevelResult::NxDomainTld, ProblemKind::Dns)
        }
        // NXDOMAIN, NODATA and a dangling CNAME all mean "empty, climb on" (RFC 8659 §3).
        Ok(lookup) if lookup.records.is_empty() => (LevelResult::Empty, ProblemKind::Dns),
        Ok(lookup) => (
            LevelResult::Records(lookup.records.iter().filter_map(caa_record).collect()),
            ProblemKind::Dns,
        ),
        Err(error) => {
            let kind = if error.is_timeout() {
                ProblemKind::Timeout
            } else {
                ProblemKind::Dns
            };
            let detail = error.to_string();
            (LevelResult::Failed { detail }, kind)
        }
    }
}

/// The relevant RRset of the climb, or the failure that stops it.
fn relevant(
    names: Vec<String>,
    levels: Vec<LevelResult>,
    failure_kinds: &[ProblemKind],
    failures: Vec<Option<LookupFailure>>,
    evidence: Vec<DnsLookupEvidence>,
) -> Result<Climb, Box<ClimbError>> {
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
            let mut error = climb_error(kind, detail, evidence);
            error.failed = Some(FailedClimb {
                names,
                levels,
                failures,
            });
            Err(Box::new(error))
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
    let certificate_type = match certificate_type(request) {
        Ok(certificate_type) => certificate_type,
        Err(problem) => return report(Outcome::Fail, Some(problem), Vec::new()),
    };
    let accounts: Vec<&str> = request.accounts().collect();
    let caa_request = CaaRequest {
        issuer_domains: &request.issuer_domains,
        wildcard,
        certificate_type,
        account_uris: &accounts,
        method: request.method.as_deref(),
    };
    let found = match climb(resolver, identifier, deadline).await {
        Ok(found) => found,
        Err(ClimbError {
            problem,
            evidence,
            failed: Some(failed),
        }) if request.allow_lookup_failure => {
            let attempt = CarveOutAttempt {
                failed: &failed,
                request: &caa_request,
                options,
                deadline,
            };
            // Boxed: the carve-out (rare, opt-in) retries lookups inline, and unboxed its state
            // would make every in-flight CAA check kilobytes larger.
            return Box::pin(attempt.run(resolver, problem, evidence)).await;
        }
        Err(ClimbError {
            problem, evidence, ..
        }) => {
            return report(Outcome::Fail, Some(problem), evidence);
        }
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

/// Reads [`CaaCheck::certificate_type`]: absent or `tls` is TLS, `s-mime` is S/MIME (RFC 9495:
/// the identifier is then the domain part of the mailbox, RFC 9495 §4, and the climb is RFC
/// 8659 §3's). Any other value is an `unsupported` failure, never a pass.
fn certificate_type(request: &CaaCheck) -> Result<CertificateType, Problem> {
    match request.certificate_type.as_deref() {
        None | Some(CERTIFICATE_TYPE_TLS) => Ok(CertificateType::Tls),
        Some(CERTIFICATE_TYPE_SMIME) => Ok(CertificateType::Smime),
        Some(other) => Err(problem(
            ProblemKind::Unsupported,
            format!(
                "CAA certificate_type {other:?} is not supported (this node knows \
                 {CERTIFICATE_TYPE_TLS:?} and {CERTIFICATE_TYPE_SMIME:?})"
            ),
        )),
    }
}

fn climb_error(kind: ProblemKind, detail: String, evidence: Vec<DnsLookupEvidence>) -> ClimbError {
    ClimbError {
        problem: problem(kind, detail),
        evidence,
        failed: None,
    }
}

/// The BR 3.2.2.8 carve-out over a failed climb (the request set `allow_lookup_failure`).
struct CarveOutAttempt<'a> {
    failed: &'a FailedClimb,
    request: &'a CaaRequest<'a>,
    options: &'a PolicyOptions,
    deadline: Instant,
}

impl CarveOutAttempt<'_> {
    /// Walks the levels from the name up to the first non-empty RRset. Each failed level on
    /// the way must be a retried lookup failure in a zone proven insecure; it then counts as
    /// empty, and the climb is decided over the rest, so a record that forbids above still
    /// forbids. Any refusal keeps the original failure, with the reason appended.
    async fn run<R: Resolver>(
        &self,
        resolver: &R,
        original: Problem,
        evidence: Vec<DnsLookupEvidence>,
    ) -> CheckReport {
        let refuse = |why: String, evidence: Vec<DnsLookupEvidence>| {
            let detail = format!(
                "{}; BR 3.2.2.8 lookup-failure carve-out refused: {why}",
                original.detail
            );
            report(
                Outcome::Fail,
                Some(problem(original.kind, detail)),
                evidence,
            )
        };
        let mut levels = self.failed.levels.clone();
        let mut permitted = Vec::new();
        for (level, name) in self.failed.names.iter().enumerate() {
            match levels.get(level) {
                Some(LevelResult::Records(records)) if !records.is_empty() => break,
                Some(LevelResult::Failed { .. }) => {}
                Some(LevelResult::NxDomainTld) => {
                    return refuse("the top-level domain does not exist".into(), evidence);
                }
                _ => continue,
            }
            match self.prove(resolver, level, name).await {
                Ok(failed) => permitted.push(failed),
                Err(why) => return refuse(why.to_string(), evidence),
            }
            if let Some(slot) = levels.get_mut(level) {
                *slot = LevelResult::Empty;
            }
        }
        let records = match policy::relevant_level(&levels) {
            Ok(Relevant::Found { level }) => match levels.get(level) {
                Some(LevelResult::Records(records)) => records.clone(),
                _ => Vec::new(),
            },
            Ok(Relevant::NoneFound) => Vec::new(),
            Err(ClimbFailure { detail, .. }) => return refuse(detail, evidence),
        };
        match policy::decide(&records, self.request, self.options) {
            CaaDecision::Permitted(_) => {
                let mut report = report(Outcome::Pass, None, evidence);
                // The verdict rests on the insecure proof too.
                report.dnssec = crate::dns::worst_status(
                    report.dnssec.into_iter().chain([DnssecStatus::Insecure]),
                );
                report.evidence.permitted_by_lookup_failure = Some(LookupFailurePermit {
                    failed_lookups: permitted,
                });
                report
            }
            CaaDecision::Forbidden(refusal) => report(
                Outcome::Fail,
                Some(problem(
                    ProblemKind::Caa,
                    format!("{refusal} (with the failed CAA lookups treated as empty)"),
                )),
                evidence,
            ),
        }
    }

    /// One failed level: a retried lookup failure, then the proof that its zone is insecure
    /// (asked only once the first two conditions hold). `Err` says why not.
    async fn prove<R: Resolver>(
        &self,
        resolver: &R,
        level: usize,
        name: &str,
    ) -> Result<FailedLookup, ProofRefused> {
        let name = name.to_owned();
        let Some(Some(failure)) = self.failed.failures.get(level) else {
            return Err(ProofRefused::NotRecorded { name });
        };
        if let Err(refusal) = carve_out::eligible(true, failure) {
            return Err(ProofRefused::NotEligible { name, refusal });
        }
        let Ok(fqdn) = Name::from_ascii(format!("{name}.")) else {
            return Err(ProofRefused::BadName { name });
        };
        let zone = resolver.zone_status(&fqdn, self.deadline).await;
        if let Err(refusal) = carve_out::proven_insecure(zone.as_ref().map(|v| v.status)) {
            let why = zone.and_then(|v| v.detail).unwrap_or_default();
            return Err(ProofRefused::NotInsecure { name, refusal, why });
        }
        Ok(FailedLookup {
            name: format!("{name}."),
            failure: failure.kind.as_str().into(),
            attempts: u32::try_from(failure.attempts.len()).unwrap_or(u32::MAX),
            attempt_details: failure.attempts.clone(),
            resolution: resolver.resolution().into(),
            dnssec: DnssecStatus::Insecure,
            proof: zone.and_then(|v| v.detail).unwrap_or_default(),
        })
    }
}

/// Why one failed level cannot be treated as empty under the BR 3.2.2.8 carve-out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ProofRefused {
    /// The climb kept no failure for this level.
    #[error("{name}.: the failure was not recorded")]
    NotRecorded {
        /// The level's name.
        name: String,
    },
    /// The failure is not one the carve-out accepts (not retried, not a lookup failure).
    #[error("{name}.: {refusal}")]
    NotEligible {
        /// The level's name.
        name: String,
        /// Why not.
        refusal: carve_out::Refusal,
    },
    /// The level's name does not parse as a domain name.
    #[error("{name:?} is not a domain name")]
    BadName {
        /// The level's name.
        name: String,
    },
    /// The zone holding the name was not proven insecure.
    #[error("{name}.: {refusal} ({why})")]
    NotInsecure {
        /// The level's name.
        name: String,
        /// Why not.
        refusal: carve_out::Refusal,
        /// The zone walk's detail.
        why: String,
    },
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

fn failed_evidence(name: &str, error: &DnsError) -> DnsLookupEvidence {
    DnsLookupEvidence::failed(format!("{name}."), RecordType::CAA, error.clone())
}

fn report(outcome: Outcome, problem: Option<Problem>, dns: Vec<DnsLookupEvidence>) -> CheckReport {
    let dnssec = crate::dns::worst_status(dns.iter().filter_map(DnsLookupEvidence::dnssec));
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
