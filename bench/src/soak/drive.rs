//! The soak's open-loop load: requests of 1 to `--max-sans` targets (the mix's kinds, names
//! round-robin) sent on schedule at the soak rate (10× during a burst), each answer classified
//! — every result signed and verified, refused as `overloaded`, or lost (no answer, a bad
//! signature, a missing result) — and tallied per phase, per sampling interval and per window.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use mpic_protocol::client::{ClientError, Primary};
use mpic_protocol::{Outcome, ProtocolErrorKind, Target};
use serde::Serialize;
use tokio::time::Instant;

use super::faults::{self, Window};
use crate::workload::Mix;

/// Most requests outstanding at once; beyond it a request is counted lost (never queued).
const MAX_OUTSTANDING: u64 = 20_000;

/// What one request came to.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Every result arrived and its signature verified: `None` a pass, else the problem kind.
    Verified(Vec<Option<&'static str>>),
    /// Refused as `overloaded` (unsigned, as the protocol says).
    Shed,
    /// Nothing usable came back: why.
    Lost(String),
}

/// Checks per phase.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Counts {
    /// Checks sent.
    pub(crate) sent: u64,
    /// Checks whose signed result verified.
    pub(crate) verified: u64,
    /// Verified and passed.
    pub(crate) passed: u64,
    /// Checks in requests refused as `overloaded`.
    pub(crate) shed: u64,
    /// Checks with no usable result.
    pub(crate) lost: u64,
    /// Failures and losses by kind.
    pub(crate) errors: BTreeMap<String, u64>,
}

/// Everything the load has seen; read and partly reset by the sampler.
pub(crate) struct Tally {
    /// Latency of requests completed since the last sample (µs, from the intended start).
    pub(crate) interval: Histogram<u64>,
    /// Errors by kind since the last sample.
    pub(crate) interval_errors: BTreeMap<String, u64>,
    /// Requests completed since the last sample.
    pub(crate) interval_completed: u64,
    /// Latency of clean-phase requests per window after warm-up (by send time).
    pub(crate) windows: Vec<Histogram<u64>>,
    /// Per phase.
    pub(crate) phases: BTreeMap<&'static str, Counts>,
    /// Per kind of check (`caa`, `tls-alpn-01`, ...), over every phase.
    pub(crate) kinds: BTreeMap<&'static str, Counts>,
    /// Requests sent and not yet answered.
    pub(crate) outstanding: u64,
}

impl Tally {
    /// An empty tally.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Self {
            interval: Histogram::new_with_bounds(1, 600_000_000, 3)?,
            interval_errors: BTreeMap::new(),
            interval_completed: 0,
            windows: Vec::new(),
            phases: BTreeMap::new(),
            kinds: BTreeMap::new(),
            outstanding: 0,
        })
    }

    /// The totals over every phase.
    pub(crate) fn total(&self) -> Counts {
        let mut total = Counts::default();
        for counts in self.phases.values() {
            total.sent += counts.sent;
            total.verified += counts.verified;
            total.passed += counts.passed;
            total.shed += counts.shed;
            total.lost += counts.lost;
            for (kind, n) in &counts.errors {
                *total.errors.entry(kind.clone()).or_insert(0) += n;
            }
        }
        total
    }

    /// Counts the checks of one request (`kinds`, in target order) as sent, per kind.
    pub(crate) fn sent(&mut self, phase: &'static str, kinds: &[&'static str]) {
        self.phases.entry(phase).or_default().sent += kinds.len() as u64;
        for kind in kinds {
            self.kinds.entry(kind).or_default().sent += 1;
        }
    }

    fn record(
        &mut self,
        phase: &'static str,
        window: Option<usize>,
        kinds: &[&'static str],
        latency: Duration,
        answer: Answer,
    ) {
        self.record_kinds(kinds, &answer);
        let checks = kinds.len();
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.interval.saturating_record(micros);
        self.interval_completed += 1;
        self.outstanding = self.outstanding.saturating_sub(1);
        let counts = self.phases.entry(phase).or_default();
        let mut errors: Vec<(String, u64)> = Vec::new();
        match answer {
            Answer::Verified(results) => {
                counts.verified += results.len() as u64;
                for result in results {
                    match result {
                        None => counts.passed += 1,
                        Some(kind) => errors.push((kind.to_owned(), 1)),
                    }
                }
                if let Some(window) = window.filter(|_| phase == "clean") {
                    while self.windows.len() <= window {
                        match Histogram::new_with_bounds(1, 600_000_000, 3) {
                            Ok(histogram) => self.windows.push(histogram),
                            Err(_) => return,
                        }
                    }
                    self.windows[window].saturating_record(micros);
                }
            }
            Answer::Shed => {
                counts.shed += checks as u64;
                errors.push(("overloaded".to_owned(), checks as u64));
            }
            Answer::Lost(why) => {
                counts.lost += checks as u64;
                errors.push((format!("lost: {why}"), checks as u64));
            }
        }
        for (kind, n) in errors {
            *counts.errors.entry(kind.clone()).or_insert(0) += n;
            *self.interval_errors.entry(kind).or_insert(0) += n;
        }
    }
}

