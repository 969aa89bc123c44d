//! A bounded cache of answers (positive and negative, RFC 2308) and of delegations, keyed by
//! (name, type), with TTLs honoured but capped: CAA and challenge records must be fresh for
//! corroboration, so answers are kept briefly; delegations may live longer. One cache per node,
//! never shared with another perspective (BR 3.2.2.9: no shared DNS cache).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::rr::{Name, Record, RecordType};

use super::Answer;

/// Whether a lookup step was answered from the cache: the `result` label of
/// `mpic_node_dns_cache_lookups_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Answered from the cache.
    Hit,
    /// Not cached: resolved on the network.
    Miss,
}

impl CacheResult {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        }
    }
}
use tokio::time::Instant;

/// Rough bytes an entry costs beyond its records (key, map slot, bookkeeping).
const ENTRY_OVERHEAD: usize = 128;
/// Rough bytes per cached record (owner name, rdata, TTL); records are small except big TXT sets,
/// which are counted by their rdata length.
const RECORD_OVERHEAD: usize = 64;

/// Most answer entries the cache reserves room for when it is made. Growing a large table
/// later allocates and zeroes one of twice the size and rehashes every entry while the lock is
/// held: a stall of every lookup on the node (perf on the bench: 9% of the node's CPU in one
/// 3 s window, in the 64k → 128k doubling). Room for twice this many is reserved (see
/// [`Inner::reserved`]): at most 524,288 buckets of 129 bytes, ~68 MB of address space
/// (~34 MB with the default 100,000 entries), touched as entries arrive.
const MAX_RESERVED_ENTRIES: usize = 1 << 17;

/// A cached answer: records and their signatures, or a denial with its proof.
pub type Cached = Arc<Answer>;

/// A zone cut: the NS names of a zone and the addresses known for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// Name server names.
    pub nameservers: Vec<Name>,
    /// Addresses from glue or from resolving the NS names.
    pub addresses: Vec<(Name, IpAddr)>,
}

/// Limits of the cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheLimits {
    /// Most entries (answers + delegations).
    pub max_entries: usize,
    /// Most bytes (estimated).
    pub max_bytes: usize,
    /// Longest an answer is kept, whatever its TTL.
    pub max_answer_ttl: Duration,
    /// Longest a delegation is kept.
    pub max_delegation_ttl: Duration,
}

type Key = (Name, RecordType);

#[derive(Debug)]
struct Entry<T> {
    value: T,
    expires: Instant,
    bytes: usize,
    /// Matches the eviction slot queued when this entry was stored.
    generation: u64,
}

#[derive(Debug, Default)]
struct Inner {
    answers: HashMap<Key, Entry<Cached>>,
    delegations: HashMap<Name, Entry<Delegation>>,
    /// Insertion order for eviction (oldest first); may hold keys already replaced or removed.
    order: VecDeque<(Slot, u64)>,
    bytes: usize,
    generation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Answer(Key),
    Delegation(Name),
}

impl Inner {
    /// Empty, with room for twice as many answers as the limits can hold (both the entry and
    /// the byte limit, each entry counting at least [`ENTRY_OVERHEAD`]; at most
    /// [`MAX_RESERVED_ENTRIES`]). Twice: evictions leave tombstones in the table, and a table
    /// more than half full rehashes into a new one twice its size to clear them, where one at
    /// most half full clears them in place. So a cache that fills up and churns never
    /// reallocates its answer table (the steady state is that size either way).
    fn reserved(limits: &CacheLimits) -> Self {
        let room = limits
            .max_entries
            .min(limits.max_bytes / ENTRY_OVERHEAD)
            .min(MAX_RESERVED_ENTRIES);
        // One more: an insert lands before the eviction that makes room for it.
        Self {
            answers: HashMap::with_capacity(2 * room + 1),
            order: VecDeque::with_capacity(room + 1),
            ..Self::default()
        }
    }

    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Whether the queued slot still names the live entry (not one replaced or removed since).
    fn is_current(&self, slot: &Slot, generation: u64) -> bool {
        match slot {
            Slot::Answer(key) => self
                .answers
                .get(key)
                .is_some_and(|e| e.generation == generation),
            Slot::Delegation(zone) => self
                .delegations
                .get(zone)
                .is_some_and(|e| e.generation == generation),
        }
    }
}

/// The cache.
#[derive(Debug)]
pub struct Cache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

