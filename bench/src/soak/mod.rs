//! `mpic-bench soak`: the real node binary under a steady open-loop load for a long time, with
//! faults injected in bounded windows ([`faults`]), sampled every `--sample-seconds` ([`series`]):
//! RSS, descriptors, requests in flight, p50/p99, errors by kind. It fails when memory or
//! descriptors grow past a bound after warm-up, when a clean window's p99 drifts from the first,
//! when any result is lost or unverifiable, when a clean request fails or is shed, when a fault's
//! behaviour is not the asserted one, or when SIGTERM does not drain and exit 0.
#![allow(clippy::print_stdout, reason = "bench output")]

mod calibrate;
mod drain;
mod drive;
mod faults;
pub(crate) mod node;
mod series;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_protocol::client::Primary;
use tokio::time::Instant;

use self::calibrate::{Calibration, Rate};
use self::drain::{Drain, sigterm};
use self::drive::{Load, Tally};
use self::faults::Fault;
use self::node::{NodeSetup, SoakNode, metric_sum};
use self::series::{Bounds, Sample, WindowP99};
use crate::fixture::Fixture;
use crate::report;
use crate::workload::{self, Mix};

/// `mpic-bench soak`.
#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// The `mpic-node` binary to soak.
    #[arg(long)]
    node_bin: PathBuf,
    /// Minutes to run.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Requests per second (open loop), or `auto`: half the best rate a calibration finds.
    #[arg(long, default_value = "auto")]
    rate: Rate,
    /// `--rate auto`: seconds of the closed-loop calibration's measured span (after 10 s of
    /// warm-up).
    #[arg(long, default_value_t = 30)]
    calibration_seconds: u64,
    /// `--rate auto`: requests the calibration keeps outstanding (default: half `--admitted`,
    /// so nothing is shed).
    #[arg(long)]
    calibration_concurrency: Option<usize>,
    /// Shares of check kinds.
    #[arg(long, default_value = "caa=40,dns-01=25,http-01=20,tls-alpn-01=15")]
    mix: Mix,
    /// Most targets (SANs) per request; each request has 1 to this many.
    #[arg(long, default_value_t = 10)]
    max_sans: usize,
    /// Distinct names, used round-robin.
    #[arg(long, default_value_t = 5_000)]
    names: usize,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
    /// Seconds of warm-up (at most a sixth of the run): not judged, no faults.
    #[arg(long, default_value_t = 120.0)]
    warmup_seconds: f64,
    /// Minutes per p99 window (the drift check compares clean windows).
    #[arg(long, default_value_t = 10.0)]
    window_minutes: f64,
    /// Most RSS growth after warm-up, MiB.
    #[arg(long, default_value_t = 64)]
    rss_growth_mib: u64,
    /// Most growth of open descriptors after warm-up.
    #[arg(long, default_value_t = 32)]
    fd_growth: u64,
    /// A clean window's p99 may be this factor times the first clean window's ...
    #[arg(long, default_value_t = 3.0)]
    p99_factor: f64,
    /// ... plus this many milliseconds.
    #[arg(long, default_value_t = 50.0)]
    p99_slack_ms: f64,
    /// The node's admission limit (`limits.max_in_flight_requests`).
    #[arg(long, default_value_t = 64)]
    admitted: usize,
    /// Inject the faults.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    faults: bool,
    /// Seconds between SIGHUPs.
    #[arg(long, default_value_t = 60)]
    hup_seconds: u64,
    /// Fill the audit log's disk for a window (a 1 MiB tmpfs over `<work-dir>/audit`; root).
    #[arg(long)]
    audit_tmpfs: bool,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// The node's directory (config, credentials, audit log, log); a temporary one if unset.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Write the time series and the verdict as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the plot (RSS and p99 over time) here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

