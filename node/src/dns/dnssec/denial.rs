//! Pure authenticated-denial checks (RFC 4035 §5.4 for NSEC, RFC 5155 §8 for NSEC3, RFC 6840
//! §4 for the CNAME and delegation pitfalls). Inputs are NSEC/NSEC3 records whose signatures
//! the caller has already verified. NSEC3 hashing is hickory's and counts against the budget.

use data_encoding::BASE32_DNSSEC;
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC, NSEC3};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::verify::Budget;

/// The most NSEC3 iterations this node hashes (RFC 9276 §3.2 lets validators treat more as
/// insecure; 150 is what Unbound and BIND accept).
pub const MAX_NSEC3_ITERATIONS: u16 = 150;

/// What a proof established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The name or type provably does not exist.
    Proven,
    /// Covered by an opt-out NSEC3 span: there may be an unsigned delegation (insecure).
    OptOut,
}

/// How a DS-absence proof at a name reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsAbsence {
    /// A delegation without DS: everything below is insecure.
    InsecureDelegation,
    /// Not a delegation (an ordinary or empty name in the same zone, or no name at all).
    NotADelegation,
}

/// Why a denial did not prove what it had to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenialError {
    /// No record proves the claim.
    #[error("{name}: the NSEC/NSEC3 records do not prove {what}")]
    NoProof {
        /// The name.
        name: Name,
        /// What was to be proven.
        what: &'static str,
    },
    /// The NSEC3 iteration count is above [`MAX_NSEC3_ITERATIONS`] (RFC 9276).
    #[error(
        "NSEC3 with {iterations} iterations (more than {MAX_NSEC3_ITERATIONS}) is not evaluated"
    )]
    TooManyIterations {
        /// The count seen.
        iterations: u16,
    },
    /// The hashing budget ran out.
    #[error("NSEC3 hashing budget exhausted")]
    BudgetExhausted,
}

fn nsecs(records: &[Record]) -> Vec<(&Name, &NSEC)> {
    records
        .iter()
        .filter_map(|record| match &record.data {
            RData::DNSSEC(DNSSECRData::NSEC(nsec)) => Some((&record.name, nsec)),
            _ => None,
        })
        .collect()
}

/// `owner < name < next` in canonical order, with the last NSEC wrapping to the apex.
fn nsec_covers(owner: &Name, next: &Name, name: &Name) -> bool {
    if owner < next {
        owner < name && name < next
    } else {
        owner < name || name < next
    }
}

fn no_proof(name: &Name, what: &'static str) -> DenialError {
    DenialError::NoProof {
        name: name.clone(),
        what,
    }
}

/// The closest encloser of `name` that an NSEC proof implies: the longest ancestor shared
/// with the covering record's owner or next name.
fn common_ancestor(a: &Name, b: &Name) -> Name {
    let mut candidate = a.clone();
    while !candidate.zone_of(b) && !candidate.is_root() {
        candidate = candidate.base_name();
    }
    candidate
}

fn wildcard_of(encloser: &Name) -> Option<Name> {
    Name::from_ascii("*").ok()?.append_domain(encloser).ok()
}

/// NXDOMAIN by NSEC (RFC 4035 §5.4): an NSEC covers the name, and one covers (or matches
/// without the type...) the wildcard at the closest encloser.
pub fn nsec_nxdomain(name: &Name, records: &[Record]) -> Result<Denied, DenialError> {
    let all = nsecs(records);
    let cover = all
        .iter()
        .find(|(owner, nsec)| nsec_covers(owner, nsec.next_domain_name(), name))
        .ok_or_else(|| no_proof(name, "that the name does not exist"))?;
    let encloser = implied_encloser(name, cover.0, cover.1);
    let wildcard =
        wildcard_of(&encloser).ok_or_else(|| no_proof(name, "the wildcard's absence"))?;
    if all
        .iter()
        .any(|(owner, nsec)| nsec_covers(owner, nsec.next_domain_name(), &wildcard))
    {
        Ok(Denied::Proven)
    } else {
        Err(no_proof(name, "that no wildcard could have answered"))
    }
}

