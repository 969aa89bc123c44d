//! One perspective served by two nodes (each with its own signing key): the primary spreads a
//! closed-loop load over both, and when one is SIGKILLed mid-load every validation is still
//! answered — the requests it held are sent again, same request id, to the other node within
//! their deadline — and every verdict is right.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mpic_protocol::client::{ClientOptions, Primary};
use mpic_protocol::{Outcome, Rir};
use mpic_tests::{NodeOptions, NodeProcess};

use crate::support::{Lab, probe_target, request_within};

/// Validations in the closed loop, sent by this many workers.
const REQUESTS: usize = 400;
const WORKERS: usize = 4;
/// The node is killed once this many validations are answered.
const KILL_AFTER: usize = 100;
/// Each validation's deadline.
const DEADLINE: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_perspective_on_two_nodes_loses_no_validation_when_one_is_killed() {
    let lab = Lab::new();
    let options = NodeOptions::new("twin", Rir::Arin);
    let first = NodeProcess::start(&lab.dir.path().join("a"), &lab.credentials, &options).unwrap();
    let second = NodeProcess::start(&lab.dir.path().join("b"), &lab.credentials, &options).unwrap();
    let keys = [
        first.verifying_key.key_id().to_string(),
        second.verifying_key.key_id().to_string(),
    ];
    assert_ne!(keys[0], keys[1], "one signing key per node");
    let identity = lab
        .credentials
        .identity("primary.pem", "primary.key")
        .unwrap();
    let primary = Arc::new(
        Primary::new(
            vec![first.endpoint(), second.endpoint()],
            ClientOptions::new(lab.credentials.ca().unwrap(), Some(identity)),
        )
        .unwrap(),
    );
    assert_eq!(primary.perspective_count(), 1);

    let next = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (primary, next, answered) = (
            Arc::clone(&primary),
            Arc::clone(&next),
            Arc::clone(&answered),
        );
        workers.spawn(async move {
            let mut seen = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                let request = request_within(vec![probe_target("twin.test")], DEADLINE);
                let started = Instant::now();
                let results = primary.query_perspective(0, &request).await;
                let elapsed = started.elapsed();
                let results = results.unwrap_or_else(|error| {
                    panic!("validation {} lost: {error}", request.request_id)
                });
                assert_eq!(results.len(), 1);
                assert_eq!(results[0].request_id, request.request_id);
                assert_eq!(results[0].perspective.id.as_str(), "twin");
                assert_eq!(results[0].outcome, Outcome::Unsupported);
                answered.fetch_add(1, Ordering::Relaxed);
                seen.push((results[0].key_id.clone(), elapsed));
            }
            seen
        });
    }
    // SIGKILL the first node mid-load.
    let wait = Instant::now();
    while answered.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(wait.elapsed() < Duration::from_secs(60), "the load stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.signal("KILL").unwrap();
    let killed_at = answered.load(Ordering::Relaxed);

    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap());
    }
    assert_eq!(all.len(), REQUESTS, "every validation answered");
    let by_first = all.iter().filter(|(key, _)| *key == keys[0]).count();
    let by_second = all.iter().filter(|(key, _)| *key == keys[1]).count();
    assert_eq!(by_first + by_second, REQUESTS);
    assert!(
        by_first > 0 && by_second > 0,
        "load spread: {by_first}/{by_second}"
    );
    let mut latencies: Vec<Duration> = all.iter().map(|(_, elapsed)| *elapsed).collect();
    latencies.sort();
    let slowest = latencies[latencies.len() - 1];
    eprintln!(
        "failover: {REQUESTS}/{REQUESTS} answered (killed after {killed_at}); first node \
         {by_first}, second {by_second}; p50 {:?}, max {slowest:?}",
        latencies[latencies.len() / 2]
    );
    assert!(
        slowest < DEADLINE,
        "answered within the deadline: {slowest:?}"
    );
}