/// `mpic-bench soak`.
pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.max_sans == 0 || args.names == 0 || args.minutes <= 0.0 {
        bail!("--max-sans, --names and --minutes must be positive");
    }
    let total = args.minutes * 60.0;
    let warmup = args.warmup_seconds.min(total / 6.0);
    let temp = tempfile::Builder::new().prefix("mpic-soak-").tempdir()?;
    let dir = match &args.work_dir {
        Some(dir) => std::path::absolute(dir)?,
        None => temp.path().to_owned(),
    };
    let audit_dir = dir.join("audit");
    let (fixture, mut node) = start(&args, &dir, &audit_dir)?;
    let client = node.client.take().context("the node's client options")?;
    let primary = Arc::new(Primary::new(vec![node.endpoint.clone()], client)?);
    let mut load = Load {
        mix: args.mix.clone(),
        max_sans: args.max_sans,
        names: args.names,
        rate: 0.0,
        timeout: args.timeout,
        window_seconds: args.window_minutes * 60.0,
        warmup_seconds: warmup,
    };
    let calibration = match args.rate {
        Rate::Fixed(rate) => {
            load.rate = rate;
            None
        }
        Rate::Auto => {
            let calibration = calibrate(&args, &primary, &load).await?;
            load.rate = calibration.soak_rate;
            Some(calibration)
        }
    };
    let windows = if args.faults {
        faults::schedule(total, warmup, args.audit_tmpfs)
    } else {
        Vec::new()
    };
    println!(
        "mpic-bench soak: {} for {:.0} s at {} req/s, 1-{} SANs, mix {}, warm-up {warmup:.0} s, faults {:?}",
        args.node_bin.display(),
        total,
        load.rate,
        args.max_sans,
        args.mix,
        windows
            .iter()
            .map(|w| (w.fault.name(), w.from, w.to))
            .collect::<Vec<_>>()
    );
    let tally = Arc::new(Mutex::new(Tally::new()?));
    let started = Instant::now();
    let driver = tokio::spawn(drive::run(
        Arc::clone(&primary),
        Arc::clone(&tally),
        load.clone(),
        windows.clone(),
        started,
        total,
    ));
    let controller = tokio::spawn(faults::control(
        Arc::clone(&fixture),
        windows.clone(),
        started,
        total,
        Duration::from_secs(args.hup_seconds.max(1)),
        node.pid,
        audit_dir.clone(),
    ));
    let samples = sample(&node, &tally, &windows, &args, started, total).await?;
    driver.await.context("the load task")?;
    let hups = controller.await.context("the fault task")??;
    let page = node.scrape().await?;
    let drain = sigterm(&mut node, &primary, &fixture, &load).await?;
    let windows_p99 = window_p99(&tally, warmup, load.window_seconds);
    let verdict = Verdict {
        samples: &samples,
        windows_p99: &windows_p99,
        bounds: Bounds {
            warmup_seconds: warmup,
            rss_growth_bytes: args.rss_growth_mib << 20,
            fd_growth: args.fd_growth,
            p99_factor: args.p99_factor,
            p99_slack_ms: args.p99_slack_ms,
        },
        tally: &tally,
        windows: &windows,
        hups,
        page: &page,
        drain: &drain,
        mix: &args.mix,
        rate: load.rate,
        calibration: calibration.as_ref(),
    };
    finish(&args, &verdict)
}

/// `--rate auto`: the closed-loop calibration (10 s warm-up, `--calibration-seconds` measured).
async fn calibrate(
    args: &SoakArgs,
    primary: &Arc<Primary>,
    load: &Load,
) -> anyhow::Result<Calibration> {
    let concurrency = args
        .calibration_concurrency
        .unwrap_or(args.admitted / 2)
        .max(1);
    let measured = Duration::from_secs(args.calibration_seconds.clamp(5, 50));
    eprintln!(
        "mpic-bench soak: calibrating: {concurrency} requests outstanding, 10 s warm-up, {} s measured",
        measured.as_secs()
    );
    let calibration = calibrate::run(
        primary,
        load,
        concurrency,
        Duration::from_secs(10),
        measured,
    )
    .await?;
    eprintln!(
        "mpic-bench soak: best rate {} req/s ({} requests, {} checks, {} failed, {} shed or lost; p50 {:.1} ms, p99 {:.1} ms): soaking at {} req/s",
        calibration.best_rate,
        calibration.requests,
        calibration.checks,
        calibration.failed_checks,
        calibration.shed_or_lost,
        calibration.p50_ms,
        calibration.p99_ms,
        calibration.soak_rate
    );
    Ok(calibration)
}

