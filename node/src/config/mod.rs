//! The node's configuration: TOML file → raw serde structs (`raw`) → validated [`Config`], whose
//! types cannot hold a bad value. Every problem names its key path and all of them are reported
//! at once.
//!
//! The keys, their defaults and their meaning are documented in `deploy/mpic-node.example.toml`;
//! `default.toml` is the embedded loopback development config `mpic-node run` uses without
//! `--config`.

pub mod caa;
mod caa_domains;
pub mod dns;
pub mod http;
pub mod manifest;
pub mod openmpic;
mod quic;
mod raw;
pub mod tenants;

pub use caa::CaaConfig;
pub use dns::{DnsConfig, DnsModeConfig, DnssecMode};
pub use http::HttpConfig;
pub use manifest::ManifestConfig;
pub use openmpic::OpenMpicConfig;
pub use tenants::{TenantConfig, TenantName};
mod validate;

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mpic_protocol::{PerspectiveId, Rir};

use raw::RawConfig;

/// The embedded loopback development config, used by `mpic-node run` when no file is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

// ---------------------------------------------------------------------------------------------
// Defaults and bounds. Each says why it is what it is.
// ---------------------------------------------------------------------------------------------

/// `quic.listen` default port: 4433 is the customary QUIC/TLS test-and-service port and needs
/// no privileges.
pub const DEFAULT_QUIC_PORT: u16 = 4433;

/// `quic.listen` default: every interface, both address families (`[::]` is dual-stack on
/// Linux), because a perspective exists to be reached by primaries elsewhere.
pub fn default_quic_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::UNSPECIFIED,
        DEFAULT_QUIC_PORT,
        0,
        0,
    ))]
}

/// `quic.idle_timeout` default: long enough that a primary's pooled connection survives the gap
/// between validations (with keep-alives), short enough that dead peers free their slot soon.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// `quic.idle_timeout` bounds: under 1s a connection dies between two requests; over 10 minutes
/// a vanished primary holds a connection slot for too long.
pub const IDLE_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(600);

/// `quic.keep_alive_interval` default: a third of the idle timeout, so two keep-alives can be
/// lost before the connection times out.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// `quic.keep_alive_interval` lower bound (the upper bound is `quic.idle_timeout`): anything
/// shorter is a busy loop of PING frames, not a keep-alive.
pub const MIN_KEEP_ALIVE_INTERVAL: Duration = Duration::from_millis(100);

/// `quic.max_connections` default: a CA runs a handful of primaries, each with a few pooled
/// connections; 1024 leaves ample room while bounding per-connection memory.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// `quic.max_connections` bounds: at least one; past 100 000 the node runs out of memory or
/// file descriptors before the limit means anything.
pub const MAX_CONNECTIONS_RANGE: RangeInclusive<u32> = 1..=100_000;

/// `quic.max_streams_per_connection` default: one request per stream, so this is how many
/// requests one connection may have open; it matches `limits.max_in_flight_per_primary`.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 256;
/// `quic.max_streams_per_connection` bounds: at least one stream; 10 000 is already far beyond
/// what the in-flight limits admit.
pub const MAX_STREAMS_PER_CONNECTION_RANGE: RangeInclusive<u32> = 1..=10_000;

/// `limits.max_in_flight_requests` default: each request holds a few sockets and small buffers;
/// 1024 keeps the node well inside a default 65 536 file-descriptor limit.
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 1024;
/// `limits.max_in_flight_requests` bounds: at least one; a million is past any sane host.
pub const MAX_IN_FLIGHT_REQUESTS_RANGE: RangeInclusive<usize> = 1..=1_000_000;

/// `limits.max_in_flight_per_primary` default: a quarter of the global limit, so one busy or
/// misbehaving primary cannot starve the others.
pub const DEFAULT_MAX_IN_FLIGHT_PER_PRIMARY: usize = 256;

