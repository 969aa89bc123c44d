//! `mpic-bench engine`: the check engine in-process with no transport — the node's dispatcher
//! and DNS client (cache off, so every check resolves afresh) against the fixture authoritative
//! server, which runs on its own thread so its CPU can be taken out of the node's.
//!
//! `--kind http-01` adds the loopback HTTP fixture (on the same fixture thread) and drives ACME
//! http-01 checks at distinct names that all resolve to it; `--reuse false` turns the fetcher's
//! connection pool off, to measure reuse both ways.
//!
//! Figures: checks/s, failures, node CPU µs per check (process CPU minus the fixture thread's).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::dispatch::{Dispatcher, WebClients};
use mpic_node::http::fetch::FetchOptions;
use mpic_protocol::{CaaCheck, Check, DcvCheck, DcvMethod, Outcome, Target};
use mpic_tests::dns_server::{DnsServer, ZoneText};
use mpic_tests::http_server::{HttpServer, Route};
use tokio::time::Instant;

use crate::dns::client;

/// The check driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// CAA: three-level climb, relevant RRset at the parent.
    Caa,
    /// DNS change (BR 3.2.2.4.7): TXT under `_dc.` with the random value.
    DnsChange,
    /// ACME http-01 against the loopback HTTP fixture (A lookup, GET, compare).
    #[value(name = "http-01")]
    Http01,
}

/// Arguments of `mpic-bench engine`.
#[derive(Debug, clap::Args)]
pub(crate) struct EngineArgs {
    /// The check to drive.
    #[arg(long, value_enum, default_value = "caa")]
    kind: Kind,
    /// Seconds to run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Checks in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct names (each check uses the next, so nothing is answered from a cache).
    #[arg(long, default_value_t = 50_000)]
    names: usize,
    /// http-01 only: keep and reuse idle connections (the node's `http.reuse_connections`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    reuse: bool,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const TOKEN: &str = "bench-token";
const KEY_AUTHORIZATION: &str = "bench-token.thumbprint";

const RANDOM_VALUE: &str = "x-RandomValue0123456789abcdef";

fn zone(names: usize) -> String {
    let mut text = String::from(
        "@ 3600 IN SOA ns.test. h.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\n\
         bench 300 IN CAA 0 issue \"ca.example\"\n",
    );
    for i in 0..names {
        text.push_str(&format!(
            "c{i}.bench 300 IN A 192.0.2.1\n_dc.d{i}.bench 300 IN TXT \"{RANDOM_VALUE}\"\n\
             h{i}.bench 300 IN A 127.0.0.1\n"
        ));
    }
    text
}

fn target(kind: Kind, i: usize) -> Target {
    match kind {
        Kind::Caa => Target {
            identifier: format!("c{i}.bench.test"),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec!["ca.example".into()],
                ..CaaCheck::default()
            }),
        },
        Kind::DnsChange => Target {
            identifier: format!("d{i}.bench.test"),
            check: Check::Dcv(DcvCheck {
                url_scheme: None,
                method: DcvMethod::DnsChange,
                expected: Some(RANDOM_VALUE.into()),
                key_authorization: None,
                token: None,
                prefix: Some("_dc".into()),
                issuer_domain: None,
                account_uri: None,
                wildcard: false,
            }),
        },
        Kind::Http01 => Target {
            identifier: format!("h{i}.bench.test"),
            check: Check::Dcv(DcvCheck {
                url_scheme: None,
                method: DcvMethod::AcmeHttp01,
                expected: None,
                key_authorization: Some(KEY_AUTHORIZATION.into()),
                token: Some(TOKEN.into()),
                prefix: None,
                issuer_domain: None,
                account_uri: None,
                wildcard: false,
            }),
        },
    }
}

/// CPU seconds (user + system) from a `/proc/.../stat` line.
fn cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state field.
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat line")?.parse::<f64>()?)
    };
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Where the fixtures listen, the fixture thread's id, and the stop switch.
type Fixture = (
    std::net::SocketAddr,
    std::net::SocketAddr,
    String,
    tokio::sync::oneshot::Sender<()>,
);

