//! The chain walk that gives each answer a status (RFC 4035 §5): from the trust anchor down,
//! one DS question per label to the zone that signed the answer (answered by the *parent* side
//! of each zone cut, RFC 4035 §3.1.4.1: `iterate` sends DS questions to the servers of the
//! closest cut above the name; a recursive upstream does the same), validating DNSKEY RRsets
//! against DS, DS against the parent's keys, and the answer (or its denial) against the
//! signer's keys. A verified DS denial at a delegation makes everything below *insecure*;
//! anything else unproven keeps the parent's keys, so stripping records can only turn an
//! answer bogus, never insecure. Validated zone states are cached (bounded, by TTL).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use mpic_protocol::DnssecStatus;
use tokio::time::Instant;

use super::anchors::TrustAnchors;
use super::denial::{self, DenialError, Denied, DsAbsence};
use super::memo::{Key, Memo};
use super::verify::{self, Budget, Failure, Work};
use crate::dns::{Answer, DnsClient};

/// Most zone states kept (each holds a zone's keys).
const MAX_CACHED_ZONES: usize = 4096;
/// Longest a validated zone state is kept.
const MAX_ZONE_TTL: Duration = Duration::from_secs(3600);

/// A status with the reason, for the problem detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The status.
    pub status: DnssecStatus,
    /// Why, when not secure (the name or zone and what failed, with the RFC 8914 code).
    pub detail: Option<String>,
}

impl Verdict {
    fn secure() -> Self {
        Self {
            status: DnssecStatus::Secure,
            detail: None,
        }
    }

    fn with(status: DnssecStatus, detail: String) -> Self {
        Self {
            status,
            detail: Some(detail),
        }
    }

    fn bogus(failure: &Failure) -> Self {
        Self::with(
            DnssecStatus::Bogus,
            format!("{failure} (EDE {})", failure.ede()),
        )
    }

    /// The worse of two verdicts (bogus > indeterminate > insecure > secure).
    pub fn worst(self, other: Self) -> Self {
        if other.status.severity() > self.status.severity() {
            other
        } else {
            self
        }
    }
}

/// What the walk knows about the zone holding a name.
#[derive(Debug, Clone)]
pub(super) enum ZoneState {
    /// Signed, with validated keys.
    Secure { zone: Name, keys: Arc<Vec<DNSKEY>> },
    /// Provably unsigned below `at`; `ds_denial` when the proof is a validated denial of DS
    /// (RFC 4035 §4.3 "Insecure"), not a DS set with only unsupported algorithms (§5.2).
    Insecure {
        at: Name,
        why: String,
        ds_denial: bool,
    },
}

/// The validator: anchors plus the cache of zone states.
#[derive(Debug)]
pub struct Validator {
    anchors: TrustAnchors,
    zones: Mutex<HashMap<Name, (ZoneState, Instant)>>,
    memo: Memo,
}

impl Validator {
    /// A validator starting from `anchors`.
    pub fn new(anchors: TrustAnchors) -> Self {
        Self {
            anchors,
            zones: Mutex::new(HashMap::new()),
            memo: Memo::default(),
        }
    }

    fn cached(&self, name: &Name) -> Option<ZoneState> {
        let zones = self.zones.lock().ok()?;
        zones
            .get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(state, _)| state.clone())
    }

    fn remember(&self, name: &Name, state: &ZoneState, ttl: u32) {
        if let Ok(mut zones) = self.zones.lock() {
            if zones.len() >= MAX_CACHED_ZONES {
                zones.clear();
            }
            let ttl = Duration::from_secs(u64::from(ttl)).min(MAX_ZONE_TTL);
            zones.insert(name.clone(), (state.clone(), Instant::now() + ttl));
        }
    }
}

fn now() -> u32 {
    // Serial-number arithmetic works mod 2^32 (RFC 4034 §3.1.5).
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        & 0xffff_ffff) as u32
}

fn min_ttl(records: &[Record]) -> u32 {
    records.iter().map(|r| r.ttl).min().unwrap_or(0)
}

