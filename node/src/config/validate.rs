//! Raw config → validated [`Config`](super::Config): every rule, each problem under its key path,
//! all problems collected before failing.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use mpic_protocol::{PerspectiveId, Rir};

use super::raw::{
    DurationText, RawAudit, RawConfig, RawDangerous, RawLimits, RawLogging, RawMetrics,
    RawPerspective, RawShutdown, RawSigning, RawState,
};
use super::*;

/// Problems found so far. Every helper that returns `None` has pushed one, so a `None` field
/// always means the config is invalid.
#[derive(Default)]
pub(super) struct Problems(Vec<KeyProblem>);

impl Problems {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(KeyProblem {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Raw → typed. `Err` holds every problem found, in file order of tables and keys; it is never
/// empty.
pub(super) fn validate(raw: RawConfig, base_dir: &Path) -> Result<Config, Vec<KeyProblem>> {
    let mut problems = Problems::default();
    let p = &mut problems;
    let perspective = perspective(raw.perspective, p);
    let quic = quic::validate(raw.quic, base_dir, p);
    let signing = signing(raw.signing, base_dir, p);
    let limits = limits(raw.limits, p);
    let metrics = metrics(raw.metrics, p);
    let shutdown = shutdown(raw.shutdown, p);
    let logging = logging(raw.logging, p);
    let state = state(raw.state, base_dir, p);
    let dangerous = dangerous(raw.dangerous, p);
    let dns = dns::validate(raw.dns, base_dir, p);
    let http = http::validate(raw.http, p);
    let audit = audit(raw.audit, &dangerous, base_dir, p);
    let openmpic = openmpic::validate(raw.openmpic, p);
    let caa = caa::validate(raw.caa);
    let manifest = manifest::validate(raw.manifest, p);
    let tenants = tenants::validate(raw.tenants, p);
    match (
        perspective,
        quic,
        signing,
        limits,
        metrics,
        shutdown,
        logging,
        state,
        dns,
        http,
        audit,
        openmpic,
        manifest,
        tenants,
    ) {
        (
            Some(perspective),
            Some(quic),
            Some(signing),
            Some(limits),
            Some(metrics),
            Some(shutdown),
            Some(logging),
            Some(state),
            Some(dns),
            Some(http),
            Some(audit),
            Some(openmpic),
            Some(manifest),
            Some(tenants),
        ) if problems.0.is_empty() => Ok(Config {
            perspective,
            quic,
            signing,
            limits,
            metrics,
            shutdown,
            logging,
            state,
            dangerous,
            dns,
            http,
            audit,
            openmpic,
            caa,
            manifest,
            tenants,
        }),
        _ => Err(problems.0),
    }
}

pub(super) fn missing_table(name: &str, keys: &str, p: &mut Problems) {
    p.push(
        name,
        format!("required table is missing (expected [{name}] with {keys})"),
    );
}

fn perspective(raw: Option<RawPerspective>, p: &mut Problems) -> Option<PerspectiveConfig> {
    let Some(raw) = raw else {
        missing_table("perspective", "id, rir and location", p);
        return None;
    };
    let id = required(
        "perspective.id",
        raw.id,
        "a perspective id such as \"fra-1\"",
        p,
    )
    .and_then(|id| {
        PerspectiveId::new(id)
            .map_err(|error| p.push("perspective.id", error.to_string()))
            .ok()
    });
    let rir = required(
        "perspective.rir",
        raw.rir,
        "one of ARIN, RIPE, APNIC, LACNIC, AFRINIC",
        p,
    )
    .and_then(|rir| {
        rir.parse::<Rir>()
            .map_err(|error| p.push("perspective.rir", error.to_string()))
            .ok()
    });
    let location = required(
        "perspective.location",
        raw.location,
        "a place name such as \"Frankfurt, DE\"",
        p,
    )
    .and_then(|location| {
        let chars = location.chars().count();
        if chars == 0 || chars > MAX_LOCATION_CHARS {
            p.push(
                "perspective.location",
                format!("is {chars} characters long (expected 1 to {MAX_LOCATION_CHARS})"),
            );
            None
        } else if location.chars().any(char::is_control) {
            p.push(
                "perspective.location",
                format!("{location:?} contains a control character (expected plain text)"),
            );
            None
        } else {
            Some(location)
        }
    });
    Some(PerspectiveConfig {
        id: id?,
        rir: rir?,
        location: location?,
        shadow: raw.shadow.unwrap_or(false),
    })
}

fn signing(raw: Option<RawSigning>, base_dir: &Path, p: &mut Problems) -> Option<SigningConfig> {
    let Some(raw) = raw else {
        missing_table("signing", "key", p);
        return None;
    };
    let key = path(
        "signing.key",
        raw.key,
        "the Ed25519 signing key PKCS#8 PEM file",
        base_dir,
        p,
    );
    Some(SigningConfig { key: key? })
}

fn limits(raw: RawLimits, p: &mut Problems) -> Option<LimitsConfig> {
    let max_in_flight_requests = bounded(
        "limits.max_in_flight_requests",
        raw.max_in_flight_requests,
        DEFAULT_MAX_IN_FLIGHT_REQUESTS,
        MAX_IN_FLIGHT_REQUESTS_RANGE,
        p,
    );
    // Bounded by the global limit; if that is itself bad, by its upper bound only so one
    // mistake is reported once.
    let per_primary_max = max_in_flight_requests.unwrap_or(*MAX_IN_FLIGHT_REQUESTS_RANGE.end());
    let max_in_flight_per_primary = match raw.max_in_flight_per_primary {
        // An omitted per-primary limit follows a lowered global limit down.
        None => Some(DEFAULT_MAX_IN_FLIGHT_PER_PRIMARY.min(per_primary_max)),
        Some(value) => bounded(
            "limits.max_in_flight_per_primary",
            Some(value),
            DEFAULT_MAX_IN_FLIGHT_PER_PRIMARY,
            1..=per_primary_max,
            p,
        ),
    };
    let max_targets_per_request = bounded(
        "limits.max_targets_per_request",
        raw.max_targets_per_request,
        DEFAULT_MAX_TARGETS_PER_REQUEST,
        MAX_TARGETS_PER_REQUEST_RANGE,
        p,
    );
    let max_request_bytes = bounded(
        "limits.max_request_bytes",
        raw.max_request_bytes,
        DEFAULT_MAX_REQUEST_BYTES,
        MAX_REQUEST_BYTES_RANGE,
        p,
    );
    let request_read_timeout = duration(
        "limits.request_read_timeout",
        raw.request_read_timeout,
        DEFAULT_REQUEST_READ_TIMEOUT,
        REQUEST_READ_TIMEOUT_RANGE,
        p,
    );
    let max_deadline = duration(
        "limits.max_deadline",
        raw.max_deadline,
        DEFAULT_MAX_DEADLINE,
        MAX_DEADLINE_RANGE,
        p,
    );
    Some(LimitsConfig {
        max_in_flight_requests: max_in_flight_requests?,
        max_in_flight_per_primary: max_in_flight_per_primary?,
        max_targets_per_request: max_targets_per_request?,
        max_request_bytes: max_request_bytes?,
        request_read_timeout: request_read_timeout?,
        max_deadline: max_deadline?,
    })
}

fn metrics(raw: RawMetrics, p: &mut Problems) -> Option<MetricsConfig> {
    let listen = match raw.listen {
        None => Some(DEFAULT_METRICS_LISTEN),
        Some(text) => socket_address("metrics.listen", &text, p),
    };
    Some(MetricsConfig { listen: listen? })
}

fn shutdown(raw: RawShutdown, p: &mut Problems) -> Option<ShutdownConfig> {
    let grace_period = duration(
        "shutdown.grace_period",
        raw.grace_period,
        DEFAULT_GRACE_PERIOD,
        GRACE_PERIOD_RANGE,
        p,
    );
    Some(ShutdownConfig {
        grace_period: grace_period?,
    })
}

fn logging(raw: RawLogging, p: &mut Problems) -> Option<LoggingConfig> {
    let level = match raw.level {
        None => Some(DEFAULT_LOG_LEVEL.to_owned()),
        Some(level) if level.trim().is_empty() => {
            p.push(
                "logging.level",
                "is empty (expected a tracing filter such as \"info\" or \"info,mpic_node=debug\")",
            );
            None
        }
        // Parsed here as well as at start-up so a malformed filter is reported with the other
        // problems, under its key.
        Some(level) => match tracing_subscriber::EnvFilter::builder().parse(&level) {
            Ok(_) => Some(level),
            Err(error) => {
                p.push(
                    "logging.level",
                    format!(
                        "{level:?} is not a tracing filter: {error} (expected e.g. \"info\" or \
                         \"info,mpic_node=debug\")"
                    ),
                );
                None
            }
        },
    };
    let format = match raw.format.as_deref() {
        None => Some(DEFAULT_LOG_FORMAT),
        Some("text") => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            p.push(
                "logging.format",
                format!("{other:?} is not a log format (expected \"text\" or \"json\")"),
            );
            None
        }
    };
    Some(LoggingConfig {
        level: level?,
        format: format?,
    })
}

fn state(raw: RawState, base_dir: &Path, p: &mut Problems) -> Option<StateConfig> {
    let directory = path(
        "state.directory",
        Some(
            raw.directory
                .unwrap_or_else(|| DEFAULT_STATE_DIRECTORY.to_owned()),
        ),
        "a directory",
        base_dir,
        p,
    );
    Some(StateConfig {
        directory: directory?,
    })
}

fn audit(
    raw: RawAudit,
    dangerous: &DangerousConfig,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<AuditDestination> {
    use super::AuditDestination;
    match (raw.path, dangerous.disable_audit_log) {
        (Some(_), true) => {
            p.push(
                "audit.path",
                "is set while dangerous.disable_audit_log = true (expected one or the other)",
            );
            None
        }
        (_, true) => Some(AuditDestination::Off),
        (Some(path), false) if path.trim().is_empty() => {
            p.push(
                "audit.path",
                "is empty (expected a file path, or omit it for stdout)",
            );
            None
        }
        (Some(path), false) => Some(AuditDestination::File(base_dir.join(path))),
        (None, false) => Some(AuditDestination::Stdout),
    }
}

fn dangerous(raw: RawDangerous, p: &mut Problems) -> DangerousConfig {
    let port = |key: &str, value: Option<i64>, p: &mut Problems| {
        value.and_then(|_| bounded(key, value, 0u16, 1..=u16::MAX, p))
    };
    DangerousConfig {
        generate_dev_credentials: raw.generate_dev_credentials.unwrap_or(false),
        allow_private_targets: raw.allow_private_targets.unwrap_or(false),
        http_port: port("dangerous.http_port", raw.http_port, p),
        https_port: port("dangerous.https_port", raw.https_port, p),
        disable_audit_log: raw.disable_audit_log.unwrap_or(false),
    }
}

// ---------------------------------------------------------------------------------------------
// Value rules shared by the tables.
// ---------------------------------------------------------------------------------------------

pub(super) fn required<T>(
    key: &str,
    value: Option<T>,
    expected: &str,
    p: &mut Problems,
) -> Option<T> {
    if value.is_none() {
        p.push(
            key,
            format!("required key is missing (expected {expected})"),
        );
    }
    value
}

/// A required path, joined onto `base_dir` when relative.
pub(super) fn path(
    key: &str,
    value: Option<String>,
    expected: &str,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<PathBuf> {
    let value = required(key, value, &format!("the path of {expected}"), p)?;
    if value.is_empty() {
        p.push(key, format!("is empty (expected the path of {expected})"));
        return None;
    }
    // `join` keeps an absolute `value` as it is.
    Some(base_dir.join(value))
}

pub(super) fn socket_address(key: &str, text: &str, p: &mut Problems) -> Option<SocketAddr> {
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            p.push(
                key,
                format!(
                    "{text:?} is not a socket address (expected ip:port, e.g. 127.0.0.1:4433 \
                     or [::]:4433)"
                ),
            );
            None
        }
    }
}

/// A non-empty list of distinct socket addresses; each bad entry is its own problem.
pub(super) fn socket_addresses(
    key: &str,
    texts: &[String],
    p: &mut Problems,
) -> Option<Vec<SocketAddr>> {
    if texts.is_empty() {
        p.push(
            key,
            "is empty (expected at least one socket address, e.g. [\"[::]:4433\"])",
        );
        return None;
    }
    let mut addresses = Vec::with_capacity(texts.len());
    let mut valid = true;
    for (i, text) in texts.iter().enumerate() {
        let entry_key = format!("{key}[{i}]");
        let Some(address) = socket_address(&entry_key, text, p) else {
            valid = false;
            continue;
        };
        if let Some(first) = texts
            .iter()
            .take(i)
            .position(|earlier| earlier.parse::<SocketAddr>() == Ok(address))
        {
            p.push(
                entry_key,
                format!(
                    "{address} is listed twice (also at {key}[{first}]; expected each address once)"
                ),
            );
            valid = false;
            continue;
        }
        addresses.push(address);
    }
    valid.then_some(addresses)
}

/// Base64 SPKI pins under `table_key` (`quic.client_spki_pins`, `tenants[0].client_spki_pins`).
pub(super) fn spki_pins(
    table_key: &str,
    texts: Vec<String>,
    p: &mut Problems,
) -> Option<Vec<[u8; SPKI_PIN_LEN]>> {
    let mut pins = Vec::with_capacity(texts.len());
    let mut valid = true;
    for (i, text) in texts.iter().enumerate() {
        let key = format!("{table_key}[{i}]");
        let pin = match base64::engine::general_purpose::STANDARD.decode(text) {
            // The decoder's own wording ("Invalid padding") adds little; say what a pin looks like.
            Err(_) => {
                p.push(
                    key,
                    format!(
                        "{text:?} is not standard padded base64 (expected the base64 SHA-256 \
                         digest of a client SubjectPublicKeyInfo: 44 characters ending in \"=\")"
                    ),
                );
                None
            }
            Ok(bytes) => match <[u8; SPKI_PIN_LEN]>::try_from(bytes.as_slice()) {
                Ok(pin) => Some(pin),
                Err(_) => {
                    p.push(
                        key,
                        format!(
                            "{text:?} decodes to {} bytes (expected the {SPKI_PIN_LEN}-byte \
                             SHA-256 digest of a client SubjectPublicKeyInfo)",
                            bytes.len()
                        ),
                    );
                    None
                }
            },
        };
        match pin {
            Some(pin) => pins.push(pin),
            None => valid = false,
        }
    }
    valid.then_some(pins)
}

pub(super) fn duration(
    key: &str,
    value: Option<DurationText>,
    default: Duration,
    range: RangeInclusive<Duration>,
    p: &mut Problems,
) -> Option<Duration> {
    let Some(DurationText(text)) = value else {
        return Some(default);
    };
    let parsed = match humantime::parse_duration(&text) {
        Ok(parsed) => parsed,
        Err(error) => {
            p.push(
                key,
                format!("{text:?} is not a duration: {error} (expected e.g. \"30s\" or \"250ms\")"),
            );
            return None;
        }
    };
    if range.contains(&parsed) {
        Some(parsed)
    } else {
        p.push(
            key,
            format!(
                "{text:?} is out of range (expected {} to {})",
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end()),
            ),
        );
        None
    }
}

/// An integer within `range` (inclusive), or `default` when omitted.
pub(super) fn bounded<T>(
    key: &str,
    value: Option<i64>,
    default: T,
    range: RangeInclusive<T>,
    p: &mut Problems,
) -> Option<T>
where
    T: TryFrom<i64> + PartialOrd + fmt::Display + Copy,
{
    let Some(value) = value else {
        return Some(default);
    };
    match T::try_from(value) {
        Ok(converted) if range.contains(&converted) => Some(converted),
        _ => {
            p.push(
                key,
                format!(
                    "{value} is out of range (expected {} to {})",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }
}
