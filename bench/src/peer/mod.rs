//! `mpic-bench peer`: Open MPIC's own checkers and this node side by side, in one run, against
//! one Knot DNS and one nginx on loopback, on the same names and the same check kinds (CAA,
//! acme-dns-01, acme-http-01). Three subjects per kind, each a closed loop of `--concurrency`
//! checks for `--seconds` after a warm-up:
//!
//! - Open MPIC: open-mpic-core's `MpicCaaChecker`/`MpicDcvChecker` (stock dnspython resolver
//!   pointed at the Knot, uvloop) driven by `openmpic_driver.py` in the interop virtualenv; its
//!   CPU is the Python process's own (`resource.getrusage`);
//! - this node's check engine in-process (the `loopback --engine` path): CPU of this process;
//! - the real `mpic-node` binary over QUIC with mTLS, every result signed and verified here: CPU
//!   of the node process.
//!
//! One table: checks/s, CPU µs per check, p50/p99, wrong answers (any verdict other than the
//! expected pass), Knot + nginx CPU per check, and Open MPIC's CPU per check over each
//! subject's. Exit 1 on any wrong answer or a subject that answered nothing.

mod servers;
mod table;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::dispatch::{Dispatcher, WebClients};
use mpic_protocol::client::Primary;

use crate::load::{self, Driver, Meters, Plan, Shape};
use crate::subject::{self, LocalNode, Probe, Subject};
use crate::workload::{self, ISSUER, KEY_AUTHORIZATION, ORIGIN, TOKEN};
use servers::{Knot, Nginx};
use table::Row;

/// The Open MPIC driver, written to the run's work directory and run by the virtualenv's Python.
const DRIVER: &str = include_str!("openmpic_driver.py");

/// The interop virtualenv's Python (made by `tools/setup`).
const VENV_PYTHON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/openmpic-venv/bin/python"
);

/// A check kind both sides run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PeerKind {
    /// CAA for `n<i>.bench.test`, found one level up.
    Caa,
    /// ACME dns-01: the TXT at `_acme-challenge.n<i>`.
    #[value(name = "dns-01")]
    Dns01,
    /// ACME http-01: the A record, then the challenge from nginx.
    #[value(name = "http-01")]
    Http01,
}

impl PeerKind {
    /// The name in `--kinds`, the driver's `--kind` and the bench's `--mix`.
    fn name(self) -> &'static str {
        match self {
            PeerKind::Caa => "caa",
            PeerKind::Dns01 => "dns-01",
            PeerKind::Http01 => "http-01",
        }
    }
}

/// Arguments of `mpic-bench peer`.
#[derive(Debug, clap::Args)]
pub(crate) struct PeerArgs {
    /// The check kinds, in order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "caa,dns-01,http-01"
    )]
    kinds: Vec<PeerKind>,
    /// Seconds each subject runs each kind (after the warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of warm-up before each run, not counted.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Checks in flight at once (closed loop), for every subject.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// Distinct names in the zone, used round-robin (1 s TTLs).
    #[arg(long, default_value_t = 20_000)]
    names: usize,
    /// The `mpic-node` binary (default: the one beside this `mpic-bench`).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// The Python with open-mpic-core and uvloop (default: the interop virtualenv's).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Our side's `http.reuse_connections` (Open MPIC's checker closes every connection).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    reuse: bool,
    /// Our side's answer cache (off by default: Open MPIC's resolver has none, so every subject
    /// sends Knot the same queries for the same check).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    cache: bool,
    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// No progress lines.
    #[arg(long)]
    quiet: bool,
}

/// What the Python driver prints.
#[derive(Debug, serde::Deserialize)]
struct DriverReport {
    #[serde(rename = "loop")]
    event_loop: String,
    checks: u64,
    warm_checks: u64,
    seconds: f64,
    cpu_seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
    wrong: u64,
    warm_wrong: u64,
    wrong_examples: Vec<String>,
}

/// The servers every subject shares, and their CPU.
struct Servers {
    knot: Knot,
    nginx: Nginx,
}

impl Servers {
    fn cpu_seconds(&self) -> Option<f64> {
        Some(self.knot.cpu_seconds()? + self.nginx.cpu_seconds()?)
    }
}

/// The `mpic-node` binary (by default the one beside this `mpic-bench`) and the Python to run
/// the Open MPIC driver with (by default the interop virtualenv's, which must exist).
fn programs(args: &PeerArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let node_bin = match &args.node_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .context("locating mpic-bench")?
            .with_file_name("mpic-node"),
    };
    let python = args
        .python
        .clone()
        .unwrap_or_else(|| PathBuf::from(VENV_PYTHON));
    if !python.is_file() {
        bail!(
            "{} not found: run `make tools` (tools/setup makes the interop virtualenv)",
            python.display()
        );
    }
    Ok((node_bin, python))
}

