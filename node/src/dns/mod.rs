//! The node's own DNS client on `hickory-proto` message types: UDP with TCP fallback, random IDs
//! and source ports, strict response matching, a bounded cache, and two modes — `iterative`
//! (from the root hints: no third party sees or shapes our answers) and `forward` (to configured
//! resolvers). Never the OS resolver (BR 3.2.2.9: each perspective resolves on its own; no shared
//! cache between perspectives).

pub mod cache;
mod coalesce;
pub mod dnssec;
mod error;
mod forward;
mod iterate;
pub mod lenient;
pub mod root_hints;
pub mod servers;
pub mod settings;
pub mod transport;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mpic_protocol::{DnsEvidence, DnssecStatus};
use tokio::time::Instant;

pub use error::{
    Attempt, AttemptFailure, BackedOff, Cap, DnsError, IgnoredResponses, InvalidName, NetworkError,
};

use cache::{Cache, CacheLimits, CacheResult};
use transport::{Transport, TransportConfig};

use crate::metrics::DnsMetrics;

/// The answer to one lookup, after following any CNAME chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The name asked for.
    pub name: Name,
    /// The type asked for.
    pub record_type: RecordType,
    /// `NoError` or `NXDomain`, for the final name of the chain.
    pub rcode: ResponseCode,
    /// The RRset of `record_type` at the final name (empty for NXDOMAIN/NODATA). Shared with
    /// the cached answer when that holds nothing else (no per-lookup copy of the records).
    pub records: Arc<[Record]>,
    /// The CNAME records followed, in order.
    pub chain: Vec<Record>,
    /// DNSSEC status of the answer (`None` when validation is off).
    pub dnssec: Option<DnssecStatus>,
    /// Why the status is not secure (zone or name, what failed, RFC 8914 code).
    pub dnssec_detail: Option<String>,
    /// The server that gave the final answer (`None` when it came from the cache).
    pub server: Option<SocketAddr>,
}

impl Lookup {
    /// The name the records belong to: the last CNAME target, or the name asked.
    pub fn final_name(&self) -> &Name {
        match self.chain.last().map(|record| &record.data) {
            Some(RData::CNAME(target)) => &target.0,
            _ => &self.name,
        }
    }

    /// The rcode in presentation form (`NOERROR`, `NXDOMAIN`).
    pub fn rcode_text(&self) -> String {
        rcode_name(self.rcode)
    }

    /// The lookup as signed-result evidence (records in presentation format).
    pub fn evidence(&self) -> DnsEvidence {
        DnsEvidence {
            name: self.name.to_string(),
            record_type: self.record_type.to_string(),
            rcode: self.rcode_text(),
            records: self
                .chain
                .iter()
                .chain(self.records.iter())
                .map(ToString::to_string)
                .collect(),
            dnssec: self.dnssec,
            server: self.server.map(|server| server.to_string()),
        }
    }
}

/// What the checks need from DNS; tests implement it with scripted fakes.
pub trait Resolver: Send + Sync {
    /// Looks up `name`/`record_type`, following CNAMEs, finishing by `deadline`.
    fn lookup(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
    ) -> impl Future<Output = Result<Lookup, DnsError>> + Send;

    /// The DNSSEC status of the zone holding `name`, walked from the trust anchor by
    /// `deadline` without needing an answer at `name` (the BR 3.2.2.8 "Insecure" proof).
    /// `None` when validation is off: nothing can be proven then.
    fn zone_status(
        &self,
        name: &Name,
        deadline: Instant,
    ) -> impl Future<Output = Option<dnssec::chain::Verdict>> + Send;

    /// `forward` when queries go to configured recursive resolvers, else `iterative`.
    fn resolution(&self) -> &'static str {
        "iterative"
    }

    /// The lookup's result from the cache alone, when it needs no wait at all: the answer is
    /// cached, there is no CNAME to follow and no DNSSEC validation to run. `None`: call
    /// [`Resolver::lookup`] (which gives the same result for a hit, as a future).
    fn cached(&self, _name: &Name, _record_type: RecordType) -> Option<Lookup> {
        None
    }
}

