//! A scripted resolver for the checks' I/O tests: it answers only the lookups a test scripted
//! and records every other one, so a test fails loudly when a check asks for something the
//! standard does not call for (see [`FakeResolver::assert_no_surprises`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mpic_protocol::DnssecStatus;
use tokio::time::Instant;

use crate::dns::dnssec::chain::Verdict;
use crate::dns::{Attempt, AttemptFailure, DnsError, Lookup, Resolver};

type Script = HashMap<(String, RecordType), Result<Lookup, DnsError>>;
type ZoneScript = HashMap<String, Verdict>;

/// Answers scripted lookups; records unexpected ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeResolver {
    script: Arc<Mutex<Script>>,
    zones: Arc<Mutex<ZoneScript>>,
    asked: Arc<Mutex<Vec<(String, RecordType)>>>,
    surprises: Arc<Mutex<Vec<(String, RecordType)>>>,
}

fn key(name: &str, record_type: RecordType) -> (String, RecordType) {
    (name.trim_end_matches('.').to_ascii_lowercase(), record_type)
}

/// A lookup result with these records (NOERROR, or NODATA when empty).
pub(crate) fn answer(name: &str, record_type: RecordType, data: Vec<RData>) -> Lookup {
    let owner = Name::from_ascii(format!("{}.", name.trim_end_matches('.'))).unwrap();
    Lookup {
        name: owner.clone(),
        record_type,
        rcode: ResponseCode::NoError,
        records: data
            .into_iter()
            .map(|rdata| Record::from_rdata(owner.clone(), 300, rdata))
            .collect(),
        chain: Vec::new(),
        dnssec: None,
        dnssec_detail: None,
        server: Some(SocketAddr::from(([127, 0, 0, 1], 53))),
    }
}

/// An NXDOMAIN result.
pub(crate) fn nxdomain(name: &str, record_type: RecordType) -> Lookup {
    Lookup {
        rcode: ResponseCode::NXDomain,
        ..answer(name, record_type, Vec::new())
    }
}

/// A failure as the resolver reports SERVFAIL from every server.
pub(crate) fn servfail(name: &str, record_type: RecordType) -> DnsError {
    DnsError::NoAnswer {
        name: Name::from_ascii(name).unwrap(),
        record_type,
        attempts: vec![Attempt {
            server: SocketAddr::from(([127, 0, 0, 1], 53)),
            failure: AttemptFailure::Rcode("SERVFAIL"),
        }],
    }
}

/// A failure as the resolver reports a deadline.
pub(crate) fn timeout(name: &str, record_type: RecordType) -> DnsError {
    DnsError::DeadlineExceeded {
        name: Name::from_ascii(name).unwrap(),
        record_type,
    }
}

impl FakeResolver {
    /// Scripts one lookup.
    pub(crate) fn on(
        &self,
        name: &str,
        record_type: RecordType,
        result: Result<Lookup, DnsError>,
    ) -> &Self {
        self.script
            .lock()
            .unwrap()
            .insert(key(name, record_type), result);
        self
    }

    /// Scripts an answer with a DNSSEC status.
    pub(crate) fn on_with_status(&self, mut lookup: Lookup, status: DnssecStatus) -> &Self {
        lookup.dnssec = Some(status);
        let name = lookup.name.to_string();
        self.on(&name, lookup.record_type, Ok(lookup))
    }

    /// Scripts the DNSSEC status of the zone holding `name` (the carve-out's proof).
    pub(crate) fn on_zone(&self, name: &str, status: DnssecStatus, detail: &str) -> &Self {
        let verdict = Verdict {
            status,
            detail: Some(detail.into()),
        };
        self.zones
            .lock()
            .unwrap()
            .insert(key(name, RecordType::DS).0, verdict);
        self
    }

    /// Every lookup made, in order (names lowercased without the trailing dot).
    pub(crate) fn asked(&self) -> Vec<(String, RecordType)> {
        self.asked.lock().unwrap().clone()
    }

    /// Panics if any lookup was not scripted.
    pub(crate) fn assert_no_surprises(&self) {
        let surprises = self.surprises.lock().unwrap();
        assert!(surprises.is_empty(), "unexpected lookups: {surprises:?}");
    }
}

impl Resolver for FakeResolver {
    async fn lookup(
        &self,
        name: &Name,
        record_type: RecordType,
        _deadline: Instant,
    ) -> Result<Lookup, DnsError> {
        let key = key(&name.to_string(), record_type);
        self.asked.lock().unwrap().push(key.clone());
        let scripted = self.script.lock().unwrap().get(&key).cloned();
        scripted.unwrap_or_else(|| {
            self.surprises.lock().unwrap().push(key.clone());
            Err(DnsError::NoServers { zone: name.clone() })
        })
    }

    async fn zone_status(&self, name: &Name, _deadline: Instant) -> Option<Verdict> {
        let key = key(&name.to_string(), RecordType::DS);
        self.asked.lock().unwrap().push(key.clone());
        let scripted = self.zones.lock().unwrap().get(&key.0).cloned();
        if scripted.is_none() {
            self.surprises.lock().unwrap().push(key);
        }
        scripted
    }
}
