//! The transport against a scripted loopback UDP server: what arrives that is not the answer
//! is ignored, counted per attempt and named when no answer comes.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::*;

/// Shapes of reply the scripted server sends, each built from the query's bytes.
#[derive(Debug, Clone, Copy)]
enum Reply {
    /// The query echoed as a response (QR=1): a valid answer with no records.
    Valid,
    /// A valid answer with another message ID.
    OtherId,
    /// A valid answer to the AAAA question.
    OtherQuestion,
    /// One answer record whose owner is a compression pointer to itself.
    PointerLoop,
    /// One answer record whose RDLENGTH runs past the end.
    PastTheEnd,
}

/// The question section of `query`: from the header to the end of the name, plus type and class.
fn question(query: &[u8]) -> &[u8] {
    let mut at = 12;
    while query[at] != 0 {
        at += 1 + usize::from(query[at]);
    }
    &query[12..at + 5]
}

fn build(query: &[u8], reply: Reply) -> Vec<u8> {
    let question = question(query);
    let mut header = query[..12].to_vec();
    header[2] |= 0x80;
    let mut bytes = header.clone();
    match reply {
        Reply::Valid | Reply::OtherId | Reply::OtherQuestion => {
            // Question only: drop the OPT record of the query.
            bytes[6..12].copy_from_slice(&[0; 6]);
            bytes.extend_from_slice(question);
            if let Reply::OtherId = reply {
                bytes[0] ^= 0xff;
            }
            if let Reply::OtherQuestion = reply {
                let type_at = bytes.len() - 4;
                bytes[type_at..type_at + 2].copy_from_slice(&28u16.to_be_bytes());
            }
        }
        Reply::PointerLoop | Reply::PastTheEnd => {
            bytes[6..12].copy_from_slice(&[0, 1, 0, 0, 0, 0]);
            bytes.extend_from_slice(question);
            let owner = u8::try_from(bytes.len()).unwrap();
            let (owner, rdlength) = match reply {
                Reply::PointerLoop => (owner, 4),
                _ => (12, 200),
            };
            bytes.extend_from_slice(&[0xc0, owner, 0, 1, 0, 1, 0, 0, 0, 60, 0, rdlength]);
            bytes.extend_from_slice(&[192, 0, 2, 1]);
        }
    }
    bytes
}

/// A server answering every query with `replies`, in order.
async fn server(replies: Vec<Reply>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 2048];
        while let Ok((len, peer)) = socket.recv_from(&mut buffer).await {
            for reply in &replies {
                let _ = socket.send_to(&build(&buffer[..len], *reply), peer).await;
            }
        }
    });
    address
}

fn spec() -> QuerySpec {
    QuerySpec {
        name: Name::from_ascii("www.example.test.").unwrap(),
        record_type: RecordType::A,
        recursion_desired: true,
        dnssec_ok: false,
        checking_disabled: false,
    }
}

fn transport() -> Transport {
    Transport::new(
        TransportConfig::default(),
        DnsMetrics::unregistered().unwrap(),
    )
}

#[tokio::test]
async fn what_arrived_instead_of_the_answer_is_counted_per_attempt() {
    use Reply::{OtherId, OtherQuestion, PastTheEnd, PointerLoop, Valid};
    type Case = (&'static str, Vec<Reply>, Option<&'static str>);
    let cases: Vec<Case> = vec![
        ("silence", vec![], Some("{server}: no answer within")),
        (
            "pointer loops",
            vec![PointerLoop, PointerLoop, PointerLoop],
            Some(
                "{server}: 3 malformed responses (compression pointer loop), no valid answer \
                 within 0.3 s",
            ),
        ),
        (
            "mismatches of every kind",
            vec![OtherId, PastTheEnd, OtherId, OtherQuestion],
            Some(
                "{server}: 2 responses with a mismatched ID, 1 malformed response (record past \
                 the end), 1 response with a mismatched question, no valid answer within 0.3 s",
            ),
        ),
        (
            "spoofs then the answer",
            vec![OtherId, PointerLoop, Valid],
            None,
        ),
    ];
    let transport = transport();
    for (name, replies, expected) in cases {
        let server = server(replies).await;
        let deadline = Instant::now() + Duration::from_millis(300);
        let got = transport.exchange(server, &spec(), deadline).await;
        match (got, expected) {
            (Ok(exchange), None) => assert_eq!(exchange.transport, Carrier::Udp, "{name}"),
            (Err(error), Some(expected)) => {
                let expected = expected.replace("{server}", &server.to_string());
                assert!(error.to_string().starts_with(&expected), "{name}: {error}");
            }
            (got, _) => panic!("{name}: {got:?}"),
        }
    }
}

