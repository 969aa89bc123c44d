//! Drives load at a node and measures it: closed loop (fixed concurrency), open loop (fixed
//! rate; latency from each request's *intended* start, so a stalled node cannot hide its queue —
//! no coordinated omission), and the sweep that finds the highest rate whose p99 stays under a
//! bound. Latency goes into an HDR histogram; CPU, memory and DNS rates are read around each
//! phase.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::join_all;
use hdrhistogram::Histogram;
use mpic_node::dispatch::Dispatcher;
use mpic_protocol::client::Primary;
use mpic_protocol::{Outcome, Target};
use tokio::time::Instant;

use crate::workload::Mix;

/// Most requests an open-loop run keeps outstanding before it counts the rest as not sent.
const MAX_OUTSTANDING: usize = 200_000;

/// How requests reach the checks.
pub(crate) enum Driver {
    /// Over QUIC to every node, each result's signature verified by the client library.
    Quic(Primary),
    /// Straight into the check engine in-process (no transport, no signing).
    Engine(Arc<Dispatcher>),
}

/// What one check came to.
#[derive(Clone)]
enum Verdict {
    Pass,
    Fail(&'static str),
    Error(String),
}

impl Driver {
    async fn send(&self, targets: Vec<Target>, timeout: Duration) -> Vec<Verdict> {
        match self {
            Driver::Engine(dispatcher) => {
                let deadline = Instant::now() + timeout;
                let runs = targets
                    .iter()
                    .map(|target| dispatcher.run(target, deadline));
                join_all(runs)
                    .await
                    .into_iter()
                    .map(|report| match (report.outcome, report.problem) {
                        (Outcome::Pass, _) => Verdict::Pass,
                        (_, Some(problem)) => Verdict::Fail(problem.kind.as_str()),
                        (_, None) => Verdict::Fail("unknown"),
                    })
                    .collect()
            }
            Driver::Quic(primary) => {
                let count = targets.len();
                let request = match primary.new_request(targets, timeout) {
                    Ok(request) => request,
                    Err(error) => return vec![Verdict::Error(error.to_string()); count],
                };
                let nodes = primary.nodes().count();
                let queries = (0..nodes).map(|index| primary.query(index, &request));
                let mut verdicts = Vec::with_capacity(count * nodes);
                for answer in join_all(queries).await {
                    match answer {
                        Ok(results) => {
                            let missing = count.saturating_sub(results.len());
                            verdicts.extend(results.into_iter().map(|result| {
                                match (result.outcome, result.problem) {
                                    (Outcome::Pass, _) => Verdict::Pass,
                                    (_, Some(problem)) => Verdict::Fail(problem.kind.as_str()),
                                    (_, None) => Verdict::Fail("unknown"),
                                }
                            }));
                            verdicts.extend(
                                (0..missing).map(|_| Verdict::Error("result missing".into())),
                            );
                        }
                        Err(error) => {
                            let text = error.to_string();
                            let label = text.split(':').next().unwrap_or(&text).to_owned();
                            verdicts.extend((0..count).map(|_| Verdict::Error(label.clone())));
                        }
                    }
                }
                verdicts
            }
        }
    }
}

/// How the load is shaped.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    /// This many requests in flight at all times.
    Closed(usize),
    /// This many requests per second, sent on schedule whatever the node does.
    Open(f64),
}

/// The parameters every phase shares.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The mix of check kinds.
    pub(crate) mix: Mix,
    /// Targets per request (SANs per certificate).
    pub(crate) sans: usize,
    /// Distinct names used round-robin.
    pub(crate) names: usize,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
    /// Print a progress line each second.
    pub(crate) progress: bool,
}

/// Where a phase reads resource use.
pub(crate) struct Meters {
    /// Node CPU seconds so far.
    pub(crate) node_cpu: Box<dyn Fn() -> Option<f64> + Send + Sync>,
    /// Node resident bytes now.
    pub(crate) node_rss: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    /// Fixture CPU seconds so far.
    pub(crate) fixture_cpu: Box<dyn Fn() -> Option<f64> + Send + Sync>,
    /// DNS queries the fixture has received so far.
    pub(crate) dns_queries: Box<dyn Fn() -> Option<u64> + Send + Sync>,
}

