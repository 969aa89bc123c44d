//! The status of each answer of a lookup (RFC 4035 §5.3-5.4): find the zone that signed it,
//! take that zone's state from the chain walk (`chain`), then verify the RRset, the wildcard
//! proof or the denial with the zone's keys. A lookup's status is the worst of its steps.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use mpic_protocol::DnssecStatus;
use tokio::time::Instant;

use super::chain::{Signer, Validator, Verdict, Walk, ZoneState, verify_denial_records};
use super::denial::{self, DenialError, Denied};
use super::verify;
use crate::dns::{Answer, DnsClient};

/// The signer named by the RRSIGs in `records` covering one of `types` (an ancestor of `name`).
fn signer(records: &[Record], name: &Name, types: &[RecordType]) -> Option<Name> {
    records
        .iter()
        .filter_map(verify::as_rrsig)
        .filter(|sig| types.contains(&sig.input().type_covered))
        .map(|sig| sig.input().signer_name.clone())
        .find(|signer| signer.zone_of(name))
}

/// The status of one step of a lookup: the answer at `name` for `record_type`.
async fn step_status(
    walk: &mut Walk<'_>,
    name: &Name,
    record_type: RecordType,
    answer: &Answer,
) -> Verdict {
    let positive = !answer.records.is_empty();
    let (covered, signed_by) = if positive {
        let kind = if answer
            .records
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME)
            && record_type != RecordType::CNAME
        {
            RecordType::CNAME
        } else {
            record_type
        };
        (kind, signer(&answer.rrsigs, name, &[kind]))
    } else {
        (
            record_type,
            signer(
                &answer.authority,
                name,
                &[RecordType::SOA, RecordType::NSEC, RecordType::NSEC3],
            ),
        )
    };
    let target = signed_by.clone().unwrap_or_else(|| name.clone());
    let signer = match walk.zone_of(&target).await {
        Ok(ZoneState::Secure { zone, keys }) => Signer { zone, keys },
        Ok(ZoneState::Insecure { at, why, .. }) => {
            return Verdict::with(
                DnssecStatus::Insecure,
                format!("insecure below {at}: {why}"),
            );
        }
        Err(verdict) => return verdict,
    };
    if positive {
        positive_status(walk, name, covered, answer, &signer)
    } else {
        negative_status(walk, name, record_type, answer, &signer)
    }
}

/// A positive answer: the RRset verifies with the signer's keys; a wildcard expansion also
/// needs its proof.
fn positive_status(
    walk: &mut Walk<'_>,
    name: &Name,
    covered: RecordType,
    answer: &Answer,
    signer: &Signer,
) -> Verdict {
    let records: Vec<Record> = answer
        .records
        .iter()
        .filter(|r| r.record_type() == covered && r.name.eq(name))
        .cloned()
        .collect();
    match walk.verify_memoized(name, covered, &records, &answer.rrsigs, signer) {
        Ok(labels) if labels < name.num_labels() => {
            wildcard_status(walk, name, covered, labels, answer, signer)
        }
        Ok(_) => Verdict::secure(),
        Err(failure) => Verdict::bogus(&failure),
    }
}

/// An answer synthesised from a wildcard (RFC 4035 §5.3.4: the RRSIG's label count is below the
/// owner's): signed NSEC/NSEC3 must prove that no closer name exists (RFC 4035 §3.1.3.3, RFC
/// 5155 §8.8); an NSEC3 opt-out span over the next closer name makes it insecure (§9.2).
fn wildcard_status(
    walk: &mut Walk<'_>,
    name: &Name,
    covered: RecordType,
    labels: u8,
    answer: &Answer,
    signer: &Signer,
) -> Verdict {
    let zone = &signer.zone;
    let proof = match verify_denial_records(&answer.authority, zone, &signer.keys, &mut walk.work) {
        Ok(_) => denial::nsec_wildcard_answer(name, labels, &answer.authority).or_else(|_| {
            denial::nsec3_wildcard_answer(name, labels, &answer.authority, &mut walk.work.budget)
        }),
        Err(_) => Err(DenialError::NoProof {
            name: name.clone(),
            what: "a signed wildcard proof",
        }),
    };
    match proof {
        Ok(Denied::Proven) => Verdict::secure(),
        Ok(Denied::OptOut) => Verdict::with(
            DnssecStatus::Insecure,
            format!(
                "{name}: wildcard answer whose next closer name is in an NSEC3 opt-out span of {zone}"
            ),
        ),
        Err(error @ (DenialError::TooManyIterations { .. } | DenialError::BudgetExhausted)) => {
            Verdict::with(
                DnssecStatus::Indeterminate,
                format!("{name}: {error} (EDE 27)"),
            )
        }
        Err(error) => Verdict::with(
            DnssecStatus::Bogus,
            format!(
                "{name} {covered}: wildcard answer without proof that no closer name exists: {error} (EDE 12)"
            ),
        ),
    }
}

/// NXDOMAIN or NODATA: the NSEC/NSEC3 records verify with the signer's keys and prove the
/// denial (RFC 4035 §5.4, RFC 5155 §8.4-8.7, wildcard NODATA included).
fn negative_status(
    walk: &mut Walk<'_>,
    name: &Name,
    record_type: RecordType,
    answer: &Answer,
    signer: &Signer,
) -> Verdict {
    let zone = &signer.zone;
    if let Err(failure) =
        verify_denial_records(&answer.authority, zone, &signer.keys, &mut walk.work)
    {
        return Verdict::with(
            DnssecStatus::Bogus,
            format!(
                "{name} {record_type}: denial not validated in zone {zone}: {failure} (EDE {})",
                failure.ede()
            ),
        );
    }
    let uses_nsec3 = answer
        .authority
        .iter()
        .any(|r| r.record_type() == RecordType::NSEC3);
    let budget = &mut walk.work.budget;
    let proof = match (answer.rcode == ResponseCode::NXDomain, uses_nsec3) {
        (true, false) => denial::nsec_nxdomain(name, &answer.authority),
        (true, true) => denial::nsec3_nxdomain(name, zone, &answer.authority, budget),
        (false, false) => denial::nsec_nodata(name, record_type, &answer.authority),
        (false, true) => denial::nsec3_nodata(name, record_type, zone, &answer.authority, budget),
    };
    match proof {
        Ok(Denied::Proven) => Verdict::secure(),
        Ok(Denied::OptOut) => Verdict::with(
            DnssecStatus::Insecure,
            format!("{name}: covered by an NSEC3 opt-out span in {zone}"),
        ),
        Err(error @ (DenialError::TooManyIterations { .. } | DenialError::BudgetExhausted)) => {
            Verdict::with(
                DnssecStatus::Indeterminate,
                format!("{name}: {error} (EDE 27)"),
            )
        }
        Err(error) => Verdict::with(
            DnssecStatus::Bogus,
            format!("{error} in zone {zone} (EDE 12)"),
        ),
    }
}

/// The status of a whole lookup: the worst of its steps (a CNAME chain crossing from a signed
/// into an unsigned zone is insecure).
pub(crate) async fn lookup_status(
    client: &DnsClient,
    validator: &Validator,
    steps: &[(Name, RecordType, Arc<Answer>)],
    deadline: Instant,
) -> Verdict {
    let mut walk = Walk::new(client, validator, deadline);
    let mut verdict = Verdict::secure();
    for (name, record_type, answer) in steps {
        verdict = verdict.worst(step_status(&mut walk, name, *record_type, answer).await);
    }
    verdict
}
