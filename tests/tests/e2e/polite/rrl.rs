//! An independent check of the per-server rate with Knot DNS's response rate limiting
//! (`mod-rrl`, slip 0: over the limit, answers are dropped, not truncated): with the node's
//! per-server rate below Knot's, ten times that many CAA checks all come back right and Knot
//! limits nothing. A burst from a raw socket shows the same Knot does drop and log when pushed.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use mpic_node::dns::servers::ServerLimits;
use mpic_node::dns::{DnsClient, Limits};
use mpic_node::metrics::DnsMetrics;
use mpic_tests::knot::KnotServer;
use tokio::time::Instant;

use super::climbs;

/// Knot's RRL rate: responses per second per bucket (client /24, class, zone).
const KNOT_RATE: usize = 50;
/// Queries of the control burst: six seconds of Knot's rate at once.
const CONTROL_BURST: usize = 6 * KNOT_RATE;
/// The node's per-server rate, below Knot's with its burst (a tenth of a second) included.
const NODE_RATE: u32 = 40;

fn client(server: SocketAddr) -> (DnsClient, DnsMetrics) {
    super::iterative_client(
        server,
        Limits {
            servers: ServerLimits {
                max_rate: NODE_RATE,
                ..ServerLimits::default()
            },
            ..Limits::default()
        },
    )
}

/// Sends `count` NXDOMAIN questions at once from one socket; returns how many were answered.
fn burst(server: SocketAddr, count: u16) -> usize {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    for id in 0..count {
        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
        let name = Name::from_ascii(format!("b{id}.burst.test.")).unwrap();
        query.add_query(Query::query(name, RecordType::CAA));
        socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    }
    let mut buffer = [0_u8; 4096];
    let mut answered = 0;
    while socket.recv_from(&mut buffer).is_ok() {
        answered += 1;
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_rrl_limits_nothing_of_ten_times_its_rate_in_checks() {
    let ip = [127, 0, 0, 87];
    let port = UdpSocket::bind(SocketAddr::from((ip, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = SocketAddr::from((ip, port));
    let zone = "$ORIGIN .\n@ 300 IN SOA a.root.test. h.test. 1 7200 3600 1209600 60\n\
                @ 300 IN NS a.root.test.\na.root.test. 300 IN A 127.0.0.87\n\
                rrl.test. 300 IN CAA 0 issue \"ca.example\"\n";
    let rrl = format!(
        "mod-rrl:\n  - id: limit\n    rate-limit: {KNOT_RATE}\n    slip: 0\n\
         template:\n  - id: default\n    global-module: mod-rrl/limit\n"
    );
    let knot = KnotServer::start(address, ".", zone, &rrl).unwrap();
    let (dns, metrics) = client(address);
    let names: Vec<String> = (0..10 * KNOT_RATE)
        .map(|i| format!("n{i}.rrl.test"))
        .collect();
    let started = Instant::now();
    let found = climbs(&dns, names, Duration::from_secs(40)).await;
    let took = started.elapsed();
    let log = knot.log();
    assert!(
        found.iter().all(|at| at.as_deref() == Some("rrl.test")),
        "{:?}; knot: {log}",
        found.iter().find(|at| at.as_deref() != Some("rrl.test"))
    );
    // Nothing dropped: no query went unanswered and Knot never started limiting.
    assert_eq!(metrics.timeouts.get(), 0, "knot: {log}");
    assert!(!log.contains("limiting"), "knot: {log}");
    let queries: u64 = ["udp", "tcp"]
        .iter()
        .map(|transport| {
            metrics
                .queries
                .with_label_values(&[transport, "NXDOMAIN"])
                .get()
        })
        .sum();
    assert!(queries >= 10 * KNOT_RATE as u64, "{queries}");
    // 500 questions at 40 q/s take about 12 s: spaced by the node, not dropped by Knot.
    assert!(took >= Duration::from_secs(11), "{took:?}");
    // The control: Knot's buckets hold a few seconds of its rate (200 at 50/s in knotd 3.2), so
    // a burst of six seconds' worth from one socket is limited, and logged.
    let answered = burst(address, CONTROL_BURST as u16);
    let log = knot.log();
    assert!(
        answered < CONTROL_BURST,
        "{answered} of {CONTROL_BURST} answered"
    );
    assert!(log.contains("enters limiting"), "knot: {log}");
    eprintln!(
        "knot rrl: {} checks in {took:?}, {queries} NXDOMAIN answers, 0 timeouts, no limiting; \
         control burst: {answered} of {CONTROL_BURST} answered",
        10 * KNOT_RATE,
    );
}