/// The fixture DNS and HTTP servers on their own thread and runtime.
fn start_fixture(names: usize) -> anyhow::Result<Fixture> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("fixture-dns".into())
        .spawn(move || {
            let thread = std::fs::read_link("/proc/thread-self")
                .map(|path| path.to_string_lossy().into_owned())
                .unwrap_or_default();
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!("fixture runtime: {error}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let text = zone(names);
                match DnsServer::start(
                    "127.0.0.1:0"
                        .parse()
                        .unwrap_or(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
                    &[ZoneText {
                        origin: "test.",
                        text: &text,
                    }],
                )
                .await
                {
                    Ok(server) => {
                        let http = match HttpServer::start(std::net::SocketAddr::from((
                            [127, 0, 0, 1],
                            0,
                        )))
                        .await
                        {
                            Ok(http) => http,
                            Err(error) => {
                                let _ = ready_tx.send(Err(error));
                                return;
                            }
                        };
                        http.route(
                            &format!("/.well-known/acme-challenge/{TOKEN}"),
                            Route::ok(KEY_AUTHORIZATION),
                        );
                        let _ = ready_tx.send(Ok((server.address(), http.address(), thread)));
                        let _ = stop_rx.await;
                        server.stop().await;
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                    }
                }
            });
        })?;
    let (address, http, thread) = ready_rx
        .recv_timeout(Duration::from_secs(120))
        .context("fixture did not start")??;
    Ok((address, http, thread, stop_tx))
}

#[allow(clippy::print_stdout, reason = "bench output")]
pub(crate) async fn run(args: EngineArgs) -> anyhow::Result<()> {
    if args.names == 0 || args.concurrency == 0 {
        bail!("--names and --concurrency must be at least 1");
    }
    let (address, http, fixture_thread, stop) = start_fixture(args.names)?;
    let fixture_stat = format!("/proc/{fixture_thread}/stat");
    let fetch = FetchOptions {
        allow_private: true,
        http_port: Some(http.port()),
        reuse_connections: args.reuse,
        ..FetchOptions::default()
    };
    let dispatcher = Arc::new(Dispatcher::new(
        client(address, false),
        WebClients::new(fetch)?,
    ));
    println!(
        "engine: {:?} checks, fixture on {address} (HTTP {http}, reuse {}) ({} names), {} in flight, {} s",
        args.kind, args.reuse, args.names, args.concurrency, args.seconds
    );

    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let process_before = cpu_seconds("/proc/self/stat")?;
    let fixture_before = cpu_seconds(&fixture_stat)?;
    let started = Instant::now();
    let end = started + Duration::from_secs(args.seconds);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let (dispatcher, done, failed, next) = (
            Arc::clone(&dispatcher),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&next),
        );
        let (kind, names) = (args.kind, args.names);
        workers.spawn(async move {
            while Instant::now() < end {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize % names;
                let report = dispatcher
                    .run(&target(kind, i), Instant::now() + Duration::from_secs(5))
                    .await;
                if report.outcome == Outcome::Pass {
                    done.fetch_add(1, Ordering::Relaxed);
                } else if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("check failed: {:?}", report.problem);
                }
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let fixture_cpu = cpu_seconds(&fixture_stat)? - fixture_before;
    let node_cpu = cpu_seconds("/proc/self/stat")? - process_before - fixture_cpu;
    let _ = stop.send(());

    let passed = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    let rate = passed as f64 / elapsed;
    let checks = (passed + failures).max(1) as f64;
    let node_us = node_cpu * 1e6 / checks;
    let fixture_us = fixture_cpu * 1e6 / checks;
    println!("checks/s:               {rate:>10.0}  (passed {passed}, failed {failures})");
    println!("node CPU µs per check:  {node_us:>10.1}");
    println!("fixture CPU µs per check: {fixture_us:>8.1}");
    if let Some(path) = args.json {
        let report = serde_json::json!({
            "kind": format!("{:?}", args.kind),
            "reuse_connections": args.reuse,
            "checks_per_second": rate,
            "passed": passed,
            "failed": failures,
            "node_cpu_us_per_check": node_us,
            "fixture_cpu_us_per_check": fixture_us,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if failures > 0 {
        bail!("{failures} checks failed");
    }
    Ok(())
}
