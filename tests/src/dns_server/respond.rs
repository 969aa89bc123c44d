//! What the fixture server sends for one received message: decode it, answer it from the
//! catalog, apply the chosen [`Behaviour`], and size each reply for its transport.
//!
//! Pure apart from the caller's clock: the server loops do the sleeping and sending.

use std::time::Duration;

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::Behaviour;
use super::catalog::Catalog;

/// The EDNS UDP payload size the server advertises, and the most it sends over UDP whatever
/// the client advertises: the DNS Flag Day 2020 value, which avoids IP fragmentation.
pub(super) const MAX_UDP_PAYLOAD: u16 = 1232;

/// The UDP limit for a query without EDNS (RFC 1035 §4.2.1).
const CLASSIC_UDP_PAYLOAD: usize = 512;

/// The TCP limit: what the two-byte length prefix can express (RFC 1035 §4.2.2).
const MAX_TCP_MESSAGE: usize = u16::MAX as usize;

/// Size of a DNS header (RFC 1035 §4.1.1).
const HEADER_LEN: usize = 12;

/// `Oversized` adds a TXT record of this many 255-byte strings (about 1.5 KB), more than
/// [`MAX_UDP_PAYLOAD`], so every UDP reply must truncate.
const PADDING_STRINGS: usize = 6;

/// Length of a `Garbage` reply.
const GARBAGE_LEN: usize = 48;

/// The transport a message arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transport {
    /// A UDP datagram.
    Udp,
    /// A length-prefixed message on a TCP connection.
    Tcp,
}

/// A received message, classified.
#[derive(Debug)]
pub(super) enum Request {
    /// Not worth an answer: shorter than a header, or itself a response (never answer those,
    /// so two servers cannot ping-pong).
    Ignore,
    /// Undecodable past the header: the FORMERR header to send back.
    Malformed(Vec<u8>),
    /// A decoded query.
    Query(Message),
}

/// What to send for one query.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// How long to wait before sending anything.
    pub(super) delay: Duration,
    /// The messages, in order.
    pub(super) sends: Vec<Outgoing>,
}

/// One message to send.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// From the socket the query arrived on (UDP), or on its connection (TCP).
    Reply(Vec<u8>),
    /// From a second UDP socket with another port; over TCP it is not sent at all.
    FromOtherPort(Vec<u8>),
}

/// Classifies a received message. Never panics, whatever the bytes.
pub(super) fn parse(bytes: &[u8]) -> Request {
    let &[id_high, id_low, flags, ..] = bytes else {
        return Request::Ignore;
    };
    if bytes.len() < HEADER_LEN || flags & 0x80 != 0 {
        return Request::Ignore;
    }
    match Message::from_vec(bytes) {
        Ok(query) => Request::Query(query),
        // QR=1, the opcode and RD copied, RCODE=FORMERR (1), no sections.
        Err(_) => Request::Malformed(vec![
            id_high,
            id_low,
            0x80 | (flags & 0x79),
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ]),
    }
}

/// The messages to send for `query` under `behaviour`. `seed` feeds `Garbage`.
pub(super) fn plan(
    catalog: &Catalog,
    query: &Message,
    behaviour: &Behaviour,
    transport: Transport,
    seed: u64,
) -> Plan {
    let limit = match transport {
        Transport::Udp => udp_limit(query),
        Transport::Tcp => MAX_TCP_MESSAGE,
    };
    let reply = |message: &Message| Outgoing::Reply(encode(message, limit));
    let with_id = |message: &Message, id: u16| {
        let mut message = message.clone();
        message.metadata.id = id;
        Outgoing::Reply(encode(&message, limit))
    };
    let wrong_id = query.metadata.id.wrapping_add(1);
    let sends = match behaviour {
        Behaviour::Normal | Behaviour::Delay(_) => vec![reply(&answer(catalog, query))],
        Behaviour::Drop => Vec::new(),
        Behaviour::Truncate => match transport {
            Transport::Udp => vec![Outgoing::Reply(encode(
                &truncated(&answer(catalog, query)),
                limit,
            ))],
            Transport::Tcp => vec![reply(&answer(catalog, query))],
        },
        Behaviour::WrongId => vec![with_id(&answer(catalog, query), wrong_id)],
        Behaviour::WrongQuestion => {
            let mut response = answer(catalog, query);
            for question in &mut response.queries {
                let wrong = question
                    .name()
                    .prepend_label("x")
                    .unwrap_or_else(|_| Name::root());
                question.set_name(wrong);
            }
            vec![reply(&response)]
        }
        Behaviour::SpoofThenAnswer => {
            let response = answer(catalog, query);
            let mut sends = vec![with_id(&response, wrong_id)];
            if transport == Transport::Udp {
                sends.push(Outgoing::FromOtherPort(encode(&response, limit)));
            }
            sends.push(reply(&response));
            sends
        }
        Behaviour::FromOtherPort => vec![Outgoing::FromOtherPort(encode(
            &answer(catalog, query),
            limit,
        ))],
        Behaviour::ServFail => vec![reply(&skeleton(query, ResponseCode::ServFail))],
        Behaviour::Refused => vec![reply(&skeleton(query, ResponseCode::Refused))],
        Behaviour::NotImp => vec![reply(&skeleton(query, ResponseCode::NotImp))],
        Behaviour::FormErr => vec![reply(&skeleton(query, ResponseCode::FormErr))],
        // NOERROR, AA=0, nothing in any section: neither an answer nor a referral.
        Behaviour::Lame => vec![reply(&skeleton(query, ResponseCode::NoError))],
        Behaviour::Oversized => {
            let mut response = answer(catalog, query);
            if let Some(question) = query.queries.first() {
                let padding = vec!["x".repeat(255); PADDING_STRINGS];
                response.additionals.push(Record::from_rdata(
                    question.name().clone(),
                    0,
                    RData::TXT(TXT::new(padding)),
                ));
            }
            vec![reply(&response)]
        }
        Behaviour::Garbage => vec![Outgoing::Reply(garbage(query.metadata.id, seed))],
    };
    let delay = match behaviour {
        Behaviour::Delay(delay) => *delay,
        _ => Duration::ZERO,
    };
    Plan { delay, sends }
}

