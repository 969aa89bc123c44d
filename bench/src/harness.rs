//! `mpic-bench loopback`, `remote` and `zone`: validations driven at a node the way a CA's
//! primary drives them, with the fixtures, the node and the measurements wired together.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::dispatch::{Dispatcher, WebClients};
use mpic_protocol::client::{NodeEndpoint, Primary};

use crate::fixture::Fixture;
use crate::load::{self, Driver, Meters, PhaseReport, Plan, Shape};
use crate::report;
use crate::subject::{self, LocalNode, Subject};
use crate::workload::{self, Mix};

/// The load: what is sent, how it is shaped, and where the figures go.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoadArgs {
    /// Shares of check kinds: caa, dns-01, dns-change, http-01, tls-alpn-01.
    #[arg(long, default_value = "caa=100")]
    mix: Mix,
    /// Targets per request (SANs per certificate).
    #[arg(long, default_value_t = 1)]
    sans: usize,
    /// Distinct names, used round-robin (with 1 s TTLs, so caching is not what is measured).
    #[arg(long, default_value_t = 50_000)]
    names: usize,
    /// Seconds to run (per sweep step: `--step-seconds`).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many requests.
    #[arg(long)]
    count: Option<u64>,
    /// Closed loop: requests in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Open loop: requests per second, sent on schedule (latency counted from the schedule).
    #[arg(long)]
    rate: Option<f64>,
    /// Sweep open-loop rates upwards to find the highest whose p99 stays under `--p99-ms`.
    #[arg(long)]
    sweep: bool,
    /// First sweep rate, requests/s.
    #[arg(long, default_value_t = 500.0)]
    sweep_start: f64,
    /// Each sweep step multiplies the rate by this.
    #[arg(long, default_value_t = 1.3)]
    sweep_factor: f64,
    /// Seconds per sweep step.
    #[arg(long, default_value_t = 3)]
    step_seconds: u64,
    /// The p99 bound of the sweep, milliseconds.
    #[arg(long, default_value_t = 10.0)]
    p99_ms: f64,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the sweep's latency-vs-throughput chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
}

/// `mpic-bench loopback`.
#[derive(Debug, clap::Args)]
pub(crate) struct LoopbackArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Run this `mpic-node` binary instead of a node in-process.
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// Drive the check engine in-process, without QUIC or signing.
    #[arg(long)]
    engine: bool,
    /// Use this authoritative server (serving `mpic-bench zone`) instead of the fixture.
    #[arg(long)]
    dns: Option<SocketAddr>,
    /// Worker threads of the in-process node.
    #[arg(long, default_value_t = 2)]
    node_workers: usize,
    /// The node's `http.reuse_connections`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    reuse: bool,
    /// Measure node memory with this many validations in flight (held by a slow DNS fixture).
    #[arg(long)]
    memory: Option<usize>,
    /// Delay of every fixture DNS answer (default 3 s with `--memory`).
    #[arg(long, value_parser = humantime::parse_duration)]
    dns_delay: Option<Duration>,
}

/// `mpic-bench remote`.
#[derive(Debug, clap::Args)]
pub(crate) struct RemoteArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// A node: `id=ID,addr=IP:PORT,key=BASE64[,name=SNI][,rir=RIR]` (repeatable).
    #[arg(long = "node", required = true, value_parser = subject::parse_node)]
    nodes: Vec<NodeEndpoint>,
    /// CA certificates the nodes' server certificates chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The primary's client certificate chain (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// The primary's client key (PKCS#8 PEM).
    #[arg(long)]
    key: PathBuf,
}

/// `mpic-bench zone`.
#[derive(Debug, clap::Args)]
pub(crate) struct ZoneArgs {
    /// Distinct names.
    #[arg(long, default_value_t = 50_000)]
    names: usize,
    /// The address http-01 names resolve to (where the HTTP server runs).
    #[arg(long, default_value = "127.0.0.1")]
    http_ip: IpAddr,
}

/// Prints the zone (and, commented out, the parent zone `test.` the server must also serve).
#[allow(clippy::print_stdout, reason = "the zone is the output")]
pub(crate) fn zone(args: &ZoneArgs) {
    print!("{}", workload::zone(args.names, args.http_ip));
    println!("; Also serve the parent zone test. (an empty TLD), e.g. from its own file:");
    for line in workload::TLD_ZONE.lines() {
        println!(";   {line}");
    }
}

fn plan(load: &LoadArgs) -> anyhow::Result<Plan> {
    if load.sans == 0 || load.names == 0 || load.concurrency == 0 {
        bail!("--sans, --names and --concurrency must be at least 1");
    }
    if load.rate.is_some_and(|rate| rate <= 0.0) || load.sweep_factor <= 1.0 {
        bail!("--rate must be positive and --sweep-factor above 1");
    }
    Ok(Plan {
        mix: load.mix.clone(),
        sans: load.sans,
        names: load.names,
        timeout: load.timeout,
        progress: !load.quiet,
    })
}