impl Cache {
    /// An empty cache.
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            limits,
            inner: Mutex::new(Inner::reserved(&limits)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether answers are cached at all (`max_entries` or `max_answer_ttl` zero turns it off).
    pub fn caches_answers(&self) -> bool {
        self.limits.max_entries > 0 && !self.limits.max_answer_ttl.is_zero()
    }

    /// A fresh answer for (name, type), if any.
    pub fn answer(&self, name: &Name, record_type: RecordType) -> Option<Cached> {
        if !self.caches_answers() {
            return None;
        }
        let key = (name.to_lowercase(), record_type);
        let mut inner = self.lock();
        let now = Instant::now();
        match inner.answers.get(&key) {
            Some(entry) if entry.expires > now => Some(entry.value.clone()),
            Some(_) => {
                if let Some(old) = inner.answers.remove(&key) {
                    inner.bytes = inner.bytes.saturating_sub(old.bytes);
                }
                None
            }
            None => None,
        }
    }

    /// Stores an answer for `ttl` (capped). A TTL of zero is not cached (RFC 1035 §3.2.1).
    pub fn store_answer(&self, name: &Name, record_type: RecordType, value: Cached, ttl: Duration) {
        let ttl = ttl.min(self.limits.max_answer_ttl);
        if ttl.is_zero() || self.limits.max_entries == 0 {
            return;
        }
        let bytes = ENTRY_OVERHEAD
            + value
                .records
                .iter()
                .chain(&value.rrsigs)
                .chain(&value.authority)
                .map(record_bytes)
                .sum::<usize>();
        let key = (name.to_lowercase(), record_type);
        let mut inner = self.lock();
        let generation = inner.next_generation();
        let entry = Entry {
            value,
            expires: Instant::now() + ttl,
            bytes,
            generation,
        };
        if let Some(old) = inner.answers.insert(key.clone(), entry) {
            inner.bytes = inner.bytes.saturating_sub(old.bytes);
        }
        inner.bytes += bytes;
        inner.order.push_back((Slot::Answer(key), generation));
        self.evict(&mut inner);
    }

    /// The closest known delegation for `name`: the longest ancestor (or `name` itself) with a
    /// fresh zone cut, with that zone's name.
    pub fn closest_delegation(&self, name: &Name) -> Option<(Name, Delegation)> {
        let lower = name.to_lowercase();
        let inner = self.lock();
        let now = Instant::now();
        let labels = lower.num_labels();
        (0..=labels).rev().find_map(|keep| {
            let zone = lower.trim_to(usize::from(keep));
            inner
                .delegations
                .get(&zone)
                .filter(|entry| entry.expires > now)
                .map(|entry| (zone, entry.value.clone()))
        })
    }

    /// Stores a zone cut for `ttl` (capped).
    pub fn store_delegation(&self, zone: &Name, delegation: Delegation, ttl: Duration) {
        let ttl = ttl.min(self.limits.max_delegation_ttl);
        if ttl.is_zero() {
            return;
        }
        let bytes = ENTRY_OVERHEAD
            + delegation.nameservers.len() * RECORD_OVERHEAD
            + delegation.addresses.len() * RECORD_OVERHEAD;
        let key = zone.to_lowercase();
        let mut inner = self.lock();
        let generation = inner.next_generation();
        let entry = Entry {
            value: delegation,
            expires: Instant::now() + ttl,
            bytes,
            generation,
        };
        if let Some(old) = inner.delegations.insert(key.clone(), entry) {
            inner.bytes = inner.bytes.saturating_sub(old.bytes);
        }
        inner.bytes += bytes;
        inner.order.push_back((Slot::Delegation(key), generation));
        self.evict(&mut inner);
    }

    /// Entries and estimated bytes held.
    pub fn size(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.answers.len() + inner.delegations.len(), inner.bytes)
    }

    /// Drops everything.
    pub fn clear(&self) {
        *self.lock() = Inner::reserved(&self.limits);
    }

    /// Evicts oldest-inserted entries until both limits hold. Queue slots whose entry was
    /// replaced or removed since are skipped (generation check), so eviction is O(1) amortised.
    fn evict(&self, inner: &mut Inner) {
        let limits = self.limits;
        let over = |inner: &Inner| {
            inner.answers.len() + inner.delegations.len() > limits.max_entries
                || inner.bytes > limits.max_bytes
        };
        while over(inner) {
            let Some((slot, generation)) = inner.order.pop_front() else {
                break;
            };
            if !inner.is_current(&slot, generation) {
                continue;
            }
            let freed = match &slot {
                Slot::Answer(key) => inner.answers.remove(key).map(|e| e.bytes),
                Slot::Delegation(zone) => inner.delegations.remove(zone).map(|e| e.bytes),
            };
            inner.bytes = inner.bytes.saturating_sub(freed.unwrap_or(0));
        }
        // Re-inserted keys leave dead slots behind; compact when they outnumber the live ones.
        if inner.order.len() > 2 * (inner.answers.len() + inner.delegations.len()) + 64 {
            let order = std::mem::take(&mut inner.order);
            inner.order = order
                .into_iter()
                .filter(|(slot, generation)| inner.is_current(slot, *generation))
                .collect();
        }
    }
}

fn record_bytes(record: &Record) -> usize {
    use hickory_proto::serialize::binary::BinEncodable as _;
    RECORD_OVERHEAD + record.data.to_bytes().map(|bytes| bytes.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests;
