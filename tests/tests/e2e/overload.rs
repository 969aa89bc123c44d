//! Admission control: past the per-primary or global in-flight limit a request is answered
//! `overloaded` at once (never queued, never dropped), and the in-flight gauge returns to zero.

use std::time::Duration;

use mpic_protocol::client::{ClientError, ClientOptions, Primary};
use mpic_protocol::{NodeMessage, ProtocolErrorKind, Rir};
use mpic_tests::{NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, encode, exchange, probe_target, read_all, request};

async fn wait_for_gauge(node: &NodeProcess, value: f64) {
    for _ in 0..100 {
        if node.metric("mpic_node_requests_in_flight").unwrap() == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "in-flight gauge never reached {value}: {}",
        node.metric("mpic_node_requests_in_flight").unwrap()
    );
}

fn expect_overloaded(messages: &[NodeMessage], scope: &str) {
    match messages {
        [NodeMessage::Error(error)] => {
            assert_eq!(
                error.kind,
                ProtocolErrorKind::Overloaded,
                "{}",
                error.detail
            );
            assert!(error.detail.contains(scope), "{}", error.detail);
        }
        other => panic!("expected overloaded, got {other:?}"),
    }
}

#[tokio::test]
async fn requests_over_the_limits_are_shed_at_once_and_the_gauge_returns_to_zero() {
    let lab = Lab::new();
    lab.credentials.issue_primary("second").unwrap();
    let options = NodeOptions::new("busy", Rir::Afrinic).with(
        "limits",
        "max_in_flight_requests = 3\nmax_in_flight_per_primary = 2\nrequest_read_timeout = \"20s\"",
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let first = primary(&lab.credentials, &[&node]).unwrap();
    let second_identity = lab
        .credentials
        .identity("second.pem", "second.key")
        .unwrap();
    let second = Primary::new(
        vec![node.endpoint()],
        ClientOptions::new(lab.credentials.ca().unwrap(), Some(second_identity)),
    )
    .unwrap();
    let a = first.connect(0).await.unwrap();
    let b = second.connect(0).await.unwrap();
    let good = encode(&request(vec![probe_target("example.com")]));
    let (head, tail) = good.split_at(good.len() - 3);

    // Two requests from the first primary stall mid-frame and hold its two slots.
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let (mut send, recv) = a.open_bi().await.unwrap();
        send.write_all(head).await.unwrap();
        stalled.push((send, recv));
    }
    wait_for_gauge(&node, 2.0).await;
    let started = std::time::Instant::now();
    expect_overloaded(&exchange(&a, &good, true).await, "per-primary limit");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "shed must be immediate, took {:?}",
        started.elapsed()
    );

    // The second primary gets the last global slot, then hits the global limit.
    let (mut send_b, recv_b) = b.open_bi().await.unwrap();
    send_b.write_all(head).await.unwrap();
    stalled.push((send_b, recv_b));
    wait_for_gauge(&node, 3.0).await;
    expect_overloaded(&exchange(&b, &good, true).await, "limit of 3 requests");
    assert_eq!(
        node.metric("mpic_node_shed_requests_total{scope=\"primary\"}")
            .unwrap(),
        1.0
    );
    assert_eq!(
        node.metric("mpic_node_shed_requests_total{scope=\"global\"}")
            .unwrap(),
        1.0
    );

    // The stalled requests complete normally once their frames do.
    for (mut send, mut recv) in stalled {
        send.write_all(tail).await.unwrap();
        send.finish().unwrap();
        let messages = read_all(&mut recv).await;
        assert!(
            matches!(messages.as_slice(), [NodeMessage::Result(_)]),
            "{messages:?}"
        );
    }
    wait_for_gauge(&node, 0.0).await;
    assert_eq!(
        node.metric("mpic_node_requests_total{outcome=\"overloaded\"}")
            .unwrap(),
        2.0
    );
    assert_eq!(
        node.metric("mpic_node_requests_total{outcome=\"answered\"}")
            .unwrap(),
        3.0
    );
}

#[tokio::test]
async fn a_refusal_sent_before_the_request_is_read_reaches_the_client_as_overloaded() {
    // The node sheds at admission, before reading the request, then stops the stream's
    // receiving side. A request larger than the stream's flow-control window is still being
    // written then, so the client's write fails with "stopped by peer": the client must read
    // the refusal that came first, not report the stream as lost.
    let lab = Lab::new();
    let options = NodeOptions::new("small", Rir::Afrinic).with(
        "limits",
        "max_in_flight_requests = 1\nrequest_read_timeout = \"20s\"",
    );
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let client = primary(&lab.credentials, &[&node]).unwrap();
    let connection = client.connect(0).await.unwrap();
    let good = encode(&request(vec![probe_target("example.com")]));
    let (mut held, _held_recv) = connection.open_bi().await.unwrap();
    held.write_all(&good[..good.len() - 3]).await.unwrap();
    wait_for_gauge(&node, 1.0).await;

    // ~3 MB: past quinn's default stream receive window of 1.25 MB.
    let long = format!("{}.example.com", "a".repeat(200));
    let big = request((0..15_000).map(|_| probe_target(&long)).collect());
    match client.query(0, &big).await {
        Err(ClientError::Refused { error, .. }) => {
            assert_eq!(
                error.kind,
                ProtocolErrorKind::Overloaded,
                "{}",
                error.detail
            );
        }
        other => panic!("expected a typed overloaded refusal, got {other:?}"),
    }
}