/// NODATA by NSEC: an NSEC at the name without the type and without CNAME (RFC 6840 §4.3); a
/// parent-side NSEC at a delegation (NS without SOA) proves nothing but the DS (§4.1).
pub fn nsec_nodata(
    name: &Name,
    record_type: RecordType,
    records: &[Record],
) -> Result<Denied, DenialError> {
    let all = nsecs(records);
    let Some((_, nsec)) = all.iter().find(|(owner, _)| *owner == name) else {
        // An empty non-terminal: an NSEC covering the name whose next name is below it.
        if all.iter().any(|(owner, nsec)| {
            nsec_covers(owner, nsec.next_domain_name(), name)
                && name.zone_of(nsec.next_domain_name())
        }) {
            return Ok(Denied::Proven);
        }
        return nsec_wildcard_nodata(name, record_type, &all);
    };
    let types = nsec.type_set();
    if types.contains(record_type) || types.contains(RecordType::CNAME) {
        return Err(no_proof(
            name,
            "that the type does not exist (the NSEC lists it, or a CNAME)",
        ));
    }
    let parent_side = types.contains(RecordType::NS) && !types.contains(RecordType::SOA);
    if parent_side && record_type != RecordType::DS {
        return Err(no_proof(
            name,
            "anything below a delegation (parent-side NSEC)",
        ));
    }
    Ok(Denied::Proven)
}

/// The closest encloser an NSEC covering `name` implies: the longer of the ancestors `name`
/// shares with the record's owner and with its next name (RFC 4035 §5.4, RFC 7129 §5.3).
fn implied_encloser(name: &Name, owner: &Name, nsec: &NSEC) -> Name {
    let by_owner = common_ancestor(name, owner);
    let by_next = common_ancestor(name, nsec.next_domain_name());
    if by_owner.num_labels() >= by_next.num_labels() {
        by_owner
    } else {
        by_next
    }
}

/// Wildcard NODATA by NSEC (RFC 4035 §3.1.3.4, RFC 7129 §5.4): an NSEC covers `name`, and the
/// NSEC at the wildcard of the closest encloser lists neither the type nor CNAME.
fn nsec_wildcard_nodata(
    name: &Name,
    record_type: RecordType,
    all: &[(&Name, &NSEC)],
) -> Result<Denied, DenialError> {
    let (owner, cover) = all
        .iter()
        .find(|(owner, nsec)| nsec_covers(owner, nsec.next_domain_name(), name))
        .ok_or_else(|| no_proof(name, "that the type does not exist"))?;
    let wildcard = wildcard_of(&implied_encloser(name, owner, cover))
        .ok_or_else(|| no_proof(name, "the wildcard's types"))?;
    let (_, at_wildcard) = all
        .iter()
        .find(|(owner, _)| **owner == wildcard)
        .ok_or_else(|| no_proof(name, "that the type does not exist"))?;
    let types = at_wildcard.type_set();
    if types.contains(record_type) || types.contains(RecordType::CNAME) {
        return Err(no_proof(
            name,
            "that the type does not exist (the wildcard's NSEC lists it, or a CNAME)",
        ));
    }
    Ok(Denied::Proven)
}

/// A positive answer expanded from a wildcard, by NSEC (RFC 4035 §5.3.4): `labels` is the
/// RRSIG's label count, so the wildcard is `*.` plus the last `labels` labels of `name`. An NSEC
/// must cover `name` (it does not exist) and imply no closest encloser deeper than the
/// wildcard's parent (no closer match could have answered).
pub fn nsec_wildcard_answer(
    name: &Name,
    labels: u8,
    records: &[Record],
) -> Result<Denied, DenialError> {
    let all = nsecs(records);
    let proven = all.iter().any(|(owner, nsec)| {
        nsec_covers(owner, nsec.next_domain_name(), name)
            && implied_encloser(name, owner, nsec).num_labels() <= labels
    });
    if proven {
        Ok(Denied::Proven)
    } else {
        Err(no_proof(
            name,
            "that no closer name than the wildcard exists",
        ))
    }
}

