//! `mpic-node doctor`: checks a host before go-live and prints a pass/fail table. It loads the
//! config (every key), the credentials (parse, expiry, key file permissions), the clock's sync
//! state, the listen ports, the state directory, the DNS path (root servers or upstreams) and,
//! for each `--target host:port`, TCP reachability over IPv4 and IPv6 from the configured
//! egress addresses. With `--dns-servers` it also prints what its resolver learnt about each DNS
//! server it asked (smoothed RTT, failures, backoff, lameness, queries in flight): the doctor
//! runs its own resolver, so this is the state of the path from this host now, not the running
//! daemon's table. Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.

use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use crate::config::Config;
use crate::dns::{DnsClient, Resolver as _};
use crate::metrics::DnsMetrics;

pub mod open_files;

/// Days of certificate validity below which the doctor warns.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A row's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Fine.
    Pass,
    /// Works, but look at it.
    Warn,
    /// Must be fixed before go-live.
    Fail,
    /// Not applicable here.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was checked.
    pub check: String,
    /// The verdict.
    pub status: Status,
    /// What was found, and what to do about it.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Every row, in order.
    pub rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, check: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.rows.push(Row {
            check: check.into(),
            status,
            detail: detail.into(),
        });
    }

    /// True when no row failed.
    pub fn passed(&self) -> bool {
        self.rows.iter().all(|row| row.status != Status::Fail)
    }

    /// The table as printed.
    pub fn table(&self) -> String {
        let width = self.rows.iter().map(|r| r.check.len()).max().unwrap_or(0);
        let mut text = String::new();
        for row in &self.rows {
            let _ = writeln!(
                text,
                "{}  {:<width$}  {}",
                row.status.label(),
                row.check,
                row.detail
            );
        }
        let failed = self
            .rows
            .iter()
            .filter(|r| r.status == Status::Fail)
            .count();
        let warned = self
            .rows
            .iter()
            .filter(|r| r.status == Status::Warn)
            .count();
        let _ = writeln!(
            text,
            "{}: {failed} failed, {warned} warnings",
            if failed == 0 {
                "ready for go-live"
            } else {
                "NOT ready"
            }
        );
        text
    }
}

/// Runs every check for the config at `path`; `targets` are `host:port` pairs to reach.
/// `offline` skips everything that sends traffic (DNS and the targets); `dns_servers` adds a
/// row per DNS server asked, with its state.
pub async fn run(path: &Path, targets: &[String], offline: bool, dns_servers: bool) -> Report {
    let mut report = Report::default();
    let config = match Config::load(path) {
        Ok(config) => {
            report.add(
                "config",
                Status::Pass,
                format!("{} loads and validates", path.display()),
            );
            config
        }
        Err(error) => {
            report.add("config", Status::Fail, error.to_string());
            return report;
        }
    };
    for option in config.dangerous_options() {
        report.add(
            "dangerous options",
            Status::Warn,
            format!("{option} is on: not for production"),
        );
    }
    credentials(&config, &mut report);
    clock(&mut report);
    ports(&config, &mut report);
    state_directory(&config, &mut report);
    open_files_row(&config, &mut report);
    if offline {
        report.add("dns", Status::Skip, "--offline: no queries sent");
        return report;
    }
    dns(&config, targets, dns_servers, &mut report).await;
    for target in targets {
        reach(&config, target, &mut report).await;
    }
    report
}

/// The open-file limit the node will run with (its hard limit: the daemon raises its soft
/// limit to it) against what the admission limits may need.
fn open_files_row(config: &Config, report: &mut Report) {
    let limit = open_files::NofileLimit::current();
    let show = |n: Option<u64>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    match open_files::shortfall(limit.hard, &config.limits) {
        Some(shortfall) => report.add(
            "open files",
            Status::Warn,
            format!("hard {shortfall} (soft {})", show(limit.soft)),
        ),
        None => report.add(
            "open files",
            Status::Pass,
            format!(
                "hard limit {} (the node raises its soft limit {} to it at start) covers the {} descriptors the admission limits may need",
                show(limit.hard),
                show(limit.soft),
                open_files::need_detail(&config.limits)
            ),
        ),
    }
}

