//! The fixture server's authoritative data: zones parsed once into maps, and the RFC 1034
//! §4.3.2 lookup over them (referrals, CNAME chains, wildcards, NODATA and NXDOMAIN).
//!
//! Everything here is pure: it turns a (name, type) question into the sections of an answer
//! and never touches a socket, so the server loop can call it inline for every query.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use anyhow::{Context as _, bail};
use hickory_proto::dnssec::Nsec3HashAlgorithm;
use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::Parser;

use super::ZoneText;

/// How many CNAME links one answer follows before it stops (BIND's limit is 16 too). A loop
/// stops earlier, at the first name seen twice.
const MAX_CNAME_LINKS: usize = 16;

/// Every zone the server serves, keyed by origin.
#[derive(Debug)]
pub(super) struct Catalog {
    /// Zones by origin. `Name` hashes and compares case-insensitively.
    zones: HashMap<Name, Zone>,
    /// Every A and AAAA record of every zone by owner name, for referral glue.
    addresses: HashMap<Name, Vec<Record>>,
}

/// One zone: its apex SOA and every node below the apex.
#[derive(Debug)]
struct Zone {
    /// The zone's SOA record, for the authority section of negative answers.
    soa: Record,
    /// Number of labels in the origin.
    origin_labels: u8,
    /// Every owner name in the zone, plus every empty non-terminal between an owner name and
    /// the apex (so that a name with descendants but no records is NODATA, not NXDOMAIN).
    nodes: HashMap<Name, Node>,
    /// Whether any node is a delegation point, so zones without one skip the cut search.
    has_delegations: bool,
    /// The zone's origin.
    origin: Name,
    /// NSEC records with their RRSIGs, in canonical order of owner (RFC 4034 §6.1).
    nsec: Vec<(Name, Vec<Record>)>,
    /// NSEC3 records with their RRSIGs, by lowercase hashed owner label.
    nsec3: Vec<(String, Vec<Record>)>,
    /// Salt and iterations from the apex NSEC3PARAM.
    nsec3_param: Option<(Vec<u8>, u16)>,
}

/// The RRsets at one name.
#[derive(Debug, Default)]
struct Node {
    /// RRsets by type; a handful per name, so a vector beats a map.
    rrsets: Vec<(RecordType, Vec<Record>)>,
    /// Whether this name is a zone cut: it owns NS records and is not the apex.
    delegation: bool,
}

impl Node {
    /// The RRSIGs at this node that cover `covered`.
    fn signatures(&self, covered: RecordType) -> impl Iterator<Item = Record> + '_ {
        self.rrset(RecordType::RRSIG)
            .unwrap_or_default()
            .iter()
            .filter(move |record| match &record.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => sig.input().type_covered == covered,
                _ => false,
            })
            .cloned()
    }

    fn rrset(&self, record_type: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == record_type)
            .map(|(_, records)| records.as_slice())
    }
}

/// The sections of an answer, before the header copy and EDNS that the responder adds.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// RCODE of the answer.
    pub(super) rcode: ResponseCode,
    /// The AA bit: set when the server answers from a zone it is authoritative for.
    pub(super) authoritative: bool,
    /// The answer section.
    pub(super) answers: Vec<Record>,
    /// The authority section (SOA for negative answers, NS for referrals).
    pub(super) authorities: Vec<Record>,
    /// The additional section (glue for referrals).
    pub(super) additionals: Vec<Record>,
}

