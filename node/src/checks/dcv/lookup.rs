//! The I/O half of the DNS-based DCV methods: look the records up with the node's resolver and
//! hand them to the pure deciders in this folder; report the outcome with the evidence seen.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RData, RecordType};
use mpic_protocol::{DcvMethod, DnssecStatus, Problem, ProblemKind};
use tokio::time::Instant;

use super::adn;
use super::contacts::{self, ContactKind};
use super::dns_change::{self, DnsChangeRequest};
use super::dns_persist::{self, PersistProfile, PersistRequest};
use super::ip_address::{self, AddressMethodError};
use super::request::{AddressRecordType, DnsChange, DnsDcv, DnsPersist};
use super::{acme_dns01, dns_account01};
use crate::checks::evidence::DnsLookupEvidence;
use crate::checks::{CheckReport, Evidence, problem};
use crate::dns::{DnsError, Lookup, Resolver, txt_values};

/// Runs one DNS-based DCV check for `identifier`.
pub async fn check<R: Resolver + Clone + 'static>(
    resolver: &R,
    identifier: &str,
    dcv: &DnsDcv,
    deadline: Instant,
) -> CheckReport {
    let mut evidence = Vec::new();
    let result = run(resolver, identifier, dcv, deadline, &mut evidence).await;
    let dnssec = crate::dns::worst_status(evidence.iter().filter_map(DnsLookupEvidence::dnssec));
    let evidence = Evidence {
        dns: evidence,
        ..Evidence::default()
    };
    CheckReport::from_verdict(result, dnssec, evidence)
}

/// Runs the method's lookups and decides, recording each lookup in `seen`.
async fn run<R: Resolver + Clone + 'static>(
    resolver: &R,
    identifier: &str,
    dcv: &DnsDcv,
    deadline: Instant,
    seen: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let method = dcv.method();
    match dcv {
        DnsDcv::AcmeDns01 { key_authorization } => {
            let name = acme_dns01::challenge_name(identifier);
            acme(
                resolver,
                identifier,
                &method,
                name,
                key_authorization,
                deadline,
                seen,
            )
            .await
        }
        DnsDcv::AcmeDnsAccount01 {
            key_authorization,
            account_uri,
        } => {
            let name = dns_account01::challenge_name(identifier, account_uri);
            acme(
                resolver,
                identifier,
                &method,
                name,
                key_authorization,
                deadline,
                seen,
            )
            .await
        }
        DnsDcv::DnsChange(request) => {
            dns_change(resolver, identifier, request, deadline, seen).await
        }
        DnsDcv::DnsPersist01(request) => {
            persist(resolver, identifier, request, deadline, seen).await
        }
        DnsDcv::ContactEmailTxt { expected } => {
            let wanted = Wanted::new(ContactKind::Email, expected.as_deref());
            contact_txt(resolver, identifier, &method, wanted, deadline, seen).await
        }
        DnsDcv::ContactPhoneTxt { expected } => {
            let wanted = Wanted::new(ContactKind::Phone, expected.as_deref());
            contact_txt(resolver, identifier, &method, wanted, deadline, seen).await
        }
        DnsDcv::ContactEmailCaa { expected } => {
            let wanted = Wanted::new(ContactKind::Email, expected.as_deref());
            contact_caa(resolver, identifier, wanted, deadline, seen).await
        }
        DnsDcv::ContactPhoneCaa { expected } => {
            let wanted = Wanted::new(ContactKind::Phone, expected.as_deref());
            contact_caa(resolver, identifier, wanted, deadline, seen).await
        }
        DnsDcv::IpAddress {
            expected,
            record_type,
        } => ip_address(resolver, identifier, expected, *record_type, deadline, seen).await,
        DnsDcv::ReverseAddressLookup { expected } => {
            reverse_address(resolver, identifier, expected, deadline, seen).await
        }
    }
}

/// The contact a contact method looks for: its kind, and the one the primary expects (phone
/// numbers normalized), if it names one.
struct Wanted {
    kind: ContactKind,
    contact: Option<String>,
}

impl Wanted {
    fn new(kind: ContactKind, expected: Option<&str>) -> Self {
        let contact = expected.map(|expected| match kind {
            ContactKind::Phone => contacts::normalize_phone(expected),
            ContactKind::Email => expected.to_owned(),
        });
        Self { kind, contact }
    }
}