/// Starts the fixtures and the node, its audit log in `audit_dir`.
fn start(
    args: &SoakArgs,
    dir: &std::path::Path,
    audit_dir: &std::path::Path,
) -> anyhow::Result<(Arc<Fixture>, SoakNode)> {
    std::fs::create_dir_all(audit_dir)?;
    eprintln!("mpic-bench soak: {} names, fixtures starting", args.names);
    let fixture = Arc::new(Fixture::start(
        workload::zone(args.names, IpAddr::from([127, 0, 0, 1])),
        None,
    )?);
    let node = SoakNode::start(&NodeSetup {
        bin: args.node_bin.clone(),
        dir: dir.to_owned(),
        dns: fixture.dns,
        http_port: fixture.http.port(),
        https_port: fixture.tls.port(),
        audit: audit_dir.join("audit.log"),
        admitted: args.admitted,
    })?;
    Ok((fixture, node))
}

/// The audit-write-errors counter around the disk-full window: before it, at its end, and at
/// the last sample.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
struct AuditErrors {
    before_disk_full: Option<f64>,
    end_of_disk_full: Option<f64>,
    last: Option<f64>,
}

/// Samples every `--sample-seconds` until the end of the run.
async fn sample(
    node: &SoakNode,
    tally: &Arc<Mutex<Tally>>,
    windows: &[faults::Window],
    args: &SoakArgs,
    started: Instant,
    total: f64,
) -> anyhow::Result<Vec<Sample>> {
    let every = Duration::from_secs(args.sample_seconds.max(1));
    let mut samples = Vec::new();
    let mut tick = 1;
    loop {
        let due = started + every * tick;
        if (due - started).as_secs_f64() > total + 0.5 {
            break;
        }
        tick += 1;
        tokio::time::sleep_until(due).await;
        let at = started.elapsed().as_secs_f64();
        let page = node.scrape().await.ok();
        let metric = |name: &str| page.as_deref().map(|page| metric_sum(page, name, ""));
        let mut sample = Sample {
            at_seconds: at,
            phase: faults::phase(windows, at).to_owned(),
            rss_bytes: node.rss_bytes(),
            open_fds: node.open_fds(),
            node_in_flight: metric("mpic_node_requests_in_flight"),
            audit_write_errors: metric("mpic_node_audit_write_errors_total"),
            ..Sample::default()
        };
        if let Ok(mut tally) = tally.lock() {
            let interval = &mut tally.interval;
            sample.p50_ms = interval.value_at_quantile(0.50) as f64 / 1000.0;
            sample.p99_ms = interval.value_at_quantile(0.99) as f64 / 1000.0;
            interval.reset();
            sample.errors = std::mem::take(&mut tally.interval_errors);
            sample.completed = std::mem::take(&mut tally.interval_completed);
            sample.client_in_flight = tally.outstanding;
            let total = tally.total();
            (sample.sent_checks, sample.verified_checks) = (total.sent, total.verified);
        }
        eprintln!(
            "  [{at:>6.0}/{total:.0} s] {:<12} RSS {:>6.1} MiB  fds {:>4}  in flight {:>4}  p50 {:>7.2} ms  p99 {:>8.2} ms  verified {}/{}  errors {:?}",
            sample.phase,
            sample.rss_bytes.unwrap_or(0) as f64 / 1_048_576.0,
            sample.open_fds.unwrap_or(0),
            sample.client_in_flight,
            sample.p50_ms,
            sample.p99_ms,
            sample.verified_checks,
            sample.sent_checks,
            sample.errors
        );
        samples.push(sample);
    }
    Ok(samples)
}

