//! Tests of the fixture DNS server over real loopback sockets, with a raw client built from
//! tokio sockets and hickory's message codec.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};

use super::{Behaviour, DnsServer, LoggedQuery, Rule, ZoneText};

/// How long a test waits for a reply that should come.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a test listens to be sure no (further) reply comes.
const SILENCE: Duration = Duration::from_millis(300);

fn example_zone() -> String {
    let chunk = "y".repeat(200);
    format!(
        "$ORIGIN example.test.\n$TTL 300\n\
         @         SOA   ns1 hostmaster 1 7200 3600 1209600 60\n\
         @         NS    ns1\n\
         @         CAA   0 issue \"ca.example.net\"\n\
         ns1       A     127.0.0.1\n\
         www       A     192.0.2.1\n\
         www       AAAA  2001:db8::1\n\
         txt       TXT   \"hello\" \"world\"\n\
         alias     CNAME alias2\n\
         alias2    CNAME www\n\
         cross     CNAME www.other.test.\n\
         out       CNAME www.elsewhere.invalid.\n\
         dangling  CNAME missing\n\
         loop1     CNAME loop2\n\
         loop2     CNAME loop1\n\
         a.b.c     A     192.0.2.3\n\
         *.wild    A     192.0.2.4\n\
         child     NS    ns1.child\n\
         child     NS    ns.other.test.\n\
         ns1.child A     192.0.2.53\n\
         big       TXT   \"{chunk}\" \"{chunk}\" \"{chunk}\"\n"
    )
}

const OTHER_ZONE: &str = "$TTL 60
@    SOA  ns hostmaster 1 7200 3600 1209600 30
www  A    192.0.2.9
ns   A    192.0.2.10
ns   AAAA 2001:db8::10
";

async fn start() -> DnsServer {
    let example = example_zone();
    let zones = [
        ZoneText {
            origin: "example.test.",
            text: &example,
        },
        ZoneText {
            origin: "other.test",
            text: OTHER_ZONE,
        },
    ];
    DnsServer::start("127.0.0.1:0".parse().unwrap(), &zones)
        .await
        .unwrap()
}

fn query(name: &str, record_type: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), record_type));
    message
}

fn with_edns(mut message: Message, payload: u16, dnssec_ok: bool) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_dnssec_ok(dnssec_ok);
    message.set_edns(edns);
    message
}

/// Sends `bytes` from a fresh socket and collects every datagram that arrives within `window`.
async fn udp_raw(server: SocketAddr, bytes: &[u8], window: Duration) -> Vec<(Vec<u8>, u16)> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    let mut buffer = vec![0; 65_535];
    while let Ok(Ok((len, from))) =
        tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await
    {
        received.push((buffer[..len].to_vec(), from.port()));
    }
    received
}

/// One UDP exchange that must get exactly one reply, from the server's port.
async fn udp(server: SocketAddr, message: &Message) -> Message {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buffer = vec![0; 65_535];
    let (len, from) = tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buffer))
        .await
        .expect("no UDP reply")
        .unwrap();
    assert_eq!(from, server);
    Message::from_vec(&buffer[..len]).unwrap()
}

async fn tcp_exchange(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.unwrap();
    let mut prefix = [0; 2];
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_exact(&mut prefix))
        .await
        .expect("no TCP reply")
        .unwrap();
    let mut reply = vec![0; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

async fn tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    Message::from_vec(&tcp_exchange(&mut stream, &message.to_vec().unwrap()).await).unwrap()
}