pub(super) struct Walk<'a> {
    client: &'a DnsClient,
    validator: &'a Validator,
    deadline: Instant,
    work: Work,
}

impl<'a> Walk<'a> {
    /// A walk for one lookup, bounded by `deadline` and a fresh verification budget.
    pub(super) fn new(client: &'a DnsClient, validator: &'a Validator, deadline: Instant) -> Self {
        Walk {
            client,
            validator,
            deadline,
            work: Work {
                now: now(),
                budget: Budget::default(),
            },
        }
    }

    async fn fetch(&self, name: &Name, record_type: RecordType) -> Result<Arc<Answer>, Verdict> {
        let mut queries = crate::dns::Budget {
            queries: 0,
            max_queries: self.client.inner.limits.max_queries,
        };
        match self
            .client
            .step(name, record_type, self.deadline, &mut queries)
            .await
        {
            Ok(step) => Ok(step.answer),
            Err(error) => Err(Verdict::with(
                DnssecStatus::Indeterminate,
                format!("could not fetch {name} {record_type} to validate: {error}"),
            )),
        }
    }

    /// [`verify::verify_rrset`] through the validator's memo: an RRset verified before with the
    /// same RRSIGs and keys, within its TTL and signature window, is not verified again.
    fn verify_memoized(
        &mut self,
        owner: &Name,
        record_type: RecordType,
        records: &[Record],
        rrsigs: &[Record],
        signer: &Signer,
    ) -> Result<u8, Failure> {
        let (zone, keys) = (&signer.zone, &signer.keys);
        let key = Key::new(
            owner,
            record_type,
            records,
            rrsigs,
            zone,
            keys,
            self.work.now,
        );
        if let Some(labels) = key.as_ref().and_then(|k| self.validator.memo.verified(k)) {
            return Ok(labels);
        }
        let labels = verify::verify_rrset(
            owner,
            record_type,
            records,
            rrsigs,
            zone,
            keys,
            &mut self.work,
        )?;
        if let Some(key) = key {
            self.validator.memo.remember(key, labels);
        }
        Ok(labels)
    }

    /// The state of the zone that holds `target`, walking down from the anchor.
    pub(super) async fn zone_of(&mut self, target: &Name) -> Result<ZoneState, Verdict> {
        let anchors = &self.validator.anchors;
        if !anchors.zone.zone_of(target) {
            return Err(Verdict::with(
                DnssecStatus::Indeterminate,
                format!("no trust anchor covers {target} (anchor: {})", anchors.zone),
            ));
        }
        // Start from the deepest cached ancestor, else from the anchor.
        let mut depth = target.num_labels();
        let mut state = loop {
            let name = target.trim_to(usize::from(depth));
            if name.num_labels() < anchors.zone.num_labels() {
                break None;
            }
            if let Some(state) = self.validator.cached(&name) {
                break Some((state, name.num_labels()));
            }
            if depth == 0 {
                break None;
            }
            depth -= 1;
        };
        if state.is_none() {
            let zone = anchors.zone.clone();
            let answer = self.fetch(&zone, RecordType::DNSKEY).await?;
            let keys = verify::verify_dnskeys(
                &zone,
                &answer.records,
                &answer.rrsigs,
                &anchors.ds,
                &anchors.keys,
                &mut self.work,
            )
            .map_err(|failure| Verdict::bogus(&failure))?;
            let ready = ZoneState::Secure {
                zone: zone.clone(),
                keys: Arc::new(keys),
            };
            self.validator
                .remember(&zone, &ready, min_ttl(&answer.records));
            state = Some((ready, zone.num_labels()));
        }
        let Some((mut state, mut at)) = state else {
            return Err(Verdict::with(
                DnssecStatus::Indeterminate,
                "no starting zone".into(),
            ));
        };
        while at < target.num_labels() {
            let ZoneState::Secure { zone, keys } = &state else {
                break;
            };
            at += 1;
            let name = target.trim_to(usize::from(at));
            let Some((next, ttl)) = self.descend(&name, &state, zone, keys).await? else {
                // An alias is not a zone cut; its target is validated as its own step.
                break;
            };
            self.validator.remember(&name, &next, ttl);
            state = next;
        }
        Ok(state)
    }