/// A positive answer expanded from a wildcard, by NSEC3 (RFC 5155 §8.8): an NSEC3 covers the
/// next closer name (`name` cut to `labels` + 1 labels). When that record is an opt-out span
/// the next closer name may be an unsigned delegation the span does not list, so the answer is
/// only insecure (RFC 5155 §9.2; Unbound reads it the same way).
pub fn nsec3_wildcard_answer(
    name: &Name,
    labels: u8,
    records: &[Record],
    budget: &mut Budget,
) -> Result<Denied, DenialError> {
    let all = nsec3s(records)?;
    let sample = all
        .first()
        .map(|h| h.nsec3)
        .ok_or_else(|| no_proof(name, "anything (no NSEC3)"))?;
    if labels >= name.num_labels() {
        return Err(no_proof(name, "a wildcard expansion"));
    }
    let next_closer = name.trim_to(usize::from(labels) + 1);
    match covering(&all, &hash(&next_closer, sample, budget)?) {
        Some(cover) if cover.opt_out() => Ok(Denied::OptOut),
        Some(_) => Ok(Denied::Proven),
        None => Err(no_proof(name, "that the next closer name does not exist")),
    }
}

struct Hashed<'a> {
    owner: Vec<u8>,
    nsec3: &'a NSEC3,
}

fn nsec3s(records: &[Record]) -> Result<Vec<Hashed<'_>>, DenialError> {
    let mut out = Vec::new();
    for record in records {
        let RData::DNSSEC(DNSSECRData::NSEC3(nsec3)) = &record.data else {
            continue;
        };
        if nsec3.iterations() > MAX_NSEC3_ITERATIONS {
            return Err(DenialError::TooManyIterations {
                iterations: nsec3.iterations(),
            });
        }
        let Some(label) = record.name.iter().next() else {
            continue;
        };
        let Ok(owner) = BASE32_DNSSEC.decode(&label.to_ascii_lowercase()) else {
            continue;
        };
        out.push(Hashed { owner, nsec3 });
    }
    Ok(out)
}

fn hash(name: &Name, sample: &NSEC3, budget: &mut Budget) -> Result<Vec<u8>, DenialError> {
    if budget.hashes == 0 {
        return Err(DenialError::BudgetExhausted);
    }
    budget.hashes -= 1;
    Nsec3HashAlgorithm::SHA1
        .hash(sample.salt(), name, sample.iterations())
        .map(|digest| digest.as_ref().to_vec())
        .map_err(|_| no_proof(name, "a hashable name"))
}

fn matching<'a>(all: &'a [Hashed<'a>], hashed: &[u8]) -> Option<&'a NSEC3> {
    all.iter().find(|h| h.owner == hashed).map(|h| h.nsec3)
}

fn covering<'a>(all: &'a [Hashed<'a>], hashed: &[u8]) -> Option<&'a NSEC3> {
    all.iter()
        .find(|h| {
            let next = h.nsec3.next_hashed_owner_name();
            let owner = h.owner.as_slice();
            if owner < next {
                owner < hashed && hashed < next
            } else {
                owner < hashed || hashed < next
            }
        })
        .map(|h| h.nsec3)
}

/// RFC 5155 §8.3: the closest provable encloser of `name` within `zone`, and the next closer
/// name's covering record.
fn closest_encloser<'a>(
    name: &Name,
    zone: &Name,
    all: &'a [Hashed<'a>],
    budget: &mut Budget,
) -> Result<(Name, &'a NSEC3), DenialError> {
    let sample = all
        .first()
        .map(|h| h.nsec3)
        .ok_or_else(|| no_proof(name, "anything (no NSEC3)"))?;
    let mut next_closer = name.clone();
    while next_closer.num_labels() > zone.num_labels() {
        let encloser = next_closer.base_name();
        if matching(all, &hash(&encloser, sample, budget)?).is_some() {
            let cover = covering(all, &hash(&next_closer, sample, budget)?)
                .ok_or_else(|| no_proof(name, "the next closer name's absence"))?;
            return Ok((encloser, cover));
        }
        next_closer = encloser;
    }
    Err(no_proof(name, "a closest encloser"))
}

