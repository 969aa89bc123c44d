//! Tests of hostile input, TCP framing, the query log, zone loading and the server's life.

use super::*;
use crate::dns_server::catalog::Catalog;
use crate::dns_server::respond::{self, Request, Transport};

#[tokio::test]
async fn malformed_udp_input_does_not_kill_the_server() {
    let server = start().await;
    let address = server.address();
    let mut random = vec![0_u8; 300];
    let mut state: u32 = 0x1234_5678;
    for byte in &mut random {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        *byte = (state >> 24) as u8;
    }
    random[2] &= 0x7f; // a "query", so the server must try to decode it
    let silent: &[(&str, &[u8])] = &[
        ("empty", &[]),
        ("three bytes", &[1, 2, 3]),
        ("eleven bytes", &[0; 11]),
        (
            "a response",
            &[0xab, 0xcd, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        ),
    ];
    for (case, bytes) in silent {
        assert!(udp_raw(address, bytes, SILENCE).await.is_empty(), "{case}");
    }
    let formerr: &[(&str, &[u8])] = &[
        (
            "header only",
            &[0xab, 0xcd, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "missing question",
            &[0xab, 0xcd, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        ),
        (
            "bad label",
            &[
                0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f, b'a', 0, 0, 1,
            ],
        ),
    ];
    for (case, bytes) in formerr {
        let received = udp_raw(address, bytes, SILENCE).await;
        assert_eq!(received.len(), 1, "{case}");
        let reply = Message::from_vec(&received[0].0).unwrap();
        assert_eq!(reply.metadata.id, 0xabcd, "{case}");
        assert_eq!(reply.metadata.message_type, MessageType::Response, "{case}");
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::FormErr,
            "{case}"
        );
        assert_eq!(
            reply.metadata.recursion_desired,
            bytes[2] & 1 == 1,
            "{case}"
        );
    }
    let received = udp_raw(address, &random, SILENCE).await;
    assert!(received.len() <= 1, "random bytes: at most a FORMERR");
    let reply = udp(address, &query("www.example.test.", RecordType::A)).await;
    assert_eq!(reply.answers.len(), 1, "the server still answers");
}

/// Mutated and cut copies of a valid query go through the whole pipeline without a panic.
#[test]
fn mutated_queries_never_panic() {
    let example = example_zone();
    let zones = [ZoneText {
        origin: "example.test.",
        text: &example,
    }];
    let catalog = Catalog::load(&zones).unwrap();
    let base = with_edns(query("alias.example.test.", RecordType::A), 1232, true);
    let base = base.to_vec().unwrap();
    let behaviours = [
        Behaviour::Normal,
        Behaviour::Oversized,
        Behaviour::WrongQuestion,
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut decoded = 0;
    for round in 0..20_000 {
        let mut bytes = base.clone();
        for _ in 0..1 + round % 3 {
            let at = next() as usize % bytes.len();
            bytes[at] = next() as u8;
        }
        if round % 5 == 0 {
            bytes.truncate(next() as usize % bytes.len());
        }
        let Request::Query(query) = respond::parse(&bytes) else {
            continue;
        };
        decoded += 1;
        for behaviour in &behaviours {
            for transport in [Transport::Udp, Transport::Tcp] {
                let plan = respond::plan(&catalog, &query, behaviour, transport, 1);
                assert!(!plan.sends.is_empty());
            }
        }
    }
    assert!(
        decoded > 1_000,
        "the mutations reach the resolver logic ({decoded})"
    );
}

#[tokio::test]
async fn tcp_serves_queries_in_sequence_and_survives_bad_ones() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    for name in [
        "www.example.test.",
        "alias.example.test.",
        "www.other.test.",
    ] {
        let sent = query(name, RecordType::A);
        let bytes = tcp_exchange(&mut stream, &sent.to_vec().unwrap()).await;
        let reply = Message::from_vec(&bytes).unwrap();
        assert_reply_to(&sent, &reply);
        assert!(!reply.answers.is_empty(), "{name}");
    }
    stream.write_all(&[0, 0]).await.unwrap(); // an empty message: ignored
    let bytes = tcp_exchange(&mut stream, &[0xab, 0xcd, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await;
    let reply = Message::from_vec(&bytes).unwrap();
    assert_eq!(
        (reply.metadata.id, reply.metadata.response_code),
        (0xabcd, ResponseCode::FormErr)
    );
    let sent = query("txt.example.test.", RecordType::TXT);
    let reply = Message::from_vec(&tcp_exchange(&mut stream, &sent.to_vec().unwrap()).await);
    assert_eq!(
        reply.unwrap().answers.len(),
        1,
        "same connection still answers"
    );
    // A partial message then silence: the server closes after its idle timeout, not sooner.
    stream.write_all(&[0, 40, 1, 2]).await.unwrap();
    let mut byte = [0];
    assert!(
        tokio::time::timeout(SILENCE, stream.read(&mut byte))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn unsupported_queries_get_the_standard_errors() {
    let server = start().await;
    let mut version_one = with_edns(query("www.example.test.", RecordType::A), 1232, false);
    if let Some(edns) = version_one.edns.as_mut() {
        edns.set_version(1);
    }
    let mut status = Message::new(7, MessageType::Query, OpCode::Status);
    status.add_query(Query::query(
        Name::from_ascii("www.example.test.").unwrap(),
        RecordType::A,
    ));
    let mut chaos = query("version.bind.", RecordType::TXT);
    chaos.queries[0].set_query_class(DNSClass::CH);
    let mut two = query("www.example.test.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("www.other.test.").unwrap(),
        RecordType::A,
    ));
    let cases = [
        ("edns version 1", version_one, ResponseCode::BADVERS),
        ("opcode status", status, ResponseCode::NotImp),
        ("class chaos", chaos, ResponseCode::Refused),
        ("two questions", two, ResponseCode::FormErr),
        (
            "axfr",
            query("example.test.", RecordType::AXFR),
            ResponseCode::NotImp,
        ),
    ];
    for (case, sent, rcode) in cases {
        let reply = tcp(server.address(), &sent).await;
        assert_reply_to(&sent, &reply);
        // BADVERS and BADSIG share the value 16; the decoder picks BADSIG.
        let code = |rcode: ResponseCode| u16::from(rcode);
        assert_eq!(code(reply.metadata.response_code), code(rcode), "{case}");
        assert!(reply.answers.is_empty(), "{case}");
    }
}

#[tokio::test]
async fn query_log_records_what_arrived() {
    let server = start().await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut sent = with_edns(query("WWW.Example.Test.", RecordType::A), 1232, true);
    sent.metadata.id = 4242;
    client
        .send_to(&sent.to_vec().unwrap(), server.address())
        .await
        .unwrap();
    let mut buffer = vec![0; 4096];
    client.recv_from(&mut buffer).await.unwrap();
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    let mut plain = query("txt.example.test.", RecordType::TXT);
    plain.metadata.recursion_desired = false;
    plain.metadata.id = 7;
    tcp_exchange(&mut stream, &plain.to_vec().unwrap()).await;
    let expected = [
        LoggedQuery {
            name: "www.example.test.".into(),
            record_type: RecordType::A,
            tcp: false,
            id: 4242,
            source: client.local_addr().unwrap(),
            dnssec_ok: true,
            recursion_desired: true,
        },
        LoggedQuery {
            name: "txt.example.test.".into(),
            record_type: RecordType::TXT,
            tcp: true,
            id: 7,
            source: stream.local_addr().unwrap(),
            dnssec_ok: false,
            recursion_desired: false,
        },
    ];
    assert_eq!(server.queries(), expected);
    assert_eq!(server.query_count(), 2);
    server.clear_queries();
    assert!(server.queries().is_empty());
    assert_eq!(server.query_count(), 2, "the count keeps running");
}

#[tokio::test]
async fn bad_zones_and_addresses_are_refused() {
    let soa = "@ 300 SOA ns hostmaster 1 7200 3600 1209600 60\n";
    let outside = format!("{soa}www.elsewhere.invalid. 300 A 192.0.2.1\n");
    type Case<'a> = (&'a str, SocketAddr, &'a [(&'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        (
            "no soa",
            "127.0.0.1:0".parse().unwrap(),
            &[("a.test.", "www 300 A 192.0.2.1\n")],
        ),
        (
            "outside the origin",
            "127.0.0.1:0".parse().unwrap(),
            &[("a.test.", &outside)],
        ),
        (
            "syntax",
            "127.0.0.1:0".parse().unwrap(),
            &[("a.test.", "www 300 A not-an-ip\n")],
        ),
        (
            "twice",
            "127.0.0.1:0".parse().unwrap(),
            &[("a.test.", soa), ("A.test", soa)],
        ),
        (
            "not loopback",
            "0.0.0.0:0".parse().unwrap(),
            &[("a.test.", soa)],
        ),
    ];
    for (case, bind, zones) in cases {
        let zones: Vec<ZoneText<'_>> = zones
            .iter()
            .map(|(origin, text)| ZoneText { origin, text })
            .collect();
        let error = DnsServer::start(*bind, &zones).await.err();
        assert!(error.is_some(), "{case}");
    }
}

#[tokio::test]
async fn serves_ipv6_loopback_and_stops() {
    let zone = [ZoneText {
        origin: "example.test.",
        text: "$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 60\nwww A 192.0.2.1\n",
    }];
    let server = DnsServer::start("[::1]:0".parse().unwrap(), &zone)
        .await
        .unwrap();
    let address = server.address();
    let socket = UdpSocket::bind("[::1]:0").await.unwrap();
    let sent = query("www.example.test.", RecordType::A);
    socket
        .send_to(&sent.to_vec().unwrap(), address)
        .await
        .unwrap();
    let mut buffer = vec![0; 4096];
    let (len, _) = tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Message::from_vec(&buffer[..len]).unwrap().answers.len(), 1);
    assert_eq!(tcp(address, &sent).await.answers.len(), 1);
    server.stop().await;
    assert!(TcpStream::connect(address).await.is_err(), "TCP closed");
    socket
        .send_to(&sent.to_vec().unwrap(), address)
        .await
        .unwrap();
    let late = tokio::time::timeout(SILENCE, socket.recv_from(&mut buffer)).await;
    assert!(!matches!(late, Ok(Ok(_))), "UDP closed");
}

/// Loopback throughput: `CLIENTS` sockets, each keeping `WINDOW` queries in flight.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "stress test: run with `make stress`"]
async fn stress_udp_queries() {
    const CLIENTS: usize = 4;
    const QUERIES: usize = 20_000;
    const WINDOW: usize = 32;
    let server = start().await;
    let address = server.address();
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        clients.spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let names = [
                "www.example.test.",
                "alias.example.test.",
                "nope.example.test.",
            ];
            let mut buffer = vec![0; 4096];
            let mut answered = 0;
            for batch in 0..QUERIES / WINDOW {
                for i in 0..WINDOW {
                    let name = names[(client + batch + i) % names.len()];
                    let sent = query(name, RecordType::A);
                    socket
                        .send_to(&sent.to_vec().unwrap(), address)
                        .await
                        .unwrap();
                }
                for _ in 0..WINDOW {
                    let received =
                        tokio::time::timeout(REPLY_TIMEOUT, socket.recv_from(&mut buffer)).await;
                    if matches!(received, Ok(Ok(_))) {
                        answered += 1;
                    }
                }
            }
            answered
        });
    }
    let answered: usize = clients.join_all().await.into_iter().sum();
    let elapsed = started.elapsed();
    let total = CLIENTS * (QUERIES / WINDOW) * WINDOW;
    eprintln!(
        "{answered}/{total} answered in {elapsed:?}: {:.0} queries/s",
        answered as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(answered, total);
    assert_eq!(server.query_count(), total as u64);
}