/// Where queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Iterate from these root servers (addresses of the root hints).
    Iterative {
        /// Root server names and addresses.
        hints: root_hints::RootHints,
        /// Port of every authoritative server (53; test labs use another).
        port: u16,
    },
    /// Ask these recursive resolvers, in order.
    Forward {
        /// The resolvers.
        upstreams: Vec<SocketAddr>,
    },
}

/// Limits on one lookup (each is a defence against hostile or broken zones), and the budget of
/// every server the lookups ask.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest one query may wait for its answer before the next server is tried.
    pub query_timeout: Duration,
    /// Most queries one lookup may send, all servers and referrals included (bounds the work a
    /// hostile delegation can cause, cf. NXNSAttack CVE-2020-12662).
    pub max_queries: usize,
    /// Most referrals followed in one resolution.
    pub max_referrals: usize,
    /// Most CNAMEs followed.
    pub max_cname_chain: usize,
    /// How deep name-server-name resolution may nest (NS without glue whose own NS lack glue...).
    pub max_ns_depth: usize,
    /// Ask IPv6 addresses of name servers too.
    pub use_ipv6: bool,
    /// The query budget of each server address and how many addresses are remembered.
    pub servers: servers::ServerLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            query_timeout: Duration::from_secs(2),
            max_queries: 64,
            max_referrals: 16,
            max_cname_chain: 8,
            max_ns_depth: 3,
            use_ipv6: true,
            servers: servers::ServerLimits::default(),
        }
    }
}

/// Everything to build a [`DnsClient`].
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Iterative or forward.
    pub mode: Mode,
    /// Per-lookup limits.
    pub limits: Limits,
    /// Cache limits.
    pub cache: CacheLimits,
    /// Egress addresses and 0x20.
    pub transport: TransportConfig,
    /// Ask for DNSSEC records (DO; CD in forward mode) and validate every answer.
    pub dnssec: bool,
    /// Where validation starts; `None` means the IANA root anchors.
    pub trust_anchors: Option<dnssec::anchors::TrustAnchors>,
}

/// The node's resolver.
#[derive(Debug, Clone)]
pub struct DnsClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    mode: Mode,
    pub(crate) limits: Limits,
    cache: Cache,
    transport: Transport,
    metrics: DnsMetrics,
    dnssec: bool,
    validator: Option<dnssec::chain::Validator>,
    in_flight: Arc<coalesce::InFlight>,
    servers: Arc<servers::Servers>,
}

/// Counts the queries of one lookup against [`Limits::max_queries`].
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) queries: usize,
    pub(crate) max_queries: usize,
}

impl Budget {
    fn spend(&mut self, name: &Name) -> Result<(), DnsError> {
        if self.queries >= self.max_queries {
            return Err(DnsError::Limit {
                name: name.clone(),
                what: Cap::Queries,
                limit: self.max_queries,
            });
        }
        self.queries += 1;
        Ok(())
    }
}

/// What one name holds for one type, as resolution found it: the unit the cache keeps and the
/// DNSSEC validator checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `NoError` or `NXDomain`.
    pub rcode: ResponseCode,
    /// The RRset of the asked type at the name, or the CNAME at the name; empty for a denial.
    pub records: Arc<[Record]>,
    /// RRSIGs at the name covering `records` (empty when the zone is unsigned or DO was off).
    pub rrsigs: Vec<Record>,
    /// For a denial: the SOA, NSEC/NSEC3 records and their RRSIGs from the authority section.
    pub authority: Vec<Record>,
}

impl Answer {
    /// A positive answer.
    pub fn positive(records: Vec<Record>, rrsigs: Vec<Record>) -> Self {
        Self {
            rcode: ResponseCode::NoError,
            records: records.into(),
            rrsigs,
            authority: Vec::new(),
        }
    }