/// Looks up `name`/`record_type`, recording the evidence; a DNS failure becomes the problem.
async fn lookup<R: Resolver>(
    resolver: &R,
    name: &str,
    record_type: RecordType,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<Lookup, Problem> {
    let fqdn = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    let parsed = Name::from_ascii(&fqdn).map_err(|e| {
        problem(
            ProblemKind::Malformed,
            format!("{name:?} is not a domain name: {e}"),
        )
    })?;
    match resolver.lookup(&parsed, record_type, deadline).await {
        Ok(lookup) => {
            evidence.push(DnsLookupEvidence::answered(&lookup));
            // A bogus answer never counts for anything (SC-085): fail with the reason.
            if lookup.dnssec == Some(DnssecStatus::Bogus) {
                return Err(problem(
                    ProblemKind::Dnssec,
                    format!(
                        "DNSSEC validation of {fqdn} {record_type} failed (bogus): {}",
                        lookup.dnssec_detail.as_deref().unwrap_or("no detail")
                    ),
                ));
            }
            Ok(lookup)
        }
        Err(error) => {
            let problem = dns_problem(&error);
            evidence.push(DnsLookupEvidence::failed(fqdn, record_type, error));
            Err(problem)
        }
    }
}

fn dns_problem(error: &DnsError) -> Problem {
    let kind = if error.is_timeout() {
        ProblemKind::Timeout
    } else {
        ProblemKind::Dns
    };
    problem(kind, error.to_string())
}

/// BR 3.2.2.4 (SC-101v2) step 3.1: a method without a check in the CNAME column must not use
/// a CNAME target as its ADN, so an answer for the ADN itself that came through a CNAME owned by
/// the ADN counts for nothing. A CNAME at the record's name (`_validation-persist.<ADN>`, a
/// `_prefix.<ADN>`) only reads the record and is allowed for every method (see [`adn`]).
fn adn_not_replaced(
    method: &DcvMethod,
    adn: &str,
    asked: &str,
    found: &Lookup,
) -> Result<(), Problem> {
    let Some(rules) = adn::rules(method) else {
        return Ok(());
    };
    let start = found.chain.first().map(|record| record.name.to_ascii());
    if rules.cname || !adn::cname_replaced_adn(adn, asked, start.as_deref()) {
        return Ok(());
    }
    let target = found.final_name().to_ascii();
    Err(problem(
        ProblemKind::Unauthorized,
        format!(
            "{adn} is a CNAME to {target}: BR {} ({}) may not use a CNAME target as the \
         Authorization Domain Name (BR 3.2.2.4, SC-101v2); publish the record at {adn} itself",
            rules.section,
            method.as_str()
        ),
    ))
}

fn shown(values: &[Vec<u8>]) -> String {
    let shown: Vec<String> = values
        .iter()
        .take(5)
        .map(|v| format!("{:?}", String::from_utf8_lossy(v)))
        .collect();
    if shown.is_empty() {
        "none".into()
    } else {
        shown.join(", ")
    }
}

/// RFC 8555 §8.4 (dns-01) and BR 3.2.2.4.21 (dns-account-01): a TXT record at the challenge
/// name equal to base64url(SHA-256(key authorization)).
/// `name` is the challenge name of the method.
async fn acme<R: Resolver>(
    resolver: &R,
    identifier: &str,
    method: &DcvMethod,
    name: String,
    key_authorization: &str,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let expected = acme_dns01::expected_value(key_authorization);
    let found = lookup(resolver, &name, RecordType::TXT, deadline, evidence).await?;
    adn_not_replaced(
        method,
        dns_change::authorization_domain_name(identifier),
        &name,
        &found,
    )?;
    let values = txt_values(&found);
    match acme_dns01::matches(&values, &expected) {
        Some(_) => Ok(()),
        None => Err(problem(
            ProblemKind::Unauthorized,
            format!(
                "no TXT record at {name} equals {expected:?} ({} TXT record(s) seen: {})",
                values.len(),
                shown(&values)
            ),
        )),
    }
}

/// BR 3.2.2.4.7: the Random Value in a TXT, CNAME or CAA record at the ADN or `_prefix.ADN`.
async fn dns_change<R: Resolver>(
    resolver: &R,
    identifier: &str,
    change: &DnsChange,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let names = dns_change::lookup_names(identifier, change.prefix.as_deref())
        .map_err(|e| problem(ProblemKind::Malformed, e.to_string()))?;
    let request = DnsChangeRequest {
        expected: &change.expected,
        exact: change.exact_match,
        case_sensitive: !change.case_insensitive,
    };
    let types: Vec<RecordType> = match change.record_type {
        None => vec![RecordType::TXT, RecordType::CNAME, RecordType::CAA],
        Some(only) => vec![only.record_type()],
    };
    for name in &names {
        for &record_type in &types {
            let found = lookup(resolver, name, record_type, deadline, evidence).await?;
            adn_not_replaced(
                &DcvMethod::DnsChange,
                dns_change::authorization_domain_name(identifier),
                name,
                &found,
            )?;
            let matched = found.records.iter().any(|r| match &r.data {
                RData::CNAME(target) if record_type == RecordType::CNAME => {
                    dns_change::matches_cname(&target.0.to_ascii(), &request)
                }
                _ if record_type == RecordType::CAA => crate::dns::lenient::caa_parts(r)
                    .is_some_and(|(_, _, value)| dns_change::matches_caa(&value, &request)),
                _ => false,
            }) || (record_type == RecordType::TXT
                && txt_values(&found)
                    .iter()
                    .any(|value| dns_change::matches_txt(value, &request)));
            if matched {
                return Ok(());
            }
        }
    }
    let shown_types: Vec<String> = types.iter().map(ToString::to_string).collect();
    Err(problem(
        ProblemKind::Unauthorized,
        format!(
            "the expected value is in no {} record at {}",
            shown_types.join("/"),
            names.join(", ")
        ),
    ))
}

/// BR 3.2.2.4.22: a `_validation-persist` TXT record naming our issuer and the account.
async fn persist<R: Resolver>(
    resolver: &R,
    identifier: &str,
    persist: &DnsPersist,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let adn = dns_change::authorization_domain_name(identifier);
    let name = dns_persist::record_name(adn);
    let found = lookup(resolver, &name, RecordType::TXT, deadline, evidence).await?;
    adn_not_replaced(&DcvMethod::DnsPersist01, adn, &name, &found)?;
    let values = txt_values(&found);
    let issuers = [persist.issuer_domain.clone()];
    let request = PersistRequest {
        issuer_domains: &issuers,
        account_uri: &persist.account_uri,
        wildcard: persist.wildcard || identifier.starts_with("*."),
        is_subdomain: false,
        profile: PersistProfile::Br,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let decision = dns_persist::decide(&values, &request, now);
    if decision.passed() {
        Ok(())
    } else {
        Err(problem(
            ProblemKind::Unauthorized,
            format!("no usable record at {name}: {:?}", decision.records),
        ))
    }
}

/// BR 3.2.2.4.14 / .16: the contacts published in `_validation-contact*` TXT records; pass when
/// there is a valid one (and it is the expected one, when the primary names it).
async fn contact_txt<R: Resolver>(
    resolver: &R,
    identifier: &str,
    method: &DcvMethod,
    wanted: Wanted,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let kind = wanted.kind;
    let adn = dns_change::authorization_domain_name(identifier);
    let name = contacts::txt_record_name(kind, adn);
    let found = lookup(resolver, &name, RecordType::TXT, deadline, evidence).await?;
    adn_not_replaced(method, adn, &name, &found)?;
    let valid = contacts::contacts_from_txt(&txt_values(&found), kind);
    match wanted.contact {
        None if !valid.is_empty() => Ok(()),
        Some(wanted) if valid.contains(&wanted) => Ok(()),
        _ => Err(problem(
            ProblemKind::Unauthorized,
            format!(
                "{} valid contact(s) at {name}: {}",
                valid.len(),
                valid.join(", ")
            ),
        )),
    }
}

/// BR 3.2.2.4.13 / .17: the contacts in the relevant CAA RRset of the name (the RFC 8659 §3
/// climb, shared with the CAA check); a failed climb is a failure, never "no contacts".
async fn contact_caa<R: Resolver + Clone + 'static>(
    resolver: &R,
    identifier: &str,
    wanted: Wanted,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let kind = wanted.kind;
    let climb = match crate::checks::caa::lookup::climb(resolver, identifier, deadline).await {
        Ok(climb) => climb,
        Err(error) => {
            evidence.extend(error.evidence);
            return Err(error.problem);
        }
    };
    evidence.extend(climb.evidence);
    let records: Vec<(String, Vec<u8>)> = climb
        .records
        .into_iter()
        .map(|record| (record.tag, record.value))
        .collect();
    let valid = contacts::contacts_from_caa(&records, kind);
    let at = climb.found_at.map_or_else(
        || "no CAA RRset in the climb".to_owned(),
        |name| format!("CAA at {name}."),
    );
    match wanted.contact {
        None if !valid.is_empty() => Ok(()),
        Some(wanted) if valid.contains(&wanted) => Ok(()),
        _ => Err(problem(
            ProblemKind::Unauthorized,
            format!(
                "{} valid {} contact(s) ({at}): {}",
                valid.len(),
                kind.caa_tag(),
                valid.join(", ")
            ),
        )),
    }
}

fn address_malformed(error: AddressMethodError) -> Problem {
    problem(ProblemKind::Malformed, error.to_string())
}

/// BR 3.2.2.4.8 (retired: CAs MUST NOT rely on it from 2026-03-15; see [`ip_address`]): an A or
/// AAAA record of the FQDN is one of the expected addresses. The row of 3.2.2.4.8 has no CNAME
/// check (BR 3.2.2.4, SC-101v2), so an answer that came through a CNAME at the FQDN fails. `record_type`
/// `A` or `AAAA` (Open MPIC `dns_record_type`) looks in that type alone; absent, A then AAAA.
async fn ip_address<R: Resolver>(
    resolver: &R,
    identifier: &str,
    expected: &[IpAddr],
    record_type: Option<AddressRecordType>,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let name = ip_address::address_name(identifier).map_err(address_malformed)?;
    let types: Vec<RecordType> = match record_type {
        None => vec![RecordType::A, RecordType::AAAA],
        Some(only) => vec![only.record_type()],
    };
    let mut seen = Vec::new();
    for &record_type in &types {
        let found = lookup(resolver, name, record_type, deadline, evidence).await?;
        adn_not_replaced(&DcvMethod::IpAddress, name, name, &found)?;
        seen.extend(
            found
                .records
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                }),
        );
        if ip_address::matching_address(&seen, expected).is_some() {
            return Ok(());
        }
    }
    let shown_types: Vec<String> = types.iter().map(ToString::to_string).collect();
    Err(problem(
        ProblemKind::Unauthorized,
        format!(
            "no {} record of {name} is {}; addresses seen: {}",
            shown_types.join("/"),
            listed(expected),
            if seen.is_empty() {
                "none".into()
            } else {
                listed(&seen)
            }
        ),
    ))
}

