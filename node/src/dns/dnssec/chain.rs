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
use hickory_proto::rr::{Name, Record, RecordType};
use mpic_protocol::DnssecStatus;
use tokio::time::Instant;

use super::anchors::TrustAnchors;
use super::denial::{self, DenialError, DsAbsence};
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
    pub(super) fn secure() -> Self {
        Self {
            status: DnssecStatus::Secure,
            detail: None,
        }
    }

    pub(super) fn with(status: DnssecStatus, detail: String) -> Self {
        Self {
            status,
            detail: Some(detail),
        }
    }

    pub(super) fn bogus(failure: &Failure) -> Self {
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
    pub(super) work: Work,
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
    pub(super) fn verify_memoized(
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
            self.child_keys(name, &ds_records).await?
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

    /// The child zone's state from its verified DS RRset: its DNSKEY RRset must match one of
    /// the DS records; a DS set with only unsupported algorithms makes it insecure (RFC 4035
    /// §5.2), not proven insecure by a denial.
    async fn child_keys(
        &mut self,
        name: &Name,
        ds_records: &[Record],
    ) -> Result<ZoneState, Verdict> {
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
            Ok(child_keys) => Ok(ZoneState::Secure {
                zone: name.clone(),
                keys: Arc::new(child_keys),
            }),
            Err(Failure::UnsupportedAlgorithm { zone }) => Ok(ZoneState::Insecure {
                at: name.clone(),
                ds_denial: false,
                why: format!(
                    "zone {zone} uses only unsupported algorithms (RFC 4035 §5.2: insecure)"
                ),
            }),
            Err(failure) => Err(Verdict::bogus(&failure)),
        }
    }
}

/// Verifies every NSEC/NSEC3 RRset (and the SOA) in a denial with the zone's keys.
pub(super) fn verify_denial_records(
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
            zone: Box::new(zone.clone()),
        });
    }
    Ok(checked)
}

/// The zone that signed a step's data, with its validated keys.
pub(super) struct Signer {
    pub(super) zone: Name,
    pub(super) keys: Arc<Vec<DNSKEY>>,
}