    /// This answer with the NSEC/NSEC3 records (and their RRSIGs) of `message`'s authority
    /// section: the proof a wildcard expansion needs that no closer name exists (RFC 4035
    /// §3.1.3.3, RFC 5155 §7.2.6).
    #[must_use]
    pub fn with_proof(mut self, message: &hickory_proto::op::Message) -> Self {
        self.authority = message
            .authorities
            .iter()
            .filter(|r| match &r.data {
                RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(rrsig)) => {
                    matches!(
                        rrsig.input().type_covered,
                        RecordType::NSEC | RecordType::NSEC3
                    )
                }
                _ => matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3),
            })
            .cloned()
            .collect();
        self
    }

    /// NXDOMAIN, or NODATA (`NoError`, no records), with its proof.
    pub fn negative(rcode: ResponseCode, authority: Vec<Record>) -> Self {
        Self {
            rcode,
            records: Arc::new([]),
            rrsigs: Vec::new(),
            authority,
        }
    }
}

/// The RRSIG records at `owner` covering one of `types`.
pub(crate) fn rrsigs_at(records: &[Record], owner: &Name, types: &[RecordType]) -> Vec<Record> {
    records
        .iter()
        .filter(|record| record.name.eq(owner))
        .filter(|record| match &record.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(rrsig)) => {
                types.contains(&rrsig.input().type_covered)
            }
            _ => false,
        })
        .cloned()
        .collect()
}

/// The authority records a denial rests on: SOA, NSEC, NSEC3 and RRSIGs.
pub(crate) fn denial_records(authorities: &[Record]) -> Vec<Record> {
    authorities
        .iter()
        .filter(|r| {
            matches!(
                r.record_type(),
                RecordType::SOA | RecordType::NSEC | RecordType::NSEC3 | RecordType::RRSIG
            )
        })
        .cloned()
        .collect()
}

/// One step of resolution: the answer at exactly one name, and who gave it.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) answer: Arc<Answer>,
    server: Option<SocketAddr>,
}

impl DnsClient {
    /// A client with an empty cache.
    pub fn new(settings: DnsSettings, metrics: DnsMetrics) -> Self {
        let transport = Transport::new(settings.transport, metrics.clone());
        let servers = Arc::new(servers::Servers::new(settings.limits.servers));
        // The metrics listener serves this client's table at `/dns-servers.json`.
        metrics.watch_servers(&servers);
        Self {
            inner: Arc::new(Inner {
                mode: settings.mode,
                limits: settings.limits,
                cache: Cache::new(settings.cache),
                transport,
                metrics,
                dnssec: settings.dnssec,
                validator: settings.dnssec.then(|| {
                    dnssec::chain::Validator::new(
                        settings
                            .trust_anchors
                            .unwrap_or_else(dnssec::anchors::TrustAnchors::iana_root),
                    )
                }),
                in_flight: Arc::new(coalesce::InFlight::new(coalesce::MAX_IN_FLIGHT_QUESTIONS)),
                servers,
            }),
        }
    }

    /// The cache (for tests and the metrics of its size).
    pub fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    /// What is known about each server asked (for `mpic-node doctor --dns-servers` and tests).
    pub fn servers(&self) -> &servers::Servers {
        &self.inner.servers
    }

    /// Counts one answer-cache hit or miss.
    fn count_cache(&self, result: CacheResult) {
        self.inner
            .metrics
            .cache
            .with_label_values(&[result.as_str()])
            .inc();
    }

