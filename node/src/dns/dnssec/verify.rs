//! Pure signature checks (RFC 4035 §5.2–5.3): an RRset against its RRSIGs and a zone's
//! keys, and a DNSKEY RRset against the DS records (or anchor) that vouch for it. The
//! cryptography is hickory-proto's (`Verifier::verify_rrsig`, `DS::covers`, backed by ring);
//! this module picks keys, checks validity windows and caps the work (KeyTrap,
//! CVE-2023-50387: a budget of signature checks per lookup).

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, PublicKey as _, Verifier as _};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How much validation work one lookup may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Signature verifications left.
    pub signatures: u32,
    /// NSEC3 hash computations left.
    pub hashes: u32,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            signatures: 64,
            hashes: 150,
        }
    }
}

/// The clock and the budget of one validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Now, in seconds since the epoch mod 2^32 (RRSIG validity windows).
    pub now: u32,
    /// What is left of the budget.
    pub budget: Budget,
}

/// Why an RRset or a key set did not verify. Each variant maps to an RFC 8914 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// No RRSIG from the zone covers the RRset.
    #[error("{owner} {record_type}: no RRSIG from zone {zone} (signatures stripped or missing)")]
    MissingSignature {
        /// Owner of the RRset.
        owner: Name,
        /// Type of the RRset.
        record_type: RecordType,
        /// The zone that should have signed it (boxed: keeps the error small).
        zone: Box<Name>,
    },
    /// Every RRSIG has expired.
    #[error(
        "{owner} {record_type}: RRSIG (key tag {key_tag}) expired at {expiration} (epoch seconds); the zone must be re-signed"
    )]
    Expired {
        /// Owner of the RRset.
        owner: Name,
        /// Type of the RRset.
        record_type: RecordType,
        /// The signing key's tag.
        key_tag: u16,
        /// Expiration, seconds since the epoch (mod 2^32).
        expiration: u32,
    },
    /// The RRSIG is not valid yet.
    #[error(
        "{owner} {record_type}: RRSIG (key tag {key_tag}) not valid before {inception} (epoch seconds); check the clocks"
    )]
    NotYetValid {
        /// Owner of the RRset.
        owner: Name,
        /// Type of the RRset.
        record_type: RecordType,
        /// The signing key's tag.
        key_tag: u16,
        /// Inception, seconds since the epoch (mod 2^32).
        inception: u32,
    },
    /// No zone key matches the RRSIGs' key tags and algorithms.
    #[error("{owner} {record_type}: no DNSKEY of {zone} matches key tag(s) {key_tags:?}")]
    NoMatchingKey {
        /// Owner of the RRset.
        owner: Name,
        /// Type of the RRset.
        record_type: RecordType,
        /// The zone (boxed: keeps the error small).
        zone: Box<Name>,
        /// Key tags named by the RRSIGs.
        key_tags: Vec<u16>,
    },
    /// A signature did not verify (data or signature altered).
    #[error(
        "{owner} {record_type}: signature by key tag {key_tag} does not verify (data altered?)"
    )]
    BadSignature {
        /// Owner of the RRset.
        owner: Name,
        /// Type of the RRset.
        record_type: RecordType,
        /// The key tried.
        key_tag: u16,
    },
    /// No DNSKEY of the zone matches the DS records (or anchor) that vouch for it.
    #[error(
        "zone {zone}: no DNSKEY matches the DS key tag(s) {ds_tags:?} in the parent (stale DS after a key change?)"
    )]
    DsMismatch {
        /// The zone.
        zone: Name,
        /// Key tags of the DS records.
        ds_tags: Vec<u16>,
    },
    /// The zone's DNSKEY RRset is empty.
    #[error("zone {zone}: no DNSKEY records")]
    MissingDnskey {
        /// The zone.
        zone: Name,
    },
    /// Only algorithms or digests this node does not implement (RFC 4035 §5.2: insecure).
    #[error("zone {zone}: only unsupported DNSSEC algorithms or digest types")]
    UnsupportedAlgorithm {
        /// The zone.
        zone: Name,
    },
    /// The per-lookup work budget ran out.
    #[error("DNSSEC work budget exhausted ({what}); the answer is not validated")]
    BudgetExhausted {
        /// Signatures or hashes.
        what: &'static str,
    },
}

impl Failure {
    /// The RFC 8914 extended DNS error code closest to this failure.
    pub fn ede(&self) -> u16 {
        match self {
            Failure::MissingSignature { .. } => 10,
            Failure::Expired { .. } => 7,
            Failure::NotYetValid { .. } => 8,
            Failure::NoMatchingKey { .. } | Failure::MissingDnskey { .. } => 9,
            Failure::UnsupportedAlgorithm { .. } => 1,
            Failure::DsMismatch { .. }
            | Failure::BadSignature { .. }
            | Failure::BudgetExhausted { .. } => 6,
        }
    }
}

/// The algorithms this node validates (hickory with ring).
pub fn supported(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::RSASHA256
            | Algorithm::RSASHA512
            | Algorithm::ECDSAP256SHA256
            | Algorithm::ECDSAP384SHA384
            | Algorithm::ED25519
    )
}

/// The RRSIG inside a record, if it is one.
pub fn as_rrsig(record: &Record) -> Option<&RRSIG> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig),
        _ => None,
    }
}

/// The DNSKEY inside a record, if it is one.
pub fn as_dnskey(record: &Record) -> Option<&DNSKEY> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DNSKEY(key)) => Some(key),
        _ => None,
    }
}

