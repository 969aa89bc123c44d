//! Iterative mode (RFC 1034 §5.3.3): start at the closest known zone cut (or the root hints),
//! ask that zone's servers without recursion, follow referrals down to the name, and accept
//! only data within each server's bailiwick. QNAME minimisation (RFC 9156) is off: it multiplies
//! queries per lookup and trips servers that mishandle empty non-terminals, and the names a
//! perspective looks up are about to be published in CT logs anyway, so it buys no privacy.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom as _;
use tokio::time::Instant;

use super::cache::Delegation;
use super::forward::failure_of;
use super::servers::{BudgetLimit, Gate, Outcome};
use super::wire::QuerySpec;
use super::{
    Answer, Attempt, AttemptFailure, BackedOff, Budget, Cap, DnsClient, DnsError, Mode, Step,
    denial_records, min_ttl, negative_ttl, rrsigs_at,
};

/// Name servers whose addresses we resolve (when there is no glue) before trying them: two are
/// enough to survive one dead server without resolving a whole NS set of a large zone.
const NS_NAMES_TO_RESOLVE: usize = 2;

/// Fewest queries a lookup sends to a zone's servers before it gives up (see `resolve_inner`).
const MIN_ATTEMPTS: usize = 2;

/// What a server's response means for the name we asked.
#[derive(Debug)]
enum Classified {
    /// Records at the name (the asked type, or a CNAME) and their RRSIGs.
    Answer(Vec<Record>, Vec<Record>),
    /// The name does not exist; the TTL and the proof (SOA, NSEC/NSEC3, RRSIGs).
    NxDomain(Duration, Vec<Record>),
    /// The name exists without that type; the TTL and the proof.
    NoData(Duration, Vec<Record>),
    /// Go ask the servers of a zone closer to the name.
    Referral {
        child: Name,
        delegation: Delegation,
        ttl: Duration,
    },
    /// Not an answer we can use from this server.
    Unusable(AttemptFailure),
}

type BoxedStep<'a> = Pin<Box<dyn Future<Output = Result<Step, DnsError>> + Send + 'a>>;

/// Resolves the records at exactly `name` (no CNAME following: the caller does that).
pub(super) fn resolve<'a>(
    client: &'a DnsClient,
    name: &'a Name,
    record_type: RecordType,
    deadline: Instant,
    budget: &'a mut Budget,
    depth: usize,
) -> BoxedStep<'a> {
    Box::pin(resolve_inner(
        client,
        name,
        record_type,
        deadline,
        budget,
        depth,
    ))
}

async fn resolve_inner(
    client: &DnsClient,
    name: &Name,
    record_type: RecordType,
    deadline: Instant,
    budget: &mut Budget,
    depth: usize,
) -> Result<Step, DnsError> {
    let Mode::Iterative { hints, port } = &client.inner.mode else {
        return Err(DnsError::NotIterative);
    };
    let limits = client.inner.limits;
    let (mut zone, mut delegation) = start_zone(client, hints, name, record_type);
    let mut referrals = 0;
    loop {
        let servers =
            server_addresses(client, &zone, &delegation, *port, deadline, budget, depth).await?;
        let (classified, message, server) =
            ask_zone(client, &zone, &servers, name, record_type, deadline, budget).await?;
        let cache = &client.inner.cache;
        match classified {
            Classified::Answer(records, rrsigs) => {
                cache_in_bailiwick(client, &message, &zone);
                // A wildcard expansion comes with the NSEC/NSEC3 proving no closer match
                // (RFC 4035 §3.1.3.3): keep them for the validator.
                let answer = Arc::new(Answer::positive(records, rrsigs).with_proof(&message));
                return Ok(Step {
                    answer,
                    server: Some(server),
                });
            }
            Classified::NxDomain(ttl, proof) | Classified::NoData(ttl, proof) => {
                let rcode = message.metadata.response_code;
                let answer = Arc::new(Answer::negative(rcode, proof));
                cache.store_answer(name, record_type, Arc::clone(&answer), ttl);
                return Ok(Step {
                    answer,
                    server: Some(server),
                });
            }
            Classified::Referral {
                child,
                delegation: next,
                ttl,
            } => {
                referrals += 1;
                if referrals > limits.max_referrals {
                    return Err(DnsError::Limit {
                        name: name.clone(),
                        what: Cap::Referrals,
                        limit: limits.max_referrals,
                    });
                }
                cache.store_delegation(&child, next.clone(), ttl);
                zone = child;
                delegation = next;
            }
            // Never returned by `ask_zone`; answering it keeps the match total.
            Classified::Unusable(failure) => {
                return Err(DnsError::NoAnswer {
                    name: name.clone(),
                    record_type,
                    attempts: vec![Attempt { server, failure }],
                });
            }
        }
    }
}

