//! Tenants end to end: two tenants with different quotas on one node under load — the flooding
//! one is refused `overloaded` (with its retry hint) while every request of the honest one is
//! answered, signed for its tenant; a primary of no tenant is refused; a tenant removed by
//! SIGHUP is cut off at its next request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mpic_protocol::client::{ClientError, ClientOptions, Primary};
use mpic_protocol::{Outcome, ProtocolErrorKind, Rir};
use mpic_tests::{NodeOptions, NodeProcess, node::primary};

use crate::support::{Lab, probe_target, request};

/// The honest tenant (the dev primary) and the flooding one (`flood.pem`).
const HONEST: &str = "name = \"honest\"\nsubject_names = [\"mpic-dev-primary\"]\n\
                      requests_per_second = 10000\nmax_in_flight_requests = 64\n";
const FLOODER: &str = "\n[[tenants]]\nname = \"flooder\"\nsubject_names = [\"flood\"]\n\
                       requests_per_second = 20\nburst = 20\nmax_in_flight_requests = 4\n\
                       retry_after = \"250ms\"\n";

/// Honest requests, sent closed-loop by this many workers.
const HONEST_REQUESTS: usize = 200;
const HONEST_WORKERS: usize = 4;
/// Flood requests, this many at a time.
const FLOOD_REQUESTS: usize = 600;
const FLOOD_WORKERS: usize = 32;

fn client(lab: &Lab, node: &NodeProcess, name: &str) -> Primary {
    let identity = lab
        .credentials
        .identity(&format!("{name}.pem"), &format!("{name}.key"))
        .unwrap();
    Primary::new(
        vec![node.endpoint()],
        ClientOptions::new(lab.credentials.ca().unwrap(), Some(identity)),
    )
    .unwrap()
}