impl Tally {
    /// Per kind: verified, passed, shed or lost, and failures by problem kind.
    fn record_kinds(&mut self, kinds: &[&'static str], answer: &Answer) {
        for (i, kind) in kinds.iter().enumerate() {
            let counts = self.kinds.entry(kind).or_default();
            match answer {
                Answer::Verified(results) => match results.get(i) {
                    Some(None) => {
                        counts.verified += 1;
                        counts.passed += 1;
                    }
                    Some(Some(problem)) => {
                        counts.verified += 1;
                        *counts.errors.entry((*problem).to_owned()).or_insert(0) += 1;
                    }
                    None => counts.lost += 1,
                },
                Answer::Shed => counts.shed += 1,
                Answer::Lost(_) => counts.lost += 1,
            }
        }
    }
}

/// Sends one request and classifies the answer.
pub(crate) async fn send(primary: &Primary, targets: Vec<Target>, timeout: Duration) -> Answer {
    let count = targets.len();
    let request = match primary.new_request(targets, timeout) {
        Ok(request) => request,
        Err(error) => return Answer::Lost(format!("request not built: {error}")),
    };
    match primary.query(0, &request).await {
        Ok(results) if results.len() == count => Answer::Verified(
            results
                .into_iter()
                .map(|result| match (result.outcome, result.problem) {
                    (Outcome::Pass, _) => None,
                    (_, Some(problem)) => Some(problem.kind.as_str()),
                    (_, None) => Some("fail without a problem"),
                })
                .collect(),
        ),
        Ok(results) => Answer::Lost(format!("{} of {count} results", results.len())),
        Err(ClientError::Refused { error, .. }) if error.kind == ProtocolErrorKind::Overloaded => {
            Answer::Shed
        }
        Err(error) => Answer::Lost(label(&error)),
    }
}

fn label(error: &ClientError) -> String {
    match error {
        ClientError::Timeout { .. } => "timeout".into(),
        ClientError::Verify { .. } => "signature did not verify".into(),
        ClientError::Mismatch { field, .. } => {
            format!("result does not match the request ({field})")
        }
        ClientError::Incomplete { .. } => "incomplete".into(),
        ClientError::Refused { error, .. } => format!("refused: {}", error.kind),
        ClientError::Connection { .. } => "connection".into(),
        ClientError::Frame { .. } => "bad frame".into(),
        other => other.to_string(),
    }
}

/// What the load sends.
#[derive(Debug, Clone)]
pub(crate) struct Load {
    /// Kinds of check.
    pub(crate) mix: Mix,
    /// Most targets per request (each request has 1 to this many).
    pub(crate) max_sans: usize,
    /// Distinct names.
    pub(crate) names: usize,
    /// Requests per second.
    pub(crate) rate: f64,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
    /// Seconds per p99 window.
    pub(crate) window_seconds: f64,
    /// Seconds of warm-up: its requests count in no p99 window.
    pub(crate) warmup_seconds: f64,
}

/// Targets per request for request number `k`: 1 to `max` in a fixed shuffled order (mean
/// (max + 1) / 2).
pub(crate) fn sans(k: u64, max: usize) -> usize {
    let mixed = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    1 + (mixed % max.max(1) as u64) as usize
}

/// Request number `k`: 1 to `max_sans` targets, the mix's kinds in turn (`next_check` counts
/// checks), names round-robin; with each target's kind name.
pub(crate) fn request(
    load: &Load,
    k: u64,
    next_check: &mut u64,
) -> (Vec<&'static str>, Vec<Target>) {
    (0..sans(k, load.max_sans))
        .map(|_| {
            *next_check += 1;
            let kind = load.mix.kind(*next_check);
            let target = kind.target((*next_check % load.names.max(1) as u64) as usize);
            (kind.name(), target)
        })
        .unzip()
}

/// Sends on schedule from `started` until `total` seconds, 10× the rate inside a burst window
/// (a second's worth of the burst rate at once, each second, so admission sees the clump).
pub(crate) async fn run(
    primary: Arc<Primary>,
    tally: Arc<Mutex<Tally>>,
    load: Load,
    windows: Vec<Window>,
    started: Instant,
    total: f64,
) {
    let interval = Duration::from_secs_f64(1.0 / load.rate.max(0.001));
    let mut tasks = tokio::task::JoinSet::new();
    let (mut k, mut next_check, mut tick) = (0u64, 0u64, 0u32);
    let mut last_burst_second = None;
    loop {
        let intended = started + interval * tick;
        let at = (intended - started).as_secs_f64();
        if at >= total {
            break;
        }
        tick += 1;
        tokio::time::sleep_until(intended).await;
        while tasks.try_join_next().is_some() {}
        let phase = faults::phase(&windows, at);
        let mut clump = 1;
        if phase == "burst" && last_burst_second != Some(at as u64) {
            // Nine more seconds' worth at once: with the base rate, 10× over the second.
            last_burst_second = Some(at as u64);
            clump += (9.0 * load.rate).round() as u64;
        }
        for _ in 0..clump {
            let (kinds, targets) = request(&load, k, &mut next_check);
            k += 1;
            let window = (at >= load.warmup_seconds)
                .then(|| ((at - load.warmup_seconds) / load.window_seconds.max(1.0)) as usize);
            if let Ok(mut tally) = tally.lock() {
                tally.sent(phase, &kinds);
                tally.outstanding += 1;
                if tally.outstanding > MAX_OUTSTANDING {
                    tally.record(
                        phase,
                        window,
                        &kinds,
                        Duration::ZERO,
                        Answer::Lost("not sent: too many outstanding".into()),
                    );
                    continue;
                }
            }
            let (primary, tally, timeout) =
                (Arc::clone(&primary), Arc::clone(&tally), load.timeout);
            tasks.spawn(async move {
                let answer = send(&primary, targets, timeout).await;
                if let Ok(mut tally) = tally.lock() {
                    tally.record(phase, window, &kinds, intended.elapsed(), answer);
                }
            });
        }
    }
    // Everything sent is answered or times out (the request timeout, plus slack).
    let _ = tokio::time::timeout(load.timeout * 3, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_cover_one_to_max_with_the_right_mean() {
        let counts: Vec<usize> = (0..10_000).map(|k| sans(k, 10)).collect();
        assert_eq!(counts.iter().min(), Some(&1));
        assert_eq!(counts.iter().max(), Some(&10));
        let mean = counts.iter().sum::<usize>() as f64 / counts.len() as f64;
        assert!((5.0..6.0).contains(&mean), "mean {mean}");
        assert!((0..100).all(|k| sans(k, 1) == 1));
    }

    #[test]
    fn tally_keeps_shed_and_lost_apart_from_verified() {
        let mut tally = Tally::new().unwrap();
        tally.sent("clean", &["caa", "tls-alpn-01"]);
        tally.sent("clean", &["tls-alpn-01"]);
        tally.sent("burst", &["caa", "http-01"]);
        let verified = Answer::Verified(vec![None, Some("dns_timeout")]);
        let kinds = ["caa", "tls-alpn-01"];
        tally.record("clean", Some(0), &kinds, Duration::from_millis(2), verified);
        let kinds = ["caa", "http-01"];
        tally.record(
            "burst",
            Some(0),
            &kinds,
            Duration::from_millis(1),
            Answer::Shed,
        );
        tally.record(
            "clean",
            None,
            &["tls-alpn-01"],
            Duration::from_millis(9),
            Answer::Lost("timeout".into()),
        );
        let total = tally.total();
        assert_eq!(
            (
                total.sent,
                total.verified,
                total.passed,
                total.shed,
                total.lost
            ),
            (5, 2, 1, 2, 1)
        );
        assert_eq!(total.errors.get("dns_timeout"), Some(&1));
        assert_eq!(total.errors.get("overloaded"), Some(&2));
        assert_eq!(total.errors.get("lost: timeout"), Some(&1));
        // Per kind: the verified failure, the shed and the lost check land on their own kinds.
        let (caa, tls) = (&tally.kinds["caa"], &tally.kinds["tls-alpn-01"]);
        assert_eq!((caa.sent, caa.verified, caa.passed, caa.shed), (2, 1, 1, 1));
        assert_eq!((tls.sent, tls.verified, tls.passed, tls.lost), (2, 1, 0, 1));
        assert_eq!(tls.errors.get("dns_timeout"), Some(&1));
        assert_eq!(tally.kinds["http-01"].shed, 1);
        // Only verified clean requests count towards the p99 windows.
        assert_eq!(tally.windows.len(), 1);
        assert_eq!(tally.windows[0].len(), 1);
        assert_eq!(tally.interval_completed, 3);
    }
}