/// NXDOMAIN by NSEC3 (RFC 5155 §8.4): closest encloser, next closer covered, wildcard covered.
pub fn nsec3_nxdomain(
    name: &Name,
    zone: &Name,
    records: &[Record],
    budget: &mut Budget,
) -> Result<Denied, DenialError> {
    let all = nsec3s(records)?;
    let (encloser, cover) = closest_encloser(name, zone, &all, budget)?;
    let sample = cover;
    let wildcard =
        wildcard_of(&encloser).ok_or_else(|| no_proof(name, "the wildcard's absence"))?;
    if covering(&all, &hash(&wildcard, sample, budget)?).is_none() {
        return Err(no_proof(name, "that no wildcard could have answered"));
    }
    Ok(if cover.opt_out() {
        Denied::OptOut
    } else {
        Denied::Proven
    })
}

/// NODATA by NSEC3 (RFC 5155 §8.5, §8.6 for DS): a matching NSEC3 without the type and
/// without CNAME; for DS, an opt-out span covering the next closer name also serves.
pub fn nsec3_nodata(
    name: &Name,
    record_type: RecordType,
    zone: &Name,
    records: &[Record],
    budget: &mut Budget,
) -> Result<Denied, DenialError> {
    let all = nsec3s(records)?;
    let sample = all
        .first()
        .map(|h| h.nsec3)
        .ok_or_else(|| no_proof(name, "anything (no NSEC3)"))?;
    if let Some(nsec3) = matching(&all, &hash(name, sample, budget)?) {
        let types = nsec3.type_set();
        if types.contains(record_type) || types.contains(RecordType::CNAME) {
            return Err(no_proof(
                name,
                "that the type does not exist (the NSEC3 lists it, or a CNAME)",
            ));
        }
        if types.contains(RecordType::NS)
            && !types.contains(RecordType::SOA)
            && record_type != RecordType::DS
        {
            return Err(no_proof(
                name,
                "anything below a delegation (parent-side NSEC3)",
            ));
        }
        return Ok(Denied::Proven);
    }
    let (encloser, cover) = closest_encloser(name, zone, &all, budget)?;
    if record_type == RecordType::DS && cover.opt_out() {
        return Ok(Denied::OptOut);
    }
    // Wildcard NODATA (RFC 5155 §8.7): the closest encloser proof above, and an NSEC3 matching
    // the wildcard at the closest encloser without the type or CNAME.
    let wildcard = wildcard_of(&encloser).ok_or_else(|| no_proof(name, "the wildcard's types"))?;
    if let Some(nsec3) = matching(&all, &hash(&wildcard, sample, budget)?) {
        let types = nsec3.type_set();
        if !types.contains(record_type) && !types.contains(RecordType::CNAME) {
            return Ok(Denied::Proven);
        }
    }
    Err(no_proof(name, "that the type does not exist"))
}

/// Reads a verified DS NODATA (or NXDOMAIN) at `name` in `zone`: a delegation without DS (NS
/// bit set, DS and SOA bits clear, or an opt-out span), or not a delegation at all.
pub fn ds_absence(
    name: &Name,
    zone: &Name,
    records: &[Record],
    budget: &mut Budget,
) -> Result<DsAbsence, DenialError> {
    if let Some((_, nsec)) = nsecs(records).into_iter().find(|(owner, _)| *owner == name) {
        let types = nsec.type_set();
        if types.contains(RecordType::DS) {
            return Err(no_proof(name, "the DS's absence (the NSEC lists DS)"));
        }
        return Ok(
            if types.contains(RecordType::NS) && !types.contains(RecordType::SOA) {
                DsAbsence::InsecureDelegation
            } else {
                DsAbsence::NotADelegation
            },
        );
    }
    let all = nsec3s(records)?;
    if let Some(sample) = all.first().map(|h| h.nsec3) {
        if let Some(nsec3) = matching(&all, &hash(name, sample, budget)?) {
            let types = nsec3.type_set();
            if types.contains(RecordType::DS) {
                return Err(no_proof(name, "the DS's absence (the NSEC3 lists DS)"));
            }
            return Ok(
                if types.contains(RecordType::NS) && !types.contains(RecordType::SOA) {
                    DsAbsence::InsecureDelegation
                } else {
                    DsAbsence::NotADelegation
                },
            );
        }
        if nsec3_nodata(name, RecordType::DS, zone, records, budget)? == Denied::OptOut {
            return Ok(DsAbsence::InsecureDelegation);
        }
    }
    Ok(DsAbsence::NotADelegation)
}

#[cfg(test)]
mod tests;