fn credentials(config: &Config, report: &mut Report) {
    for (what, path) in [
        ("quic.certificate", &config.quic.certificate),
        ("quic.client_ca", &config.quic.client_ca),
    ] {
        match crate::credentials::load_certificates(path) {
            Ok(chain) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                match chain.first().and_then(crate::credentials::not_after) {
                    Some(not_after) if not_after <= now => {
                        report.add(
                            what,
                            Status::Fail,
                            format!("{} has expired", path.display()),
                        );
                    }
                    Some(not_after) if not_after - now < EXPIRY_WARNING_DAYS * 86_400 => {
                        report.add(
                            what,
                            Status::Warn,
                            format!(
                                "{} expires in {} days",
                                path.display(),
                                (not_after - now) / 86_400
                            ),
                        );
                    }
                    Some(not_after) => report.add(
                        what,
                        Status::Pass,
                        format!(
                            "{} valid for {} more days",
                            path.display(),
                            (not_after - now) / 86_400
                        ),
                    ),
                    None => report.add(
                        what,
                        Status::Fail,
                        format!("{}: the certificate does not parse", path.display()),
                    ),
                }
            }
            Err(error) => report.add(what, Status::Fail, error.to_string()),
        }
    }
    for (what, path, loads) in [
        (
            "quic.private_key",
            &config.quic.private_key,
            crate::credentials::load_private_key(&config.quic.private_key).map(|_| ()),
        ),
        (
            "signing.key",
            &config.signing.key,
            crate::credentials::load_signing_key(&config.signing.key).map(|_| ()),
        ),
    ] {
        if let Err(error) = loads {
            report.add(what, Status::Fail, error.to_string());
            continue;
        }
        match std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777) {
            Ok(mode) if mode & 0o007 != 0 => report.add(
                what,
                Status::Fail,
                format!(
                    "{} is accessible to other users (mode {mode:04o}): chmod 0640 (group mpic-node) or 0600",
                    path.display()
                ),
            ),
            Ok(mode) => report.add(
                what,
                Status::Pass,
                format!("{} loads, mode {mode:04o}", path.display()),
            ),
            Err(error) => report.add(what, Status::Fail, format!("{}: {error}", path.display())),
        }
    }
}

/// Clock discipline as systemd sees it (`timedatectl` reads the kernel's sync flag, whichever
/// of chrony, ntpd or timesyncd disciplines the clock).
fn clock(report: &mut Report) {
    let output = std::process::Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            match String::from_utf8_lossy(&output.stdout).trim() {
                "yes" => report.add("clock", Status::Pass, "synchronised (timedatectl)"),
                other => report.add(
                    "clock",
                    Status::Warn,
                    format!("not synchronised (timedatectl says {other:?}): run chrony or systemd-timesyncd; results carry timestamps primaries check"),
                ),
            }
        }
        _ => report.add(
            "clock",
            Status::Warn,
            "cannot tell whether the clock is synchronised (timedatectl unavailable): check chrony or ntpd by hand",
        ),
    }
}

fn ports(config: &Config, report: &mut Report) {
    for address in &config.quic.listen {
        match std::net::UdpSocket::bind(address) {
            Ok(_) => report.add(
                "quic.listen",
                Status::Pass,
                format!("UDP {address} is free"),
            ),
            Err(error) => report.add(
                "quic.listen",
                Status::Warn,
                format!("UDP {address}: {error} (is the node already running?)"),
            ),
        }
    }
    match std::net::TcpListener::bind(config.metrics.listen) {
        Ok(_) => report.add(
            "metrics.listen",
            Status::Pass,
            format!("TCP {} is free", config.metrics.listen),
        ),
        Err(error) => report.add(
            "metrics.listen",
            Status::Warn,
            format!(
                "TCP {}: {error} (is the node already running?)",
                config.metrics.listen
            ),
        ),
    }
}

fn state_directory(config: &Config, report: &mut Report) {
    let dir = &config.state.directory;
    if !dir.is_dir() {
        report.add(
            "state.directory",
            Status::Warn,
            format!(
                "{} does not exist yet (the node creates it; systemd's StateDirectory= does too)",
                dir.display()
            ),
        );
        return;
    }
    let probe = dir.join(".doctor-write-test");
    match std::fs::write(&probe, b"ok") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            report.add(
                "state.directory",
                Status::Pass,
                format!("{} is writable", dir.display()),
            );
        }
        Err(error) => report.add(
            "state.directory",
            Status::Fail,
            format!("{}: {error}", dir.display()),
        ),
    }
}