/// The closest known zone cut to start from (the root hints when none is cached). The DS RRset
/// lives on the parent side of a zone cut (RFC 4035 §3.1.4.1, §4.2): a DS question starts at
/// the closest known cut strictly above the name, so it reaches the parent's servers even when
/// the child's delegation is already cached (the child's servers would answer NODATA from the
/// child apex). hickory-dns's recursor fixed the same bug ("recursor: send DS queries to the
/// parent zone", PR 2203); Unbound's iterator also sends DS questions to the parent.
fn start_zone(
    client: &DnsClient,
    hints: &super::root_hints::RootHints,
    name: &Name,
    record_type: RecordType,
) -> (Name, Delegation) {
    let start_above = record_type == RecordType::DS && !name.is_root();
    let lookup_from = if start_above {
        name.base_name()
    } else {
        name.clone()
    };
    client
        .inner
        .cache
        .closest_delegation(&lookup_from)
        .unwrap_or_else(|| (Name::root(), hints.delegation()))
}

/// Asks the servers of `zone` in turn until one gives a usable response; each failure is one
/// attempt of the error.
async fn ask_zone(
    client: &DnsClient,
    zone: &Name,
    servers: &[SocketAddr],
    name: &Name,
    record_type: RecordType,
    deadline: Instant,
    budget: &mut Budget,
) -> Result<(Classified, Message, SocketAddr), DnsError> {
    let limits = client.inner.limits;
    let spec = QuerySpec {
        name: name.clone(),
        record_type,
        recursion_desired: false,
        dnssec_ok: client.inner.dnssec,
        checking_disabled: false,
    };
    let mut attempts = Vec::new();
    let mut held_back = None;
    // A zone with one server address is asked twice: a dropped UDP packet should not fail the
    // lookup, and BR 3.2.2.8 lets a failure count as permission only "if the lookup has been
    // retried at least once". With more servers the next one is the retry. The fastest
    // healthy server goes first; backed-off ones last (see `servers::rank`).
    // Servers backed off after timing out are skipped (one lookup probes each when its
    // backoff ends); when that leaves none, the lookup fails at once (`ServersBackedOff`).
    let ordered = client.inner.servers.order(servers);
    let sequence = attempt_order(
        name,
        record_type,
        &client.inner.servers.gate(&ordered, limits.query_timeout),
    )
    .inspect_err(|_| client.inner.metrics.fast_failures.inc())?;
    for &server in &sequence {
        if Instant::now() >= deadline {
            break;
        }
        budget.spend(name)?;
        match client.ask(server, &spec, deadline).await {
            Err(limit) => held_back = Some((server, limit)),
            Ok(Err(error)) => attempts.push(Attempt {
                server,
                failure: failure_of(&error),
            }),
            Ok(Ok(exchange)) => {
                match classify(&exchange.message, zone, name, record_type, limits.use_ipv6) {
                    Classified::Unusable(failure) => {
                        if failure == AttemptFailure::Lame {
                            client.record(server, Outcome::Lame);
                        }
                        attempts.push(Attempt { server, failure });
                    }
                    classified => return Ok((classified, exchange.message, server)),
                }
            }
        }
    }
    if attempts.is_empty() {
        return Err(unanswered(name, record_type, held_back));
    }
    Err(DnsError::NoAnswer {
        name: name.clone(),
        record_type,
        attempts,
    })
}

/// The servers to ask, in order: those to ask and probe, the askable ones repeated until there
/// are [`MIN_ATTEMPTS`] (a probe goes once); `ServersBackedOff` when every one is skipped.
fn attempt_order(
    name: &Name,
    record_type: RecordType,
    gated: &[(SocketAddr, Gate)],
) -> Result<Vec<SocketAddr>, DnsError> {
    let mut sequence: Vec<SocketAddr> = gated
        .iter()
        .filter(|(_, gate)| !matches!(gate, Gate::Skip { .. }))
        .map(|(server, _)| *server)
        .collect();
    if sequence.is_empty() {
        return Err(DnsError::ServersBackedOff {
            name: name.clone(),
            record_type,
            servers: gated
                .iter()
                .filter_map(|(server, gate)| match gate {
                    Gate::Skip { failures, probe_in } => Some(BackedOff {
                        server: *server,
                        failures: *failures,
                        probe_in: *probe_in,
                    }),
                    Gate::Ask | Gate::Probe => None,
                })
                .collect(),
        });
    }
    let mut again = gated
        .iter()
        .filter(|(_, gate)| *gate == Gate::Ask)
        .map(|(server, _)| *server)
        .cycle();
    while sequence.len() < MIN_ATTEMPTS {
        match again.next() {
            Some(server) => sequence.push(server),
            None => break,
        }
    }
    Ok(sequence)
}

