//! DNS messages on the wire: build a query (random ID, EDNS0 with a 1232-byte payload, optional
//! 0x20 case randomisation) and accept only a response that matches it. Pure: no sockets, so
//! the matching path is fuzzed directly.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};

pub use super::lenient::Malformation;

/// EDNS0 UDP payload size we advertise: 1232 bytes avoids IP fragmentation on practically every
/// path (DNS Flag Day 2020), which also removes a spoofing vector.
pub const EDNS_PAYLOAD: u16 = 1232;

/// Largest DNS message over TCP (RFC 1035 §4.2.2: two-byte length).
pub const MAX_MESSAGE: usize = 65_535;

/// What to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySpec {
    /// The name.
    pub name: Name,
    /// The type.
    pub record_type: RecordType,
    /// Set RD: ask a recursive resolver (forward mode) to resolve for us.
    pub recursion_desired: bool,
    /// Set the EDNS DO bit (RFC 3225): ask for DNSSEC records.
    pub dnssec_ok: bool,
    /// Set CD (RFC 4035 §3.2.2): we validate ourselves, the upstream must not filter bogus data.
    pub checking_disabled: bool,
}

/// A query ready to send, with what its response must echo.
#[derive(Debug, Clone)]
pub struct OutgoingQuery {
    /// Message ID.
    pub id: u16,
    /// The question name as sent (with 0x20 casing when enabled).
    pub wire_name: Name,
    /// The question type.
    pub record_type: RecordType,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

/// Why a query could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode a query for {name} {record_type}: {source}")]
pub struct EncodeError {
    /// The name.
    pub name: Name,
    /// The type.
    pub record_type: RecordType,
    /// The encoder's error (boxed: this error travels inside every transport result).
    pub source: Box<hickory_proto::ProtoError>,
}

/// Why a received message is not the answer to our query. Each is counted and ignored; the
/// real answer may still arrive (RFC 5452 §9.1: match ID, question, and source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mismatch {
    /// Not a DNS message, and why it could not be read.
    Malformed(Malformation),
    /// A query, or another opcode.
    NotResponse,
    /// Another message ID.
    Id,
    /// Another question (name with exact case when 0x20 is on, type or class).
    Question,
    /// From another address or port than the server asked (the transport checks this).
    Source,
}

impl Mismatch {
    /// The metric label (`mpic_node_dns_mismatched_responses_total{reason}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::Malformed(_) => "malformed",
            Mismatch::NotResponse => "not_response",
            Mismatch::Id => "id",
            Mismatch::Question => "question",
            Mismatch::Source => "source",
        }
    }
}

/// Builds a query. `case_bits` randomises the case of the name's letters (0x20,
/// draft-vixie-dnsext-dns0x20): bit *i* set upper-cases the *i*-th letter.
pub fn build_query(
    spec: &QuerySpec,
    id: u16,
    case_bits: Option<u64>,
) -> Result<OutgoingQuery, EncodeError> {
    let error = |source| EncodeError {
        name: spec.name.clone(),
        record_type: spec.record_type,
        source: Box::new(source),
    };
    let wire_name = match case_bits {
        Some(bits) => randomise_case(&spec.name, bits).map_err(error)?,
        None => spec.name.clone(),
    };
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = spec.recursion_desired;
    message.metadata.checking_disabled = spec.checking_disabled;
    let mut query = Query::query(wire_name.clone(), spec.record_type);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    edns.set_dnssec_ok(spec.dnssec_ok);
    message.set_edns(edns);
    let mut bytes = message.to_vec().map_err(error)?;
    // The encoder reserves 512 bytes; a query is ~60. It is held until the answer comes, so at
    // 10,000 queries in flight the slack alone was ~4.5 MB.
    bytes.shrink_to_fit();
    Ok(OutgoingQuery {
        id,
        wire_name,
        record_type: spec.record_type,
        bytes,
    })
}