/// Records as `owner ttl type rdata`, for exact comparisons.
fn show(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

/// Checks the parts every reply to `sent` shares: id, QR, opcode, RD and the question.
fn assert_reply_to(sent: &Message, reply: &Message) {
    assert_eq!(reply.metadata.id, sent.metadata.id);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    assert_eq!(reply.metadata.op_code, sent.metadata.op_code);
    assert_eq!(
        reply.metadata.recursion_desired,
        sent.metadata.recursion_desired
    );
    assert!(!reply.metadata.recursion_available);
    assert_eq!(reply.queries, sent.queries);
}

const NEGATIVE_SOA: &str =
    "example.test. 60 SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 60";

#[tokio::test]
async fn positive_answers() {
    let server = start().await;
    let cases: &[(&str, &str, RecordType, &[&str])] = &[
        (
            "a",
            "www.example.test.",
            RecordType::A,
            &["www.example.test. 300 A 192.0.2.1"],
        ),
        (
            "aaaa keeps the question's case",
            "WWW.Example.TEST.",
            RecordType::AAAA,
            &["WWW.Example.TEST. 300 AAAA 2001:db8::1"],
        ),
        (
            "txt",
            "txt.example.test.",
            RecordType::TXT,
            &["txt.example.test. 300 TXT helloworld"],
        ),
        (
            "caa at the apex",
            "example.test.",
            RecordType::CAA,
            &["example.test. 300 CAA 0 issue \"ca.example.net\""],
        ),
        (
            "apex ns",
            "example.test.",
            RecordType::NS,
            &["example.test. 300 NS ns1.example.test."],
        ),
        (
            "wildcard synthesis",
            "host.wild.example.test.",
            RecordType::A,
            &["host.wild.example.test. 300 A 192.0.2.4"],
        ),
        (
            "wildcard below a missing name",
            "a.host.wild.example.test.",
            RecordType::A,
            &["a.host.wild.example.test. 300 A 192.0.2.4"],
        ),
        (
            "the wildcard itself",
            "*.wild.example.test.",
            RecordType::A,
            &["*.wild.example.test. 300 A 192.0.2.4"],
        ),
        (
            "second zone",
            "www.other.test.",
            RecordType::A,
            &["www.other.test. 60 A 192.0.2.9"],
        ),
        (
            "any",
            "www.example.test.",
            RecordType::ANY,
            &[
                "www.example.test. 300 A 192.0.2.1",
                "www.example.test. 300 AAAA 2001:db8::1",
            ],
        ),
    ];
    for (case, name, record_type, expected) in cases {
        let sent = query(name, *record_type);
        let reply = udp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{case}"
        );
        assert!(reply.metadata.authoritative, "{case}");
        assert!(!reply.metadata.truncation, "{case}");
        assert_eq!(show(&reply.answers), *expected, "{case}");
        assert!(reply.authorities.is_empty(), "{case}");
        assert!(reply.additionals.is_empty(), "{case}");
        assert!(
            reply.edns.is_none(),
            "{case}: no OPT in the query, none in the reply"
        );
    }
}

#[tokio::test]
async fn negative_answers() {
    let server = start().await;
    let cases = [
        (
            "nxdomain",
            "nope.example.test.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "nodata",
            "www.example.test.",
            RecordType::TXT,
            ResponseCode::NoError,
        ),
        (
            "empty non-terminal",
            "b.c.example.test.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "empty non-terminal, upper",
            "c.example.test.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "below a leaf",
            "x.a.b.c.example.test.",
            RecordType::A,
            ResponseCode::NXDomain,
        ),
        (
            "wildcard nodata",
            "host.wild.example.test.",
            RecordType::AAAA,
            ResponseCode::NoError,
        ),
        (
            "wildcard parent is an ENT",
            "wild.example.test.",
            RecordType::A,
            ResponseCode::NoError,
        ),
        (
            "ds at a delegation is the parent's",
            "child.example.test.",
            RecordType::DS,
            ResponseCode::NoError,
        ),
    ];
    for (case, name, record_type, rcode) in cases {
        let sent = query(name, record_type);
        let reply = udp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        assert_eq!(reply.metadata.response_code, rcode, "{case}");
        assert!(reply.metadata.authoritative, "{case}");
        assert!(reply.answers.is_empty(), "{case}");
        assert_eq!(show(&reply.authorities), [NEGATIVE_SOA], "{case}");
        assert!(reply.additionals.is_empty(), "{case}");
    }
    let sent = query("www.unserved.test.", RecordType::A);
    let reply = udp(server.address(), &sent).await;
    assert_reply_to(&sent, &reply);
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(!reply.metadata.authoritative);
    assert!(reply.answers.is_empty() && reply.authorities.is_empty());
}

