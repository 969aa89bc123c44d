//! `mpic-bench dnssec`: uncached lookups/s with validation on and off, on the same zone signed
//! by ldns-signzone (needs `ldnsutils`), in one run, in forward mode or (`--iterative`) from a
//! loopback root. The validator's caches (validated zone keys, verified RRsets) stay on: they
//! are part of the design; the answer and delegation caches are off so every lookup is asked.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::dns::cache::CacheLimits;
use mpic_node::dns::dnssec::anchors::TrustAnchors;
use mpic_node::dns::root_hints::RootHints;
use mpic_node::dns::transport::TransportConfig;
use mpic_node::dns::{DnsClient, DnsSettings, Limits, Mode};
use mpic_node::metrics::DnsMetrics;
use mpic_tests::dns_server::{DnsServer, ZoneText};

/// Arguments of `mpic-bench dnssec`.
#[derive(Debug, clap::Args)]
pub(crate) struct DnssecArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Lookups in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Distinct names in the signed zone.
    #[arg(long, default_value_t = 5_000)]
    names: usize,
    /// Signing algorithm (an ldns-keygen name: ECDSAP256SHA256, ED25519, RSASHA256, ...).
    #[arg(long, default_value = "ECDSAP256SHA256")]
    algorithm: String,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Iterate from a loopback root on 127.0.0.9 (same port) instead of forwarding.
    #[arg(long)]
    iterative: bool,
}

/// An unsigned loopback root delegating `bench.test.` to the zone's server (its glue).
const ROOT_ZONE: &str = ". 3600 IN SOA a.root.test. h.root.test. 1 7200 3600 1209600 60\n\
    . IN NS a.root.test.\na.root.test. IN A 127.0.0.9\n\
    bench.test. IN NS ns.bench.test.\nns.bench.test. IN A 127.0.0.1\n";

/// Tries for a port free on both loopback addresses the iterative lab needs.
const PORT_ATTEMPTS: usize = 10;

/// The zone's server on 127.0.0.1 and, with `iterative`, a root on 127.0.0.9 on the same port.
async fn servers(zone: &str, iterative: bool) -> anyhow::Result<(DnsServer, Option<DnsServer>)> {
    let zones = [ZoneText {
        origin: "bench.test.",
        text: zone,
    }];
    for _ in 0..PORT_ATTEMPTS {
        let server = DnsServer::start("127.0.0.1:0".parse()?, &zones).await?;
        if !iterative {
            return Ok((server, None));
        }
        let root = [ZoneText {
            origin: ".",
            text: ROOT_ZONE,
        }];
        let at = std::net::SocketAddr::from(([127, 0, 0, 9], server.address().port()));
        if let Ok(root) = DnsServer::start(at, &root).await {
            return Ok((server, Some(root)));
        }
    }
    bail!("no port free on both 127.0.0.1 and 127.0.0.9")
}

fn run_tool(dir: &std::path::Path, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (apt-get install ldnsutils)"))?;
    if !output.status.success() {
        bail!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Signs a generated zone `bench.test.` with `algorithm`; returns (zone text, anchor text).
fn signed_zone(names: usize, algorithm: &str) -> anyhow::Result<(String, String)> {
    let dir = std::env::temp_dir().join(format!("mpic-bench-dnssec-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut text = String::from(
        "$ORIGIN bench.test.\n@ 3600 IN SOA ns.bench.test. h.bench.test. 1 7200 3600 1209600 60\n@ IN NS ns\nns IN A 127.0.0.1\n",
    );
    for i in 0..names {
        text.push_str(&format!("t{i} 300 IN TXT \"challenge-{i}\"\n"));
    }
    std::fs::write(dir.join("bench.zone"), text)?;
    let ksk = run_tool(&dir, "ldns-keygen", &["-a", algorithm, "-k", "bench.test."])?;
    let zsk = run_tool(&dir, "ldns-keygen", &["-a", algorithm, "bench.test."])?;
    run_tool(
        &dir,
        "ldns-signzone",
        &["-f", "bench.signed", "bench.zone", &zsk, &ksk],
    )?;
    let signed = run_tool(&dir, "ldns-read-zone", &["bench.signed"])?;
    let anchor = std::fs::read_to_string(dir.join(format!("{ksk}.ds")))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((signed, anchor))
}

fn client(
    server: std::net::SocketAddr,
    iterative: bool,
    anchors: &TrustAnchors,
    validate: bool,
) -> anyhow::Result<DnsClient> {
    let mode = if iterative {
        Mode::Iterative {
            hints: RootHints::parse(". NS a.root.test.\na.root.test. A 127.0.0.9\n")?,
            port: server.port(),
        }
    } else {
        Mode::Forward {
            upstreams: vec![server],
        }
    };
    let settings = DnsSettings {
        mode,
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
        cache: CacheLimits {
            max_entries: 0,
            max_bytes: 0,
            max_answer_ttl: Duration::ZERO,
            max_delegation_ttl: Duration::ZERO,
        },
        transport: TransportConfig::default(),
        dnssec: validate,
        trust_anchors: Some(anchors.clone()),
    };
    Ok(DnsClient::new(settings, DnsMetrics::unregistered()?))
}

#[allow(clippy::print_stdout, reason = "bench output")]
pub(crate) async fn run(args: DnssecArgs) -> anyhow::Result<()> {
    let (zone, anchor) = signed_zone(args.names, &args.algorithm)?;
    let anchors = TrustAnchors::parse(&anchor)?;
    let (server, root) = servers(&zone, args.iterative).await?;
    let address = server.address();
    let mode = if args.iterative {
        "iterative from a root on 127.0.0.9"
    } else {
        "forward"
    };
    println!(
        "signed zone bench.test. ({} names) on {address}, {mode}, {} in flight, {} s per phase",
        args.names, args.concurrency, args.seconds
    );
    let (off, off_failed) = crate::dns::phase(
        client(address, args.iterative, &anchors, false)?,
        args.seconds,
        args.concurrency,
        args.names,
        false,
    )
    .await?;
    println!("uncached lookups/s, dnssec off:      {off:>10.0}  (failed: {off_failed})");
    let validating = client(address, args.iterative, &anchors, true)?;
    // The validated phase must measure secure answers, not failures.
    let probe = mpic_node::dns::Resolver::lookup(
        &validating,
        &hickory_proto::rr::Name::from_ascii("t0.bench.test.")?,
        hickory_proto::rr::RecordType::TXT,
        tokio::time::Instant::now() + Duration::from_secs(5),
    )
    .await?;
    if probe.dnssec != Some(mpic_protocol::DnssecStatus::Secure) {
        bail!(
            "validation of the signed zone did not give secure: {:?} {:?}",
            probe.dnssec,
            probe.dnssec_detail
        );
    }
    let (on, on_failed) = crate::dns::phase(
        validating,
        args.seconds,
        args.concurrency,
        args.names,
        false,
    )
    .await?;
    println!("uncached lookups/s, dnssec validate: {on:>10.0}  (failed: {on_failed})");
    println!("ratio validate / off: {:.2}", on / off);
    if let Some(path) = args.json {
        let report = serde_json::json!({
            "names": args.names,
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "off_lookups_per_second": off,
            "validate_lookups_per_second": on,
            "ratio": on / off,
            "iterative": args.iterative,
            "failed": off_failed + on_failed,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    server.stop().await;
    if let Some(root) = root {
        root.stop().await;
    }
    if off_failed + on_failed > 0 {
        bail!("{} lookups failed", off_failed + on_failed);
    }
    Ok(())
}
