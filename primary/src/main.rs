//! `mpic-primary check`: run one validation across the perspectives of a perspectives file,
//! print the BR 3.2.2.9 verdict, a table per perspective and the findings (why they disagree).
//!
//! Exit status: 0 issuance permitted for every target; 1 refused; 2 usage or configuration
//! error (bad flag, perspectives file, TLS files); 3 could not run (the client could not start,
//! or no perspective returned a single signed result).
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool prints its report on stdout"
)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use mpic_primary::{perspectives, render, report, verdict};
use mpic_protocol::client::ClientOptions;
use mpic_protocol::{CaaCheck, Check, DcvCheck, DcvMethod, Target};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Exit status: issuance refused.
const EXIT_REFUSED: u8 = 1;
/// Exit status: usage or configuration error (clap uses 2 for usage errors too).
const EXIT_USAGE: u8 = 2;
/// Exit status: the validation could not run.
const EXIT_COULD_NOT_RUN: u8 = 3;

#[derive(Parser)]
#[command(
    name = "mpic-primary",
    version,
    about = "Run a validation across MPIC perspectives and explain why they disagree",
    after_help = "Exit status: 0 issuance permitted, 1 refused, 2 usage or configuration error, \
                  3 could not run."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate one or more domains through every perspective.
    Check(CheckArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// CAA permission (BR 3.2.2.8).
    Caa,
    /// Domain-control validation (BR 3.2.2.4).
    Dcv,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The domains (or IP addresses) to validate.
    #[arg(required = true)]
    domains: Vec<String>,
    /// What to check.
    #[arg(long = "check", value_enum)]
    kind: Kind,
    /// DCV: the method (dns-change, acme-http-01, ...). CAA: the validation method matched
    /// against `validationmethods` (RFC 8657).
    #[arg(long)]
    method: Option<String>,
    /// DCV: the expected value (Random Value, address, ...).
    #[arg(long)]
    expect: Option<String>,
    /// CAA: the CA's Issuer Domain Name (repeat for several).
    #[arg(long = "issuer-domain")]
    issuer_domains: Vec<String>,
    /// CAA: the ACME account URI (RFC 8657 `accounturi`).
    #[arg(long)]
    account_uri: Option<String>,
    /// The certificate is for a wildcard name.
    #[arg(long)]
    wildcard: bool,
    /// DCV (ACME): the key authorization.
    #[arg(long)]
    key_authorization: Option<String>,
    /// DCV (ACME http-01, website-change): the token or file name.
    #[arg(long)]
    token: Option<String>,
    /// DCV (dns-change): look only at this record type (TXT, CNAME, CAA).
    #[arg(long)]
    record_type: Option<String>,
    /// The perspectives file (TOML).
    #[arg(long)]
    perspectives: PathBuf,
    /// CA certificate(s) the nodes' server certificates chain to (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// This primary's client certificate chain (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// This primary's client key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// Apply the BR 3.2.2.9 row in force at this date (YYYY-MM-DD or RFC 3339, UTC) instead of
    /// today's.
    #[arg(long, value_parser = verdict::parse_date)]
    at: Option<u64>,
    /// How long to wait for every perspective, e.g. 10s or 1500ms.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the report as a self-contained HTML page to this file.
    #[arg(long)]
    html: Option<PathBuf>,
}

fn main() -> ExitCode {
    let Command::Check(args) = Cli::parse().command;
    let prepared = match prepare(&args) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("mpic-primary: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match check(&args, prepared) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("mpic-primary: {error:#}");
            ExitCode::from(EXIT_COULD_NOT_RUN)
        }
    }
}

/// What a run needs, read and validated before anything touches the network.
struct Prepared {
    perspectives: Vec<perspectives::Perspective>,
    options: ClientOptions,
    targets: Vec<Target>,
}

fn prepare(args: &CheckArgs) -> anyhow::Result<Prepared> {
    let perspectives = perspectives::load(&args.perspectives)?;
    let roots = CertificateDer::pem_file_iter(&args.ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--ca {}", args.ca.display()))?;
    let chain = CertificateDer::pem_file_iter(&args.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--cert {}", args.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&args.key)
        .with_context(|| format!("--key {}", args.key.display()))?;
    let check = check_of(args)?;
    let targets = args
        .domains
        .iter()
        .map(|domain| Target {
            identifier: domain.clone(),
            check: check.clone(),
        })
        .collect();
    Ok(Prepared {
        perspectives,
        options: ClientOptions::new(roots, Some((chain, key))),
        targets,
    })
}

fn check_of(args: &CheckArgs) -> anyhow::Result<Check> {
    Ok(match args.kind {
        Kind::Caa => {
            anyhow::ensure!(
                !args.issuer_domains.is_empty(),
                "--check caa needs at least one --issuer-domain"
            );
            Check::Caa(CaaCheck {
                issuer_domains: args.issuer_domains.clone(),
                wildcard: args.wildcard,
                account_uri: args.account_uri.clone(),
                method: args.method.clone(),
                ..CaaCheck::default()
            })
        }
        Kind::Dcv => {
            let method = args
                .method
                .as_deref()
                .context("--check dcv needs --method")?;
            let Ok(method) = method.parse::<DcvMethod>();
            Check::Dcv(DcvCheck {
                method,
                expected: args.expect.clone(),
                key_authorization: args.key_authorization.clone(),
                token: args.token.clone(),
                prefix: None,
                issuer_domain: args.issuer_domains.first().cloned(),
                account_uri: args.account_uri.clone(),
                wildcard: args.wildcard,
                url_scheme: None,
                record_type: args.record_type.clone(),
                exact_match: false,
                case_insensitive: false,
            })
        }
    })
}

fn check(args: &CheckArgs, prepared: Prepared) -> anyhow::Result<ExitCode> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let rule_unix = args.at.unwrap_or(now);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (validation, policy) = runtime.block_on(report::run(
        &prepared.perspectives,
        prepared.options,
        prepared.targets,
        rule_unix,
        args.timeout,
    ))?;
    let report = report::build(&prepared.perspectives, &validation, policy, rule_unix, now);
    if args.json {
        println!("{}", render::json(&report)?);
    } else {
        print!("{}", render::human::render(&report));
    }
    if let Some(path) = &args.html {
        std::fs::write(path, render::html::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let any_result = validation
        .targets
        .iter()
        .any(|t| t.reports.iter().any(|r| r.result.is_some()));
    Ok(if !any_result {
        eprintln!("mpic-primary: no perspective returned a signed result");
        ExitCode::from(EXIT_COULD_NOT_RUN)
    } else if report.permitted {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_REFUSED)
    })
}