/// `mpic-bench loopback`.
pub(crate) async fn loopback(args: LoopbackArgs) -> anyhow::Result<()> {
    let plan = plan(&args.load)?;
    let delay = args
        .dns_delay
        .or(args.memory.map(|_| Duration::from_secs(3)));
    let names = if args.dns.is_some() { 1 } else { plan.names };
    eprintln!("mpic-bench: generating {names} names and starting the fixtures");
    let fixture = Arc::new(Fixture::start(
        workload::zone(names, IpAddr::from([127, 0, 0, 1])),
        delay,
    )?);
    let local = LocalNode {
        dns: args.dns.unwrap_or(fixture.dns),
        http_port: fixture.http.port(),
        reuse_connections: args.reuse,
        workers: args.node_workers,
        cache_answers: true,
        https_port: Some(fixture.tls.port()),
    };
    let work_dir = tempdir()?;
    let external_dns = args.dns.is_some();
    let fixture_for_queries = Arc::clone(&fixture);
    let dns_queries: Box<dyn Fn() -> Option<u64> + Send + Sync> = if external_dns {
        Box::new(|| None)
    } else {
        Box::new(move || Some(fixture_for_queries.dns_queries()))
    };
    let fixture_stat = fixture.stat_path.clone();
    let fixture_cpu = move || subject::stat_cpu(std::path::Path::new(&fixture_stat));
    let (driver, subject, meters) = if args.engine {
        let fetch = local.fetch_options();
        let dispatcher = Dispatcher::new(
            // The cache as a node has it: names are fresh (1 s TTLs, used round-robin), a parent shared
            // by every name (the CAA at bench.test) is cached for its TTL.
            crate::dns::client(local.dns, true),
            WebClients::new(fetch)?,
        );
        let own = fixture_cpu.clone();
        let meters = Meters {
            // The engine runs on the harness's runtime: the process minus the fixture thread.
            node_cpu: Box::new(move || {
                Some(subject::stat_cpu(std::path::Path::new("/proc/self/stat"))? - own()?)
            }),
            node_rss: Box::new(|| subject::Probe::Threads.rss_bytes()),
            fixture_cpu: Box::new(fixture_cpu),
            dns_queries,
        };
        (Driver::Engine(Arc::new(dispatcher)), None, meters)
    } else {
        let subject = match &args.node_bin {
            Some(bin) => Subject::binary(bin, work_dir.path(), &local)?,
            None => Subject::in_process(work_dir.path(), &local)?,
        };
        let mut subject = subject;
        let (cpu, rss) = (subject.probe.clone(), subject.probe.clone());
        let meters = Meters {
            node_cpu: Box::new(move || cpu.cpu_seconds()),
            node_rss: Box::new(move || rss.rss_bytes()),
            fixture_cpu: Box::new(fixture_cpu),
            dns_queries,
        };
        let client = subject.client.take().context("the node's client options")?;
        let primary = Primary::new(subject.endpoints.clone(), client)?;
        (Driver::Quic(primary), Some(subject), meters)
    };
    let mode = match (&args.engine, &args.node_bin) {
        (true, _) => "engine in-process (no QUIC, no signing)".to_owned(),
        (false, Some(bin)) => format!("QUIC + mTLS to {}", bin.display()),
        (false, None) => "QUIC + mTLS to an in-process node".to_owned(),
    };
    let result = drive(
        &args.load,
        &plan,
        Arc::new(driver),
        &meters,
        &mode,
        args.memory.zip(delay),
    )
    .await;
    drop(subject);
    result
}

/// `mpic-bench remote`.
pub(crate) async fn remote(args: RemoteArgs) -> anyhow::Result<()> {
    let plan = plan(&args.load)?;
    let client = subject::client_from_files(&args.ca, &args.cert, &args.key)?;
    let primary = Primary::new(args.nodes.clone(), client)?;
    let meters = Meters {
        node_cpu: Box::new(|| None),
        node_rss: Box::new(|| None),
        fixture_cpu: Box::new(|| None),
        dns_queries: Box::new(|| None),
    };
    let mode = format!("QUIC + mTLS to {} remote node(s)", args.nodes.len());
    drive(
        &args.load,
        &plan,
        Arc::new(Driver::Quic(primary)),
        &meters,
        &mode,
        None,
    )
    .await
}

fn tempdir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("mpic-bench-")
        .tempdir()
        .context("creating a work directory")
}