/// Sends `count` requests from `workers` closed loops; returns each one's latency and result.
async fn load(
    primary: Arc<Primary>,
    count: usize,
    workers: usize,
) -> Vec<(
    Duration,
    Result<Vec<mpic_protocol::ResultPayload>, ClientError>,
)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (primary, next) = (Arc::clone(&primary), Arc::clone(&next));
        tasks.spawn(async move {
            let mut done = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count {
                let started = Instant::now();
                let result = primary
                    .query(0, &request(vec![probe_target("tenant.test")]))
                    .await;
                done.push((started.elapsed(), result));
            }
            done
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

fn percentile(latencies: &mut [Duration], p: f64) -> Duration {
    latencies.sort();
    let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
    latencies[index]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_tenant_is_shed_the_honest_one_is_served_and_sighup_removes_a_tenant() {
    let lab = Lab::new();
    lab.credentials.issue_primary("flood").unwrap();
    lab.credentials.issue_primary("stranger").unwrap();
    let audit = lab.dir.path().join("audit.jsonl");
    let options = NodeOptions::new("tenanted", Rir::Afrinic)
        .with("audit", &format!("path = \"{}\"", audit.display()))
        .with("[tenants]", &format!("{HONEST}{FLOODER}"));
    let node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let honest = Arc::new(primary(&lab.credentials, &[&node]).unwrap());
    let flooder = Arc::new(client(&lab, &node, "flood"));

    // A primary that matches no tenant is refused.
    let stranger = client(&lab, &node, "stranger");
    let refused = stranger
        .query(0, &request(vec![probe_target("x.test")]))
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // The honest tenant alone first: the latency to compare with.
    let mut alone: Vec<Duration> = load(Arc::clone(&honest), HONEST_REQUESTS, HONEST_WORKERS)
        .await
        .into_iter()
        .map(|(elapsed, result)| {
            result.expect("answered");
            elapsed
        })
        .collect();
    let (alone_p50, alone_p99) = (percentile(&mut alone, 0.5), percentile(&mut alone, 0.99));

    // Both tenants at once: the flood runs while the honest tenant's closed loop does.
    let flood = tokio::spawn(load(Arc::clone(&flooder), FLOOD_REQUESTS, FLOOD_WORKERS));
    let honest_results = load(Arc::clone(&honest), HONEST_REQUESTS, HONEST_WORKERS).await;
    let flood_results = flood.await.unwrap();

    let mut latencies = Vec::new();
    for (elapsed, result) in &honest_results {
        let results = result.as_ref().expect("every honest request is answered");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].tenant.as_deref(), Some("honest"));
        assert_eq!(results[0].outcome, Outcome::Unsupported);
        latencies.push(*elapsed);
    }
    assert_eq!(latencies.len(), HONEST_REQUESTS);
    let mut overloaded = 0;
    let mut answered = 0;
    for (_, result) in &flood_results {
        match result {
            Ok(results) => {
                assert_eq!(results[0].tenant.as_deref(), Some("flooder"));
                answered += 1;
            }
            Err(ClientError::Refused { error, .. }) => {
                assert_eq!(
                    error.kind,
                    ProtocolErrorKind::Overloaded,
                    "{}",
                    error.detail
                );
                assert_eq!(error.retry_after_ms, Some(250));
                assert!(error.detail.contains("tenant flooder"), "{}", error.detail);
                overloaded += 1;
            }
            Err(other) => panic!("flooder: unexpected {other}"),
        }
    }
    assert_eq!(answered + overloaded, FLOOD_REQUESTS);
    assert!(overloaded > 0, "the flood was never shed");
    let (p50, p99) = (
        percentile(&mut latencies, 0.5),
        percentile(&mut latencies, 0.99),
    );
    eprintln!(
        "honest tenant alone: p50 {alone_p50:?}, p99 {alone_p99:?}; under the flood: \
         {HONEST_REQUESTS}/{HONEST_REQUESTS} answered, p50 {p50:?}, p99 {p99:?}; \
         flooder: {answered} answered, {overloaded} overloaded of {FLOOD_REQUESTS}"
    );
    assert!(p99 < Duration::from_secs(2), "honest p99 {p99:?}");
    let sample = |tenant: &str, outcome: &str| {
        node.metric(&format!(
            "mpic_node_tenant_requests_total{{outcome=\"{outcome}\",tenant=\"{tenant}\"}}"
        ))
        .unwrap_or(0.0)
    };
    assert_eq!(sample("honest", "answered"), 2.0 * HONEST_REQUESTS as f64);
    assert_eq!(sample("honest", "overloaded"), 0.0);
    assert_eq!(sample("flooder", "overloaded"), overloaded as f64);
    assert_eq!(sample("flooder", "answered"), answered as f64);

    // A primary that expects its results to name another tenant does not accept them: a
    // result issued for one CA cannot be presented as another's.
    tokio::time::sleep(Duration::from_millis(200)).await; // the flooder's bucket refills
    let mut options = ClientOptions::new(
        lab.credentials.ca().unwrap(),
        Some(lab.credentials.identity("flood.pem", "flood.key").unwrap()),
    );
    options.tenant = Some("honest".into());
    let impostor = Primary::new(vec![node.endpoint()], options).unwrap();
    let presented = impostor
        .query(0, &request(vec![probe_target("x.test")]))
        .await;
    assert!(
        matches!(
            presented,
            Err(ClientError::Mismatch {
                field: "tenant",
                ..
            })
        ),
        "{presented:?}"
    );

    // SIGHUP without the flooder: its open connection is closed at its next request.
    let config = std::fs::read_to_string(&node.config_path).unwrap();
    let without = config.replace(FLOODER.trim_start_matches('\n'), "");
    assert_ne!(without, config, "the flooder's table is in the config");
    std::fs::write(&node.config_path, without).unwrap();
    node.signal("HUP").unwrap();
    node.wait_for_metric("mpic_node_config_reloads_total{result=\"applied\"}", 1.0)
        .unwrap();
    let cut = flooder
        .query(0, &request(vec![probe_target("after.test")]))
        .await;
    assert!(cut.is_err(), "{cut:?}");
    let still = honest
        .query(0, &request(vec![probe_target("after.test")]))
        .await
        .unwrap();
    assert_eq!(still[0].tenant.as_deref(), Some("honest"));
    assert!(node.log().contains("tenants: 1 now"), "{}", node.log());

    // The audit log names the tenant of every result.
    let lines = std::fs::read_to_string(&audit).unwrap();
    let tenant_of = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["tenant"]
            .as_str()
            .map(str::to_owned)
    };
    let tenants: Vec<Option<String>> = lines.lines().map(tenant_of).collect();
    let count = |name: &str| {
        tenants
            .iter()
            .filter(|t| t.as_deref() == Some(name))
            .count()
    };
    assert_eq!(count("honest"), 2 * HONEST_REQUESTS + 1);
    // The flood's answered requests and the one presented as the honest tenant's.
    assert_eq!(count("flooder"), answered + 1);
    assert_eq!(tenants.len(), 2 * HONEST_REQUESTS + 1 + answered + 1);
}
