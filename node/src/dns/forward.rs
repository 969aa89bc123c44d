//! Forward mode: ask the configured recursive resolvers (RD=1) in order; SERVFAIL, REFUSED, a
//! timeout or a network error moves on to the next, for up to two rounds within the deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::time::Instant;

use super::transport::TransportError;
use super::wire::QuerySpec;
use super::{
    Answer, Attempt, AttemptFailure, Budget, DnsClient, DnsError, Step, denial_records, min_ttl,
    negative_ttl, rrsigs_at,
};

/// Rounds over the upstream list: a second round covers a dropped UDP packet.
const ROUNDS: usize = 2;

pub(super) async fn resolve(
    client: &DnsClient,
    upstreams: &[SocketAddr],
    name: &Name,
    record_type: RecordType,
    deadline: Instant,
    budget: &mut Budget,
) -> Result<Step, DnsError> {
    let dnssec = client.inner.dnssec;
    // With validation on: DO to get signatures, CD so the upstream hands over bogus data for us
    // to judge (RFC 4035 §3.2.2) instead of a bare SERVFAIL.
    let spec = QuerySpec {
        name: name.clone(),
        record_type,
        recursion_desired: true,
        dnssec_ok: dnssec,
        checking_disabled: dnssec,
    };
    let mut attempts = Vec::new();
    let mut held_back = None;
    for &server in upstreams.iter().cycle().take(upstreams.len() * ROUNDS) {
        if Instant::now() >= deadline {
            break;
        }
        budget.spend(name)?;
        let exchange = match client.ask(server, &spec, deadline).await {
            Ok(Ok(exchange)) => exchange,
            Ok(Err(error)) => {
                attempts.push(Attempt {
                    server,
                    failure: failure_of(&error),
                });
                continue;
            }
            Err(limit) => {
                held_back = Some((server, limit));
                continue;
            }
        };
        let message = exchange.message;
        match message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {
                return Ok(accept(client, name, record_type, &message, server));
            }
            _ => attempts.push(Attempt {
                server,
                failure: AttemptFailure::Rcode(super::transport::rcode_label(&message)),
            }),
        }
    }
    if attempts.is_empty() && (held_back.is_some() || Instant::now() >= deadline) {
        return Err(super::iterate::unanswered(name, record_type, held_back));
    }
    Err(DnsError::NoAnswer {
        name: name.clone(),
        record_type,
        attempts,
    })
}

/// Takes a NOERROR or NXDOMAIN answer from `server`: caches every RRset of it (and how a CNAME
/// chain it followed ends) and returns the step for `name`.
fn accept(
    client: &DnsClient,
    name: &Name,
    record_type: RecordType,
    message: &Message,
    server: SocketAddr,
) -> Step {
    let rrsets = cache_rrsets(client, message);
    let lower = name.to_lowercase();
    let at_name = rrsets
        .get(&(lower.clone(), record_type))
        .map(|records| (records, record_type))
        .or_else(|| {
            rrsets
                .get(&(lower.clone(), RecordType::CNAME))
                .map(|records| (records, RecordType::CNAME))
        });
    let rcode = message.metadata.response_code;
    let denial = || {
        Arc::new(Answer::negative(
            rcode,
            denial_records(&message.authorities),
        ))
    };
    let Some((records, found_type)) = at_name else {
        // A denial for the name itself (a chain the resolver followed ends elsewhere, and
        // its end is cached under the last target below).
        let answer = denial();
        client.inner.cache.store_answer(
            name,
            record_type,
            Arc::clone(&answer),
            negative_ttl(&message.authorities),
        );
        return Step {
            answer,
            server: Some(server),
        };
    };
    if found_type == RecordType::CNAME && record_type != RecordType::CNAME {
        // Remember how the chain ends (NXDOMAIN or NODATA) for its last target.
        if let Some(last) = last_target(&message.answers, name) {
            let last_lower = last.to_lowercase();
            let ends_here = !rrsets.contains_key(&(last_lower.clone(), record_type))
                && !rrsets.contains_key(&(last_lower, RecordType::CNAME));
            if ends_here {
                client.inner.cache.store_answer(
                    &last,
                    record_type,
                    denial(),
                    negative_ttl(&message.authorities),
                );
            }
        }
    }
    let answer = Arc::new(
        Answer::positive(
            records.clone(),
            rrsigs_at(&message.answers, name, &[found_type]),
        )
        .with_proof(message),
    );
    Step {
        answer,
        server: Some(server),
    }
}

/// RRsets of an answer section, keyed by lower-cased owner and type.
type RRsets = HashMap<(Name, RecordType), Vec<Record>>;

/// Trusts the resolver's whole answer section (it did the work): caches each RRset, with its
/// signatures, so the rest of a CNAME chain is answered without asking again.
fn cache_rrsets(client: &DnsClient, message: &Message) -> RRsets {
    let mut rrsets = RRsets::new();
    for record in message
        .answers
        .iter()
        .filter(|r| r.record_type() != RecordType::RRSIG)
    {
        rrsets
            .entry((record.name.to_lowercase(), record.record_type()))
            .or_default()
            .push(record.clone());
    }
    for ((owner, rtype), records) in &rrsets {
        let rrsigs = rrsigs_at(&message.answers, owner, &[*rtype]);
        let ttl = min_ttl(records);
        client.inner.cache.store_answer(
            owner,
            *rtype,
            Arc::new(Answer::positive(records.clone(), rrsigs).with_proof(message)),
            ttl,
        );
    }
    rrsets
}

/// Follows a CNAME chain inside one answer section from `name` to its last target.
fn last_target(answers: &[Record], name: &Name) -> Option<Name> {
    let mut current = name.clone();
    // At most one hop per record: a looping chain cannot spin here.
    for _ in 0..=answers.len() {
        let next = answers.iter().find_map(|record| match &record.data {
            hickory_proto::rr::RData::CNAME(target) if record.name.eq(&current) => {
                Some(target.0.clone())
            }
            _ => None,
        });
        match next {
            Some(next) => current = next,
            None => return Some(current),
        }
    }
    None
}

pub(super) fn failure_of(error: &TransportError) -> AttemptFailure {
    match error {
        TransportError::Timeout { .. } => AttemptFailure::Timeout,
        TransportError::NoValidAnswer {
            waited, ignored, ..
        } => AttemptFailure::NoValidAnswer {
            ignored: ignored.clone(),
            waited: *waited,
        },
        TransportError::Network { source, .. } => AttemptFailure::Network(source.clone()),
        TransportError::Malformed { .. } | TransportError::Encode(_) => AttemptFailure::Malformed,
        TransportError::Truncated { .. } => AttemptFailure::Truncated,
    }
}
