//! `mpic-node check`: run one check with the node's own stack (resolver, deciders) and print the
//! result — the operator's debugging tool and the interface conformance tests use. The output
//! and exit status are a contract: exit 0 pass, 1 fail, 2 usage or configuration error. The
//! check runs through the same run step as the daemon's listeners ([`crate::service::run`]);
//! nothing is signed or audited.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mpic_protocol::{
    CERTIFICATE_TYPE_SMIME, CaaCheck, Check, DcvCheck, DcvMethod, Outcome, Target,
};

use crate::config::{
    CaaConfig, Config, DangerousConfig, DnsConfig, DnsModeConfig, DnssecMode, HttpConfig,
};
use crate::dispatch::{Dispatcher, WebClients};
use crate::dns::DnsClient;
use crate::http::fetch::FetchOptions;
use crate::metrics::DnsMetrics;
use crate::signing::CheckReport;

/// Options every `check` subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Forward mode to these resolvers (repeatable); without it the node iterates from the root.
    #[arg(long = "resolver", value_name = "IP:PORT")]
    pub resolvers: Vec<SocketAddr>,
    /// Root hints file for iterative mode.
    #[arg(long, value_name = "FILE")]
    pub root_hints: Option<PathBuf>,
    /// Port of authoritative servers in iterative mode (test labs).
    #[arg(long, value_name = "PORT")]
    pub authoritative_port: Option<u16>,
    /// DNSSEC trust anchor file (DS or DNSKEY lines).
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Option<PathBuf>,
    /// DNSSEC validation: `validate` (default) or `off`.
    #[arg(long, value_name = "MODE", value_parser = ["validate", "off"])]
    pub dnssec: Option<String>,
    /// Node config whose `[dns]`, `[http]`, `[dangerous]` and `[caa]` tables to use (flags above
    /// override them).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Overall deadline, e.g. `10s`.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// `check caa` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct CaaArgs {
    /// The domain (a leading `*.` means a wildcard certificate).
    pub domain: String,
    /// The CA's issuer domain name (repeatable).
    #[arg(long = "issuer-domain", required = true)]
    pub issuer_domains: Vec<String>,
    /// Check for a wildcard certificate.
    #[arg(long)]
    pub wildcard: bool,
    /// An account URI matched against RFC 8657 `accounturi` (repeatable: the ACME account and
    /// the Parent Accounts it maps to, BR 4.2.2.1.2).
    #[arg(long = "account-uri", value_name = "URI")]
    pub account_uris: Vec<String>,
    /// The validation method (RFC 8657 validationmethods): a DCV method name, an ACME label
    /// (dns-01) or a BR label (ca-tbr-7).
    #[arg(long)]
    pub method: Option<String>,
    /// Opt in to the BR 3.2.2.8 lookup-failure carve-out: a retried timeout, SERVFAIL, REFUSED
    /// or unreachable server in a zone proven insecure passes, marked
    /// `permitted_by_lookup_failure` (needs `--dnssec validate`).
    #[arg(long)]
    pub allow_lookup_failure: bool,
    /// Check for an S/MIME certificate for a mailbox at DOMAIN (its domain part): only
    /// `issuemail` records govern (RFC 9495 §4); `issue`/`issuewild` are ignored.
    #[arg(long, conflicts_with = "wildcard")]
    pub smime: bool,
    #[command(flatten)]
    /// Common options.
    pub common: CommonArgs,
}