/// `limits.max_targets_per_request` default: a certificate carries at most ~100 SANs at the
/// public CAs, and one request validates one certificate's names.
pub const DEFAULT_MAX_TARGETS_PER_REQUEST: usize = 100;
/// `limits.max_targets_per_request` bounds: at least one; past 1000 one request could tie up the
/// node for longer than any deadline allows.
pub const MAX_TARGETS_PER_REQUEST_RANGE: RangeInclusive<usize> = 1..=1000;

/// `limits.max_request_bytes` default: the protocol's own default frame cap (64 KiB holds 100
/// targets with room to spare).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = mpic_protocol::frame::DEFAULT_MAX_REQUEST_BYTES;
/// `limits.max_request_bytes` bounds: 256 bytes fit the smallest valid request; 16 MiB bounds
/// what one stream can make the node buffer.
pub const MAX_REQUEST_BYTES_RANGE: RangeInclusive<usize> = 256..=16 * 1024 * 1024;

/// `limits.request_read_timeout` default: a request is a few KiB sent at once; 5s is generous
/// even across continents and stops slow-loris peers from holding an in-flight slot.
pub const DEFAULT_REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// `limits.request_read_timeout` bounds: 100ms is one intercontinental round trip; 60s is
/// already a slow-loris invitation.
pub const REQUEST_READ_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(60);

/// `limits.max_deadline` default: 30s covers an uncached DNSSEC chase plus an HTTP fetch with
/// redirects; no primary waits longer before issuing or giving up.
pub const DEFAULT_MAX_DEADLINE: Duration = Duration::from_secs(30);
/// `limits.max_deadline` bounds: 100ms leaves no time for any check; 10 minutes is the longest
/// a primary could reasonably hold an issuance open.
pub const MAX_DEADLINE_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(600);

/// `metrics.listen` default: loopback only, because the metrics endpoint has no
/// authentication; expose it deliberately.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// `shutdown.grace_period` default: long enough for most validations already running to finish
/// and be delivered, short enough for a rolling restart.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// `shutdown.grace_period` bounds: zero (stop at once) is allowed; past 10 minutes an
/// orchestrator will have killed the process anyway.
pub const GRACE_PERIOD_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(600);

/// `logging.level` default: `info` logs startup, one audit event per validation and problems,
/// which is what BR 5.4.1 record-keeping needs, without debug noise.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// `logging.format` default: text for people at a terminal; production configs say `json`.
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;

/// `state.directory` default: the FHS place for a daemon's persistent state.
pub const DEFAULT_STATE_DIRECTORY: &str = "/var/lib/mpic-node";

/// Longest `perspective.location`, in characters: it is a human label in logs and results, not
/// an address.
pub const MAX_LOCATION_CHARS: usize = 128;

/// Length of a `quic.client_spki_pins` entry once decoded: a SHA-256 digest.
pub const SPKI_PIN_LEN: usize = 32;

// ---------------------------------------------------------------------------------------------
// Validated types.
// ---------------------------------------------------------------------------------------------

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[perspective]`: who this node is.
    pub perspective: PerspectiveConfig,
    /// `[quic]`: the listener primaries connect to.
    pub quic: QuicConfig,
    /// `[signing]`: the result-signing key.
    pub signing: SigningConfig,
    /// `[limits]`: admission and request limits.
    pub limits: LimitsConfig,
    /// `[metrics]`: the Prometheus listener.
    pub metrics: MetricsConfig,
    /// `[shutdown]`: drain behaviour.
    pub shutdown: ShutdownConfig,
    /// `[logging]`: log filter and format.
    pub logging: LoggingConfig,
    /// `[state]`: where generated material lives.
    pub state: StateConfig,
    /// `[dangerous]`: options that weaken safety.
    pub dangerous: DangerousConfig,
    /// `[dns]`: the DNS client.
    pub dns: DnsConfig,
    /// `[http]`: the HTTP fetcher and the TLS-ALPN prober.
    pub http: HttpConfig,
    /// `[audit]`: where the audit log goes (with `[dangerous] disable_audit_log`).
    pub audit: AuditDestination,
    /// `[openmpic]`: the Open MPIC-compatible HTTP JSON listener (off by default).
    pub openmpic: OpenMpicConfig,
    /// `[caa]`: CAA choices the CA's CP/CPS states (BR 4.2.2.1.2).
    pub caa: CaaConfig,
    /// `[manifest]`: what the published perspective manifest adds (egress prefixes).
    pub manifest: ManifestConfig,
    /// `[[tenants]]`: the CAs this node serves, each with its quotas; empty: every admitted
    /// primary is served alike (no tenant in results).
    pub tenants: Vec<TenantConfig>,
}

/// `[perspective]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerspectiveConfig {
    /// Stable identifier that appears in every result and log line.
    pub id: PerspectiveId,
    /// The RIR service region of the node's network (BR 3.2.2.9).
    pub rir: Rir,
    /// Human-readable location, 1-128 characters without control characters.
    pub location: String,
    /// Report-only: results are marked shadow and must not count toward quorum.
    pub shadow: bool,
}