async fn dns(config: &Config, targets: &[String], dns_servers: bool, report: &mut Report) {
    let settings = match crate::dns::DnsSettings::from_config(&config.dns) {
        Ok(settings) => settings,
        Err(error) => {
            report.add("dns", Status::Fail, error.to_string());
            return;
        }
    };
    let metrics = match DnsMetrics::unregistered() {
        Ok(metrics) => metrics,
        Err(error) => {
            report.add(
                "dns",
                Status::Fail,
                format!("cannot set up metrics: {error}"),
            );
            return;
        }
    };
    let client = DnsClient::new(settings, metrics);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let what = match &config.dns.mode {
        crate::config::DnsModeConfig::Forward { upstreams } => format!("upstreams {upstreams:?}"),
        crate::config::DnsModeConfig::Iterative { .. } => {
            "the root servers (root hints)".to_owned()
        }
    };
    match client.lookup(&Name::root(), RecordType::NS, deadline).await {
        Ok(lookup) => report.add(
            "dns",
            Status::Pass,
            format!(
                "{what} answered `. NS` with {} records, DNSSEC {:?}",
                lookup.records.len(),
                lookup.dnssec
            ),
        ),
        Err(error) => report.add(
            "dns",
            Status::Fail,
            format!("{what}: `. NS` failed: {error}"),
        ),
    }
    if dns_servers {
        servers(&client, targets, deadline, report).await;
    }
}

/// Resolves each target's host through the node's resolver, then adds a row per DNS server
/// asked: warn when it is backed off or lame, pass otherwise.
async fn servers(
    client: &DnsClient,
    targets: &[String],
    deadline: tokio::time::Instant,
    report: &mut Report,
) {
    for target in targets {
        let host = target
            .rsplit_once(':')
            .map_or(target.as_str(), |(host, _)| host);
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            continue;
        }
        if let Ok(name) = Name::from_ascii(host) {
            // Failures show in the server rows below (and in the target's own row).
            let _ = client.lookup(&name, RecordType::A, deadline).await;
        }
    }
    let now = tokio::time::Instant::now();
    for state in client.servers().report() {
        let health = &state.health;
        let rtt = health.srtt.map_or_else(
            || "no answer yet".to_owned(),
            |srtt| format!("srtt {} ms", srtt.as_millis()),
        );
        let mut detail = format!(
            "{rtt}, rttvar {} ms, {} failures in a row, {} in flight, {} queries",
            health.rttvar.as_millis(),
            health.failures,
            state.in_flight,
            health.queries
        );
        let mut status = Status::Pass;
        if let Some(until) = health.backoff_until.filter(|until| *until > now) {
            status = Status::Warn;
            let _ = write!(
                detail,
                ", backed off for {} ms more",
                (until - now).as_millis()
            );
        }
        if let Some(until) = health.lame_until.filter(|until| *until > now) {
            status = Status::Warn;
            let _ = write!(detail, ", lame for {} s more", (until - now).as_secs());
        }
        report.add(format!("dns server {}", state.server), status, detail);
    }
}

async fn reach(config: &Config, target: &str, report: &mut Report) {
    let addresses: Vec<SocketAddr> = match target.to_socket_addrs() {
        Ok(addresses) => addresses.collect(),
        Err(error) => {
            report.add(
                format!("reach {target}"),
                Status::Fail,
                format!("cannot resolve {target}: {error} (expected host:port)"),
            );
            return;
        }
    };
    for (family, v4) in [("IPv4", true), ("IPv6", false)] {
        let Some(address) = addresses.iter().find(|a| a.is_ipv4() == v4) else {
            report.add(
                format!("reach {target} {family}"),
                Status::Skip,
                format!("{target} has no {family} address"),
            );
            continue;
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        match crate::egress::dial_tcp(
            *address,
            config.http.egress_ipv4,
            config.http.egress_ipv6,
            deadline,
        )
        .await
        {
            Ok(stream) => report.add(
                format!("reach {target} {family}"),
                Status::Pass,
                format!(
                    "connected to {address} from {}",
                    stream
                        .local_addr()
                        .map(|a| a.ip().to_string())
                        .unwrap_or_default()
                ),
            ),
            Err(error) => report.add(
                format!("reach {target} {family}"),
                Status::Fail,
                format!("{address}: {error}"),
            ),
        }
    }
}