    pub(crate) async fn step(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
        budget: &mut Budget,
    ) -> Result<Step, DnsError> {
        if let Some(cached) = self.inner.cache.answer(name, record_type) {
            // A hit completes without waiting on anything: take part in tokio's cooperative
            // budget so a burst of cached lookups cannot starve the tasks waiting on sockets.
            tokio::task::consume_budget().await;
            self.count_cache(CacheResult::Hit);
            return Ok(Step {
                answer: cached,
                server: None,
            });
        }
        self.count_cache(CacheResult::Miss);
        self.shared_step(name, record_type, deadline, budget).await
    }
}

impl Resolver for DnsClient {
    fn resolution(&self) -> &'static str {
        match self.inner.mode {
            Mode::Forward { .. } => "forward",
            Mode::Iterative { .. } => "iterative",
        }
    }

    fn cached(&self, name: &Name, record_type: RecordType) -> Option<Lookup> {
        if self.inner.validator.is_some() {
            return None;
        }
        let mut name_fqdn = name.clone();
        name_fqdn.set_fqdn(true);
        let answer = self.inner.cache.answer(&name_fqdn, record_type)?;
        if record_type != RecordType::CNAME && cname_at(&answer, &name_fqdn).is_some() {
            return None;
        }
        self.count_cache(CacheResult::Hit);
        Some(Lookup {
            name: name_fqdn,
            record_type,
            rcode: answer.rcode,
            records: of_type(&answer.records, record_type),
            chain: Vec::new(),
            dnssec: None,
            dnssec_detail: None,
            server: None,
        })
    }

    async fn zone_status(&self, name: &Name, deadline: Instant) -> Option<dnssec::chain::Verdict> {
        let validator = self.inner.validator.as_ref()?;
        let mut name = name.clone();
        name.set_fqdn(true);
        let verdict = dnssec::proof::zone_status(self, validator, &name, deadline).await;
        Some(verdict)
    }

    async fn lookup(
        &self,
        name: &Name,
        record_type: RecordType,
        deadline: Instant,
    ) -> Result<Lookup, DnsError> {
        let mut name_fqdn = name.clone();
        name_fqdn.set_fqdn(true);
        let mut budget = Budget {
            queries: 0,
            max_queries: self.inner.limits.max_queries,
        };
        let mut chain: Vec<Record> = Vec::new();
        let mut steps: Vec<(Name, RecordType, Arc<Answer>)> = Vec::new();
        let mut current = name_fqdn.clone();
        loop {
            if Instant::now() >= deadline {
                return Err(DnsError::DeadlineExceeded {
                    name: name_fqdn.clone(),
                    record_type,
                });
            }
            let step = self
                .step(&current, record_type, deadline, &mut budget)
                .await?;
            if self.inner.validator.is_some() {
                steps.push((current.clone(), record_type, Arc::clone(&step.answer)));
            }
            let cname = (record_type != RecordType::CNAME)
                .then(|| cname_at(&step.answer, &current))
                .flatten();
            let Some((record, target)) = cname else {
                let verdict = match &self.inner.validator {
                    Some(validator) => {
                        // Boxed: validation's state is large and off in many deployments;
                        // unboxed it would enlarge every lookup in flight.
                        let verdict = Box::pin(dnssec::status::lookup_status(
                            self, validator, &steps, deadline,
                        ))
                        .await;
                        self.inner.metrics.count_dnssec(verdict.status);
                        Some(verdict)
                    }
                    None => None,
                };
                return Ok(Lookup {
                    name: name_fqdn,
                    record_type,
                    rcode: step.answer.rcode,
                    records: of_type(&step.answer.records, record_type),
                    chain,
                    dnssec: verdict.as_ref().map(|v| v.status),
                    dnssec_detail: verdict.and_then(|v| v.detail),
                    server: step.server,
                });
            };
            let seen =
                std::iter::once(&name_fqdn).chain(chain.iter().filter_map(|r| match &r.data {
                    RData::CNAME(t) => Some(&t.0),
                    _ => None,
                }));
            if seen.into_iter().any(|earlier| earlier.eq(&target)) {
                chain.push(record);
                return Err(DnsError::CnameLoop {
                    name: name_fqdn.clone(),
                    chain,
                });
            }
            if chain.len() >= self.inner.limits.max_cname_chain {
                return Err(DnsError::CnameChainTooLong {
                    name: name_fqdn.clone(),
                    limit: self.inner.limits.max_cname_chain,
                });
            }
            chain.push(record);
            current = target;
        }
    }
}