/// p99 of clean requests per window after warm-up.
fn window_p99(tally: &Mutex<Tally>, warmup: f64, window_seconds: f64) -> Vec<WindowP99> {
    let Ok(tally) = tally.lock() else {
        return Vec::new();
    };
    tally
        .windows
        .iter()
        .enumerate()
        .map(|(i, histogram)| WindowP99 {
            from_seconds: warmup + i as f64 * window_seconds,
            p99_ms: (!histogram.is_empty())
                .then(|| histogram.value_at_quantile(0.99) as f64 / 1000.0),
            requests: histogram.len(),
        })
        .collect()
}

/// Everything the verdict is made from.
struct Verdict<'a> {
    samples: &'a [Sample],
    windows_p99: &'a [WindowP99],
    bounds: Bounds,
    tally: &'a Mutex<Tally>,
    windows: &'a [faults::Window],
    hups: u64,
    page: &'a str,
    drain: &'a Drain,
    mix: &'a Mix,
    /// The soak's rate (requests per second).
    rate: f64,
    /// With `--rate auto`: the calibration that chose it.
    calibration: Option<&'a Calibration>,
}

impl Verdict<'_> {
    /// The audit counter before, at the end of and after the disk-full window (or throughout).
    fn audit(&self) -> AuditErrors {
        let value = |s: &Sample| s.audit_write_errors;
        let last = Some(metric_sum(
            self.page,
            "mpic_node_audit_write_errors_total",
            "",
        ));
        let Some(disk) = self.windows.iter().find(|w| w.fault == Fault::DiskFull) else {
            return AuditErrors {
                last,
                ..AuditErrors::default()
            };
        };
        AuditErrors {
            before_disk_full: self
                .samples
                .iter()
                .rfind(|s| s.at_seconds < disk.from)
                .and_then(value),
            end_of_disk_full: self
                .samples
                .iter()
                .find(|s| s.at_seconds >= disk.to + 2.0)
                .and_then(value),
            last,
        }
    }

    /// Every way the run broke what it asserts.
    fn problems(&self, audit: &AuditErrors) -> Vec<String> {
        let mut problems = series::judge(self.samples, self.windows_p99, &self.bounds);
        let Ok(tally) = self.tally.lock() else {
            return vec!["the tally's lock is poisoned".into()];
        };
        let total = tally.total();
        if total.lost > 0 || total.sent != total.verified + total.shed {
            problems.push(format!(
                "sent {} checks, verified {}, shed {}, lost or unverifiable {}: {:?}",
                total.sent,
                total.verified,
                total.shed,
                total.lost,
                total
                    .errors
                    .keys()
                    .filter(|k| k.starts_with("lost"))
                    .collect::<Vec<_>>()
            ));
        }
        if let Some(c) = self.calibration
            && (c.failed_checks > 0 || c.shed_or_lost > 0)
        {
            problems.push(format!(
                "calibration: {} checks failed, {} requests shed or lost",
                c.failed_checks, c.shed_or_lost
            ));
        }
        for kind in self.mix.kinds() {
            if tally.kinds.get(kind.name()).is_none_or(|c| c.passed == 0) {
                problems.push(format!("no {} check passed", kind.name()));
            }
        }
        if let Some(clean) = tally.phases.get("clean")
            && clean.passed != clean.sent
        {
            problems.push(format!(
                "{} of {} clean checks did not pass: {:?}",
                clean.sent - clean.passed,
                clean.sent,
                clean.errors
            ));
        }
        for window in self.windows {
            let counts = tally.phases.get(window.fault.name());
            let failed = counts.map_or(0, |c| c.sent - c.passed);
            let shed = counts.map_or(0, |c| c.shed);
            match window.fault {
                Fault::DnsSilent | Fault::DnsServfail if failed == 0 => problems.push(format!(
                    "{}: no check failed while the DNS fixture misbehaved",
                    window.fault.name()
                )),
                Fault::Burst if shed == 0 => {
                    problems.push("burst: nothing was shed as overloaded".into())
                }
                _ => {}
            }
        }
        problems.extend(self.reload_and_audit_problems(audit));
        if self.drain.exit_code != Some(0) || self.drain.verified_passing != self.drain.in_flight {
            problems.push(format!("SIGTERM: {:?}", self.drain));
        }
        problems
    }

    fn reload_and_audit_problems(&self, audit: &AuditErrors) -> Vec<String> {
        let mut problems = Vec::new();
        let applied = metric_sum(self.page, "mpic_node_config_reloads_total", "\"applied\"");
        let rejected = metric_sum(self.page, "mpic_node_config_reloads_total", "\"rejected\"");
        if applied != self.hups as f64 || rejected != 0.0 {
            problems.push(format!(
                "{} SIGHUPs sent, {applied} reloads applied, {rejected} rejected",
                self.hups
            ));
        }
        let disk = self.windows.iter().any(|w| w.fault == Fault::DiskFull);
        let ok = if disk {
            audit.before_disk_full == Some(0.0)
                && audit.end_of_disk_full.is_some_and(|n| n > 0.0)
                && audit.last == audit.end_of_disk_full
        } else {
            audit.last == Some(0.0)
        };
        if !ok {
            problems.push(format!(
                "mpic_node_audit_write_errors_total: {audit:?} (disk-full window: {disk})"
            ));
        }
        problems
    }
}