/// `check dcv` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct DcvArgs {
    /// The domain (the IP address for reverse-address-lookup).
    pub domain: String,
    /// The method: dns-change, acme-dns-01, acme-dns-account-01, dns-persist-01, acme-http-01,
    /// acme-tls-alpn-01, website-change, contact-email-txt, contact-phone-txt,
    /// contact-email-caa, contact-phone-caa, ip-address, reverse-address-lookup.
    #[arg(long)]
    pub method: String,
    /// Expected Random Value / Request Token / contact; ip-address: the IP address(es),
    /// comma-separated; reverse-address-lookup: the FQDN the PTR record must name.
    #[arg(long)]
    pub expect: Option<String>,
    /// ACME key authorization.
    #[arg(long)]
    pub key_authorization: Option<String>,
    /// ACME token or file name.
    #[arg(long)]
    pub token: Option<String>,
    /// Underscore label to look under.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Issuer domain name (dns-persist).
    #[arg(long)]
    pub issuer_domain: Option<String>,
    /// Account URI (dns-persist, dns-account-01).
    #[arg(long)]
    pub account_uri: Option<String>,
    /// The certificate name is a wildcard.
    #[arg(long)]
    pub wildcard: bool,
    /// Let HTTP and TLS-ALPN checks reach private and reserved addresses (tests, labs).
    #[arg(long)]
    pub allow_private: bool,
    /// `http` (default) or `https`: the website-change request's scheme.
    #[arg(long, value_name = "SCHEME", value_parser = ["http", "https"])]
    pub url_scheme: Option<String>,
    /// dns-change: look in this record type only (default: TXT, CNAME and CAA); ip-address:
    /// A or AAAA only (default: both).
    #[arg(long, value_name = "TYPE", value_parser = ["TXT", "CNAME", "CAA", "A", "AAAA"])]
    pub record_type: Option<String>,
    /// dns-change: the record must equal the value (default: contain it).
    #[arg(long)]
    pub exact_match: bool,
    /// dns-change: compare TXT and CAA values ignoring ASCII case.
    #[arg(long)]
    pub case_insensitive: bool,
    /// Dial this port where the check would dial TCP 80 (test labs).
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Dial this port where the check would dial TCP 443 (test labs).
    #[arg(long, value_name = "PORT")]
    pub https_port: Option<u16>,
    #[command(flatten)]
    /// Common options.
    pub common: CommonArgs,
}

