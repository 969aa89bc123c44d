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

use crate::fixture::Fixture;
use crate::subject::stat_cpu;
use crate::workload::{KEY_AUTHORIZATION, RANDOM_VALUE, TOKEN};
use anyhow::{Context as _, bail};
use mpic_node::dispatch::{Dispatcher, WebClients};
use mpic_node::http::fetch::FetchOptions;
use mpic_protocol::{CaaCheck, Check, DcvCheck, DcvMethod, Outcome, Target};
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

/// The zone (origin `bench.test.`, served by the shared fixture with the `test.` TLD).
fn zone(names: usize) -> String {
    let mut text = String::from(
        "@ 3600 IN SOA ns.bench.test. h.bench.test. 1 7200 3600 1209600 60\n@ IN NS ns\n\
         ns IN A 127.0.0.1\n@ 300 IN CAA 0 issue \"ca.example\"\n",
    );
    for i in 0..names {
        text.push_str(&format!(
            "c{i} 300 IN A 192.0.2.1\n_dc.d{i} 300 IN TXT \"{RANDOM_VALUE}\"\n\
             h{i} 300 IN A 127.0.0.1\n"
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
                record_type: None,
                exact_match: false,
                case_insensitive: false,
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
                record_type: None,
                exact_match: false,
                case_insensitive: false,
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

/// CPU seconds of a `/proc/.../stat` file, or an error naming it.
fn cpu_seconds(path: &str) -> anyhow::Result<f64> {
    stat_cpu(std::path::Path::new(path)).with_context(|| format!("reading {path}"))
}

#[allow(clippy::print_stdout, reason = "bench output")]
pub(crate) async fn run(args: EngineArgs) -> anyhow::Result<()> {
    if args.names == 0 || args.concurrency == 0 {
        bail!("--names and --concurrency must be at least 1");
    }
    let fixture = Fixture::start(zone(args.names), None)?;
    let (address, http) = (fixture.dns, fixture.http);
    let fixture_stat = fixture.stat_path.clone();
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
    let queries_before = fixture.dns_queries();
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
    let queries = fixture.dns_queries() - queries_before;
    drop(fixture);

    let passed = done.load(Ordering::Relaxed);
    let failures = failed.load(Ordering::Relaxed);
    let rate = passed as f64 / elapsed;
    let checks = (passed + failures).max(1) as f64;
    let node_us = node_cpu * 1e6 / checks;
    let fixture_us = fixture_cpu * 1e6 / checks;
    println!("checks/s:               {rate:>10.0}  (passed {passed}, failed {failures})");
    println!("node CPU µs per check:  {node_us:>10.1}");
    println!("fixture CPU µs per check: {fixture_us:>8.1}");
    let queries_per_check = queries as f64 / checks;
    println!("DNS queries per check:  {queries_per_check:>10.2}");
    if let Some(path) = args.json {
        let report = serde_json::json!({
            "kind": format!("{:?}", args.kind),
            "reuse_connections": args.reuse,
            "checks_per_second": rate,
            "passed": passed,
            "failed": failures,
            "node_cpu_us_per_check": node_us,
            "fixture_cpu_us_per_check": fixture_us,
            "dns_queries_per_check": queries_per_check,
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
