//! The end of a soak: SIGTERM with a batch of requests in flight, each of which must be answered
//! (signed, verified, passing) before the node exits 0.

use std::sync::Arc;
use std::time::Duration;

use mpic_protocol::client::Primary;
use mpic_tests::dns_server::Behaviour;
use tokio::time::Instant;

use super::drive::{self, Answer, Load};
use super::node::{SoakNode, metric_sum};
use crate::fixture::Fixture;

/// What the end-of-run SIGTERM came to.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Drain {
    /// Requests in flight when SIGTERM was sent.
    pub(crate) in_flight: usize,
    /// Of those, answered with every result verified and passing.
    pub(crate) verified_passing: usize,
    /// The others' answers.
    pub(crate) others: Vec<String>,
    /// Exit code, if the node exited within 30 s.
    pub(crate) exit_code: Option<i32>,
    /// Seconds from SIGTERM to exit.
    pub(crate) exit_seconds: f64,
}

/// Keeps a batch in flight (DNS answers held 1 s, half the node's 2 s query timeout), sends SIGTERM, and checks every one of them
/// is answered and the node exits 0.
pub(crate) async fn sigterm(
    node: &mut SoakNode,
    primary: &Arc<Primary>,
    fixture: &Fixture,
    load: &Load,
) -> anyhow::Result<Drain> {
    fixture.set_dns_behaviour(Some(Behaviour::Delay(Duration::from_secs(1))));
    let batch = 16usize;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..batch {
        let targets = (0..3)
            .map(|j| load.mix.kind((i * 3 + j) as u64).target(i * 3 + j))
            .collect();
        let (primary, timeout) = (Arc::clone(primary), load.timeout);
        tasks.spawn(async move { drive::send(&primary, targets, timeout).await });
    }
    // SIGTERM once the node has admitted the whole batch (10 s at most: a slow machine).
    let admitted = Instant::now() + Duration::from_secs(10);
    while Instant::now() < admitted {
        let page = node.scrape().await.unwrap_or_default();
        if metric_sum(&page, "mpic_node_requests_in_flight", "") >= batch as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signalled = Instant::now();
    node.signal("TERM")?;
    let (mut verified_passing, mut others) = (0, Vec::new());
    let answers = tokio::time::timeout(load.timeout * 2, async {
        let mut answers = Vec::new();
        while let Some(answer) = tasks.join_next().await {
            answers.push(answer);
        }
        answers
    })
    .await
    .unwrap_or_default();
    for answer in answers {
        match answer {
            Ok(Answer::Verified(results)) if results.iter().all(Option::is_none) => {
                verified_passing += 1;
            }
            other => others.push(format!("{other:?}")),
        }
    }
    let status = node.wait_exit(Duration::from_secs(30)).await;
    fixture.set_dns_behaviour(None);
    Ok(Drain {
        in_flight: batch,
        verified_passing,
        others,
        exit_code: status.and_then(|s| s.code()),
        exit_seconds: signalled.elapsed().as_secs_f64(),
    })
}