/// The node's check engine, configured as the binary is: forwarding to the Knot, fetching from
/// nginx's port.
fn engine(local: &LocalNode) -> anyhow::Result<Arc<Driver>> {
    Ok(Arc::new(Driver::Engine(Arc::new(Dispatcher::new(
        crate::dns::client(local.dns, local.cache_answers),
        WebClients::new(local.fetch_options())?,
    )))))
}

/// Every kind: Open MPIC first, then each of `ours`, on fresh names each time; our rows carry
/// Open MPIC's CPU per check over theirs.
async fn compare(
    args: &PeerArgs,
    (python, script): (&std::path::Path, &std::path::Path),
    servers: &Servers,
    ours: &[Ours<'_>],
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut offset = 0;
    for kind in args.kinds.iter().copied() {
        let open = open_mpic(args, (python, script), kind, servers, offset).await?;
        offset += open.checks;
        let open_cpu = open.cpu_us_per_check;
        rows.push(open);
        for subject in ours {
            let mut row = subject.run(args, kind, offset).await?;
            offset += row.checks;
            row.cpu_ratio_to_open_mpic = open_cpu
                .zip(row.cpu_us_per_check)
                .map(|(theirs, ours)| theirs / ours.max(1e-9));
            rows.push(row);
        }
    }
    Ok(rows)
}

/// `mpic-bench peer`.
#[allow(clippy::print_stdout, reason = "bench output")]
pub(crate) async fn run(args: PeerArgs) -> anyhow::Result<()> {
    if args.names == 0 || args.concurrency == 0 || args.seconds == 0 || args.kinds.is_empty() {
        bail!("--names, --concurrency, --seconds and --kinds must not be zero or empty");
    }
    let (node_bin, python) = programs(&args)?;
    let work = tempfile::Builder::new()
        .prefix("mpic-bench-peer-")
        .tempdir()?;
    let script = work.path().join("openmpic_driver.py");
    std::fs::write(&script, DRIVER)?;
    eprintln!(
        "mpic-bench peer: {} names; starting knotd and nginx",
        args.names
    );
    let zone = workload::zone(args.names, IpAddr::from([127, 0, 0, 1]));
    let servers = Arc::new(Servers {
        knot: Knot::start(&zone)?,
        nginx: Nginx::start()?,
    });
    let local = LocalNode {
        dns: servers.knot.address,
        http_port: servers.nginx.port,
        reuse_connections: args.reuse,
        workers: 2,
        cache_answers: args.cache,
        https_port: None,
    };
    let mut subject = Subject::binary(&node_bin, work.path(), &local)?;
    let client = subject.client.take().context("the node's client options")?;
    let quic = Arc::new(Driver::Quic(Primary::new(
        subject.endpoints.clone(),
        client,
    )?));
    let engine = engine(&local)?;
    println!(
        "mpic-bench peer: one knotd at {}, nginx at 127.0.0.1:{}; {} names; closed loop, {} in flight, {} s per run",
        local.dns, local.http_port, args.names, args.concurrency, args.seconds
    );
    let ours = [
        Ours {
            label: "engine in-process",
            driver: &engine,
            probe: None,
            servers: &servers,
        },
        Ours {
            label: "binary over QUIC, signed",
            driver: &quic,
            probe: Some(subject.probe.clone()),
            servers: &servers,
        },
    ];
    let rows = compare(&args, (&python, &script), &servers, &ours).await?;
    drop(subject);
    println!("{}", table::render(&rows));
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "dns": local.dns.to_string(),
            "http_port": local.http_port,
            "names": args.names,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "reuse_connections": args.reuse,
            "answer_cache": args.cache,
            "rows": rows,
        });
        crate::report::write_json(path, &json)?;
    }
    table::verdict(&rows)
}

/// One of our two subjects.
struct Ours<'a> {
    label: &'static str,
    driver: &'a Arc<Driver>,
    /// Where the subject's CPU is read; `None`: this whole process (the engine runs here).
    probe: Option<Probe>,
    servers: &'a Arc<Servers>,
}

