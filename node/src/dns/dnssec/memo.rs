//! A bounded memo of RRsets whose signatures verified: the same RRset, with the same RRSIGs,
//! checked against the same zone keys within the RRset's TTL and the signatures' validity
//! window, is not verified again (Unbound keeps a security status with each cached RRset for the
//! same reason). The key is the exact bytes, not a hash of them, so no crafted collision can
//! borrow another RRset's verdict; RRsets too large for a key are simply verified every time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSKEY;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable as _;
use tokio::time::Instant;

use super::verify;

/// Most RRsets remembered: a node's working set of CAA/TXT answers for a minute or so.
const MAX_ENTRIES: usize = 8192;
/// Largest key remembered (owner, type, zone, RDATA, RRSIGs and keys): bounds the memo's
/// memory to about `MAX_ENTRIES` × 4 KiB.
const MAX_KEY: usize = 4096;
/// Longest a verdict is kept, whatever the TTL says.
const MAX_KEEP: Duration = Duration::from_secs(3600);

/// The memo.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    entries: Mutex<HashMap<Vec<u8>, (u8, Instant)>>,
}

/// What identifies one verification: the RRset, the RRSIGs offered and the keys used.
pub(crate) struct Key {
    bytes: Vec<u8>,
    keep: Duration,
}

impl Key {
    /// The key of verifying `records` (owner `owner`, type `record_type`) with `rrsigs` by
    /// `zone`'s `keys` at serial time `now`; `None` when too large or not encodable.
    pub(crate) fn new(
        owner: &Name,
        record_type: RecordType,
        records: &[Record],
        rrsigs: &[Record],
        zone: &Name,
        keys: &[DNSKEY],
        now: u32,
    ) -> Option<Self> {
        let mut bytes = owner.to_lowercase().to_bytes().ok()?;
        bytes.extend_from_slice(&u16::from(record_type).to_be_bytes());
        bytes.extend_from_slice(&zone.to_lowercase().to_bytes().ok()?);
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(records.len());
        for record in records {
            parts.push(record.data.to_bytes().ok()?);
        }
        parts.sort();
        let sigs: Vec<&Record> = rrsigs
            .iter()
            .filter(|r| r.name.eq(owner))
            .filter(|r| verify::as_rrsig(r).is_some_and(|s| s.input().type_covered == record_type))
            .collect();
        let mut expires_in = u32::MAX;
        for sig in &sigs {
            parts.push(sig.data.to_bytes().ok()?);
            if let Some(rrsig) = verify::as_rrsig(sig) {
                let left = rrsig.input().sig_expiration.get().wrapping_sub(now);
                // Serial arithmetic (RFC 4034 §3.1.5): "negative" means already expired.
                expires_in = expires_in.min(if (left as i32) < 0 { 0 } else { left });
            }
        }
        for key in keys {
            parts.push(key.to_bytes().ok()?);
        }
        for part in parts {
            let len = u16::try_from(part.len()).ok()?;
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&part);
            if bytes.len() > MAX_KEY {
                return None;
            }
        }
        let ttl = records
            .iter()
            .chain(sigs.iter().copied())
            .map(|r| r.ttl)
            .min()?;
        let keep = Duration::from_secs(u64::from(ttl.min(expires_in))).min(MAX_KEEP);
        Some(Self { bytes, keep })
    }
}

impl Memo {
    /// The label count a verification of `key` returned, if remembered and still fresh.
    pub(crate) fn verified(&self, key: &Key) -> Option<u8> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(&key.bytes)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(labels, _)| *labels)
    }

    /// Remembers that `key` verified with `labels`.
    pub(crate) fn remember(&self, key: Key, labels: u8) {
        if key.keep.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                let now = Instant::now();
                entries.retain(|_, (_, until)| *until > now);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key.bytes, (labels, Instant::now() + key.keep));
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::TXT;

    use super::*;

    fn txt(value: &str, ttl: u32) -> Record {
        Record::from_rdata(
            Name::from_ascii("www.example.test.").unwrap(),
            ttl,
            RData::TXT(TXT::new(vec![value.into()])),
        )
    }

    fn key(records: &[Record]) -> Option<Key> {
        let owner = Name::from_ascii("www.example.test.").unwrap();
        let zone = Name::from_ascii("example.test.").unwrap();
        Key::new(&owner, RecordType::TXT, records, &[], &zone, &[], 0)
    }

    #[test]
    fn remembers_exactly_the_rrset_it_was_told() {
        let memo = Memo::default();
        memo.remember(key(&[txt("a", 60), txt("b", 60)]).unwrap(), 3);
        let cases: [(&str, Vec<Record>, Option<u8>); 4] = [
            ("same RRset", vec![txt("a", 60), txt("b", 60)], Some(3)),
            (
                "same RRset, other order",
                vec![txt("b", 60), txt("a", 60)],
                Some(3),
            ),
            ("tampered RDATA", vec![txt("a", 60), txt("c", 60)], None),
            ("one record less", vec![txt("a", 60)], None),
        ];
        for (case, records, expected) in cases {
            assert_eq!(memo.verified(&key(&records).unwrap()), expected, "{case}");
        }
    }

    #[test]
    fn zero_ttl_and_oversized_rrsets_are_not_kept() {
        let memo = Memo::default();
        memo.remember(key(&[txt("a", 0)]).unwrap(), 3);
        assert_eq!(memo.verified(&key(&[txt("a", 0)]).unwrap()), None);
        let big = "x".repeat(250);
        let records: Vec<Record> = (0..20).map(|_| txt(&big, 60)).collect();
        assert!(key(&records).is_none(), "over MAX_KEY");
    }
}
