//! Why perspectives disagree: a pure classification of the signed results of one target into
//! findings (split-horizon DNS, propagation, firewall or geo-block, IPv6-only targets, HTTP
//! answers differing, DNSSEC status differing), each naming the perspectives on each side and
//! quoting the evidence that shows it. No clock, no I/O: table-tested in `findings/tests.rs`.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::net::IpAddr;

use mpic_protocol::{DnssecStatus, Outcome, PerspectiveId, ProblemKind, ResultPayload, Rir};
use serde::Serialize;

/// What one perspective said about one target, as [`findings`] reads it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The perspective.
    pub perspective_id: PerspectiveId,
    /// Its RIR region.
    pub rir: Rir,
    /// Its published egress addresses, from the perspectives file (may be empty).
    pub egress: Vec<IpAddr>,
    /// Its verified, signed result, if one arrived.
    pub result: Option<ResultPayload>,
    /// Why there is no result (the node could not be reached or answered badly).
    pub error: Option<String>,
}

/// The likely cause of a disagreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Different RRsets for the same question: split-horizon or geo-DNS.
    SplitHorizon,
    /// A record present for some perspectives and absent for others: not yet propagated to
    /// every authoritative server.
    Propagation,
    /// Connection refused or timed out from some perspectives while others got answers: a
    /// firewall, geo-block or allow-list.
    Unreachable,
    /// The target is reachable over IPv6 only and some perspectives could not use IPv6.
    Ipv6Only,
    /// The HTTP status or body differs by perspective: a WAF or User-Agent filtering.
    HttpResponse,
    /// The DNSSEC status differs: stale signatures or partial signing on some servers.
    Dnssec,
    /// A perspective returned no signed result at all (the node, not the target).
    NoResult,
    /// Outcomes differ for a reason none of the above explains.
    Other,
}

impl Cause {
    /// The stable code (as in JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::SplitHorizon => "split_horizon",
            Cause::Propagation => "propagation",
            Cause::Unreachable => "unreachable",
            Cause::Ipv6Only => "ipv6_only",
            Cause::HttpResponse => "http_response",
            Cause::Dnssec => "dnssec",
            Cause::NoResult => "no_result",
            Cause::Other => "other",
        }
    }
}

/// One group of perspectives that saw the same thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    /// What this group saw, in a few words.
    pub label: String,
    /// The perspectives in it.
    pub perspectives: Vec<PerspectiveId>,
    /// Quoted evidence from their signed results.
    pub evidence: Vec<String>,
}

/// One explained disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The likely cause.
    pub cause: Cause,
    /// One line saying what differs.
    pub title: String,
    /// The groups of perspectives, each with its evidence.
    pub sides: Vec<Side>,
    /// What the domain owner (or the CA) can do about it.
    pub advice: String,
}

/// Classifies the disagreement among `observations` (one target, one perspective each).
/// Returns nothing when every perspective saw the same thing.
pub fn findings(observations: &[Observation]) -> Vec<Finding> {
    let answered: Vec<(&Observation, &ResultPayload)> = observations
        .iter()
        .filter_map(|o| o.result.as_ref().map(|r| (o, r)))
        .collect();
    let mut found = Vec::new();
    found.extend(no_result(observations));
    found.extend(reachability(&answered));
    found.extend(dns::differences(&answered));
    found.extend(http_differences(&answered));
    found.extend(dnssec_differences(&answered));
    if found.is_empty() {
        found.extend(other_outcomes(&answered));
    }
    found
}

fn ids<'a>(members: impl IntoIterator<Item = &'a Observation>) -> Vec<PerspectiveId> {
    members
        .into_iter()
        .map(|o| o.perspective_id.clone())
        .collect()
}