/// The DS inside a record, if it is one.
pub fn as_ds(record: &Record) -> Option<&DS> {
    match &record.data {
        RData::DNSSEC(DNSSECRData::DS(ds)) => Some(ds),
        _ => None,
    }
}

/// Whether `now` lies in [inception, expiration] by serial-number arithmetic (RFC 4034 §3.1.5).
fn window(sig: &RRSIG, now: u32) -> Result<(), (bool, u32)> {
    let input = sig.input();
    let inception = input.sig_inception.get();
    let expiration = input.sig_expiration.get();
    if (now.wrapping_sub(inception) as i32) < 0 {
        return Err((false, inception));
    }
    if (expiration.wrapping_sub(now) as i32) < 0 {
        return Err((true, expiration));
    }
    Ok(())
}

/// Why `sig` is not valid at `now` (expired, or not yet valid), if it is not.
fn outside_window(sig: &RRSIG, owner: &Name, record_type: RecordType, now: u32) -> Option<Failure> {
    let key_tag = sig.input().key_tag;
    let owner = owner.clone();
    match window(sig, now) {
        Ok(()) => None,
        Err((true, expiration)) => Some(Failure::Expired {
            owner,
            record_type,
            key_tag,
            expiration,
        }),
        Err((false, inception)) => Some(Failure::NotYetValid {
            owner,
            record_type,
            key_tag,
            inception,
        }),
    }
}

/// Verifies `records` (the RRset `owner`/`record_type`) with the RRSIGs in `rrsigs` made by
/// `zone` and one of `keys`. Returns the RRSIG's label count (less than the owner's when the
/// answer was synthesised from a wildcard, RFC 4035 §5.3.4).
pub fn verify_rrset(
    owner: &Name,
    record_type: RecordType,
    records: &[Record],
    rrsigs: &[Record],
    zone: &Name,
    keys: &[DNSKEY],
    work: &mut Work,
) -> Result<u8, Failure> {
    let now = work.now;
    let budget = &mut work.budget;
    let sigs: Vec<&RRSIG> = rrsigs
        .iter()
        .filter(|record| record.name.eq(owner))
        .filter_map(as_rrsig)
        .filter(|sig| sig.input().type_covered == record_type && sig.input().signer_name.eq(zone))
        .collect();
    if sigs.is_empty() || records.is_empty() {
        return Err(Failure::MissingSignature {
            owner: owner.clone(),
            record_type,
            zone: Box::new(zone.clone()),
        });
    }
    let mut failure = None;
    for sig in &sigs {
        let input = sig.input();
        if let Some(error) = outside_window(sig, owner, record_type, now) {
            failure.get_or_insert(error);
            continue;
        }
        if !supported(input.algorithm) {
            continue;
        }
        for key in keys {
            if key.public_key().algorithm() != input.algorithm
                || key.calculate_key_tag().ok() != Some(input.key_tag)
            {
                continue;
            }
            if budget.signatures == 0 {
                return Err(Failure::BudgetExhausted {
                    what: "signature checks",
                });
            }
            budget.signatures -= 1;
            match key.verify_rrsig(owner, DNSClass::IN, sig, records.iter()) {
                Ok(()) => return Ok(input.num_labels),
                Err(_) => {
                    failure = Some(Failure::BadSignature {
                        owner: owner.clone(),
                        record_type,
                        key_tag: input.key_tag,
                    });
                }
            }
        }
    }
    Err(failure.unwrap_or_else(|| Failure::NoMatchingKey {
        owner: owner.clone(),
        record_type,
        zone: Box::new(zone.clone()),
        key_tags: sigs.iter().map(|sig| sig.input().key_tag).collect(),
    }))
}

/// Validates the DNSKEY RRset of `zone` (RFC 4035 §5.2): some key matched by a `ds` record (or
/// equal to an anchor key in `anchor_keys`) must sign the RRset. Returns the zone keys (ZONE
/// flag, not revoked) usable for the zone's other RRsets.
pub fn verify_dnskeys(
    zone: &Name,
    dnskeys: &[Record],
    rrsigs: &[Record],
    ds: &[DS],
    anchor_keys: &[DNSKEY],
    work: &mut Work,
) -> Result<Vec<DNSKEY>, Failure> {
    let usable_ds: Vec<&DS> = ds
        .iter()
        .filter(|d| supported(d.algorithm()) && d.digest_type().is_supported())
        .collect();
    if anchor_keys.is_empty() && usable_ds.is_empty() {
        return Err(Failure::UnsupportedAlgorithm { zone: zone.clone() });
    }
    let keys: Vec<DNSKEY> = dnskeys
        .iter()
        .filter_map(as_dnskey)
        .filter(|key| key.zone_key() && !key.revoke())
        .cloned()
        .collect();
    if keys.is_empty() {
        return Err(Failure::MissingDnskey { zone: zone.clone() });
    }
    let entry: Vec<DNSKEY> = keys
        .iter()
        .filter(|key| {
            anchor_keys
                .iter()
                .any(|anchor| anchor.public_key() == key.public_key())
                || usable_ds
                    .iter()
                    .any(|d| d.covers(zone, key).unwrap_or(false))
        })
        .cloned()
        .collect();
    if entry.is_empty() {
        return Err(Failure::DsMismatch {
            zone: zone.clone(),
            ds_tags: ds.iter().map(DS::key_tag).collect(),
        });
    }
    verify_rrset(
        zone,
        RecordType::DNSKEY,
        dnskeys,
        rrsigs,
        zone,
        &entry,
        work,
    )?;
    Ok(keys)
}
