//! A minimal primary: asks perspectives to check a name and applies the BR 3.2.2.9 quorum rule.
//!
//! ```text
//! cargo run -p mpic-protocol --features client --example primary -- \
//!   --ca mpic-node-state/dev/ca.pem --cert mpic-node-state/dev/primary.pem --key mpic-node-state/dev/primary.key \
//!   --node id=loopback-1,rir=ARIN,addr=127.0.0.1:4433,key=<public key from `mpic-node info`> \
//!   --target example.com --issuer-domain ca.example
//! ```
//! Prints one line per target and perspective, then the verdict. Exits 0 when issuance is
//! permitted, 3 when it is not, 1 on error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Parser;
use mpic_protocol::client::{ClientOptions, NodeEndpoint, Primary};
use mpic_protocol::quorum::QuorumPolicy;
use mpic_protocol::{CaaCheck, Check, PerspectiveId, Rir, Target, VerifyingKey};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Parser)]
struct Args {
    /// CA certificate that node server certificates chain to.
    #[arg(long)]
    ca: PathBuf,
    /// This primary's client certificate.
    #[arg(long)]
    cert: PathBuf,
    /// This primary's client key.
    #[arg(long)]
    key: PathBuf,
    /// A perspective: id=<id>,rir=<RIR>,addr=<ip:port>,key=<base64 public key>[,name=<TLS name>].
    #[arg(long = "node", required = true)]
    nodes: Vec<String>,
    /// A name to check (CAA).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// The CA's issuer domain name.
    #[arg(long, default_value = "ca.example")]
    issuer_domain: String,
    /// Overall timeout, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = humantime_duration)]
    timeout: Duration,
    /// Override the BR minimum number of remotes (for demos with fewer nodes than the BR needs).
    #[arg(long)]
    min_remotes: Option<usize>,
    /// Wait for every perspective's answer before deciding (instead of deciding as early as the
    /// quorum rule allows), so every result is printed.
    #[arg(long)]
    wait_all: bool,
}

fn humantime_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let value: u64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" | "" => Ok(Duration::from_secs(value)),
        _ => Err(format!("bad duration unit in {text:?} (use ms or s)")),
    }
}

fn parse_node(text: &str) -> anyhow::Result<NodeEndpoint> {
    let mut id = None;
    let mut rir = None;
    let mut address = None;
    let mut key = None;
    let mut name = "localhost".to_owned();
    for part in text.split(',') {
        let (field, value) = part
            .split_once('=')
            .with_context(|| format!("{part:?} is not field=value"))?;
        match field {
            "id" => id = Some(PerspectiveId::new(value)?),
            "rir" => rir = Some(value.parse::<Rir>()?),
            "addr" => address = Some(value.parse()?),
            "key" => key = Some(VerifyingKey::from_base64(value)?),
            "name" => name = value.to_owned(),
            other => bail!("unknown node field {other:?}"),
        }
    }
    Ok(NodeEndpoint {
        perspective_id: id.context("node needs id=")?,
        rir: rir.context("node needs rir=")?,
        address: address.context("node needs addr=")?,
        server_name: name,
        verifying_key: key.context("node needs key=")?,
    })
}

#[allow(clippy::print_stdout, reason = "example output")]
async fn run(args: Args) -> anyhow::Result<bool> {
    let nodes = args
        .nodes
        .iter()
        .map(|text| parse_node(text))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let roots = CertificateDer::pem_file_iter(&args.ca)?.collect::<Result<Vec<_>, _>>()?;
    let chain = CertificateDer::pem_file_iter(&args.cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.key)?;
    let primary = Primary::new(nodes, ClientOptions::new(roots, Some((chain, key))))?;

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let mut policy = QuorumPolicy::in_force_at(now);
    if let Some(min) = args.min_remotes {
        policy.min_remotes = min;
    }
    let targets = args
        .targets
        .iter()
        .map(|identifier| Target {
            identifier: identifier.clone(),
            check: Check::Caa(CaaCheck {
                issuer_domains: vec![args.issuer_domain.clone()],
                ..CaaCheck::default()
            }),
        })
        .collect();
    let validation = if args.wait_all {
        primary.validate_all(targets, args.timeout, policy).await?
    } else {
        primary.validate(targets, args.timeout, policy).await?
    };
    println!(
        "request {}: {} target(s)",
        validation.request.request_id,
        validation.targets.len()
    );
    for target in &validation.targets {
        println!(
            "{} [{}]: {:?}",
            target.target.identifier,
            target.target.check.kind(),
            target.verdict.decision
        );
        for report in &target.reports {
            match (&report.result, &report.error) {
                (Some(result), _) => println!(
                    "  {} ({}): {} {} [signature verified, key {}]",
                    report.perspective_id,
                    result.perspective.rir,
                    result.outcome.as_str(),
                    result
                        .problem
                        .as_ref()
                        .map(|p| format!("{}: {}", p.kind.as_str(), p.detail))
                        .unwrap_or_default(),
                    result.key_id,
                ),
                (None, Some(error)) => println!("  {}: error: {error}", report.perspective_id),
                (None, None) => {
                    println!("  {}: no answer before the decision", report.perspective_id)
                }
            }
        }
    }
    let permitted = validation.permits_issuance();
    println!(
        "verdict: issuance {}",
        if permitted {
            "permitted"
        } else {
            "NOT permitted"
        }
    );
    primary.close().await;
    Ok(permitted)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(error) => {
            eprintln!("primary: {error:#}");
            ExitCode::FAILURE
        }
    }
}