/// What one zone says about one name, before CNAME chasing.
enum Resolution<'z> {
    /// The name is at or below a zone cut: the NS RRset of the topmost cut.
    Referral(&'z [Record]),
    /// Records of the asked type (owner names still as in the zone, or the wildcard's).
    Records(Vec<Record>),
    /// A CNAME at the name (and the asked type is not CNAME): the record, its target, and the
    /// RRSIGs over it.
    Alias(&'z Record, Name, Vec<Record>),
    /// The name exists but has no records of the asked type.
    NoData,
    /// The name does not exist and no wildcard covers it.
    NxDomain,
}

impl Catalog {
    /// Parses every zone. Fails on a zone-file syntax error, a zone without SOA, a record
    /// outside its zone's origin, or two zones with the same origin.
    pub(super) fn load(zones: &[ZoneText<'_>]) -> anyhow::Result<Self> {
        let mut catalog = Self {
            zones: HashMap::with_capacity(zones.len()),
            addresses: HashMap::new(),
        };
        for zone in zones {
            let mut origin = Name::from_ascii(zone.origin)
                .with_context(|| format!("zone origin {:?} is not a domain name", zone.origin))?;
            origin.set_fqdn(true);
            // DNSSEC types hickory's parser refuses are parsed by `dnssec_rr`.
            let (plain, signed) = super::dnssec_rr::split(zone.text)
                .with_context(|| format!("zone {}: DNSSEC records do not parse", zone.origin))?;
            let (origin, rrsets) = Parser::new(&plain, None, Some(origin))
                .parse()
                .with_context(|| format!("zone {}: zone file does not parse", zone.origin))?;
            let mut records = signed;
            for (_, rrset) in rrsets {
                records.extend(rrset.into_parts().records);
            }
            for record in &records {
                if matches!(record.record_type(), RecordType::A | RecordType::AAAA) {
                    catalog
                        .addresses
                        .entry(fqdn(&record.name))
                        .or_default()
                        .push(record.clone());
                }
            }
            let parsed =
                Zone::build(&origin, records).with_context(|| format!("zone {}", zone.origin))?;
            match catalog.zones.entry(origin) {
                Entry::Occupied(_) => bail!("zone {}: served twice", zone.origin),
                Entry::Vacant(slot) => {
                    slot.insert(parsed);
                }
            }
        }
        Ok(catalog)
    }

    /// Answers one question (RFC 1034 §4.3.2): the closest zone, then a referral, an answer
    /// (following CNAMEs through every zone served here), NODATA or NXDOMAIN. REFUSED when no
    /// zone encloses the name.
    pub(super) fn answer(&self, qname: &Name, qtype: RecordType) -> Answer {
        let mut qname = qname.clone();
        qname.set_fqdn(true);
        let Some(zone) = self.zone_for(&qname, qtype) else {
            return Answer {
                rcode: ResponseCode::Refused,
                ..Answer::default()
            };
        };
        let mut answer = Answer {
            authoritative: true,
            ..Answer::default()
        };
        let mut zone = zone;
        let mut name = qname;
        let mut seen: Vec<Name> = Vec::new();
        loop {
            match zone.resolve(&name, qtype) {
                Resolution::Referral(ns) if seen.is_empty() => return self.referral(ns),
                // A chain that leads into a delegated child stops at the last alias.
                Resolution::Referral(_) => return answer,
                Resolution::Records(records) => {
                    answer.answers.extend(records.into_iter().map(|mut record| {
                        record.name = name.clone();
                        record
                    }));
                    return answer;
                }
                Resolution::Alias(cname, target, signatures) => {
                    let mut cname = cname.clone();
                    cname.name = name.clone();
                    answer.answers.push(cname);
                    answer.answers.extend(signatures.into_iter().map(|mut sig| {
                        sig.name = name.clone();
                        sig
                    }));
                    seen.push(name);
                    if seen.len() >= MAX_CNAME_LINKS || seen.contains(&target) {
                        return answer;
                    }
                    match self.zone_for(&target, qtype) {
                        Some(next) => zone = next,
                        // An out-of-zone target: the client resolves it elsewhere.
                        None => return answer,
                    }
                    name = target;
                }
                Resolution::NoData => {
                    answer.authorities.push(zone.negative_soa());
                    answer.authorities.extend(zone.denial(&name));
                    return answer;
                }
                Resolution::NxDomain => {
                    answer.rcode = ResponseCode::NXDomain;
                    answer.authorities.push(zone.negative_soa());
                    answer.authorities.extend(zone.denial(&name));
                    return answer;
                }
            }
        }
    }

    /// The zone whose origin is the longest suffix of `name`. A DS question at a zone apex
    /// goes to the parent zone if this server also serves it (RFC 4035 §3.1.4.1).
    fn zone_for(&self, name: &Name, qtype: RecordType) -> Option<&Zone> {
        let mut fallback = None;
        let mut candidate = name.clone();
        loop {
            if let Some(zone) = self.zones.get(&candidate) {
                if qtype != RecordType::DS || candidate != *name || candidate.is_root() {
                    return Some(zone);
                }
                fallback.get_or_insert(zone);
            }
            if candidate.is_root() {
                return fallback;
            }
            candidate = candidate.base_name();
        }
    }

    /// A referral: AA=0, the cut's NS RRset in authority, and any A/AAAA for the NS names
    /// found in any zone served here in additional.
    fn referral(&self, ns: &[Record]) -> Answer {
        let mut additionals = Vec::new();
        for record in ns {
            let RData::NS(target) = &record.data else {
                continue;
            };
            if let Some(glue) = self.addresses.get(&fqdn(&target.0)) {
                additionals.extend(glue.iter().cloned());
            }
        }
        Answer {
            rcode: ResponseCode::NoError,
            authoritative: false,
            answers: Vec::new(),
            authorities: ns.to_vec(),
            additionals,
        }
    }
}

impl Zone {
    /// Indexes a zone's records by owner name and marks empty non-terminals and zone cuts.
    fn build(origin: &Name, records: Vec<Record>) -> anyhow::Result<Self> {
        let origin_labels = origin.num_labels();
        let mut nodes: HashMap<Name, Node> = HashMap::new();
        let mut soa = None;
        for record in records {
            let owner = fqdn(&record.name);
            if !origin.zone_of(&owner) {
                bail!(
                    "record {} {} is outside the zone",
                    owner,
                    record.record_type()
                );
            }
            let record_type = record.record_type();
            if record_type == RecordType::SOA {
                if owner != *origin {
                    bail!("SOA record at {owner}, not at the zone apex");
                }
                soa = Some(record.clone());
            }
            // Empty non-terminals: every ancestor strictly between the owner and the apex.
            let mut ancestor = owner.base_name();
            while ancestor.num_labels() > origin_labels {
                let next = ancestor.base_name();
                nodes.entry(ancestor).or_default();
                ancestor = next;
            }
            let node = nodes.entry(owner.clone()).or_default();
            if record_type == RecordType::NS && owner != *origin {
                node.delegation = true;
            }
            match node.rrsets.iter_mut().find(|(t, _)| *t == record_type) {
                Some((_, rrset)) => rrset.push(record),
                None => node.rrsets.push((record_type, vec![record])),
            }
        }
        let soa = soa.context("no SOA record at the zone apex")?;
        let has_delegations = nodes.values().any(|node| node.delegation);
        let mut nsec = Vec::new();
        let mut nsec3 = Vec::new();
        for (owner, node) in &nodes {
            for (kind, records) in &node.rrsets {
                if !matches!(*kind, RecordType::NSEC | RecordType::NSEC3) {
                    continue;
                }
                let mut with_sigs = records.clone();
                with_sigs.extend(node.signatures(*kind));
                if *kind == RecordType::NSEC {
                    nsec.push((owner.clone(), with_sigs));
                } else if let Some(label) = owner.iter().next() {
                    nsec3.push((
                        String::from_utf8_lossy(label).to_ascii_lowercase(),
                        with_sigs,
                    ));
                }
            }
        }
        nsec.sort_by(|a, b| a.0.cmp(&b.0));
        nsec3.sort_by(|a, b| a.0.cmp(&b.0));
        let nsec3_param = nodes
            .get(origin)
            .and_then(|apex| apex.rrset(RecordType::NSEC3PARAM))
            .and_then(<[Record]>::first)
            .and_then(|record| match &record.data {
                RData::DNSSEC(DNSSECRData::NSEC3PARAM(param)) => {
                    Some((param.salt().to_vec(), param.iterations()))
                }
                _ => None,
            });
        Ok(Self {
            soa,
            origin_labels,
            nodes,
            has_delegations,
            origin: origin.clone(),
            nsec,
            nsec3,
            nsec3_param,
        })
    }

    /// The SOA for a negative answer; its TTL is the negative-caching TTL, min(SOA TTL,
    /// MINIMUM) (RFC 2308 §3).
    fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(data) = &soa.data {
            soa.ttl = soa.ttl.min(data.minimum);
        }
        soa
    }

    /// The records a validator needs to check a denial for `name` in a signed zone: the SOA's
    /// RRSIGs, and the NSEC (or NSEC3) records matching or covering the name, each of its
    /// ancestors and the wildcard below each (a superset of RFC 4035 §3.1.3 / RFC 5155 §7.2;
    /// the validator picks what it needs). Empty for an unsigned zone.
    fn denial(&self, name: &Name) -> Vec<Record> {
        let mut out: Vec<Record> = Vec::new();
        if self.nsec.is_empty() && self.nsec3.is_empty() {
            return out;
        }
        if let Some(apex) = self.nodes.get(&self.origin) {
            out.extend(apex.signatures(RecordType::SOA));
        }
        let mut candidates = Vec::new();
        let mut ancestor = name.clone();
        candidates.push(ancestor.clone());
        while ancestor.num_labels() > self.origin_labels {
            ancestor = ancestor.base_name();
            candidates.push(ancestor.clone());
            if let Ok(wildcard) =
                Name::from_ascii("*").and_then(|star| star.append_domain(&ancestor))
            {
                candidates.push(wildcard);
            }
        }
        let mut chosen: Vec<usize> = Vec::new();
        if !self.nsec.is_empty() {
            for candidate in &candidates {
                let after = self.nsec.partition_point(|(owner, _)| owner <= candidate);
                let index = after.checked_sub(1).unwrap_or(self.nsec.len() - 1);
                if !chosen.contains(&index) {
                    chosen.push(index);
                    out.extend(self.nsec[index].1.iter().cloned());
                }
            }
        } else if let Some((salt, iterations)) = &self.nsec3_param {
            for candidate in &candidates {
                let Ok(digest) = Nsec3HashAlgorithm::SHA1.hash(salt, candidate, *iterations) else {
                    continue;
                };
                let label = data_encoding::BASE32_DNSSEC.encode(digest.as_ref());
                let after = self.nsec3.partition_point(|(owner, _)| *owner <= label);
                let index = after.checked_sub(1).unwrap_or(self.nsec3.len() - 1);
                if !chosen.contains(&index) {
                    chosen.push(index);
                    out.extend(self.nsec3[index].1.iter().cloned());
                }
            }
        }
        out
    }

    /// What this zone says about `name` (which it encloses).
    fn resolve(&self, name: &Name, qtype: RecordType) -> Resolution<'_> {
        if let Some(ns) = self.zone_cut(name, qtype) {
            return Resolution::Referral(ns);
        }
        if let Some(node) = self.nodes.get(name) {
            return Self::at_node(node, qtype);
        }
        // RFC 4592 §3.3.1: find the closest encloser; its `*` child, if any, is the source of
        // synthesis. The apex is always a node, so the walk ends there at the latest.
        let mut child = name.clone();
        while child.num_labels() > self.origin_labels {
            let encloser = child.base_name();
            if self.nodes.contains_key(&encloser) {
                let mut wildcard = child.into_wildcard();
                wildcard.set_fqdn(true);
                return match self.nodes.get(&wildcard) {
                    Some(node) => Self::at_node(node, qtype),
                    None => Resolution::NxDomain,
                };
            }
            child = encloser;
        }
        Resolution::NxDomain
    }

    /// The NS RRset of the topmost zone cut at or above `name` (below the apex). A DS question
    /// at the cut itself belongs to this (parent) side, RFC 4035 §3.1.4.1.
    fn zone_cut(&self, name: &Name, qtype: RecordType) -> Option<&[Record]> {
        if !self.has_delegations {
            return None;
        }
        let labels = name.num_labels();
        for depth in self.origin_labels + 1..=labels {
            let ancestor = name.trim_to(usize::from(depth));
            // Nodes include empty non-terminals, so a missing ancestor has no descendants.
            let node = self.nodes.get(&ancestor)?;
            if node.delegation && !(depth == labels && qtype == RecordType::DS) {
                return node.rrset(RecordType::NS);
            }
        }
        None
    }

    /// Data at an existing node (or at the wildcard that stands for one).
    fn at_node(node: &Node, qtype: RecordType) -> Resolution<'_> {
        if qtype == RecordType::ANY {
            let records: Vec<Record> = node
                .rrsets
                .iter()
                .flat_map(|(_, rrset)| rrset.iter().cloned())
                .collect();
            if records.is_empty() {
                return Resolution::NoData;
            }
            return Resolution::Records(records);
        }
        if let Some(rrset) = node.rrset(qtype) {
            let mut records = rrset.to_vec();
            if qtype != RecordType::RRSIG {
                records.extend(node.signatures(qtype));
            }
            return Resolution::Records(records);
        }
        let cname = node.rrset(RecordType::CNAME).and_then(<[Record]>::first);
        match cname.map(|record| (record, &record.data)) {
            Some((record, RData::CNAME(target))) => Resolution::Alias(
                record,
                fqdn(&target.0),
                node.signatures(RecordType::CNAME).collect(),
            ),
            _ => Resolution::NoData,
        }
    }
}

/// `name` as a fully qualified name (zone-file and wire names already are; this is a guard).
fn fqdn(name: &Name) -> Name {
    let mut name = name.clone();
    name.set_fqdn(true);
    name
}
