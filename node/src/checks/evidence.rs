//! What a check saw, as structured data: DNS lookups with their records (owner, TTL, class,
//! type, rdata), the rcode as a number and a failed lookup as its typed error. Rendered to the
//! v1 wire `Evidence` (presentation strings) only when a result is signed.

use std::net::SocketAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use mpic_protocol::{DnsEvidence, DnssecStatus, HttpEvidence, LookupFailurePermit, TlsEvidence};

use crate::dns::{DnsError, Lookup};

/// The evidence of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    /// DNS lookups made, in order.
    pub dns: Vec<DnsLookupEvidence>,
    /// HTTP requests made (one per redirect hop), in order.
    pub http: Vec<HttpEvidence>,
    /// The TLS-ALPN-01 handshake, if one was made.
    pub tls: Option<TlsEvidence>,
    /// Present only on a CAA `pass` given under the BR 3.2.2.8 lookup-failure carve-out.
    pub permitted_by_lookup_failure: Option<LookupFailurePermit>,
}

impl Evidence {
    /// The v1 wire form (records in presentation format, rcodes by name).
    pub fn to_wire(&self) -> mpic_protocol::Evidence {
        mpic_protocol::Evidence {
            dns: self.dns.iter().map(DnsLookupEvidence::to_wire).collect(),
            http: self.http.clone(),
            tls: self.tls.clone(),
            permitted_by_lookup_failure: self.permitted_by_lookup_failure.clone(),
        }
    }
}

/// Serialized in its v1 wire form (the `check --json` output).
impl serde::Serialize for Evidence {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_wire().serialize(serializer)
    }
}

/// One DNS lookup a check made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsLookupEvidence {
    /// The name queried, in presentation form (`www.example.com.`).
    pub name: String,
    /// The type queried.
    pub record_type: RecordType,
    /// What came back.
    pub result: LookupResult,
}

/// What a lookup came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupResult {
    /// An answer (NOERROR, NXDOMAIN, ...).
    Answered(DnsAnswer),
    /// No answer: the lookup failed.
    Failed(DnsError),
}

/// An answer to one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The response code of the final name.
    pub rcode: ResponseCode,
    /// The CNAMEs followed, then the RRset of the type asked.
    pub records: Vec<DnsRecord>,
    /// DNSSEC status of the answer (`None` when validation is off).
    pub dnssec: Option<DnssecStatus>,
    /// The server that gave the final answer (`None` when it came from the cache).
    pub server: Option<SocketAddr>,
}

/// One resource record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// The owner name.
    pub owner: Name,
    /// The TTL, seconds.
    pub ttl: u32,
    /// The class (IN).
    pub class: DNSClass,
    /// The record data (its type is the record's type).
    pub rdata: RData,
}

impl DnsRecord {
    /// The record's type.
    pub fn record_type(&self) -> RecordType {
        self.rdata.record_type()
    }
}

impl From<&Record> for DnsRecord {
    fn from(record: &Record) -> Self {
        Self {
            owner: record.name.clone(),
            ttl: record.ttl,
            class: record.dns_class,
            rdata: record.data.clone(),
        }
    }
}

/// Presentation format, as RFC 1035 §5.1 master files write it: `name ttl class type rdata`.
impl std::fmt::Display for DnsRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner,
            self.ttl,
            self.class,
            self.record_type(),
            self.rdata
        )
    }
}

impl DnsLookupEvidence {
    /// The evidence of a lookup that was answered.
    pub fn answered(lookup: &Lookup) -> Self {
        Self {
            name: lookup.name.to_string(),
            record_type: lookup.record_type,
            result: LookupResult::Answered(DnsAnswer {
                rcode: lookup.rcode,
                records: lookup
                    .chain
                    .iter()
                    .chain(lookup.records.iter())
                    .map(DnsRecord::from)
                    .collect(),
                dnssec: lookup.dnssec,
                server: lookup.server,
            }),
        }
    }

    /// The evidence of a lookup of `name` (presentation form) that failed.
    pub fn failed(name: String, record_type: RecordType, error: DnsError) -> Self {
        Self {
            name,
            record_type,
            result: LookupResult::Failed(error),
        }
    }

    /// The DNSSEC status of the answer (`None` for a failure or with validation off).
    pub fn dnssec(&self) -> Option<DnssecStatus> {
        match &self.result {
            LookupResult::Answered(answer) => answer.dnssec,
            LookupResult::Failed(_) => None,
        }
    }

    /// The response code as its RFC 1035 §4.1.1 / RFC 6895 number (`None` for a failure).
    pub fn rcode(&self) -> Option<u16> {
        match &self.result {
            LookupResult::Answered(answer) => Some(u16::from(answer.rcode)),
            LookupResult::Failed(_) => None,
        }
    }

    /// The answer's records (none for a failure).
    pub fn records(&self) -> &[DnsRecord] {
        match &self.result {
            LookupResult::Answered(answer) => &answer.records,
            LookupResult::Failed(_) => &[],
        }
    }

    /// The v1 wire form: records in presentation format, the rcode by name, a failure as
    /// rcode `TIMEOUT` or `FAILED` with the error as its one record.
    pub fn to_wire(&self) -> DnsEvidence {
        let (rcode, records, dnssec, server) = match &self.result {
            LookupResult::Answered(answer) => (
                crate::dns::rcode_name(answer.rcode),
                answer.records.iter().map(ToString::to_string).collect(),
                answer.dnssec,
                answer.server.map(|server| server.to_string()),
            ),
            LookupResult::Failed(error) => (
                if error.is_timeout() {
                    "TIMEOUT".to_owned()
                } else {
                    "FAILED".to_owned()
                },
                vec![error.to_string()],
                None,
                None,
            ),
        };
        DnsEvidence {
            name: self.name.clone(),
            record_type: self.record_type.to_string(),
            rcode,
            records,
            dnssec,
            server,
        }
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::rdata::{A, CNAME};

    use super::*;

    fn lookup() -> Lookup {
        let name = Name::from_ascii("www.example.test.").unwrap();
        let target = Name::from_ascii("host.example.test.").unwrap();
        Lookup {
            name: name.clone(),
            record_type: RecordType::A,
            rcode: ResponseCode::NoError,
            records: vec![Record::from_rdata(
                target.clone(),
                300,
                RData::A(A("192.0.2.7".parse().unwrap())),
            )]
            .into(),
            chain: vec![Record::from_rdata(name, 60, RData::CNAME(CNAME(target)))],
            dnssec: Some(DnssecStatus::Insecure),
            dnssec_detail: None,
            server: Some("192.0.2.53:53".parse().unwrap()),
        }
    }

    #[test]
    fn an_answer_renders_byte_for_byte_as_the_lookup_did() {
        let lookup = lookup();
        let typed = DnsLookupEvidence::answered(&lookup);
        assert_eq!(typed.to_wire(), lookup.evidence());
        assert_eq!(typed.rcode(), Some(0));
        assert_eq!(typed.dnssec(), Some(DnssecStatus::Insecure));
    }

    #[test]
    fn a_failure_renders_as_timeout_or_failed_with_the_error() {
        let error = DnsError::DeadlineExceeded {
            name: Name::from_ascii("www.example.test").unwrap(),
            record_type: RecordType::TXT,
        };
        let typed = DnsLookupEvidence::failed("www.example.test.".into(), RecordType::TXT, error);
        let wire = typed.to_wire();
        assert_eq!(typed.rcode(), None);
        assert_eq!(wire.rcode, "TIMEOUT");
        assert_eq!(wire.record_type, "TXT");
        assert_eq!(wire.records.len(), 1);
        assert_eq!(wire.server, None);
    }
}