/// The error of a lookup no server answered without a failure to show: held back by a
/// server's budget, or out of time.
pub(super) fn unanswered(
    name: &Name,
    record_type: RecordType,
    held_back: Option<(SocketAddr, BudgetLimit)>,
) -> DnsError {
    match held_back {
        Some((server, limit)) => DnsError::ServerBudget {
            name: name.clone(),
            record_type,
            server,
            limit,
        },
        None => DnsError::DeadlineExceeded {
            name: name.clone(),
            record_type,
        },
    }
}

/// Decides what a response from a server of `zone` says about `name`.
fn classify(
    message: &Message,
    zone: &Name,
    name: &Name,
    record_type: RecordType,
    use_ipv6: bool,
) -> Classified {
    let rcode = message.metadata.response_code;
    if !matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Classified::Unusable(AttemptFailure::Rcode(super::transport::rcode_label(
            message,
        )));
    }
    let at_name: Vec<Record> = message
        .answers
        .iter()
        .filter(|r| {
            r.name.eq(name)
                && (r.record_type() == record_type || r.record_type() == RecordType::CNAME)
        })
        .cloned()
        .collect();
    // Prefer the asked type when a server sent both (it should not).
    let has_type = at_name.iter().any(|r| r.record_type() == record_type);
    let at_name: Vec<Record> = if has_type {
        at_name
            .into_iter()
            .filter(|r| r.record_type() == record_type)
            .collect()
    } else {
        at_name
    };
    let covered: Vec<RecordType> = at_name.iter().map(Record::record_type).take(1).collect();
    let rrsigs = rrsigs_at(&message.answers, name, &covered);
    let soa_in_zone = message.authorities.iter().any(|r| {
        r.record_type() == RecordType::SOA && zone.zone_of(&r.name) && r.name.zone_of(name)
    });
    let authoritative = message.metadata.authoritative;
    if !at_name.is_empty() {
        return if authoritative {
            Classified::Answer(at_name, rrsigs)
        } else {
            Classified::Unusable(AttemptFailure::Lame)
        };
    }
    if rcode == ResponseCode::NXDomain {
        return if authoritative || soa_in_zone {
            Classified::NxDomain(
                negative_ttl(&message.authorities),
                denial_records(&message.authorities),
            )
        } else {
            Classified::Unusable(AttemptFailure::Lame)
        };
    }
    // A referral: NS records for a zone strictly below the current one and at or above the name.
    let child = message
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone());
    if let Some(child) = child.filter(|_| !authoritative) {
        return referral(message, zone, name, record_type, child, use_ipv6);
    }
    if authoritative || soa_in_zone {
        return Classified::NoData(
            negative_ttl(&message.authorities),
            denial_records(&message.authorities),
        );
    }
    Classified::Unusable(AttemptFailure::Lame)
}

/// A referral to `child` from a server of `zone`: the child's servers and the glue inside the
/// referring zone's bailiwick, or lame when the referral does not lead down towards `name`.
fn referral(
    message: &Message,
    zone: &Name,
    name: &Name,
    record_type: RecordType,
    child: Name,
    use_ipv6: bool,
) -> Classified {
    // A server of the parent answers DS itself (RFC 4035 §3.1.4.1); a referral to the name
    // asked for DS would send the question to the child, whose apex holds no DS (PowerDNS
    // Recursor refuses to follow it too, PR 10460). Treated as lame: the DS stays unknown,
    // so the status is indeterminate, never insecure.
    let ds_to_child = record_type == RecordType::DS && child.eq(name);
    if ds_to_child || !(zone.zone_of(&child) && !child.eq(zone) && child.zone_of(name)) {
        // Upward or sideways referral: the server is lame for this zone.
        return Classified::Unusable(AttemptFailure::Lame);
    }
    let ns_records: Vec<&Record> = message
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::NS && r.name.eq(&child))
        .collect();
    let nameservers: Vec<Name> = ns_records
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.clone()),
            _ => None,
        })
        .collect();
    // Glue is only trusted inside the referring zone's bailiwick (RFC 2181 §5.4.1).
    let addresses = message
        .additionals
        .iter()
        .filter(|r| nameservers.iter().any(|ns| ns.eq(&r.name)) && zone.zone_of(&r.name))
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.clone(), IpAddr::V4(a.0))),
            RData::AAAA(aaaa) if use_ipv6 => Some((r.name.clone(), IpAddr::V6(aaaa.0))),
            _ => None,
        })
        .collect();
    let ttl = Duration::from_secs(
        ns_records
            .iter()
            .map(|r| u64::from(r.ttl))
            .min()
            .unwrap_or(0),
    );
    Classified::Referral {
        child,
        delegation: Delegation {
            nameservers,
            addresses,
        },
        ttl,
    }
}