/// `[quic]`.
#[derive(Debug, Clone)]
pub struct QuicConfig {
    /// UDP addresses to listen on; non-empty, no duplicates.
    pub listen: Vec<SocketAddr>,
    /// Node certificate chain (PEM), resolved against the config file's directory.
    pub certificate: PathBuf,
    /// Node private key (PKCS#8 PEM), resolved against the config file's directory.
    pub private_key: PathBuf,
    /// CA bundle (PEM) that primaries' client certificates must chain to.
    pub client_ca: PathBuf,
    /// SHA-256 digests of admitted client SubjectPublicKeyInfo DER; empty admits any client
    /// certificate that chains to `client_ca`.
    pub client_spki_pins: Vec<[u8; SPKI_PIN_LEN]>,
    /// Close a connection idle for this long.
    pub idle_timeout: Duration,
    /// Send a keep-alive this often; always shorter than `idle_timeout`.
    pub keep_alive_interval: Duration,
    /// Concurrent connections across all primaries.
    pub max_connections: u32,
    /// Concurrent bidirectional streams (requests) per connection.
    pub max_streams_per_connection: u32,
}

/// `[signing]`.
#[derive(Debug, Clone)]
pub struct SigningConfig {
    /// Ed25519 result-signing key (PKCS#8 PEM), resolved against the config file's directory.
    pub key: PathBuf,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// Requests being worked on across all primaries.
    pub max_in_flight_requests: usize,
    /// Requests being worked on for one primary; at most `max_in_flight_requests`.
    pub max_in_flight_per_primary: usize,
    /// Targets in one request.
    pub max_targets_per_request: usize,
    /// Hard cap on one request frame, in bytes.
    pub max_request_bytes: usize,
    /// Time a primary has to send its whole request.
    pub request_read_timeout: Duration,
    /// A request's deadline is capped to now + this.
    pub max_deadline: Duration,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// TCP address of the Prometheus listener.
    pub listen: SocketAddr,
}

/// `[shutdown]`.
#[derive(Debug, Clone)]
pub struct ShutdownConfig {
    /// In-flight work may finish within this after SIGTERM.
    pub grace_period: Duration,
}

/// `[logging]`.
#[derive(Debug, Clone)]
pub struct LoggingConfig {
    /// A `tracing` EnvFilter directive string (`RUST_LOG` overrides it).
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// `logging.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (`"text"`).
    Text,
    /// One JSON object per line (`"json"`), for log shippers.
    Json,
}

/// `[state]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    /// Where generated material lives, resolved against the config file's directory.
    pub directory: PathBuf,
}

/// `[dangerous]`: each option weakens safety and is logged loudly at start. The default is
/// every option off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DangerousConfig {
    /// Create a dev CA, node and primary certificates and a signing key in
    /// `<state.directory>/dev` when the configured files are missing.
    pub generate_dev_credentials: bool,
    /// Let checks reach private and reserved addresses (tests, bench).
    pub allow_private_targets: bool,
    /// Dial this port instead of TCP 80 (test labs).
    pub http_port: Option<u16>,
    /// Dial this port instead of TCP 443 (test labs).
    pub https_port: Option<u16>,
    /// Write no audit log (benchmarks only).
    pub disable_audit_log: bool,
}