/// What one phase measured.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PhaseReport {
    /// `closed` or `open`.
    pub(crate) shape: String,
    /// Concurrency (closed) or offered requests/s (open).
    pub(crate) level: f64,
    /// Seconds the phase ran.
    pub(crate) seconds: f64,
    /// Requests completed.
    pub(crate) requests: u64,
    /// Checks answered (results received or engine reports).
    pub(crate) checks: u64,
    /// Checks that passed.
    pub(crate) passed: u64,
    /// Checks per second.
    pub(crate) checks_per_second: f64,
    /// Request latency percentiles, milliseconds: p50, p90, p99, p99.9, max. Open loop: from
    /// each request's scheduled start.
    pub(crate) latency_ms: BTreeMap<String, f64>,
    /// The same percentiles from each request's actual send (service time).
    pub(crate) service_ms: BTreeMap<String, f64>,
    /// Failures and errors by kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Node CPU µs per check.
    pub(crate) node_cpu_us_per_check: Option<f64>,
    /// Fixture CPU µs per check.
    pub(crate) fixture_cpu_us_per_check: Option<f64>,
    /// Peak node RSS seen during the phase, bytes.
    pub(crate) node_rss_peak_bytes: Option<u64>,
    /// DNS queries per second at the fixture.
    pub(crate) dns_queries_per_second: Option<f64>,
    /// Requests not sent because too many were outstanding (open loop only).
    pub(crate) not_sent: u64,
}