/// Prints the summary, writes the JSON and the plot, and fails on any problem.
fn finish(args: &SoakArgs, verdict: &Verdict<'_>) -> anyhow::Result<()> {
    let audit = verdict.audit();
    let problems = verdict.problems(&audit);
    let mib = |s: &Sample| {
        s.rss_bytes
            .map(|b| (b as f64 / 1_048_576.0 * 10.0).round() / 10.0)
    };
    let near = |t: f64| {
        verdict.samples.iter().min_by(|a, b| {
            (a.at_seconds - t)
                .abs()
                .total_cmp(&(b.at_seconds - t).abs())
        })
    };
    let (total, phases, kinds) = match verdict.tally.lock() {
        Ok(tally) => (tally.total(), tally.phases.clone(), tally.kinds.clone()),
        Err(_) => bail!("the tally's lock is poisoned"),
    };
    let summary = serde_json::json!({
        "best_rate": verdict.calibration.map(|c| c.best_rate),
        "soak_rate": verdict.rate,
        "rss_mib_at_5_min": near(300.0).and_then(mib),
        "rss_mib_at_end": verdict.samples.last().and_then(mib),
        "open_fds_first": verdict.samples.first().and_then(|s| s.open_fds),
        "open_fds_max_any_phase": verdict.samples.iter().filter_map(|s| s.open_fds).max(),
        "rss_mib_max_any_phase": verdict.samples.iter().filter_map(mib).reduce(f64::max),
        "open_fds_last": verdict.samples.last().and_then(|s| s.open_fds),
        "p99_ms_per_window": verdict.windows_p99,
        "checks_sent": total.sent,
        "checks_verified": total.verified,
        "checks_shed": total.shed,
        "checks_lost": total.lost,
        "sighups": verdict.hups,
        "audit_write_errors": audit,
        "sigterm": verdict.drain,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    for (phase, counts) in phases.iter().chain(&kinds) {
        println!(
            "  {phase:<13} sent {:>8} verified {:>8} passed {:>8} shed {:>6} lost {:>4} {:?}",
            counts.sent, counts.verified, counts.passed, counts.shed, counts.lost, counts.errors
        );
    }
    let faults: Vec<(String, f64, f64)> = verdict
        .windows
        .iter()
        .map(|w| (w.fault.name().to_owned(), w.from, w.to))
        .collect();
    if let Some(path) = &args.svg {
        series::write_svg(path, verdict.samples, &faults)?;
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "node_bin": args.node_bin,
            "minutes": args.minutes,
            "rate": verdict.rate,
            "rate_arg": args.rate.to_string(),
            "calibration": verdict.calibration,
            "mix": args.mix.to_string(),
            "max_sans": args.max_sans,
            "faults": faults,
            "summary": summary,
            "phases": phases,
            "kinds": kinds,
            "samples": verdict.samples,
            "problems": problems,
        });
        report::write_json(path, &json)?;
    }
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!("mpic-bench soak: FAIL: {problem}");
        }
        bail!("{} soak check(s) failed", problems.len());
    }
    println!("mpic-bench soak: PASS");
    Ok(())
}