    /// One level down (RFC 4035 §5.2): the DS RRset of `name` from the parent `zone` (verified
    /// with its `keys`) and the child's DNSKEY RRset matched against it; or a validated denial
    /// of the DS (an insecure delegation, or no zone cut at all: the parent's `state` holds).
    /// `None` when `name` is an alias. Returns the state and how long it may be kept.
    async fn descend(
        &mut self,
        name: &Name,
        state: &ZoneState,
        zone: &Name,
        keys: &[DNSKEY],
    ) -> Result<Option<(ZoneState, u32)>, Verdict> {
        let answer = self.fetch(name, RecordType::DS).await?;
        let ds_records: Vec<Record> = answer
            .records
            .iter()
            .filter(|r| r.record_type() == RecordType::DS && r.name.eq(name))
            .cloned()
            .collect();
        let next = if !ds_records.is_empty() {
            verify::verify_rrset(
                name,
                RecordType::DS,
                &ds_records,
                &answer.rrsigs,
                zone,
                keys,
                &mut self.work,
            )
            .map_err(|failure| Verdict::bogus(&failure))?;
            let ds: Vec<_> = ds_records
                .iter()
                .filter_map(verify::as_ds)
                .cloned()
                .collect();
            let dnskeys = self.fetch(name, RecordType::DNSKEY).await?;
            match verify::verify_dnskeys(
                name,
                &dnskeys.records,
                &dnskeys.rrsigs,
                &ds,
                &[],
                &mut self.work,
            ) {
                Ok(child_keys) => ZoneState::Secure {
                    zone: name.clone(),
                    keys: Arc::new(child_keys),
                },
                Err(Failure::UnsupportedAlgorithm { zone }) => ZoneState::Insecure {
                    at: name.clone(),
                    ds_denial: false,
                    why: format!(
                        "zone {zone} uses only unsupported algorithms (RFC 4035 §5.2: insecure)"
                    ),
                },
                Err(failure) => return Err(Verdict::bogus(&failure)),
            }
        } else if answer
            .records
            .iter()
            .any(|r| r.record_type() == RecordType::CNAME)
        {
            return Ok(None);
        } else if verify_denial_records(&answer.authority, zone, keys, &mut self.work).is_ok() {
            match denial::ds_absence(name, zone, &answer.authority, &mut self.work.budget) {
                Ok(DsAbsence::InsecureDelegation) => ZoneState::Insecure {
                    at: name.clone(),
                    ds_denial: true,
                    why: format!(
                        "{name} is a delegation from {zone} without DS (validated denial)"
                    ),
                },
                Ok(DsAbsence::NotADelegation) | Err(DenialError::NoProof { .. }) => state.clone(),
                Err(error) => {
                    return Err(Verdict::with(
                        DnssecStatus::Indeterminate,
                        error.to_string(),
                    ));
                }
            }
        } else {
            state.clone()
        };
        let ttl = min_ttl(&answer.records).max(min_ttl(&answer.authority));
        Ok(Some((next, ttl)))
    }
}

/// Verifies every NSEC/NSEC3 RRset (and the SOA) in a denial with the zone's keys.
fn verify_denial_records(
    authority: &[Record],
    zone: &Name,
    keys: &[DNSKEY],
    work: &mut Work,
) -> Result<usize, Failure> {
    let mut checked = 0;
    for record in authority {
        let kind = record.record_type();
        if !matches!(kind, RecordType::NSEC | RecordType::NSEC3) {
            continue;
        }
        verify::verify_rrset(
            &record.name,
            kind,
            std::slice::from_ref(record),
            authority,
            zone,
            keys,
            work,
        )?;
        checked += 1;
    }
    if checked == 0 {
        return Err(Failure::MissingSignature {
            owner: zone.clone(),
            record_type: RecordType::NSEC,
            zone: zone.clone(),
        });
    }
    Ok(checked)
}

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

/// The zone that signed a step's data, with its validated keys.
struct Signer {
    zone: Name,
    keys: Arc<Vec<DNSKEY>>,
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