#[tokio::test]
async fn ignored_responses_are_counted_under_the_metric_labels() {
    let metrics = DnsMetrics::unregistered().unwrap();
    let transport = Transport::new(TransportConfig::default(), metrics.clone());
    let server = server(vec![Reply::OtherId, Reply::PointerLoop, Reply::Valid]).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    transport.exchange(server, &spec(), deadline).await.unwrap();
    for label in ["id", "malformed"] {
        assert_eq!(
            metrics.mismatched.with_label_values(&[label]).get(),
            1,
            "{label}"
        );
    }
}

#[test]
fn metric_labels_keep_their_values() {
    use crate::dns::cache::CacheResult;
    use crate::dns::wire::Malformation;
    let labels = [
        (Carrier::Udp.as_str(), "udp"),
        (Carrier::Tcp.as_str(), "tcp"),
        (CacheResult::Hit.as_str(), "hit"),
        (CacheResult::Miss.as_str(), "miss"),
        (RcodeLabel::NoError.as_str(), "NOERROR"),
        (RcodeLabel::FormErr.as_str(), "FORMERR"),
        (RcodeLabel::ServFail.as_str(), "SERVFAIL"),
        (RcodeLabel::NxDomain.as_str(), "NXDOMAIN"),
        (RcodeLabel::NotImp.as_str(), "NOTIMP"),
        (RcodeLabel::Refused.as_str(), "REFUSED"),
        (RcodeLabel::Other.as_str(), "other"),
        (
            Mismatch::Malformed(Malformation::PointerLoop).as_str(),
            "malformed",
        ),
        (Mismatch::NotResponse.as_str(), "not_response"),
        (Mismatch::Id.as_str(), "id"),
        (Mismatch::Question.as_str(), "question"),
        (Mismatch::Source.as_str(), "source"),
    ];
    for (got, expected) in labels {
        assert_eq!(got, expected);
    }
}

#[tokio::test]
async fn a_server_with_every_tcp_slot_in_use_gets_no_further_connection() {
    let transport = transport();
    // A listener that accepts but never answers would also do; nothing listens here, so a
    // connection attempt would fail at once with "refused", not time out.
    let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let held: Vec<_> = (0..MAX_TCP_PER_SERVER)
        .map(|_| transport.tcp.slots(server).try_acquire_owned().unwrap())
        .collect();
    assert_eq!(transport.tcp_in_use(server), MAX_TCP_PER_SERVER);
    let deadline = Instant::now() + Duration::from_millis(50);
    let error = transport
        .exchange_tcp(server, &spec(), deadline)
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Timeout { .. }), "{error}");
    drop(held);
    assert_eq!(transport.tcp_in_use(server), 0);
    let error = transport
        .exchange_tcp(server, &spec(), Instant::now() + Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(error, TransportError::Network { .. }), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_to_a_silent_tcp_server_fill_connections_and_end_by_their_deadline() {
    // Accepts and reads, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut sink = vec![0u8; 4096];
                while tokio::io::AsyncReadExt::read(&mut stream, &mut sink)
                    .await
                    .is_ok_and(|n| n > 0)
                {}
            });
        }
    });
    let metrics = DnsMetrics::unregistered().unwrap();
    let transport =
        std::sync::Arc::new(Transport::new(TransportConfig::default(), metrics.clone()));
    let deadline = Instant::now() + Duration::from_millis(300);
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let transport = std::sync::Arc::clone(&transport);
        set.spawn(async move { transport.exchange_tcp(server, &spec(), deadline).await });
    }
    while let Some(joined) = set.join_next().await {
        let error = joined.unwrap().unwrap_err();
        assert!(matches!(error, TransportError::Timeout { .. }), "{error}");
    }
    assert!(Instant::now() < deadline + Duration::from_millis(200));
    // Each connection is filled to its pipelining cap before the next opens: 100 = 3 × 32 + 4.
    let used = |result: &str| metrics.tcp_connections.with_label_values(&[result]).get();
    assert_eq!((used("opened"), used("pipelined")), (4, 96));
    assert_eq!(transport.tcp_in_use(server), 4);
    assert_eq!(metrics.timeouts.get(), 100);
}
