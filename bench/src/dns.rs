//! `mpic-bench dns`: lookups per second of the node's DNS client against the fixture
//! authoritative server on loopback — cached (same name, answered from the cache) and uncached
//! (distinct names, cache off) — and, with `--dnsperf`, queries per second of dnsperf against
//! the same server, so the ratio is measured in one run.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hickory_proto::rr::{Name, RecordType};
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode, Resolver as _};
use mpic_node::metrics::DnsMetrics;
use mpic_tests::dns_server::{DnsServer, ZoneText};
use tokio::time::Instant;

/// Arguments of `mpic-bench dns`.
#[derive(Debug, clap::Args)]
pub(crate) struct DnsArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Lookups in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct names in the zone (uncached phase cycles through them).
    #[arg(long, default_value_t = 50_000)]
    names: usize,
    /// Skip the cached phase (to profile the uncached path alone).
    #[arg(long)]
    uncached_only: bool,
    /// Also run dnsperf (if installed) against the same server and print the ratio.
    #[arg(long)]
    dnsperf: bool,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

fn zone(names: usize) -> String {
    let mut text = String::from(
        "@ 3600 IN SOA ns.bench.test. h.bench.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\n",
    );
    for i in 0..names {
        text.push_str(&format!("t{i} 300 IN TXT \"challenge-{i}\"\n"));
    }
    text
}

/// A forward-mode client to `server`, with or without a cache.
pub(crate) fn client(server: std::net::SocketAddr, cached: bool) -> DnsClient {
    let cache = if cached {
        CacheLimits {
            max_entries: 1_000_000,
            max_bytes: 1 << 30,
            max_answer_ttl: Duration::from_secs(60),
            max_delegation_ttl: Duration::from_secs(3600),
        }
    } else {
        CacheLimits {
            max_entries: 0,
            max_bytes: 0,
            max_answer_ttl: Duration::ZERO,
            max_delegation_ttl: Duration::ZERO,
        }
    };
    let settings = DnsSettings {
        mode: Mode::Forward {
            upstreams: vec![server],
        },
        limits: Limits {
            query_timeout: Duration::from_secs(2),
            use_ipv6: false,
            // One loopback fixture stands in for every DNS host: lift the per-server budget,
            // so what is measured is the node, not its politeness.
            servers: mpic_node::dns::servers::ServerLimits {
                max_in_flight: 10_000,
                max_rate: 1_000_000,
                ..mpic_node::dns::servers::ServerLimits::default()
            },
            ..Limits::default()
        },
        cache,
        transport: TransportConfig::default(),
        dnssec: false,
        trust_anchors: None,
    };
    DnsClient::new(
        settings,
        DnsMetrics::unregistered().unwrap_or_else(|_| unreachable_metrics()),
    )
}

#[allow(
    clippy::panic,
    reason = "metrics in a fresh private registry cannot collide"
)]
fn unreachable_metrics() -> DnsMetrics {
    panic!("fresh registry refused metrics")
}

/// Runs `concurrency` workers for `seconds`, each looking up names from `pick`.
pub(crate) async fn phase(
    dns: DnsClient,
    seconds: u64,
    concurrency: usize,
    names: usize,
    same_name: bool,
) -> anyhow::Result<(f64, u64)> {
    // Names are built up front so the measurement is the resolver, not string formatting.
    let names: Arc<Vec<Name>> = Arc::new(
        (0..if same_name { 1 } else { names })
            .filter_map(|i| Name::from_ascii(format!("t{i}.bench.test.")).ok())
            .collect(),
    );
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (dns, done, failed, next) = (
            dns.clone(),
            Arc::clone(&done),
            Arc::clone(&failed),
            Arc::clone(&next),
        );
        let names = Arc::clone(&names);
        workers.spawn(async move {
            while Instant::now() < end {
                let index = next.fetch_add(1, Ordering::Relaxed) as usize % names.len().max(1);
                let Some(name) = names.get(index) else { break };
                match dns
                    .lookup(
                        name,
                        RecordType::TXT,
                        Instant::now() + Duration::from_secs(2),
                    )
                    .await
                {
                    Ok(lookup) if !lookup.records.is_empty() => {
                        done.fetch_add(1, Ordering::Relaxed)
                    }
                    Ok(_) => failed.fetch_add(1, Ordering::Relaxed),
                    Err(error) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("lookup failed: {error}");
                        }
                        0
                    }
                };
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    Ok((
        done.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
    ))
}

fn dnsperf(
    server: std::net::SocketAddr,
    names: usize,
    seconds: u64,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let dir = std::env::temp_dir().join(format!("mpic-bench-dnsperf-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let queries = dir.join("queries.txt");
    let text: String = (0..names)
        .map(|i| format!("t{i}.bench.test. TXT\n"))
        .collect();
    std::fs::write(&queries, text)?;
    let output = Command::new("dnsperf")
        .args([
            "-s",
            &server.ip().to_string(),
            "-p",
            &server.port().to_string(),
        ])
        .arg("-d")
        .arg(&queries)
        .args([
            "-l",
            &seconds.to_string(),
            "-q",
            &concurrency.to_string(),
            "-c",
            "1",
            "-t",
            "2",
        ])
        .output()
        .context("running dnsperf (apt-get install dnsperf)")?;
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let qps = stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Queries per second:"))
        .and_then(|value| value.trim().parse::<f64>().ok());
    match qps {
        Some(qps) => Ok(qps),
        None => bail!(
            "dnsperf printed no rate:\n{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[allow(clippy::print_stdout, reason = "bench output")]
pub(crate) async fn run(args: DnsArgs) -> anyhow::Result<()> {
    let zone_text = zone(args.names);
    let server = DnsServer::start(
        "127.0.0.1:0".parse()?,
        &[ZoneText {
            origin: "bench.test.",
            text: &zone_text,
        }],
    )
    .await?;
    let address = server.address();
    println!(
        "fixture authoritative server on {address}, {} names, {} in flight, {} s per phase",
        args.names, args.concurrency, args.seconds
    );

    let (uncached, uncached_failed) = phase(
        client(address, false),
        args.seconds,
        args.concurrency,
        args.names,
        false,
    )
    .await?;
    println!("uncached TXT lookups/s: {uncached:>10.0}  (failed: {uncached_failed})");
    let cached_client = client(address, true);
    let seconds = if args.uncached_only { 0 } else { args.seconds };
    let (cached, cached_failed) =
        phase(cached_client, seconds, args.concurrency, args.names, true).await?;
    println!("cached TXT lookups/s:   {cached:>10.0}  (failed: {cached_failed})");
    let queries_at_server = server.query_count();
    println!("queries answered by the fixture: {queries_at_server}");

    let mut report = serde_json::json!({
        "uncached_lookups_per_second": uncached,
        "uncached_failed": uncached_failed,
        "cached_lookups_per_second": cached,
        "cached_failed": cached_failed,
        "concurrency": args.concurrency,
        "seconds": args.seconds,
    });
    if args.dnsperf {
        let perf = tokio::task::spawn_blocking(move || {
            dnsperf(
                address,
                10_000.min(args.names),
                args.seconds,
                args.concurrency,
            )
        })
        .await??;
        println!("dnsperf queries/s:      {perf:>10.0}");
        println!("ratio uncached / dnsperf: {:.2}", uncached / perf);
        report["dnsperf_queries_per_second"] = perf.into();
        report["ratio_uncached_to_dnsperf"] = (uncached / perf).into();
    }
    if let Some(path) = args.json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    server.stop().await;
    Ok(())
}
