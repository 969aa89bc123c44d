//! `[[tenants]]`: the CAs one node serves (perspective-as-a-service). Each tenant is recognised
//! by its client certificate (SPKI pins and/or subject common names under `quic.client_ca`) and
//! has its own quotas, allowed checks and default CAA issuer domains. Validated into
//! [`TenantConfig`]; every problem names its key path (`tenants[1].burst`).

use std::collections::HashSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::time::Duration;

use mpic_protocol::DcvMethod;

use super::SPKI_PIN_LEN;
use super::caa_domains;
use super::raw::RawTenant;
use super::validate::{Problems, bounded, duration, spki_pins};

/// Most `[[tenants]]` tables: names are metric label values, so the set stays small.
pub const MAX_TENANTS: usize = 64;
/// Longest tenant name, in characters.
pub const MAX_TENANT_NAME_CHARS: usize = 32;
/// `requests_per_second` default: well above one CA's steady validation rate on one
/// perspective, low enough that a runaway primary cannot take the whole node.
pub const DEFAULT_TENANT_RATE: u32 = 100;
/// `requests_per_second` and `burst` bounds.
pub const TENANT_RATE_RANGE: RangeInclusive<u32> = 1..=100_000;
/// `max_in_flight_requests` default: a quarter of the default per-primary limit.
pub const DEFAULT_TENANT_IN_FLIGHT: usize = 64;
/// `max_in_flight_requests` bounds.
pub const TENANT_IN_FLIGHT_RANGE: RangeInclusive<usize> = 1..=100_000;
/// `max_targets_per_request` bounds (the node-wide `limits.max_targets_per_request` caps it too).
pub const TENANT_TARGETS_RANGE: RangeInclusive<usize> = 1..=1000;
/// `retry_after` default: one token-bucket second.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `retry_after` bounds.
pub const RETRY_AFTER_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(600);
/// Most `caa_domains` entries per tenant.
pub const MAX_TENANT_CAA_DOMAINS: usize = 32;
/// Check kinds a tenant may be allowed.
pub const CHECK_KINDS: [&str; 2] = ["caa", "dcv"];