#[allow(clippy::print_stdout, reason = "bench output")]
async fn drive(
    load: &LoadArgs,
    plan: &Plan,
    driver: Arc<Driver>,
    meters: &Meters,
    mode: &str,
    memory: Option<(usize, Duration)>,
) -> anyhow::Result<()> {
    println!(
        "mpic-bench: {mode}; mix {}, {} SAN(s) per request, {} names",
        plan.mix, plan.sans, plan.names
    );
    // Warm-up: connections, caches of delegations, allocator pools.
    let warm = Plan {
        progress: false,
        ..plan.clone()
    };
    let warm_count = if memory.is_some() {
        1
    } else {
        load.count.unwrap_or(2_000).min(2_000)
    };
    load::phase(
        &driver,
        &warm,
        meters,
        Shape::Closed(16),
        Duration::from_secs(10),
        Some(warm_count),
        1 << 40,
    )
    .await?;
    let mut json = serde_json::json!({
        "mode": mode,
        "mix": plan.mix.to_string(),
        "sans": plan.sans,
        "names": plan.names,
    });
    let mut failed = 0;
    if let Some((validations, hold)) = memory {
        let idle = (meters.node_rss)();
        let requests = validations.div_ceil(plan.sans);
        // Besides the peak (which includes answering: signing, result frames), RSS is read once
        // while every validation is held by the slow DNS fixture and none is answered yet.
        let held_rss = async {
            tokio::time::sleep(hold.mul_f64(0.8)).await;
            (meters.node_rss)()
        };
        let phase = load::phase(
            &driver,
            plan,
            meters,
            Shape::Closed(requests),
            plan.timeout,
            Some(requests as u64),
            0,
        );
        let (report, held) = tokio::join!(phase, held_rss);
        let report = report?;
        println!("{}", report::table("memory run", &report));
        let in_flight = (requests * plan.sans) as f64;
        let per = idle
            .zip(report.node_rss_peak_bytes)
            .map(|(idle, peak)| peak.saturating_sub(idle) as f64 / in_flight);
        let held_per = idle
            .zip(held)
            .map(|(idle, held)| held.saturating_sub(idle) as f64 / in_flight);
        if let (Some(idle), Some(per)) = (idle, per) {
            println!(
                "node RSS idle {:.1} MiB; {:.0} bytes per in-flight validation at the peak, {:.0} while all are held ({} in flight)",
                idle as f64 / 1048576.0,
                per,
                held_per.unwrap_or(f64::NAN),
                requests * plan.sans
            );
        }
        json["memory"] = serde_json::json!({
            "validations": requests * plan.sans,
            "idle_rss_bytes": idle,
            "bytes_per_validation": per,
            "bytes_per_validation_held": held_per,
            "run": report,
        });
        failed += report.failures();
    } else if load.sweep {
        let mut steps: Vec<PhaseReport> = Vec::new();
        let mut rate = load.sweep_start;
        let mut best: Option<PhaseReport> = None;
        let mut offset = 0;
        loop {
            let step = Duration::from_secs(load.step_seconds);
            let report =
                load::phase(&driver, plan, meters, Shape::Open(rate), step, None, offset).await?;
            offset += report.checks;
            println!(
                "  sweep {rate:>9.0} req/s offered: {:>9.0} checks/s, p50 {:.3} ms, p99 {:.3} ms, failures {}",
                report.checks_per_second,
                report.latency_ms.get("p50").copied().unwrap_or(0.0),
                report.p99_ms(),
                report.failures()
            );
            let achieved = report.requests as f64 / report.seconds;
            let ok =
                report.p99_ms() <= load.p99_ms && report.failures() == 0 && achieved >= 0.9 * rate;
            steps.push(report.clone());
            if !ok {
                break;
            }
            best = Some(report);
            rate *= load.sweep_factor;
        }
        let Some(best) = best else {
            bail!(
                "even {} requests/s broke the p99 bound of {} ms",
                load.sweep_start,
                load.p99_ms
            );
        };
        println!(
            "{}",
            report::table(
                &format!("highest rate with p99 ≤ {} ms", load.p99_ms),
                &best
            )
        );
        let half = load::phase(
            &driver,
            plan,
            meters,
            Shape::Open(best.level / 2.0),
            Duration::from_secs(load.step_seconds.max(3)),
            None,
            offset,
        )
        .await?;
        println!("{}", report::table("at half that rate", &half));
        if let Some(path) = &load.svg {
            report::write_svg(path, &steps, load.p99_ms)?;
        }
        failed += half.failures();
        json["sweep"] = serde_json::json!({"steps": steps, "best": best, "half": half, "p99_bound_ms": load.p99_ms});
    } else {
        let shape = match load.rate {
            Some(rate) => Shape::Open(rate),
            None => Shape::Closed(load.concurrency),
        };
        let report = load::phase(
            &driver,
            plan,
            meters,
            shape,
            Duration::from_secs(load.seconds),
            load.count,
            0,
        )
        .await?;
        println!("{}", report::table("result", &report));
        failed += report.failures();
        if report.checks == 0 {
            bail!("no check was answered");
        }
        json["run"] = serde_json::to_value(&report)?;
    }
    if let Some(path) = &load.json {
        report::write_json(path, &json)?;
    }
    if failed > 0 {
        bail!("{failed} checks did not pass");
    }
    Ok(())
}