/// The `check` command failed before running the check (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The config file is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The root hints file could not be used.
    #[error(transparent)]
    Settings(#[from] crate::dns::settings::SettingsError),
    /// The resolver's metrics could not be set up.
    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The TLS clients could not be set up.
    #[error("cannot set up the TLS clients: {0}")]
    Tls(#[from] rustls::Error),
}

/// Lab and safety overrides of the `[http]` and `[dangerous]` tables for one check.
#[derive(Debug, Clone, Copy, Default)]
struct WebOverrides {
    allow_private: bool,
    http_port: Option<u16>,
    https_port: Option<u16>,
}

/// What the command prints and exits with.
#[derive(Debug)]
pub struct CheckRun {
    /// The report.
    pub report: CheckReport,
    /// Time taken.
    pub elapsed: Duration,
}

impl CheckRun {
    /// Exit status: 0 pass, 1 anything else.
    pub fn exit_code(&self) -> u8 {
        u8::from(self.report.outcome != Outcome::Pass)
    }

    /// The JSON contract: `{"outcome", "outcome_detail", "problem", "dnssec", "evidence",
    /// "elapsed_ms"}`. An `unsupported` check is `"fail"` with problem kind `unsupported`;
    /// `outcome_detail` is `"permitted_by_lookup_failure"` on a BR 3.2.2.8 carve-out pass (the
    /// proof is in `evidence.permitted_by_lookup_failure`), else null.
    pub fn to_json(&self) -> serde_json::Value {
        let outcome = if self.report.outcome == Outcome::Pass {
            "pass"
        } else {
            "fail"
        };
        serde_json::json!({
            "outcome": outcome,
            "outcome_detail": self.report.evidence.permitted_by_lookup_failure.as_ref().map(|_| "permitted_by_lookup_failure"),
            "problem": self.report.problem.as_ref().map(|p| serde_json::json!({"kind": p.kind.as_str(), "detail": p.detail})),
            "dnssec": self.report.dnssec,
            "evidence": self.report.evidence,
            "elapsed_ms": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        })
    }

    /// A short human summary.
    pub fn summary(&self) -> String {
        let mut text = match &self.report.problem {
            None => format!("PASS ({} ms)\n", self.elapsed.as_millis()),
            Some(problem) => format!(
                "FAIL {}: {} ({} ms)\n",
                problem.kind.as_str(),
                problem.detail,
                self.elapsed.as_millis()
            ),
        };
        if let Some(status) = self.report.dnssec {
            text.push_str(&format!("dnssec: {status:?}\n"));
        }
        if let Some(permit) = &self.report.evidence.permitted_by_lookup_failure {
            for failed in &permit.failed_lookups {
                text.push_str(&format!(
                    "permitted_by_lookup_failure (BR 3.2.2.8): {} CAA {} after {} attempts; {}\n",
                    failed.name, failed.failure, failed.attempts, failed.proof
                ));
            }
        }
        for lookup in &self.report.evidence.to_wire().dns {
            text.push_str(&format!(
                "  {} {} {}",
                lookup.name, lookup.record_type, lookup.rcode
            ));
            if let Some(server) = &lookup.server {
                text.push_str(&format!(" from {server}"));
            }
            text.push('\n');
            for record in &lookup.records {
                text.push_str(&format!("    {record}\n"));
            }
        }
        text
    }
}

/// What a `check` takes from the node config (`--config`) with the flags applied.
struct CheckConfig {
    dns: DnsConfig,
    fetch: FetchOptions,
    caa: CaaConfig,
}

fn configs(common: &CommonArgs, web: WebOverrides) -> Result<CheckConfig, CheckError> {
    let (mut dns, http, mut dangerous, caa) = match &common.config {
        Some(path) => {
            let config = Config::load(path)?;
            (config.dns, config.http, config.dangerous, config.caa)
        }
        None => (
            DnsConfig::default(),
            HttpConfig::default(),
            DangerousConfig::default(),
            CaaConfig::default(),
        ),
    };
    dangerous.allow_private_targets |= web.allow_private;
    dangerous.http_port = web.http_port.or(dangerous.http_port);
    dangerous.https_port = web.https_port.or(dangerous.https_port);
    let fetch = FetchOptions::from_config(&http, &dangerous);
    if !common.resolvers.is_empty() {
        dns.mode = DnsModeConfig::Forward {
            upstreams: common.resolvers.clone(),
        };
    } else if let Some(hints) = &common.root_hints {
        dns.mode = DnsModeConfig::Iterative {
            root_hints: Some(hints.clone()),
        };
    }
    if let Some(port) = common.authoritative_port {
        dns.authoritative_port = port;
    }
    if let Some(anchor) = &common.trust_anchor {
        dns.trust_anchor = Some(anchor.clone());
    }
    match common.dnssec.as_deref() {
        Some("off") => dns.dnssec = DnssecMode::Off,
        Some(_) => dns.dnssec = DnssecMode::Validate,
        None => {}
    }
    Ok(CheckConfig { dns, fetch, caa })
}

async fn run(
    target: Target,
    common: &CommonArgs,
    web: WebOverrides,
) -> Result<CheckRun, CheckError> {
    let CheckConfig { dns, fetch, caa } = configs(common, web)?;
    let settings = crate::dns::DnsSettings::from_config(&dns)?;
    let metrics = DnsMetrics::unregistered()?;
    let dispatcher = Dispatcher {
        caa: crate::checks::caa::policy::PolicyOptions::from_config(&caa),
        ..Dispatcher::new(DnsClient::new(settings, metrics), WebClients::new(fetch)?)
    };
    let deadline = tokio::time::Instant::now() + common.timeout;
    let ran = crate::service::run(&dispatcher, &target, deadline).await;
    Ok(CheckRun {
        report: ran.report,
        elapsed: ran.elapsed,
    })
}

/// `check caa`.
pub async fn caa(args: &CaaArgs) -> Result<CheckRun, CheckError> {
    let check = CaaCheck {
        issuer_domains: args.issuer_domains.clone(),
        wildcard: args.wildcard,
        account_uri: None,
        account_uris: args.account_uris.clone(),
        method: args.method.clone(),
        allow_lookup_failure: args.allow_lookup_failure,
        certificate_type: args.smime.then(|| CERTIFICATE_TYPE_SMIME.to_owned()),
    };
    run(
        Target {
            identifier: args.domain.clone(),
            check: Check::Caa(check),
        },
        &args.common,
        WebOverrides::default(),
    )
    .await
}

/// `check dcv`.
pub async fn dcv(args: &DcvArgs) -> Result<CheckRun, CheckError> {
    let Ok(method) = args.method.parse::<DcvMethod>();
    let check = DcvCheck {
        url_scheme: args.url_scheme.clone(),
        record_type: args.record_type.clone(),
        exact_match: args.exact_match,
        case_insensitive: args.case_insensitive,
        method,
        expected: args.expect.clone(),
        key_authorization: args.key_authorization.clone(),
        token: args.token.clone(),
        prefix: args.prefix.clone(),
        issuer_domain: args.issuer_domain.clone(),
        account_uri: args.account_uri.clone(),
        wildcard: args.wildcard,
    };
    run(
        Target {
            identifier: args.domain.clone(),
            check: Check::Dcv(check),
        },
        &args.common,
        WebOverrides {
            allow_private: args.allow_private,
            http_port: args.http_port,
            https_port: args.https_port,
        },
    )
    .await
}