/// The most a UDP reply to `query` may hold: the client's EDNS payload size (at least 512),
/// capped at [`MAX_UDP_PAYLOAD`]; 512 without EDNS.
fn udp_limit(query: &Message) -> usize {
    match &query.edns {
        Some(edns) => usize::from(edns.max_payload().min(MAX_UDP_PAYLOAD)).max(CLASSIC_UDP_PAYLOAD),
        None => CLASSIC_UDP_PAYLOAD,
    }
}

/// The skeleton of every reply: id, opcode, RD and CD copied, QR set, the question copied,
/// and an OPT record (payload [`MAX_UDP_PAYLOAD`], DO echoed) if the query had one.
fn skeleton(query: &Message, rcode: ResponseCode) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.checking_disabled = query.metadata.checking_disabled;
    response.metadata.response_code = rcode;
    response.queries.clone_from(&query.queries);
    if let Some(request_edns) = &query.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(request_edns.flags().dnssec_ok);
        response.edns = Some(edns);
    }
    response
}

/// The authoritative reply to `query`, or the error a well-behaved server gives for a query
/// it cannot answer.
fn answer(catalog: &Catalog, query: &Message) -> Message {
    if query.metadata.op_code != OpCode::Query {
        return skeleton(query, ResponseCode::NotImp);
    }
    // RFC 6891 §6.1.3: only EDNS version 0 exists.
    if query.edns.as_ref().is_some_and(|edns| edns.version() > 0) {
        return skeleton(query, ResponseCode::BADVERS);
    }
    let [question] = query.queries.as_slice() else {
        return skeleton(query, ResponseCode::FormErr);
    };
    if question.query_class() != DNSClass::IN {
        return skeleton(query, ResponseCode::Refused);
    }
    match question.query_type() {
        RecordType::AXFR | RecordType::IXFR => return skeleton(query, ResponseCode::NotImp),
        RecordType::OPT => return skeleton(query, ResponseCode::FormErr),
        _ => {}
    }
    let mut found = catalog.answer(question.name(), question.query_type());
    // RFC 3225 / RFC 4035 §3.2.1: DNSSEC records only for a query with DO set (unless asked).
    let dnssec_ok = query
        .edns
        .as_ref()
        .is_some_and(|edns| edns.flags().dnssec_ok);
    if !dnssec_ok {
        let asked = question.query_type();
        let keep = |record: &Record| {
            let kind = record.record_type();
            kind == asked
                || !matches!(
                    kind,
                    RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                )
        };
        found.answers.retain(keep);
        found.authorities.retain(keep);
    }
    let mut response = skeleton(query, found.rcode);
    response.metadata.authoritative = found.authoritative;
    response.answers = found.answers;
    response.authorities = found.authorities;
    response.additionals = found.additionals;
    response
}

/// `response` cut to its header, question and OPT, with TC=1 (RFC 2181 §9).
fn truncated(response: &Message) -> Message {
    let mut cut = response.clone();
    cut.metadata.truncation = true;
    cut.answers.clear();
    cut.authorities.clear();
    cut.additionals.clear();
    cut
}

/// `message` on the wire, truncated if it exceeds `limit`; a bare SERVFAIL header if it does
/// not encode at all.
fn encode(message: &Message, limit: usize) -> Vec<u8> {
    let bytes = match message.to_vec() {
        Ok(bytes) if bytes.len() <= limit => return bytes,
        Ok(_) => truncated(message).to_vec(),
        Err(error) => Err(error),
    };
    match bytes {
        Ok(bytes) if bytes.len() <= limit => bytes,
        _ => {
            let [id_high, id_low] = message.metadata.id.to_be_bytes();
            vec![id_high, id_low, 0x80, 2, 0, 0, 0, 0, 0, 0, 0, 0]
        }
    }
}

/// A reply that claims to answer the query (its id, QR=1) but does not decode: it announces
/// 65535 questions and carries pseudo-random bytes.
fn garbage(id: u16, seed: u64) -> Vec<u8> {
    let [id_high, id_low] = id.to_be_bytes();
    let mut bytes = Vec::with_capacity(GARBAGE_LEN);
    bytes.extend_from_slice(&[id_high, id_low, 0x84, 0x00, 0xff, 0xff]);
    // xorshift64: any non-zero state works.
    let mut state = seed | 1;
    while bytes.len() < GARBAGE_LEN {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(GARBAGE_LEN);
    bytes
}