fn randomise_case(name: &Name, bits: u64) -> Result<Name, hickory_proto::ProtoError> {
    let mut index = 0u32;
    let text: String = name
        .to_ascii()
        .chars()
        .map(|c| {
            if c.is_ascii_alphabetic() {
                let upper = bits.rotate_right(index % 64) & 1 == 1;
                index += 1;
                if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect();
    Name::from_ascii(text)
}

/// Parses `bytes` and checks it answers `query`: a response, same ID, same single question
/// (name compared with exact case, so 0x20 randomisation is enforced), type and class IN.
pub fn match_response(query: &OutgoingQuery, bytes: &[u8]) -> Result<Message, Mismatch> {
    // Cheap checks on the raw header first: most spoofed packets fail here.
    if bytes.len() < 12 {
        return Err(Mismatch::Malformed(Malformation::ShortHeader));
    }
    if u16::from_be_bytes([bytes[0], bytes[1]]) != query.id {
        return Err(Mismatch::Id);
    }
    // Leniently: one record with RDATA hickory refuses must not hide the rest (RFC 8659 §4.1).
    let message = super::lenient::decode(bytes).map_err(Mismatch::Malformed)?;
    if message.metadata.message_type != MessageType::Response
        || message.metadata.op_code != OpCode::Query
    {
        return Err(Mismatch::NotResponse);
    }
    match message.queries.as_slice() {
        [question]
            if question.query_type() == query.record_type
                && question.query_class() == DNSClass::IN
                && question.name().eq_case(&query.wire_name) =>
        {
            // RFC 1035 §3.2.4/§6.2: an answer to a class IN question is made of class IN
            // records. Anything else a server put in (a CHAOS TXT beside the IN one, say) is
            // dropped here, before any check could read it as data.
            let mut message = message;
            let in_class = |record: &Record| {
                record.dns_class == DNSClass::IN
                    || matches!(
                        record.record_type(),
                        RecordType::OPT | RecordType::TSIG | RecordType::SIG
                    )
            };
            message.answers.retain(in_class);
            message.authorities.retain(in_class);
            message.additionals.retain(in_class);
            Ok(message)
        }
        // RFC 1035 allows an empty question section in some error responses (e.g. FORMERR);
        // without a question it proves nothing about which query it answers: ignore it.
        _ => Err(Mismatch::Question),
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};

    use super::*;

    fn spec() -> QuerySpec {
        QuerySpec {
            name: Name::from_ascii("www.Example.com.").unwrap(),
            record_type: RecordType::A,
            recursion_desired: false,
            dnssec_ok: true,
            checking_disabled: true,
        }
    }

    fn response_to(query: &OutgoingQuery, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let mut message = Message::new(query.id, MessageType::Response, OpCode::Query);
        message.add_query(Query::query(query.wire_name.clone(), query.record_type));
        message.metadata.response_code = ResponseCode::NoError;
        message.add_answer(Record::from_rdata(
            query.wire_name.clone(),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        edit(&mut message);
        message.to_vec().unwrap()
    }

    #[test]
    fn query_carries_edns_do_cd_and_the_id() {
        let query = build_query(&spec(), 0xbeef, None).unwrap();
        let message = Message::from_vec(&query.bytes).unwrap();
        assert_eq!(message.metadata.id, 0xbeef);
        assert!(message.metadata.checking_disabled);
        assert!(!message.metadata.recursion_desired);
        let edns = message.edns.as_ref().unwrap();
        assert_eq!(edns.max_payload(), EDNS_PAYLOAD);
        assert!(edns.flags().dnssec_ok);
    }

    #[test]
    fn case_randomisation_keeps_the_name_and_changes_the_case() {
        let query = build_query(&spec(), 1, Some(0b1010_1010_1010)).unwrap();
        assert_eq!(query.wire_name, spec().name, "same name ignoring case");
        assert_eq!(query.wire_name.to_ascii(), "wWw.ExAmPlE.cOm.");
        let all_upper = build_query(&spec(), 1, Some(u64::MAX)).unwrap();
        assert_eq!(all_upper.wire_name.to_ascii(), "WWW.EXAMPLE.COM.");
    }

    #[test]
    fn records_of_another_class_are_dropped() {
        let query = build_query(&spec(), 7, None).unwrap();
        let bytes = response_to(&query, |m| {
            let mut chaos = Record::from_rdata(
                query.wire_name.clone(),
                60,
                RData::A(A::new(198, 51, 100, 1)),
            );
            chaos.dns_class = DNSClass::CH;
            m.add_answer(chaos.clone());
            m.add_authority(chaos.clone());
            m.add_additional(chaos);
        });
        let message = match_response(&query, &bytes).unwrap();
        let answers: Vec<_> = message.answers.iter().map(|r| r.dns_class).collect();
        assert_eq!(answers, [DNSClass::IN]);
        assert!(message.authorities.is_empty());
        assert!(message.additionals.is_empty());
    }

    #[test]
    fn only_the_matching_response_is_accepted() {
        let query = build_query(&spec(), 4242, Some(0b0110)).unwrap();
        assert!(match_response(&query, &response_to(&query, |_| {})).is_ok());
        type Edit = fn(&mut Message);
        let cases: [(&str, Edit, Mismatch); 5] = [
            (
                "other id",
                |m| m.metadata.id = m.metadata.id.wrapping_add(1),
                Mismatch::Id,
            ),
            (
                "a query",
                |m| m.metadata.message_type = MessageType::Query,
                Mismatch::NotResponse,
            ),
            (
                "other type",
                |m| {
                    m.queries[0].set_query_type(RecordType::AAAA);
                },
                Mismatch::Question,
            ),
            (
                "other case (0x20)",
                |m| {
                    let lower = m.queries[0].name().to_lowercase();
                    m.queries[0].set_name(lower);
                },
                Mismatch::Question,
            ),
            ("no question", |m| m.queries.clear(), Mismatch::Question),
        ];
        for (name, edit, expected) in cases {
            assert_eq!(
                match_response(&query, &response_to(&query, edit)).unwrap_err(),
                expected,
                "{name}"
            );
        }
        assert_eq!(
            match_response(&query, &[0u8; 5]).unwrap_err(),
            Mismatch::Malformed(Malformation::ShortHeader)
        );
        for (filler, class) in [
            (0xff, Malformation::PastTheEnd),
            (0x7f, Malformation::Garbage),
        ] {
            let mut garbage = query.id.to_be_bytes().to_vec();
            garbage.extend_from_slice(&[filler; 40]);
            assert_eq!(
                match_response(&query, &garbage).unwrap_err(),
                Mismatch::Malformed(class),
                "{filler:#x}"
            );
        }
    }
}