/// [`classify`] for the fuzz target (its result is private).
pub(super) fn classify_for_fuzzing(
    message: &Message,
    zone: &Name,
    name: &Name,
    record_type: RecordType,
) {
    let _ = classify(message, zone, name, record_type, true);
}

/// Caches every RRset of an authoritative answer that lies inside the answering zone, so the
/// rest of an in-zone CNAME chain needs no second query.
fn cache_in_bailiwick(client: &DnsClient, message: &Message, zone: &Name) {
    let mut rrsets: std::collections::HashMap<(Name, RecordType), Vec<Record>> =
        std::collections::HashMap::new();
    for record in message
        .answers
        .iter()
        .filter(|r| zone.zone_of(&r.name) && r.record_type() != RecordType::RRSIG)
    {
        rrsets
            .entry((record.name.to_lowercase(), record.record_type()))
            .or_default()
            .push(record.clone());
    }
    for ((owner, record_type), records) in rrsets {
        let ttl = min_ttl(&records);
        let rrsigs = rrsigs_at(&message.answers, &owner, &[record_type]);
        client.inner.cache.store_answer(
            &owner,
            record_type,
            Arc::new(Answer::positive(records, rrsigs).with_proof(message)),
            ttl,
        );
    }
}

/// The addresses to ask for `zone`: glue first, else resolve a couple of NS names.
async fn server_addresses(
    client: &DnsClient,
    zone: &Name,
    delegation: &Delegation,
    port: u16,
    deadline: Instant,
    budget: &mut Budget,
    depth: usize,
) -> Result<Vec<SocketAddr>, DnsError> {
    let mut addresses: Vec<SocketAddr> = delegation
        .addresses
        .iter()
        .map(|(_, ip)| SocketAddr::new(*ip, port))
        .collect();
    if addresses.is_empty() {
        let limits = client.inner.limits;
        if depth >= limits.max_ns_depth {
            return Err(DnsError::Limit {
                name: zone.clone(),
                what: Cap::NsDepth,
                limit: limits.max_ns_depth,
            });
        }
        let mut names = delegation.nameservers.clone();
        names.shuffle(&mut rand::rng());
        let mut failures = Vec::new();
        for ns in names.iter().take(NS_NAMES_TO_RESOLVE) {
            // A name server inside the zone it serves needs glue; without it we cannot reach it.
            if zone.zone_of(ns) {
                continue;
            }
            let mut types = vec![RecordType::A];
            if limits.use_ipv6 {
                types.push(RecordType::AAAA);
            }
            for record_type in types {
                match resolve(client, ns, record_type, deadline, budget, depth + 1).await {
                    Ok(step) => {
                        addresses.extend(step.answer.records.iter().filter_map(|r| match &r.data {
                            RData::A(a) => Some(SocketAddr::new(IpAddr::V4(a.0), port)),
                            RData::AAAA(aaaa) => Some(SocketAddr::new(IpAddr::V6(aaaa.0), port)),
                            _ => None,
                        }))
                    }
                    Err(
                        error @ DnsError::Limit {
                            what: Cap::Queries, ..
                        },
                    ) => return Err(error),
                    Err(error) => failures.push(error),
                }
            }
        }
        if addresses.is_empty() {
            return Err(DnsError::NoServers { zone: zone.clone() });
        }
    }
    // Spread load and avoid always hitting a dead first server; IPv4 first, since a host
    // without IPv6 fails those fast anyway.
    addresses.shuffle(&mut rand::rng());
    addresses.sort_by_key(SocketAddr::is_ipv6);
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{MessageType, OpCode};
    use hickory_proto::rr::rdata::{A, NS, SOA};

    use super::*;

    fn n(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn message(authoritative: bool, rcode: ResponseCode) -> Message {
        let mut message = Message::new(1, MessageType::Response, OpCode::Query);
        message.metadata.authoritative = authoritative;
        message.metadata.response_code = rcode;
        message
    }

    fn soa(owner: &str) -> Record {
        Record::from_rdata(
            n(owner),
            300,
            RData::SOA(SOA::new(n("ns."), n("h."), 1, 1, 1, 1, 60)),
        )
    }

    fn ns(owner: &str, target: &str) -> Record {
        Record::from_rdata(n(owner), 3600, RData::NS(NS(n(target))))
    }

    fn a(owner: &str) -> Record {
        Record::from_rdata(n(owner), 600, RData::A(A::new(127, 0, 0, 9)))
    }

    #[test]
    fn classifies_answers_denials_and_referrals() {
        let zone = n("com.");
        let name = n("www.example.com.");
        let mut answer = message(true, ResponseCode::NoError);
        answer.add_answer(a("www.example.com."));
        assert!(
            matches!(classify(&answer, &zone, &name, RecordType::A, true), Classified::Answer(r, _) if r.len() == 1)
        );

        let mut not_aa = message(false, ResponseCode::NoError);
        not_aa.add_answer(a("www.example.com."));
        assert!(matches!(
            classify(&not_aa, &zone, &name, RecordType::A, true),
            Classified::Unusable(AttemptFailure::Lame)
        ));

        let mut nx = message(true, ResponseCode::NXDomain);
        nx.add_authority(soa("com."));
        assert!(
            matches!(classify(&nx, &zone, &name, RecordType::A, true), Classified::NxDomain(ttl, _) if ttl == Duration::from_secs(60))
        );

        let mut nodata = message(true, ResponseCode::NoError);
        nodata.add_authority(soa("com."));
        assert!(matches!(
            classify(&nodata, &zone, &name, RecordType::A, true),
            Classified::NoData(..)
        ));

        let mut referral = message(false, ResponseCode::NoError);
        referral.add_authority(ns("example.com.", "ns1.example.com."));
        referral.add_authority(ns("example.com.", "ns.other.net."));
        referral.add_additional(a("ns1.example.com."));
        referral.add_additional(a("ns.other.net."));
        match classify(&referral, &zone, &name, RecordType::A, true) {
            Classified::Referral {
                child,
                delegation,
                ttl,
            } => {
                assert_eq!(child, n("example.com."));
                assert_eq!(
                    delegation.nameservers,
                    vec![n("ns1.example.com."), n("ns.other.net.")]
                );
                // ns.other.net is outside com.'s bailiwick: its glue is dropped.
                assert_eq!(
                    delegation.addresses,
                    vec![(n("ns1.example.com."), IpAddr::from([127, 0, 0, 9]))]
                );
                assert_eq!(ttl, Duration::from_secs(3600));
            }
            other => panic!("{other:?}"),
        }

        let mut upward = message(false, ResponseCode::NoError);
        upward.add_authority(ns(".", "a.root.test."));
        assert!(matches!(
            classify(&upward, &zone, &name, RecordType::A, true),
            Classified::Unusable(AttemptFailure::Lame)
        ));

        let mut sideways = message(false, ResponseCode::NoError);
        sideways.add_authority(ns("other.com.", "ns.other.com."));
        assert!(matches!(
            classify(&sideways, &zone, &name, RecordType::A, true),
            Classified::Unusable(AttemptFailure::Lame)
        ));

        // A parent asked for a child's DS must answer it (RFC 4035 §3.1.4.1); a referral to
        // the child would send the DS question to the child's apex.
        let child = n("example.com.");
        assert!(matches!(
            classify(&referral, &zone, &child, RecordType::DS, true),
            Classified::Unusable(AttemptFailure::Lame)
        ));
        // The same referral for a name below the child is an ordinary referral, for DS too.
        assert!(matches!(
            classify(
                &referral,
                &zone,
                &n("sub.example.com."),
                RecordType::DS,
                true
            ),
            Classified::Referral { .. }
        ));

        let servfail = message(false, ResponseCode::ServFail);
        assert!(matches!(
            classify(&servfail, &zone, &name, RecordType::A, true),
            Classified::Unusable(AttemptFailure::Rcode("SERVFAIL"))
        ));
    }
}