fn no_result(observations: &[Observation]) -> Option<Finding> {
    let missing: Vec<&Observation> = observations.iter().filter(|o| o.result.is_none()).collect();
    if missing.is_empty() {
        return None;
    }
    Some(Finding {
        cause: Cause::NoResult,
        title: format!("{} perspective(s) returned no signed result", missing.len()),
        sides: vec![Side {
            label: "no signed result".into(),
            perspectives: ids(missing.iter().copied()),
            evidence: missing
                .iter()
                .map(|o| {
                    format!(
                        "{}: {}",
                        o.perspective_id,
                        o.error.as_deref().unwrap_or("no answer")
                    )
                })
                .collect(),
        }],
        advice: "the perspective itself failed, not the target: it counts as not corroborating; \
                 check that node (or ask the CA to)"
            .into(),
    })
}

/// A network-level failure: the connection was refused, reset or timed out.
fn network_failure(result: &ResultPayload) -> bool {
    result.outcome != Outcome::Pass
        && result
            .problem
            .as_ref()
            .is_some_and(|p| matches!(p.kind, ProblemKind::Connection | ProblemKind::Timeout))
}

/// Every address a connection was attempted to (answered or failed), as `ip:port` text.
fn attempted_addresses(result: &ResultPayload) -> Vec<String> {
    let mut addresses = Vec::new();
    for hop in &result.evidence.http {
        addresses.extend(hop.failed_attempts.iter().map(|a| address_of(a)));
        addresses.extend(hop.address.clone());
    }
    if let Some(tls) = &result.evidence.tls {
        addresses.extend(tls.failed_attempts.iter().map(|a| address_of(a)));
        addresses.extend(tls.address.clone());
    }
    addresses
}