impl PhaseReport {
    /// Checks that did not pass.
    pub(crate) fn failures(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The p99 latency in milliseconds.
    pub(crate) fn p99_ms(&self) -> f64 {
        self.latency_ms.get("p99").copied().unwrap_or(f64::MAX)
    }
}

struct Shared {
    histogram: Mutex<Histogram<u64>>,
    service: Mutex<Histogram<u64>>,
    requests: AtomicU64,
    checks: AtomicU64,
    passed: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    next: AtomicU64,
}

impl Shared {
    fn record(&self, latency: Duration, service: Duration, verdicts: Vec<Verdict>) {
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        if let Ok(mut histogram) = self.histogram.lock() {
            histogram.saturating_record(micros(latency));
        }
        if let Ok(mut histogram) = self.service.lock() {
            histogram.saturating_record(micros(service));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.checks
            .fetch_add(verdicts.len() as u64, Ordering::Relaxed);
        for verdict in verdicts {
            let key = match verdict {
                Verdict::Pass => {
                    self.passed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Verdict::Fail(kind) => kind.to_owned(),
                Verdict::Error(text) => format!("error: {text}"),
            };
            if let Ok(mut errors) = self.errors.lock() {
                *errors.entry(key).or_insert(0) += 1;
            }
        }
    }

    fn targets(&self, plan: &Plan) -> Vec<Target> {
        (0..plan.sans)
            .map(|_| {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                plan.mix
                    .kind(n)
                    .target((n % plan.names.max(1) as u64) as usize)
            })
            .collect()
    }
}

/// Runs one phase of `shape` for `duration` (or until `count` requests were sent).
pub(crate) async fn phase(
    driver: &Arc<Driver>,
    plan: &Plan,
    meters: &Meters,
    shape: Shape,
    duration: Duration,
    count: Option<u64>,
    offset: u64,
) -> anyhow::Result<PhaseReport> {
    let shared = Arc::new(Shared {
        histogram: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
        service: Mutex::new(Histogram::new_with_bounds(1, 120_000_000, 3)?),
        requests: AtomicU64::new(0),
        checks: AtomicU64::new(0),
        passed: AtomicU64::new(0),
        errors: Mutex::default(),
        next: AtomicU64::new(offset),
    });
    let cpu_before = (meters.node_cpu)();
    let fixture_before = (meters.fixture_cpu)();
    let dns_before = (meters.dns_queries)();
    let started = Instant::now();
    let end = started + duration;
    let sent = Arc::new(AtomicU64::new(0));
    let may_send = {
        let sent = Arc::clone(&sent);
        move || {
            let n = sent.fetch_add(1, Ordering::Relaxed);
            count.is_none_or(|count| n < count)
        }
    };
    let done = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let monitor = {
        let (shared, done, peak_rss) = (
            Arc::clone(&shared),
            Arc::clone(&done),
            Arc::clone(&peak_rss),
        );
        let rss = &meters.node_rss;
        let progress = plan.progress;
        let total = duration.as_secs_f64();
        async move {
            let mut tick = 0u64;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(250)).await;
                tick += 1;
                if let Some(bytes) = rss() {
                    peak_rss.fetch_max(bytes, Ordering::Relaxed);
                }
                let checks = shared.checks.load(Ordering::Relaxed);
                if progress && tick % 4 == 0 {
                    let elapsed = started.elapsed().as_secs_f64();
                    let p99 = shared
                        .histogram
                        .lock()
                        .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0)
                        .unwrap_or(0.0);
                    let errors: u64 = shared.errors.lock().map(|e| e.values().sum()).unwrap_or(0);
                    eprint!(
                        "\r  [{elapsed:>5.1}/{total:.0} s] {checks:>9} checks {:>9.0}/s  p99 {p99:>8.2} ms  failures {errors}   ",
                        checks as f64 / elapsed.max(0.001)
                    );
                    let _ = std::io::stderr().flush();
                }
            }
            if progress {
                eprintln!();
            }
        }
    };
    let load = async {
        let mut tasks = tokio::task::JoinSet::new();
        let mut not_sent = 0u64;
        match shape {
            Shape::Closed(concurrency) => {
                for _ in 0..concurrency.max(1) {
                    let (driver, shared, plan, may_send) = (
                        Arc::clone(driver),
                        Arc::clone(&shared),
                        plan.clone(),
                        may_send.clone(),
                    );
                    tasks.spawn(async move {
                        while Instant::now() < end && may_send() {
                            let targets = shared.targets(&plan);
                            let began = Instant::now();
                            let verdicts = driver.send(targets, plan.timeout).await;
                            shared.record(began.elapsed(), began.elapsed(), verdicts);
                        }
                    });
                }
            }
            Shape::Open(rate) => {
                let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
                let mut k: u32 = 0;
                loop {
                    let intended = started + interval * k;
                    if intended >= end || !may_send() {
                        break;
                    }
                    k += 1;
                    tokio::time::sleep_until(intended).await;
                    while let Some(finished) = tasks.try_join_next() {
                        let _ = finished;
                    }
                    if tasks.len() >= MAX_OUTSTANDING {
                        not_sent += 1;
                        continue;
                    }
                    let (driver, shared, plan) =
                        (Arc::clone(driver), Arc::clone(&shared), plan.clone());
                    tasks.spawn(async move {
                        let targets = shared.targets(&plan);
                        let began = Instant::now();
                        let verdicts = driver.send(targets, plan.timeout).await;
                        // From the intended start: time spent queued behind a slow node counts
                        // (and so does the harness timer's lateness, up to ~1 ms); the service
                        // time, from the actual send, is kept apart.
                        shared.record(intended.elapsed(), began.elapsed(), verdicts);
                    });
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        done.store(true, Ordering::Relaxed);
        not_sent
    };
    let (not_sent, ()) = tokio::join!(load, monitor);
    let seconds = started.elapsed().as_secs_f64();
    let checks = shared.checks.load(Ordering::Relaxed);
    let per_check = |before: Option<f64>, after: Option<f64>| {
        Some((after? - before?) * 1e6 / checks.max(1) as f64)
    };
    let histogram = shared
        .histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?
        .clone();
    let service = shared
        .service
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?
        .clone();
    let latency_ms = percentiles(&histogram);
    let service_ms = percentiles(&service);
    let (shape_name, level) = match shape {
        Shape::Closed(concurrency) => ("closed", concurrency as f64),
        Shape::Open(rate) => ("open", rate),
    };
    Ok(PhaseReport {
        shape: shape_name.into(),
        level,
        seconds,
        requests: shared.requests.load(Ordering::Relaxed),
        checks,
        passed: shared.passed.load(Ordering::Relaxed),
        checks_per_second: checks as f64 / seconds.max(1e-9),
        latency_ms,
        service_ms,
        errors: shared.errors.lock().map(|e| e.clone()).unwrap_or_default(),
        node_cpu_us_per_check: per_check(cpu_before, (meters.node_cpu)()),
        fixture_cpu_us_per_check: per_check(fixture_before, (meters.fixture_cpu)()),
        node_rss_peak_bytes: Some(peak_rss.load(Ordering::Relaxed)).filter(|b| *b > 0),
        dns_queries_per_second: dns_before
            .zip((meters.dns_queries)())
            .map(|(before, after)| (after - before) as f64 / seconds.max(1e-9)),
        not_sent,
    })
}

fn percentiles(histogram: &Histogram<u64>) -> BTreeMap<String, f64> {
    let ms = |micros: u64| micros as f64 / 1000.0;
    BTreeMap::from([
        ("p50".to_owned(), ms(histogram.value_at_quantile(0.50))),
        ("p90".to_owned(), ms(histogram.value_at_quantile(0.90))),
        ("p99".to_owned(), ms(histogram.value_at_quantile(0.99))),
        ("p99.9".to_owned(), ms(histogram.value_at_quantile(0.999))),
        ("max".to_owned(), ms(histogram.max())),
    ])
}