fn listed(addresses: &[IpAddr]) -> String {
    let shown: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

/// BR 3.2.2.5.3 (CAs MUST NOT rely on it from 2027-03-15; see [`ip_address`]): a PTR record at
/// the reverse name of the IP identifier (RFC 8738 §6 form) names the expected FQDN. CNAMEs are
/// followed (RFC 2317 classless delegation).
async fn reverse_address<R: Resolver>(
    resolver: &R,
    identifier: &str,
    expected: &str,
    deadline: Instant,
    evidence: &mut Vec<DnsLookupEvidence>,
) -> Result<(), Problem> {
    let address = ip_address::address_identifier(identifier).map_err(address_malformed)?;
    let name = ip_address::reverse_name(address);
    let found = lookup(resolver, &name, RecordType::PTR, deadline, evidence).await?;
    let targets: Vec<String> = found
        .records
        .iter()
        .filter_map(|record| match &record.data {
            RData::PTR(ptr) => Some(ptr.0.to_ascii()),
            _ => None,
        })
        .collect();
    match ip_address::matching_ptr(&targets, expected) {
        Some(_) => Ok(()),
        None => Err(problem(
            ProblemKind::Unauthorized,
            format!(
                "no PTR record at {name} names {expected}; PTR names seen: {}",
                if targets.is_empty() {
                    "none".into()
                } else {
                    targets.join(", ")
                }
            ),
        )),
    }
}