// ---------------------------------------------------------------------------------------------
// Errors.
// ---------------------------------------------------------------------------------------------

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The current directory, against which relative paths resolve, is unavailable.
    #[error("cannot determine the current directory to resolve relative paths: {source}")]
    CurrentDirectory {
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not TOML, a value has the wrong type, or a key or table is unknown.
    #[error("{}", syntax_display(path, message))]
    Syntax {
        /// Key path of the offending value (`quic.idle_timout`), or empty when the TOML itself
        /// does not parse.
        path: String,
        /// What is wrong and, where known, the line and column.
        message: String,
    },
    /// The file parses but values break the rules; every problem is listed.
    #[error("{}", KeyProblems(.0))]
    Invalid(Vec<KeyProblem>),
}

/// One value that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// Key path, e.g. `quic.listen[1]`.
    pub key: String,
    /// What is wrong and what is expected, lowercase, no trailing period.
    pub message: String,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

fn syntax_display(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

struct KeyProblems<'a>(&'a [KeyProblem]);

impl fmt::Display for KeyProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Loading.
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Reads and validates a config file; relative paths in it resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let absolute =
            std::path::absolute(path).map_err(|source| ConfigError::CurrentDirectory { source })?;
        let base_dir = absolute.parent().unwrap_or(Path::new("/"));
        Self::from_toml_str(&text, base_dir)
    }

    /// Parses and validates config text; relative paths resolve against `base_dir`.
    pub fn from_toml_str(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let raw = parse(text)?;
        validate::validate(raw, base_dir).map_err(ConfigError::Invalid)
    }

    /// The embedded loopback development config ([`EMBEDDED_DEFAULT`]); its relative paths
    /// resolve against the current directory.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        let base_dir =
            std::env::current_dir().map_err(|source| ConfigError::CurrentDirectory { source })?;
        Self::from_toml_str(EMBEDDED_DEFAULT, &base_dir)
    }

    /// Key paths of the enabled `[dangerous]` options, e.g.
    /// `"dangerous.generate_dev_credentials"`, for the start-up warning and the gauge.
    pub fn dangerous_options(&self) -> Vec<&'static str> {
        let DangerousConfig {
            generate_dev_credentials,
            allow_private_targets,
            http_port,
            https_port,
            disable_audit_log,
        } = self.dangerous;
        [
            (
                generate_dev_credentials,
                "dangerous.generate_dev_credentials",
            ),
            (allow_private_targets, "dangerous.allow_private_targets"),
            (http_port.is_some(), "dangerous.http_port"),
            (https_port.is_some(), "dangerous.https_port"),
            (disable_audit_log, "dangerous.disable_audit_log"),
        ]
        .into_iter()
        .filter_map(|(enabled, name)| enabled.then_some(name))
        .collect()
    }
}

/// TOML text → raw structs; syntax errors, type errors and unknown keys name their key path.
fn parse(text: &str) -> Result<RawConfig, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| ConfigError::Syntax {
        path: String::new(),
        message: toml_message(&error, text),
    })?;
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        ConfigError::Syntax {
            // `serde_path_to_error` spells the root ".".
            path: if path == "." { String::new() } else { path },
            message: toml_message(error.inner(), text),
        }
    })
}

/// A TOML error's message on one line, with the line and column when known (the error's own
/// `Display` is a multi-line snippet, unsuited to a one-line report).
fn toml_message(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim().replace('\n', "; ");
    let position = error
        .span()
        .and_then(|span| text.get(..span.start))
        .map(|before| {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            (line, column)
        });
    match position {
        Some((line, column)) => format!("{message} (line {line}, column {column})"),
        None => message,
    }
}

#[cfg(test)]
mod tests;

/// Where audit lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditDestination {
    /// Standard output, one line per result (the journal under systemd).
    Stdout,
    /// Appended to this file (created 0600 if missing); SIGHUP reopens it.
    File(PathBuf),
    /// Not written (`[dangerous] disable_audit_log`, for benchmarks only).
    Off,
}