#[tokio::test]
async fn cname_chains() {
    let server = start().await;
    // (case, name, type, rcode, answer section, SOA in authority)
    type Case = (
        &'static str,
        &'static str,
        RecordType,
        ResponseCode,
        &'static [&'static str],
        bool,
    );
    let cases: &[Case] = &[
        (
            "chain in the zone",
            "alias.example.test.",
            RecordType::A,
            ResponseCode::NoError,
            &[
                "alias.example.test. 300 CNAME alias2.example.test.",
                "alias2.example.test. 300 CNAME www.example.test.",
                "www.example.test. 300 A 192.0.2.1",
            ],
            false,
        ),
        (
            "asking for the cname",
            "alias.example.test.",
            RecordType::CNAME,
            ResponseCode::NoError,
            &["alias.example.test. 300 CNAME alias2.example.test."],
            false,
        ),
        (
            "into another served zone",
            "cross.example.test.",
            RecordType::A,
            ResponseCode::NoError,
            &[
                "cross.example.test. 300 CNAME www.other.test.",
                "www.other.test. 60 A 192.0.2.9",
            ],
            false,
        ),
        (
            "out of the served zones",
            "out.example.test.",
            RecordType::A,
            ResponseCode::NoError,
            &["out.example.test. 300 CNAME www.elsewhere.invalid."],
            false,
        ),
        (
            "loop stops",
            "loop1.example.test.",
            RecordType::A,
            ResponseCode::NoError,
            &[
                "loop1.example.test. 300 CNAME loop2.example.test.",
                "loop2.example.test. 300 CNAME loop1.example.test.",
            ],
            false,
        ),
        (
            "chain to nodata",
            "alias.example.test.",
            RecordType::TXT,
            ResponseCode::NoError,
            &[
                "alias.example.test. 300 CNAME alias2.example.test.",
                "alias2.example.test. 300 CNAME www.example.test.",
            ],
            true,
        ),
        (
            "chain to nxdomain",
            "dangling.example.test.",
            RecordType::A,
            ResponseCode::NXDomain,
            &["dangling.example.test. 300 CNAME missing.example.test."],
            true,
        ),
    ];
    for (case, name, record_type, rcode, expected, negative) in cases {
        let sent = query(name, *record_type);
        let reply = udp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        assert_eq!(reply.metadata.response_code, *rcode, "{case}");
        assert!(reply.metadata.authoritative, "{case}");
        assert_eq!(show(&reply.answers), *expected, "{case}");
        let soa: &[&str] = if *negative { &[NEGATIVE_SOA] } else { &[] };
        assert_eq!(show(&reply.authorities), soa, "{case}");
    }
}

#[tokio::test]
async fn referral_with_glue() {
    let server = start().await;
    for (name, record_type) in [
        ("www.child.example.test.", RecordType::A),
        ("child.example.test.", RecordType::NS),
        ("ns1.child.example.test.", RecordType::A),
        ("deep.below.child.example.test.", RecordType::TXT),
    ] {
        let sent = query(name, record_type);
        let reply = udp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(!reply.metadata.authoritative, "{name}");
        assert!(reply.answers.is_empty(), "{name}");
        assert_eq!(
            show(&reply.authorities),
            [
                "child.example.test. 300 NS ns1.child.example.test.",
                "child.example.test. 300 NS ns.other.test.",
            ]
        );
        assert_eq!(
            show(&reply.additionals),
            [
                "ns1.child.example.test. 300 A 192.0.2.53",
                "ns.other.test. 60 A 192.0.2.10",
                "ns.other.test. 60 AAAA 2001:db8::10",
            ]
        );
    }
}

#[tokio::test]
async fn ds_at_a_served_child_apex_comes_from_the_parent() {
    let parent =
        "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 60\nc NS ns.c\nns.c A 192.0.2.7\n";
    let child = "$TTL 300\n@ SOA ns hostmaster 2 7200 3600 1209600 60\n@ NS ns\nns A 192.0.2.7\n";
    let zones = [
        ZoneText {
            origin: "p.test.",
            text: parent,
        },
        ZoneText {
            origin: "c.p.test.",
            text: child,
        },
    ];
    let server = DnsServer::start("127.0.0.1:0".parse().unwrap(), &zones)
        .await
        .unwrap();
    let cases = [
        (
            RecordType::DS,
            "p.test. 60 SOA ns.p.test. hostmaster.p.test. 1 7200 3600 1209600 60",
        ),
        (
            RecordType::TXT,
            "c.p.test. 60 SOA ns.c.p.test. hostmaster.c.p.test. 2 7200 3600 1209600 60",
        ),
    ];
    for (record_type, soa) in cases {
        let reply = udp(server.address(), &query("c.p.test.", record_type)).await;
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{record_type}"
        );
        assert!(
            reply.metadata.authoritative && reply.answers.is_empty(),
            "{record_type}"
        );
        assert_eq!(show(&reply.authorities), [soa], "{record_type}");
    }
}