/// A tenant's name: `a-z 0-9 _ -`, 1-32 characters (safe as a metric label and in logs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    /// The name, or `None` when it breaks the rule.
    pub fn new(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.chars().count() <= MAX_TENANT_NAME_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One validated `[[tenants]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantConfig {
    /// The tenant's name (in results, audit lines and metrics).
    pub name: TenantName,
    /// SHA-256 digests of the tenant's client SubjectPublicKeyInfos.
    pub client_spki_pins: Vec<[u8; SPKI_PIN_LEN]>,
    /// Subject common names of the tenant's client certificates.
    pub subject_names: Vec<String>,
    /// Token-bucket refill, requests per second.
    pub requests_per_second: u32,
    /// Token-bucket size (requests that may arrive at once).
    pub burst: u32,
    /// This tenant's requests being worked on at once.
    pub max_in_flight_requests: usize,
    /// Targets in one request (`None`: the node-wide limit).
    pub max_targets_per_request: Option<usize>,
    /// Check kinds allowed (`None`: all).
    pub checks: Option<Vec<String>>,
    /// DCV methods allowed, wire names (`None`: all).
    pub methods: Option<Vec<String>>,
    /// Issuer Domain Names for CAA targets that name none (lowercase).
    pub caa_domains: Vec<String>,
    /// The retry hint sent with `overloaded`.
    pub retry_after: Duration,
}

impl TenantConfig {
    /// Whether a primary with SPKI digest `spki` and subject common name `subject` is this
    /// tenant's.
    pub fn recognises(&self, spki: &[u8; SPKI_PIN_LEN], subject: &str) -> bool {
        self.client_spki_pins.contains(spki)
            || (!subject.is_empty() && self.subject_names.iter().any(|name| name == subject))
    }

    /// Whether the tenant may run check `kind` (`caa`, `dcv`, ...) with `method` (the DCV
    /// method's wire name, or `caa`).
    pub fn permits(&self, kind: &str, method: &str) -> bool {
        let kind_ok = self
            .checks
            .as_ref()
            .is_none_or(|checks| checks.iter().any(|k| k == kind));
        let method_ok = kind != "dcv"
            || self
                .methods
                .as_ref()
                .is_none_or(|methods| methods.iter().any(|m| m == method));
        kind_ok && method_ok
    }
}

pub(super) fn validate(raw: Vec<RawTenant>, p: &mut Problems) -> Option<Vec<TenantConfig>> {
    if raw.len() > MAX_TENANTS {
        p.push(
            "tenants",
            format!("has {} tables (expected at most {MAX_TENANTS})", raw.len()),
        );
        return None;
    }
    let mut valid = true;
    let mut tenants = Vec::with_capacity(raw.len());
    for (i, raw) in raw.into_iter().enumerate() {
        match tenant(&format!("tenants[{i}]"), raw, p) {
            Some(tenant) => tenants.push(tenant),
            None => valid = false,
        }
    }
    // Sharing is judged among valid tables only, so indexes in the key paths stay right.
    valid = valid && distinct(&tenants, p);
    valid.then_some(tenants)
}

/// No two tenants share a name, a pin or a subject name (a primary must be one tenant's).
fn distinct(tenants: &[TenantConfig], p: &mut Problems) -> bool {
    let (mut names, mut pins, mut subjects) = (HashSet::new(), HashSet::new(), HashSet::new());
    let mut valid = true;
    for (i, tenant) in tenants.iter().enumerate() {
        if !names.insert(tenant.name.as_str()) {
            p.push(
                format!("tenants[{i}].name"),
                format!("{:?} names another tenant too", tenant.name.as_str()),
            );
            valid = false;
        }
        if tenant.client_spki_pins.iter().any(|pin| !pins.insert(*pin)) {
            p.push(
                format!("tenants[{i}].client_spki_pins"),
                "a pin is listed by another tenant too (a primary must belong to one tenant)",
            );
            valid = false;
        }
        if tenant
            .subject_names
            .iter()
            .any(|name| !subjects.insert(name.as_str()))
        {
            p.push(
                format!("tenants[{i}].subject_names"),
                "a subject name is listed by another tenant too (a primary must belong to one \
                 tenant)",
            );
            valid = false;
        }
    }
    valid
}

fn tenant(key: &str, raw: RawTenant, p: &mut Problems) -> Option<TenantConfig> {
    let name = tenant_name(key, raw.name.as_deref(), p);
    let pins_key = format!("{key}.client_spki_pins");
    let client_spki_pins = spki_pins(&pins_key, raw.client_spki_pins.unwrap_or_default(), p);
    let subject_names = subject_names(key, raw.subject_names.unwrap_or_default(), p);
    if matches!((&client_spki_pins, &subject_names), (Some(pins), Some(names)) if pins.is_empty() && names.is_empty())
    {
        p.push(
            key,
            "names no way to recognise the tenant (expected client_spki_pins and/or subject_names)",
        );
    }
    let rps = format!("{key}.requests_per_second");
    let requests_per_second = bounded(
        &rps,
        raw.requests_per_second,
        DEFAULT_TENANT_RATE,
        TENANT_RATE_RANGE,
        p,
    );
    let burst = bounded(
        &format!("{key}.burst"),
        raw.burst,
        requests_per_second.unwrap_or(DEFAULT_TENANT_RATE),
        TENANT_RATE_RANGE,
        p,
    );
    let max_in_flight_requests = bounded(
        &format!("{key}.max_in_flight_requests"),
        raw.max_in_flight_requests,
        DEFAULT_TENANT_IN_FLIGHT,
        TENANT_IN_FLIGHT_RANGE,
        p,
    );
    let targets_key = format!("{key}.max_targets_per_request");
    let max_targets_per_request = match raw.max_targets_per_request {
        None => Some(None),
        value => bounded(&targets_key, value, 1, TENANT_TARGETS_RANGE, p).map(Some),
    };
    let checks = allowed(
        &format!("{key}.checks"),
        raw.checks,
        &CHECK_KINDS,
        "caa or dcv",
        p,
    );
    let methods_known: Vec<&str> = DcvMethod::KNOWN.iter().map(DcvMethod::as_str).collect();
    let methods = allowed(
        &format!("{key}.methods"),
        raw.methods,
        &methods_known,
        "a DCV method wire name such as \"acme-http-01\"",
        p,
    );
    let caa_domains = caa_domains::validate(
        &format!("{key}.caa_domains"),
        raw.caa_domains.unwrap_or_default(),
        MAX_TENANT_CAA_DOMAINS,
        p,
    );
    let retry_after = duration(
        &format!("{key}.retry_after"),
        raw.retry_after,
        DEFAULT_RETRY_AFTER,
        RETRY_AFTER_RANGE,
        p,
    );
    Some(TenantConfig {
        name: name?,
        client_spki_pins: client_spki_pins?,
        subject_names: subject_names?,
        requests_per_second: requests_per_second?,
        burst: burst?,
        max_in_flight_requests: max_in_flight_requests?,
        max_targets_per_request: max_targets_per_request?,
        checks: checks?,
        methods: methods?,
        caa_domains: caa_domains?,
        retry_after: retry_after?,
    })
    .filter(|tenant| !tenant.client_spki_pins.is_empty() || !tenant.subject_names.is_empty())
}

/// `tenants[i].name`: required, 1-[`MAX_TENANT_NAME_CHARS`] of a-z 0-9 _ -.
fn tenant_name(key: &str, text: Option<&str>, p: &mut Problems) -> Option<TenantName> {
    match text {
        None => {
            p.push(
                format!("{key}.name"),
                "required key is missing (expected a name such as \"ca-one\")",
            );
            None
        }
        Some(text) => TenantName::new(text).or_else(|| {
            p.push(
                format!("{key}.name"),
                format!(
                    "{text:?} is not a tenant name (expected 1-{MAX_TENANT_NAME_CHARS} of \
                     a-z 0-9 _ -)"
                ),
            );
            None
        }),
    }
}

fn subject_names(key: &str, names: Vec<String>, p: &mut Problems) -> Option<Vec<String>> {
    let mut valid = true;
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            p.push(
                format!("{key}.subject_names[{i}]"),
                format!(
                    "{name:?} is not a subject common name (expected 1-64 printable characters)"
                ),
            );
            valid = false;
        }
    }
    valid.then_some(names)
}

/// An allow-list whose entries must come from `known`; `None` (omitted) allows all.
fn allowed(
    key: &str,
    values: Option<Vec<String>>,
    known: &[&str],
    expected: &str,
    p: &mut Problems,
) -> Option<Option<Vec<String>>> {
    let Some(values) = values else {
        return Some(None);
    };
    let mut valid = true;
    for (i, value) in values.iter().enumerate() {
        if !known.contains(&value.as_str()) {
            p.push(
                format!("{key}[{i}]"),
                format!("{value:?} is not known (expected {expected})"),
            );
            valid = false;
        }
    }
    valid.then_some(Some(values))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    const BASE: &str = r#"
[perspective]
id = "t-1"
rir = "ARIN"
location = "lab"
[quic]
certificate = "c.pem"
private_key = "k.pem"
client_ca = "ca.pem"
[signing]
key = "s.pem"
"#;

    fn load(tenants: &str) -> Result<Config, ConfigError> {
        Config::from_toml_str(&format!("{BASE}{tenants}"), Path::new("/etc"))
    }

    fn problems(tenants: &str) -> Vec<(String, String)> {
        match load(tenants) {
            Err(ConfigError::Invalid(problems)) => problems
                .into_iter()
                .map(|problem| (problem.key, problem.message))
                .collect(),
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn a_tenant_gets_its_defaults_and_none_means_no_tenants() {
        assert!(load("").unwrap().tenants.is_empty());
        let config = load(
            "[[tenants]]\nname = \"ca-one\"\nsubject_names = [\"primary-1\"]\n\
             requests_per_second = 5\n",
        )
        .unwrap();
        let tenant = &config.tenants[0];
        assert_eq!(tenant.name.as_str(), "ca-one");
        assert_eq!((tenant.requests_per_second, tenant.burst), (5, 5));
        assert_eq!(tenant.max_in_flight_requests, 64);
        assert_eq!(tenant.retry_after, std::time::Duration::from_secs(1));
        assert!(tenant.recognises(&[0; 32], "primary-1"));
        assert!(!tenant.recognises(&[0; 32], "primary-2"));
        assert!(tenant.permits("dcv", "acme-http-01"));
    }

    #[test]
    fn allow_lists_restrict_kinds_and_methods() {
        let config = load(
            "[[tenants]]\nname = \"a\"\nsubject_names = [\"p\"]\nchecks = [\"dcv\"]\n\
             methods = [\"dns-change\"]\n",
        )
        .unwrap();
        let tenant = &config.tenants[0];
        assert!(tenant.permits("dcv", "dns-change"));
        assert!(!tenant.permits("dcv", "acme-http-01"));
        assert!(!tenant.permits("caa", "caa"));
    }

    #[test]
    fn every_bad_value_is_reported_under_its_key_path() {
        let found = problems(
            "[[tenants]]\nname = \"Bad Name\"\nsubject_names = [\"p\"]\nburst = 0\n\
             checks = [\"whois\"]\nmethods = [\"carrier-pigeon\"]\nretry_after = \"1h\"\n\
             [[tenants]]\nname = \"b\"\n\
             [[tenants]]\nname = \"c\"\nsubject_names = [\"p\"]\n",
        );
        let keys: Vec<&str> = found.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "tenants[0].name",
                "tenants[0].burst",
                "tenants[0].checks[0]",
                "tenants[0].methods[0]",
                "tenants[0].retry_after",
                "tenants[1]",
            ],
            "{found:?}"
        );
        // The shared subject name is reported once the tables themselves are valid.
        let shared = problems(
            "[[tenants]]\nname = \"a\"\nsubject_names = [\"p\"]\n\
             [[tenants]]\nname = \"a\"\nsubject_names = [\"p\"]\n",
        );
        let keys: Vec<&str> = shared.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(keys, ["tenants[1].name", "tenants[1].subject_names"]);
    }

    #[test]
    fn the_commented_example_in_the_deployed_config_parses() {
        let example = include_str!("../../../deploy/mpic-node.example.toml");
        let block = example
            .split("# --- tenants example ---\n")
            .nth(1)
            .and_then(|rest| rest.split("# --- end of tenants example ---").next())
            .unwrap();
        let uncommented: String = block
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = load(&uncommented).unwrap();
        let tenant = &config.tenants[0];
        assert_eq!(tenant.name.as_str(), "ca-one");
        assert_eq!((tenant.requests_per_second, tenant.burst), (200, 400));
        assert_eq!(tenant.caa_domains, ["ca-one.example"]);
        assert!(!tenant.permits("dcv", "website-change"));
    }
}