/// The `ip:port` before `": what happened"` in a failed-attempt line.
fn address_of(attempt: &str) -> String {
    let end = if attempt.starts_with('[') {
        attempt.find("]:").map(|i| {
            attempt[i + 2..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(attempt.len(), |j| i + 2 + j)
        })
    } else {
        attempt.find(": ")
    };
    attempt[..end.unwrap_or(attempt.len())].to_owned()
}

fn is_ipv6_address(address: &str) -> bool {
    address.starts_with('[')
}

/// What a perspective that got through saw, in one line.
pub fn answer_summary(result: &ResultPayload) -> String {
    if let Some(hop) = result.evidence.http.last()
        && let Some(status) = hop.status
    {
        return format!(
            "HTTP {status} from {} for {} ({} bytes)",
            hop.address.as_deref().unwrap_or("?"),
            hop.url,
            hop.bytes
        );
    }
    if let Some(address) = result
        .evidence
        .tls
        .as_ref()
        .and_then(|t| t.address.as_ref())
    {
        return format!("TLS handshake with {address}");
    }
    if let Some(problem) = &result.problem {
        return format!("{}: {}", problem.kind.as_str(), problem.detail);
    }
    match result.evidence.dns.first() {
        Some(dns) => format!(
            "{} {} {}: {}",
            dns.name,
            dns.record_type,
            dns.rcode,
            if dns.records.is_empty() {
                "no records".to_owned()
            } else {
                dns.records.join(" | ")
            }
        ),
        None => result.outcome.as_str().to_owned(),
    }
}

fn egress_text(observation: &Observation) -> String {
    if observation.egress.is_empty() {
        format!(
            "{}: egress addresses not published in the perspectives file",
            observation.perspective_id
        )
    } else {
        let list: Vec<String> = observation.egress.iter().map(ToString::to_string).collect();
        format!(
            "{} connects from {}",
            observation.perspective_id,
            list.join(", ")
        )
    }
}

/// "`id` publishes no IPv6 egress address" when its published egress list is IPv4 only.
fn no_ipv6_egress(observation: &Observation) -> Option<String> {
    (!observation.egress.is_empty() && !observation.egress.iter().any(IpAddr::is_ipv6)).then(|| {
        format!(
            "{} publishes no IPv6 egress address (IPv4 only)",
            observation.perspective_id
        )
    })
}

fn reachability(answered: &[(&Observation, &ResultPayload)]) -> Vec<Finding> {
    type Pair<'a> = (&'a Observation, &'a ResultPayload);
    let (blocked, reached): (Vec<Pair<'_>>, Vec<Pair<'_>>) =
        answered.iter().partition(|(_, r)| network_failure(r));
    if blocked.is_empty() || reached.is_empty() {
        return Vec::new();
    }
    // A perspective that tried IPv6 addresses only, while the others got through: the target
    // has no IPv4 address and this perspective's IPv6 does not work.
    let (v6_only, firewall): (Vec<Pair<'_>>, Vec<Pair<'_>>) = blocked.iter().partition(|(_, r)| {
        let tried = attempted_addresses(r);
        !tried.is_empty() && tried.iter().all(|a| is_ipv6_address(a))
    });
    let reached_side = Side {
        label: "got an answer".into(),
        perspectives: ids(reached.iter().map(|(o, _)| *o)),
        evidence: reached
            .iter()
            .map(|(o, r)| format!("{}: {}", o.perspective_id, answer_summary(r)))
            .collect(),
    };
    let failure_lines = |group: &[Pair<'_>]| -> Vec<String> {
        group
            .iter()
            .map(|(o, r)| {
                let detail = r.problem.as_ref().map_or("", |p| p.detail.as_str());
                format!("{}: {detail}", o.perspective_id)
            })
            .collect()
    };
    let mut found = Vec::new();
    if !firewall.is_empty() {
        let egress: Vec<String> = firewall.iter().map(|(o, _)| egress_text(o)).collect();
        found.push(Finding {
            cause: Cause::Unreachable,
            title: format!(
                "connection refused or timed out from {} perspective(s) while {} got answers \
                 (firewall, geo-block or allow-list?)",
                firewall.len(),
                reached.len()
            ),
            sides: vec![
                Side {
                    label: "could not connect".into(),
                    perspectives: ids(firewall.iter().map(|(o, _)| *o)),
                    evidence: failure_lines(&firewall),
                },
                reached_side.clone(),
            ],
            advice: format!(
                "allow the CA's perspectives through the firewall, geo-block or allow-list: {}",
                egress.join("; ")
            ),
        });
    }
    if !v6_only.is_empty() {
        found.push(Finding {
            cause: Cause::Ipv6Only,
            title: "the target is reachable over IPv6 only and some perspectives could not \
                    connect over IPv6"
                .into(),
            sides: vec![
                Side {
                    label: "IPv6 connection failed, no IPv4 address to fall back to".into(),
                    perspectives: ids(v6_only.iter().map(|(o, _)| *o)),
                    evidence: failure_lines(&v6_only)
                        .into_iter()
                        .chain(v6_only.iter().filter_map(|(o, _)| no_ipv6_egress(o)))
                        .collect(),
                },
                reached_side,
            ],
            advice: "publish an A record (IPv4) for the target, or check that the host accepts \
                     IPv6 connections from every network"
                .into(),
        });
    }
    found
}

/// One perspective's last answered HTTP hop: (who, result, status, body bytes).
type Hop<'a> = (&'a Observation, &'a ResultPayload, u16, u64);

fn http_differences(answered: &[(&Observation, &ResultPayload)]) -> Option<Finding> {
    // The last hop that got an HTTP status, per perspective.
    let hops: Vec<_> = answered
        .iter()
        .filter_map(|(o, r)| {
            let hop = r.evidence.http.iter().rev().find(|h| h.status.is_some())?;
            Some((*o, *r, hop.status.unwrap_or_default(), hop.bytes))
        })
        .collect();
    let statuses: BTreeSet<u16> = hops.iter().map(|h| h.2).collect();
    let outcomes: BTreeSet<&str> = hops.iter().map(|h| h.1.outcome.as_str()).collect();
    let bodies: BTreeSet<u64> = hops.iter().map(|h| h.3).collect();
    let (label, title): (fn(&Hop<'_>) -> String, &str) = if statuses.len() >= 2 {
        (
            |h| format!("HTTP {}", h.2),
            "the HTTP status differs by perspective (WAF, bot protection or User-Agent \
                 filtering?)",
        )
    } else if outcomes.len() >= 2 && bodies.len() >= 2 {
        (
            |h| format!("HTTP {}, {} bytes", h.2, h.3),
            "the HTTP body differs by perspective (WAF challenge page, CDN edge or \
                 User-Agent filtering?)",
        )
    } else {
        return None;
    };
    let mut groups: Vec<(String, Vec<&Hop<'_>>)> = Vec::new();
    for hop in &hops {
        let key = label(hop);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(hop),
            None => groups.push((key, vec![hop])),
        }
    }
    let sides = groups
        .into_iter()
        .map(|(key, members)| Side {
            label: key,
            perspectives: members.iter().map(|h| h.0.perspective_id.clone()).collect(),
            evidence: members
                .iter()
                .map(|h| {
                    let problem =
                        h.1.problem
                            .as_ref()
                            .map(|p| format!("; {}: {}", p.kind.as_str(), p.detail))
                            .unwrap_or_default();
                    format!("{}: {}{problem}", h.0.perspective_id, answer_summary(h.1))
                })
                .collect(),
        })
        .collect();
    Some(Finding {
        cause: Cause::HttpResponse,
        title: title.into(),
        sides,
        advice: "let the validation path through unchanged for every network and User-Agent \
                 (exempt /.well-known/acme-challenge/ and /.well-known/pki-validation/ from WAF \
                 rules, bot checks and geo rules)"
            .into(),
    })
}

fn dnssec_differences(answered: &[(&Observation, &ResultPayload)]) -> Option<Finding> {
    let mut groups: BTreeMap<DnssecStatus, Vec<(&Observation, &ResultPayload)>> = BTreeMap::new();
    for (o, r) in answered {
        if let Some(status) = r.dnssec {
            groups.entry(status).or_default().push((o, r));
        }
    }
    if groups.len() < 2 {
        return None;
    }
    let sides = groups
        .iter()
        .map(|(status, members)| Side {
            label: format!("DNSSEC {}", dnssec_name(*status)),
            perspectives: members
                .iter()
                .map(|(o, _)| o.perspective_id.clone())
                .collect(),
            evidence: members
                .iter()
                .map(|(o, r)| match &r.problem {
                    Some(p) if p.kind == ProblemKind::Dnssec => {
                        format!("{}: {}", o.perspective_id, p.detail)
                    }
                    _ => format!("{}: {}", o.perspective_id, answer_summary(r)),
                })
                .collect(),
        })
        .collect();
    Some(Finding {
        cause: Cause::Dnssec,
        title: "the DNSSEC status differs by perspective (stale signatures or partial signing on \
                some authoritative servers?)"
            .into(),
        sides,
        advice: "re-sign the zone and make sure every authoritative server serves the current \
                 signatures and keys (check RRSIG expiry and that each server has the new zone)"
            .into(),
    })
}

/// The wire name of a DNSSEC status.
pub fn dnssec_name(status: DnssecStatus) -> &'static str {
    match status {
        DnssecStatus::Secure => "secure",
        DnssecStatus::Insecure => "insecure",
        DnssecStatus::Bogus => "bogus",
        DnssecStatus::Indeterminate => "indeterminate",
    }
}

fn other_outcomes(answered: &[(&Observation, &ResultPayload)]) -> Option<Finding> {
    let mut groups: Vec<(String, Vec<(&Observation, &ResultPayload)>)> = Vec::new();
    for (o, r) in answered {
        let key = match &r.problem {
            Some(p) => format!("{} ({})", r.outcome.as_str(), p.kind.as_str()),
            None => r.outcome.as_str().to_owned(),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push((o, r)),
            None => groups.push((key, vec![(o, r)])),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    Some(Finding {
        cause: Cause::Other,
        title: "the perspectives' outcomes differ".into(),
        sides: groups
            .into_iter()
            .map(|(label, members)| Side {
                label,
                perspectives: members
                    .iter()
                    .map(|(o, _)| o.perspective_id.clone())
                    .collect(),
                evidence: members
                    .iter()
                    .map(|(o, r)| format!("{}: {}", o.perspective_id, answer_summary(r)))
                    .collect(),
            })
            .collect(),
        advice: "compare the evidence of each side".into(),
    })
}

mod dns;
#[cfg(test)]
mod tests;