/// The CNAME record at `owner` in `answer`, and its target.
fn cname_at(answer: &Answer, owner: &Name) -> Option<(Record, Name)> {
    answer.records.iter().find_map(|record| match &record.data {
        RData::CNAME(target) if record.name.eq(owner) => Some((record.clone(), target.0.clone())),
        _ => None,
    })
}

/// The records of `records` of type `record_type`: the same shared slice when they all are
/// (the usual case: no CNAME in the answer), else a copy of those that are.
fn of_type(records: &Arc<[Record]>, record_type: RecordType) -> Arc<[Record]> {
    if records.iter().all(|r| r.record_type() == record_type) {
        return Arc::clone(records);
    }
    records
        .iter()
        .filter(|r| r.record_type() == record_type)
        .cloned()
        .collect()
}

/// The worst of several statuses: bogus, then indeterminate, then insecure, then secure.
pub fn worst_status(statuses: impl Iterator<Item = DnssecStatus>) -> Option<DnssecStatus> {
    statuses.max_by_key(|status| status.severity())
}

/// Concatenates each TXT record's strings (RFC 7208 §3.3 style: one RR is one value).
pub fn txt_values(lookup: &Lookup) -> Vec<Vec<u8>> {
    lookup
        .records
        .iter()
        .filter_map(|record| match &record.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .flat_map(|part| part.iter().copied())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// An rcode's mnemonic (RFC 6895 §2.3), or `RCODE<n>` for one without a name here.
pub fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::YXDomain => "YXDOMAIN".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        other => format!("RCODE{}", u16::from(other)),
    }
}

/// The smallest TTL of a set of records, as a duration.
pub(crate) fn min_ttl(records: &[Record]) -> Duration {
    Duration::from_secs(records.iter().map(|r| u64::from(r.ttl)).min().unwrap_or(0))
}

/// The negative-caching TTL from the SOA in the authority section (RFC 2308 §5:
/// min(SOA TTL, SOA MINIMUM)); zero without an SOA.
pub(crate) fn negative_ttl(authorities: &[Record]) -> Duration {
    authorities
        .iter()
        .find_map(|record| match &record.data {
            RData::SOA(soa) => Some(Duration::from_secs(u64::from(record.ttl.min(soa.minimum)))),
            _ => None,
        })
        .unwrap_or(Duration::ZERO)
}

/// Runs every pure step a response from the network goes through — matching against a query
/// and classification by the iterative resolver — on arbitrary bytes. For the fuzz target; the
/// first two bytes are overwritten with the query's ID so the fuzzer gets past the ID check.
#[doc(hidden)]
pub fn exercise_response(data: &[u8]) {
    let Ok(name) = Name::from_ascii("www.Example.com.") else {
        return;
    };
    let spec = wire::QuerySpec {
        name,
        record_type: RecordType::A,
        recursion_desired: false,
        dnssec_ok: false,
        checking_disabled: false,
    };
    let Ok(query) = wire::build_query(&spec, 0x1234, None) else {
        return;
    };
    let mut bytes = data.to_vec();
    if bytes.len() >= 2 {
        bytes[..2].copy_from_slice(&query.id.to_be_bytes());
    }
    if let Ok(message) = wire::match_response(&query, &bytes) {
        let zone = Name::from_ascii("com.").unwrap_or_else(|_| Name::root());
        iterate::classify_for_fuzzing(&message, &zone, &spec.name, RecordType::A);
        let _ = negative_ttl(&message.authorities);
    }
}

#[cfg(test)]
mod tests;
