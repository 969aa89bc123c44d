//! `--rate auto`: before the soak, the node's best sustained rate for the soak's mix, measured
//! closed loop — `--calibration-concurrency` requests always outstanding (below the admission
//! limit, so nothing is shed), each sent as soon as the one before it is answered — over a short
//! warm-up and a measured span. The best rate is the requests per second answered in the span,
//! every result verified; the soak then runs at half of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use mpic_protocol::client::Primary;
use serde::Serialize;
use tokio::time::Instant;

use super::drive::{self, Answer, Load};

/// What `--rate` asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rate {
    /// Half the best rate a calibration finds.
    Auto,
    /// This many requests per second.
    Fixed(f64),
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim() == "auto" {
            return Ok(Rate::Auto);
        }
        match text.trim().parse::<f64>() {
            Ok(rate) if rate > 0.0 && rate.is_finite() => Ok(Rate::Fixed(rate)),
            _ => Err(format!(
                "--rate must be `auto` or a positive number, got {text:?}"
            )),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rate::Auto => f.write_str("auto"),
            Rate::Fixed(rate) => write!(f, "{rate}"),
        }
    }
}

/// How the calibration ran and what it found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Calibration {
    /// Requests kept outstanding.
    pub(crate) concurrency: usize,
    /// Seconds of warm-up (not counted).
    pub(crate) warmup_seconds: f64,
    /// Seconds measured.
    pub(crate) measured_seconds: f64,
    /// Requests answered in the measured span with every result verified.
    pub(crate) requests: u64,
    /// Their checks.
    pub(crate) checks: u64,
    /// Of those, checks that did not pass (a clean node should have none).
    pub(crate) failed_checks: u64,
    /// Requests shed or lost in the measured span.
    pub(crate) shed_or_lost: u64,
    /// Latency of the measured requests, ms.
    pub(crate) p50_ms: f64,
    /// See `p50_ms`.
    pub(crate) p99_ms: f64,
    /// Requests per second answered: the best sustained rate.
    pub(crate) best_rate: f64,
    /// Half of it: the soak's rate.
    pub(crate) soak_rate: f64,
}

/// Counts of the measured span.
#[derive(Default)]
struct Counted {
    requests: u64,
    checks: u64,
    failed_checks: u64,
    shed_or_lost: u64,
}

/// Runs the closed loop for `warmup + measured` and returns what it found.
pub(crate) async fn run(
    primary: &Arc<Primary>,
    load: &Load,
    concurrency: usize,
    warmup: Duration,
    measured: Duration,
) -> anyhow::Result<Calibration> {
    let started = Instant::now();
    let (from, until) = (started + warmup, started + warmup + measured);
    let latency = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        600_000_000,
        3,
    )?));
    let counted = Arc::new(std::sync::Mutex::new(Counted::default()));
    // Request and check numbers far from the soak's own, so the names differ from its first ones.
    let next = Arc::new((AtomicU64::new(1 << 40), AtomicU64::new(1 << 40)));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (primary, load) = (Arc::clone(primary), load.clone());
        let (latency, counted, next) = (
            Arc::clone(&latency),
            Arc::clone(&counted),
            Arc::clone(&next),
        );
        workers.spawn(async move {
            while Instant::now() < until {
                let k = next.0.fetch_add(1, Ordering::Relaxed);
                let n = drive::sans(k, load.max_sans) as u64;
                let mut check = next.1.fetch_add(n, Ordering::Relaxed);
                let (_, targets) = drive::request(&load, k, &mut check);
                let sent = Instant::now();
                let answer = drive::send(&primary, targets, load.timeout).await;
                let done = Instant::now();
                // Throughput: what completes inside the measured span.
                if done < from || done > until {
                    continue;
                }
                let Ok(mut counted) = counted.lock() else {
                    return;
                };
                match answer {
                    Answer::Verified(results) => {
                        counted.requests += 1;
                        counted.checks += results.len() as u64;
                        counted.failed_checks +=
                            results.iter().filter(|r| r.is_some()).count() as u64;
                        if let Ok(mut latency) = latency.lock() {
                            let micros = (done - sent).as_micros();
                            latency.saturating_record(u64::try_from(micros).unwrap_or(u64::MAX));
                        }
                    }
                    Answer::Shed | Answer::Lost(_) => counted.shed_or_lost += 1,
                }
            }
        });
    }
    // Every worker stops at `until` plus at most one request's timeout.
    let _ = tokio::time::timeout(measured + warmup + load.timeout * 2, async {
        while workers.join_next().await.is_some() {}
    })
    .await;
    workers.abort_all();
    let counted = counted
        .lock()
        .map_err(|_| anyhow::anyhow!("the calibration's lock is poisoned"))?;
    let latency = latency
        .lock()
        .map_err(|_| anyhow::anyhow!("the calibration's lock is poisoned"))?;
    let seconds = measured.as_secs_f64();
    let best_rate = counted.requests as f64 / seconds.max(0.001);
    anyhow::ensure!(
        best_rate > 0.0,
        "calibration: no request was answered in {seconds:.0} s"
    );
    Ok(Calibration {
        concurrency,
        warmup_seconds: warmup.as_secs_f64(),
        measured_seconds: seconds,
        requests: counted.requests,
        checks: counted.checks,
        failed_checks: counted.failed_checks,
        shed_or_lost: counted.shed_or_lost,
        p50_ms: latency.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
        best_rate: (best_rate * 10.0).round() / 10.0,
        soak_rate: (best_rate / 2.0 * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_auto_or_a_positive_number() {
        assert_eq!("auto".parse::<Rate>(), Ok(Rate::Auto));
        assert_eq!("12.5".parse::<Rate>(), Ok(Rate::Fixed(12.5)));
        for bad in ["0", "-3", "fast", "NaN", "inf"] {
            let error = bad.parse::<Rate>().unwrap_err();
            assert!(error.contains("auto"), "{bad}: {error}");
        }
        assert_eq!(Rate::Auto.to_string(), "auto");
        assert_eq!(Rate::Fixed(20.0).to_string(), "20");
    }
}
