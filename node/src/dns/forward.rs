//! Forward mode: ask the configured recursive resolvers (RD=1) in order; SERVFAIL, REFUSED, a
//! timeout or a network error moves on to the next, for up to two rounds within the deadline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::time::Instant;

use super::cache::Cached;
use super::transport::TransportError;
use super::wire::QuerySpec;
use super::{Attempt, AttemptFailure, Budget, DnsClient, DnsError, Step, min_ttl, negative_ttl};

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
    let spec = QuerySpec {
        name: name.clone(),
        record_type,
        recursion_desired: true,
        dnssec_ok: false,
        checking_disabled: false,
    };
    let mut attempts = Vec::new();
    for &server in upstreams.iter().cycle().take(upstreams.len() * ROUNDS) {
        if Instant::now() >= deadline {
            break;
        }
        budget.spend(name)?;
        let query_deadline = deadline.min(Instant::now() + client.inner.limits.query_timeout);
        let exchange = match client
            .inner
            .transport
            .exchange(server, &spec, query_deadline)
            .await
        {
            Ok(exchange) => exchange,
            Err(error) => {
                attempts.push(Attempt {
                    server,
                    failure: failure_of(&error),
                });
                continue;
            }
        };
        let message = exchange.message;
        match message.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => {}
            _ => {
                attempts.push(Attempt {
                    server,
                    failure: AttemptFailure::Rcode(super::transport::rcode_label(&message)),
                });
                continue;
            }
        }
        // Trust the resolver's whole answer section (it did the work): cache each RRset so the
        // rest of a CNAME chain is answered without asking again.
        let mut rrsets: HashMap<(Name, RecordType), Vec<Record>> = HashMap::new();
        for record in &message.answers {
            rrsets
                .entry((record.name.to_lowercase(), record.record_type()))
                .or_default()
                .push(record.clone());
        }
        let key_type = |t: RecordType| (name.to_lowercase(), t);
        let at_name = rrsets
            .get(&key_type(record_type))
            .or_else(|| rrsets.get(&key_type(RecordType::CNAME)))
            .cloned()
            .unwrap_or_default();
        for ((owner, rtype), records) in &rrsets {
            client.inner.cache.store_answer(
                owner,
                *rtype,
                Cached::Records(Arc::new(records.clone())),
                min_ttl(records),
            );
        }
        let rcode = message.metadata.response_code;
        if at_name.is_empty() {
            // NXDOMAIN applies to the end of any chain the resolver followed; only cache it for
            // the name itself when there was no chain.
            if message.answers.is_empty() {
                client.inner.cache.store_answer(
                    name,
                    record_type,
                    Cached::Negative(rcode),
                    negative_ttl(&message.authorities),
                );
            }
            let rcode = if message.answers.is_empty() {
                rcode
            } else {
                ResponseCode::NoError
            };
            return Ok(Step {
                rcode,
                records: Arc::new(Vec::new()),
                server: Some(server),
            });
        }
        if at_name.iter().any(|r| r.record_type() == RecordType::CNAME)
            && record_type != RecordType::CNAME
            && rcode == ResponseCode::NXDomain
        {
            // The chain ends in NXDOMAIN: remember that for its last target.
            if let Some(last) = last_target(&message.answers, name) {
                client.inner.cache.store_answer(
                    &last,
                    record_type,
                    Cached::Negative(rcode),
                    negative_ttl(&message.authorities),
                );
            }
        }
        return Ok(Step {
            rcode: ResponseCode::NoError,
            records: Arc::new(at_name),
            server: Some(server),
        });
    }
    if Instant::now() >= deadline && attempts.is_empty() {
        return Err(DnsError::DeadlineExceeded {
            name: name.to_string(),
            record_type,
        });
    }
    Err(DnsError::NoAnswer {
        name: name.to_string(),
        record_type,
        attempts,
    })
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
        TransportError::Network { source, .. } => AttemptFailure::Network(source.to_string()),
        TransportError::Malformed { .. } | TransportError::Encode(_) => AttemptFailure::Malformed,
    }
}