#[tokio::test]
async fn udp_size_limits_and_tcp() {
    let server = start().await;
    let address = server.address();
    // The "big" TXT answer is about 650 bytes: over 512, under 1232.
    let truncated = |reply: &Message| {
        reply.metadata.truncation
            && reply.answers.is_empty()
            && reply.authorities.is_empty()
            && reply.additionals.is_empty()
    };
    let plain = query("big.example.test.", RecordType::TXT);
    let reply = udp(address, &plain).await;
    assert_reply_to(&plain, &reply);
    assert!(truncated(&reply), "no EDNS: 512 bytes");
    assert!(reply.edns.is_none());

    let small = with_edns(query("big.example.test.", RecordType::TXT), 100, false);
    assert!(
        truncated(&udp(address, &small).await),
        "payload under 512 counts as 512"
    );

    let edns = with_edns(query("big.example.test.", RecordType::TXT), 1232, true);
    let reply = udp(address, &edns).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 1);
    let opt = reply.edns.as_ref().unwrap();
    assert_eq!((opt.max_payload(), opt.version()), (1232, 0));
    assert!(opt.flags().dnssec_ok, "DO echoed");

    let reply = tcp(address, &plain).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 1, "TCP carries the whole answer");

    server.set_rules(vec![Rule {
        suffix: "www.example.test".into(),
        record_type: None,
        behaviour: Behaviour::Oversized,
    }]);
    let big = with_edns(query("www.example.test.", RecordType::A), 4096, false);
    let reply = udp(address, &big).await;
    assert!(
        truncated(&reply),
        "capped at 1232 whatever the client offers"
    );
    assert_eq!(reply.edns.as_ref().unwrap().max_payload(), 1232);
    let mut stream = TcpStream::connect(address).await.unwrap();
    let bytes = tcp_exchange(&mut stream, &big.to_vec().unwrap()).await;
    assert!(bytes.len() > 1232);
    let reply = Message::from_vec(&bytes).unwrap();
    assert!(!reply.metadata.truncation);
    assert_eq!(show(&reply.answers), ["www.example.test. 300 A 192.0.2.1"]);
    assert_eq!(reply.additionals.len(), 1, "the padding");
    assert_eq!(reply.additionals[0].record_type(), RecordType::TXT);
}

#[tokio::test]
async fn rcode_behaviours() {
    let server = start().await;
    let cases = [
        (Behaviour::ServFail, ResponseCode::ServFail),
        (Behaviour::Refused, ResponseCode::Refused),
        (Behaviour::NotImp, ResponseCode::NotImp),
        (Behaviour::FormErr, ResponseCode::FormErr),
        (Behaviour::Lame, ResponseCode::NoError),
    ];
    for (behaviour, rcode) in cases {
        server.set_rules(vec![Rule {
            suffix: "example.test.".into(),
            record_type: None,
            behaviour: behaviour.clone(),
        }]);
        let sent = with_edns(query("www.example.test.", RecordType::A), 1232, false);
        let reply = udp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        assert_eq!(reply.metadata.response_code, rcode, "{behaviour:?}");
        assert!(!reply.metadata.authoritative, "{behaviour:?}");
        assert!(reply.answers.is_empty() && reply.authorities.is_empty());
        assert!(reply.additionals.is_empty() && reply.edns.is_some());
    }
}

mod behaviours;
mod robustness;

#[tokio::test]
async fn above_its_cap_the_server_refuses_and_counts_its_busiest_second() {
    let server = start().await;
    server.refuse_above(Some(3));
    let mut rcodes = Vec::new();
    for _ in 0..5 {
        let reply = udp(server.address(), &query("www.example.test.", RecordType::A)).await;
        rcodes.push(reply.metadata.response_code);
    }
    use hickory_proto::op::ResponseCode;
    assert_eq!(
        rcodes,
        [
            ResponseCode::NoError,
            ResponseCode::NoError,
            ResponseCode::NoError,
            ResponseCode::Refused,
            ResponseCode::Refused
        ]
    );
    assert_eq!(server.busiest_second(), 5);
    assert_eq!(server.refused_over_cap(), 2);
    assert_eq!(server.count("WWW.example.test", RecordType::A), 5);
    assert_eq!(server.count("www.example.test.", RecordType::AAAA), 0);
}

#[tokio::test]
async fn a_silent_server_logs_but_never_answers() {
    let server = start().await;
    server.set_silent(true);
    let bytes = query("www.example.test.", RecordType::A).to_vec().unwrap();
    assert!(
        udp_raw(server.address(), &bytes, Duration::from_millis(200))
            .await
            .is_empty()
    );
    assert_eq!(server.query_count(), 1);
    server.set_silent(false);
    let reply = udp(server.address(), &query("www.example.test.", RecordType::A)).await;
    assert_eq!(reply.answers.len(), 1);
}