impl Ours<'_> {
    async fn run(&self, args: &PeerArgs, kind: PeerKind, offset: u64) -> anyhow::Result<Row> {
        let plan = Plan {
            mix: kind.name().parse().map_err(anyhow::Error::msg)?,
            sans: 1,
            names: args.names,
            timeout: Duration::from_secs(10),
            progress: !args.quiet,
        };
        let probe = self.probe.clone();
        let servers = Arc::clone(self.servers);
        let meters = Meters {
            node_cpu: Box::new(move || match &probe {
                None => subject::stat_cpu(std::path::Path::new("/proc/self/stat")),
                Some(process) => process.cpu_seconds(),
            }),
            node_rss: Box::new(|| None),
            fixture_cpu: Box::new(move || servers.cpu_seconds()),
            dns_queries: Box::new(|| None),
        };
        let warm = Plan {
            progress: false,
            ..plan.clone()
        };
        let shape = Shape::Closed(args.concurrency);
        let warmup = Duration::from_secs(args.warmup);
        let warmed = load::phase(self.driver, &warm, &meters, shape, warmup, None, offset).await?;
        let seconds = Duration::from_secs(args.seconds);
        let start = offset + warmed.checks;
        let report = load::phase(self.driver, &plan, &meters, shape, seconds, None, start).await?;
        if !report.errors.is_empty() {
            eprintln!(
                "{} {}: not passed: {:?}",
                kind.name(),
                self.label,
                report.errors
            );
        }
        Ok(Row {
            kind: kind.name(),
            subject: self.label.to_owned(),
            checks: report.checks + warmed.checks,
            measured_checks: report.checks,
            seconds: report.seconds,
            checks_per_second: report.checks_per_second,
            cpu_us_per_check: report.node_cpu_us_per_check,
            p50_ms: report.latency_ms.get("p50").copied().unwrap_or(0.0),
            p99_ms: report.latency_ms.get("p99").copied().unwrap_or(0.0),
            wrong: report.failures() + warmed.failures(),
            servers_cpu_us_per_check: report.fixture_cpu_us_per_check,
            cpu_ratio_to_open_mpic: None,
        })
    }
}

/// Runs the Open MPIC driver for `kind` and reads its figures.
async fn open_mpic(
    args: &PeerArgs,
    (python, script): (&std::path::Path, &std::path::Path),
    kind: PeerKind,
    servers: &Servers,
    offset: u64,
) -> anyhow::Result<Row> {
    let mut command = std::process::Command::new(python);
    command
        .arg(script)
        .args(["--kind", kind.name()])
        .args(["--dns-port", &servers.knot.address.port().to_string()])
        .args(["--http-port", &servers.nginx.port.to_string()])
        .args(["--names", &args.names.to_string()])
        .args(["--offset", &offset.to_string()])
        .args(["--concurrency", &args.concurrency.to_string()])
        .args(["--seconds", &args.seconds.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--issuer", ISSUER, "--token", TOKEN])
        .args(["--key-authorization", KEY_AUTHORIZATION, "--origin", ORIGIN])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    if !args.quiet {
        eprintln!(
            "  {} Open MPIC: {} s",
            kind.name(),
            args.warmup + args.seconds
        );
    }
    let servers_before = servers.cpu_seconds();
    let limit = Duration::from_secs(args.warmup + args.seconds + 120);
    let child = command
        .spawn()
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = wait_for(child, limit).await?;
    let servers_after = servers.cpu_seconds();
    let text = String::from_utf8_lossy(&stdout);
    let line = text.lines().last().unwrap_or_default();
    let report: DriverReport = serde_json::from_str(line)
        .with_context(|| format!("reading the Open MPIC driver's report {line:?}"))?;
    if !report.wrong_examples.is_empty() {
        eprintln!(
            "{} Open MPIC: not passed: {:?}",
            kind.name(),
            report.wrong_examples
        );
    }
    let all = (report.checks + report.warm_checks).max(1) as f64;
    Ok(Row {
        kind: kind.name(),
        subject: format!("Open MPIC (open-mpic-core, {})", report.event_loop),
        checks: report.checks + report.warm_checks,
        measured_checks: report.checks,
        seconds: report.seconds,
        checks_per_second: report.checks as f64 / report.seconds.max(1e-9),
        cpu_us_per_check: Some(report.cpu_seconds * 1e6 / report.checks.max(1) as f64),
        p50_ms: report.p50_ms,
        p99_ms: report.p99_ms,
        wrong: report.wrong + report.warm_wrong,
        servers_cpu_us_per_check: servers_before
            .zip(servers_after)
            .map(|(before, after)| (after - before) * 1e6 / all),
        cpu_ratio_to_open_mpic: Some(1.0),
    })
}

/// Waits for `child` (its one-line report fits in the pipe) up to `limit`, killing it then;
/// returns its stdout when it exited with success.
async fn wait_for(mut child: std::process::Child, limit: Duration) -> anyhow::Result<Vec<u8>> {
    let deadline = tokio::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if tokio::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the Open MPIC driver ran past {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    if !status.success() {
        bail!("the Open MPIC driver failed ({status})");
    }
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        std::io::Read::read_to_end(&mut pipe, &mut stdout)?;
    }
    Ok(stdout)
}
