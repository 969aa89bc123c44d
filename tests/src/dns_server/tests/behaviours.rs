//! Tests of the misbehaviours and of how rules pick them.

use super::*;

fn rule(suffix: &str, record_type: Option<RecordType>, behaviour: Behaviour) -> Rule {
    Rule {
        suffix: suffix.into(),
        record_type,
        behaviour,
    }
}

#[tokio::test]
async fn drop_never_answers() {
    let server = start().await;
    server.set_rules(vec![rule("www.example.test", None, Behaviour::Drop)]);
    let sent = query("www.example.test.", RecordType::A);
    let received = udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await;
    assert!(received.is_empty());
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    let bytes = sent.to_vec().unwrap();
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend(bytes);
    stream.write_all(&framed).await.unwrap();
    let mut byte = [0];
    assert!(
        tokio::time::timeout(SILENCE, stream.read(&mut byte))
            .await
            .is_err(),
        "nothing on TCP either"
    );
    assert_eq!(server.query_count(), 2);
}

#[tokio::test]
async fn delay_answers_late_without_holding_up_others() {
    let server = start().await;
    let delay = Duration::from_secs(1);
    server.set_rules(vec![rule(
        "slow.example.test",
        None,
        Behaviour::Delay(delay),
    )]);
    let started = Instant::now();
    let slow = {
        let address = server.address();
        tokio::spawn(async move { udp(address, &query("slow.example.test.", RecordType::A)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reply = udp(server.address(), &query("www.example.test.", RecordType::A)).await;
    assert!(
        started.elapsed() < delay,
        "a fast query is not queued behind the slow one"
    );
    assert_eq!(reply.answers.len(), 1);
    let reply = slow.await.unwrap();
    assert!(started.elapsed() >= delay);
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "then answered normally"
    );
}

#[tokio::test]
async fn truncate_is_udp_only() {
    let server = start().await;
    server.set_rules(vec![rule(
        "example.test",
        Some(RecordType::A),
        Behaviour::Truncate,
    )]);
    let sent = with_edns(query("www.example.test.", RecordType::A), 1232, false);
    let reply = udp(server.address(), &sent).await;
    assert_reply_to(&sent, &reply);
    assert!(reply.metadata.truncation && reply.answers.is_empty());
    assert!(reply.edns.is_some());
    let reply = tcp(server.address(), &sent).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(show(&reply.answers), ["www.example.test. 300 A 192.0.2.1"]);
}

#[tokio::test]
async fn spoofed_replies() {
    let server = start().await;
    let port = server.address().port();
    let sent = query("www.example.test.", RecordType::A);
    let id = sent.metadata.id;
    let decode = |received: &[(Vec<u8>, u16)]| -> Vec<(Message, u16)> {
        let decoded = received
            .iter()
            .map(|(b, p)| (Message::from_vec(b).unwrap(), *p));
        decoded.collect()
    };

    server.set_rules(vec![rule("www.example.test", None, Behaviour::WrongId)]);
    let replies = decode(&udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await);
    assert_eq!(replies.len(), 1);
    assert_ne!(replies[0].0.metadata.id, id);
    assert_eq!((replies[0].0.answers.len(), replies[0].1), (1, port));

    server.set_rules(vec![rule(
        "www.example.test",
        None,
        Behaviour::WrongQuestion,
    )]);
    let replies = decode(&udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0.metadata.id, id);
    let question = replies[0].0.queries[0].name().to_ascii();
    assert_eq!(question, "x.www.example.test.");

    server.set_rules(vec![rule(
        "www.example.test",
        None,
        Behaviour::FromOtherPort,
    )]);
    let replies = decode(&udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0.metadata.id, id);
    assert_ne!(replies[0].1, port, "from another source port");
    let other_port = replies[0].1;

    server.set_rules(vec![rule(
        "www.example.test",
        None,
        Behaviour::SpoofThenAnswer,
    )]);
    let replies = decode(&udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await);
    let seen: Vec<(bool, u16)> = replies
        .iter()
        .map(|(m, p)| (m.metadata.id == id, *p))
        .collect();
    assert_eq!(seen, [(false, port), (true, other_port), (true, port)]);
    assert!(replies.iter().all(|(m, _)| m.answers.len() == 1));
    let mut stream = TcpStream::connect(server.address()).await.unwrap();
    let bad = Message::from_vec(&tcp_exchange(&mut stream, &sent.to_vec().unwrap()).await);
    assert_ne!(bad.unwrap().metadata.id, id, "over TCP: the wrong id first");
    let mut prefix = [0; 2];
    stream.read_exact(&mut prefix).await.unwrap();
    let mut good = vec![0; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut good).await.unwrap();
    assert_eq!(
        Message::from_vec(&good).unwrap().metadata.id,
        id,
        "then the answer"
    );
}

#[tokio::test]
async fn garbage_reply_does_not_decode() {
    let server = start().await;
    server.set_rules(vec![rule("www.example.test", None, Behaviour::Garbage)]);
    let sent = query("www.example.test.", RecordType::A);
    let received = udp_raw(server.address(), &sent.to_vec().unwrap(), SILENCE).await;
    assert_eq!(received.len(), 1);
    let (bytes, _) = &received[0];
    assert_eq!(
        bytes[..2],
        sent.metadata.id.to_be_bytes(),
        "carries the query's id"
    );
    assert!(Message::from_vec(bytes).is_err());
    let reply = udp(
        server.address(),
        &query("txt.example.test.", RecordType::TXT),
    )
    .await;
    assert_eq!(reply.answers.len(), 1, "the server still answers");
}

#[tokio::test]
async fn rules_match_by_suffix_and_type_and_the_first_wins() {
    let server = start().await;
    server.set_rules(vec![
        rule("ww.example.test", None, Behaviour::NotImp),
        rule(
            "WWW.Example.Test.",
            Some(RecordType::AAAA),
            Behaviour::Refused,
        ),
        rule("example.test", None, Behaviour::ServFail),
    ]);
    let cases = [
        ("www.example.test.", RecordType::AAAA, ResponseCode::Refused),
        (
            "a.www.example.test.",
            RecordType::AAAA,
            ResponseCode::Refused,
        ),
        ("www.example.test.", RecordType::A, ResponseCode::ServFail),
        ("example.test.", RecordType::SOA, ResponseCode::ServFail),
        ("www.other.test.", RecordType::A, ResponseCode::NoError),
    ];
    for (name, record_type, rcode) in cases {
        let reply = udp(server.address(), &query(name, record_type)).await;
        assert_eq!(reply.metadata.response_code, rcode, "{name} {record_type}");
    }
    server.set_rules(vec![rule(".", None, Behaviour::Refused)]);
    let reply = udp(server.address(), &query("www.other.test.", RecordType::A)).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::Refused,
        "`.` matches all"
    );
    server.set_rules(Vec::new());
    let reply = udp(server.address(), &query("www.other.test.", RecordType::A)).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "rules replaced"
    );
}
