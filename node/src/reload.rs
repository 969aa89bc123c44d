//! SIGHUP reload: re-reads the config file and applies what can change under a running node —
//! the QUIC certificate, key and client CA (new connections), the primaries' pin list (existing
//! connections of a primary no longer admitted are closed at their next request), the signing
//! key (the retired key stays listed by `mpic-node info` for [`RETIRED_KEY_GRACE`]) and the log
//! level. Everything is built before anything is applied: a config that does not load, or whose
//! certificates or key do not, is rejected whole and the running one keeps serving. Changes to
//! other tables need a restart and are reported as such.
//!
//! A reload talks to the [`NodeState`] only: it builds a whole new state from the running one
//! and swaps it in one step; the daemon then hands the new QUIC server configuration to its
//! endpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{Config, TenantConfig};
use crate::service::tenants::Tenants;
use crate::service::{NodeState, Service};
use crate::signing::ResultSigner;

/// How long a retired signing key stays listed (primaries may still verify results it signed).
pub const RETIRED_KEY_GRACE: Duration = Duration::from_secs(7 * 86_400);
/// File under `state.directory` listing retired signing keys.
pub const RETIRED_KEYS_FILE: &str = "retired-signing-keys.json";

/// Sets the log filter (a `tracing` EnvFilter directive).
pub type LogLevelSetter = Arc<dyn Fn(&str) -> Result<(), LogLevelError> + Send + Sync>;

/// A new `logging.level` could not be applied (the old one stays).
#[derive(Debug, thiserror::Error)]
pub enum LogLevelError {
    /// The directive does not parse.
    #[error("{0}")]
    Directive(#[from] tracing_subscriber::filter::ParseError),
    /// The subscriber refused the new filter.
    #[error("{0}")]
    Reload(#[from] tracing_subscriber::reload::Error),
}

/// Why a reload was rejected (the running config keeps serving).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file does not load or validate.
    #[error("the new config is invalid: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// The new QUIC/TLS material does not load.
    #[error("the new [quic] certificates or key do not load: {0}")]
    Quic(#[from] crate::quic::QuicError),
    /// The new TLS material for the Open MPIC listener does not load.
    #[error("the new [quic] certificates or key do not load: {0}")]
    Tls(#[from] crate::service::tls::TlsConfigError),
    /// The new signing key does not load.
    #[error("the new signing key does not load: {0}")]
    SigningKey(#[from] crate::credentials::CredentialsError),
}

/// A signing key no longer in use, kept listed for the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredKey {
    /// Its key id.
    pub key_id: String,
    /// Its public key, base64.
    pub public_key: String,
    /// When it was retired, UNIX ms.
    pub retired_unix_ms: u64,
    /// Listed until, UNIX ms.
    pub until_unix_ms: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The retired keys still within their grace period, from `state_directory`.
pub fn retired_keys(state_directory: &Path) -> Vec<RetiredKey> {
    let path = state_directory.join(RETIRED_KEYS_FILE);
    let keys: Vec<RetiredKey> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let now = now_ms();
    keys.into_iter()
        .filter(|key| key.until_unix_ms > now)
        .collect()
}

/// The retired keys still listed, as the manifest lists them.
pub fn manifest_retired(state_directory: &Path) -> Vec<crate::manifest::Retired> {
    retired_keys(state_directory)
        .into_iter()
        .map(|key| crate::manifest::Retired {
            key_id: key.key_id,
            public_key: key.public_key,
            retired_unix_ms: key.retired_unix_ms,
            until_unix_ms: key.until_unix_ms,
        })
        .collect()
}

/// Renders the manifest of `config` signed by `key` and hands it to the metrics listener.
pub fn publish_manifest(service: &Service, config: &Config, key: &mpic_protocol::SigningKey) {
    let retired = manifest_retired(&config.state.directory);
    match crate::manifest::render(config, key, &retired, now_ms()) {
        Ok(text) => service.metrics().set_manifest(text),
        Err(error) => tracing::warn!(%error, "the manifest could not be rendered"),
    }
}

fn retire(state_directory: &Path, signer: &ResultSigner) -> std::io::Result<()> {
    let mut keys = retired_keys(state_directory);
    let now = now_ms();
    keys.push(RetiredKey {
        key_id: signer.key().key_id().to_string(),
        public_key: signer.key().verifying_key().to_base64(),
        retired_unix_ms: now,
        until_unix_ms: now + u64::try_from(RETIRED_KEY_GRACE.as_millis()).unwrap_or(u64::MAX),
    });
    std::fs::create_dir_all(state_directory)?;
    let path = state_directory.join(RETIRED_KEYS_FILE);
    let tmp = state_directory.join(format!("{RETIRED_KEYS_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&keys)?)?;
    std::fs::rename(tmp, path)
}

/// Applies reloads to a running node.
pub struct Reloader {
    path: PathBuf,
    service: Arc<Service>,
    log_level: Option<LogLevelSetter>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a reload did to `[[tenants]]`: added, changed and removed names (a removed tenant's
/// connections close at their next request).
fn tenant_changes(running: &[TenantConfig], new: &[TenantConfig]) -> String {
    let names = |tenants: &[TenantConfig]| -> Vec<String> {
        tenants.iter().map(|t| t.name.to_string()).collect()
    };
    let (old_names, new_names) = (names(running), names(new));
    let added: Vec<&str> = new_names
        .iter()
        .filter(|name| !old_names.contains(name))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old_names
        .iter()
        .filter(|name| !new_names.contains(name))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = new
        .iter()
        .filter(|tenant| {
            running
                .iter()
                .any(|old| old.name == tenant.name && old != *tenant)
        })
        .map(|tenant| tenant.name.as_str())
        .collect();
    format!(
        "tenants: {} now (added [{}], changed [{}], removed [{}])",
        new.len(),
        added.join(", "),
        changed.join(", "),
        removed.join(", ")
    )
}

/// The tables a running node cannot change, by name: a change is reported, not applied.
fn restart_only_changes(running: &Config, new: &Config) -> Vec<String> {
    let changed = [
        ("perspective", running.perspective != new.perspective),
        ("quic.listen", running.quic.listen != new.quic.listen),
        ("limits", running.limits != new.limits),
        ("metrics", running.metrics != new.metrics),
        ("dns", running.dns != new.dns),
        ("http", running.http != new.http),
        ("audit", running.audit != new.audit),
        ("dangerous", running.dangerous != new.dangerous),
        ("state", running.state != new.state),
        ("openmpic", running.openmpic != new.openmpic),
        ("caa", running.caa != new.caa),
    ];
    changed
        .into_iter()
        .filter(|(_, changed)| *changed)
        .map(|(table, _)| format!("{table} changed: needs a restart (kept the running value)"))
        .collect()
}

impl Reloader {
    /// A reloader for the node started from `path`, whose running state is in `service`.
    pub fn new(path: PathBuf, service: Arc<Service>, log_level: Option<LogLevelSetter>) -> Self {
        Self {
            path,
            service,
            log_level,
        }
    }

    /// Re-reads the file, builds the new state and swaps it in; returns what changed (and what
    /// needs a restart). On error nothing changed.
    pub fn reload(&self) -> Result<Vec<String>, ReloadError> {
        let new = Config::load(&self.path)?;
        let current = self.service.state();
        // Build everything first, apply after: a failure here changes nothing.
        let quic_server = crate::quic::server_config(&new.quic)?;
        let openmpic_tls = match &current.openmpic_tls {
            Some(_) => Some(crate::openmpic::tls_config(&new.quic)?),
            None => None,
        };
        let key = crate::credentials::load_signing_key(&new.signing.key)?;
        let running = &current.config;
        let mut changes = restart_only_changes(running, &new);
        self.service.metrics().record_certificate_expiry(&new.quic);
        changes.push("quic certificates, key and client CA reloaded (new connections)".into());
        let mut pins = Arc::clone(&current.pins);
        if running.quic.client_spki_pins != new.quic.client_spki_pins {
            pins = Arc::new(new.quic.client_spki_pins.clone());
            changes.push(format!(
                "client_spki_pins: {} pins now",
                new.quic.client_spki_pins.len()
            ));
        }
        let mut tenants = Arc::clone(&current.tenants);
        if running.tenants != new.tenants {
            tenants = Arc::new(Tenants::new(&new.tenants, Some(&current.tenants)));
            changes.push(tenant_changes(&running.tenants, &new.tenants));
        }
        let mut signer = Arc::clone(&current.signer);
        if signer.key().key_id() != key.key_id() {
            signer = Arc::new(ResultSigner::new(key, current.signer.perspective().clone()));
            if let Err(error) = retire(&running.state.directory, &current.signer) {
                tracing::warn!(%error, "the retired key could not be recorded for `info`");
            }
            changes.push(format!(
                "signing key {} retired (listed for {} days), {} in use",
                current.signer.key().key_id(),
                RETIRED_KEY_GRACE.as_secs() / 86_400,
                signer.key().key_id()
            ));
        }
        if running.logging.level != new.logging.level {
            changes.push(self.apply_log_level(&new.logging.level));
        }
        let mut config = Config::clone(running);
        config.quic.certificate = new.quic.certificate;
        config.quic.private_key = new.quic.private_key;
        config.quic.client_ca = new.quic.client_ca;
        config.quic.client_spki_pins = new.quic.client_spki_pins;
        config.tenants = new.tenants;
        config.signing = new.signing;
        config.logging.level = new.logging.level;
        publish_manifest(&self.service, &config, signer.key());
        self.service.swap(NodeState {
            config: Arc::new(config),
            signer,
            pins,
            tenants,
            quic_server,
            openmpic_tls,
            ..NodeState::clone(&current)
        });
        Ok(changes)
    }

    fn apply_log_level(&self, level: &str) -> String {
        match &self.log_level {
            Some(set) => match set(level) {
                Ok(()) => format!("logging.level = {level:?}"),
                Err(error) => format!("logging.level not applied: {error}"),
            },
            None => "logging.level changed: needs a restart".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_only_tables_are_compared_by_value() {
        let running = Config::embedded_default().unwrap();
        assert!(restart_only_changes(&running, &running.clone()).is_empty());
        let mut new = running.clone();
        new.limits.max_in_flight_requests += 1;
        new.dangerous.allow_private_targets = !new.dangerous.allow_private_targets;
        // Reloadable fields are not restart-only changes.
        new.logging.level = "debug".into();
        new.quic.client_spki_pins = vec![[7; 32]];
        assert_eq!(
            restart_only_changes(&running, &new),
            [
                "limits changed: needs a restart (kept the running value)",
                "dangerous changed: needs a restart (kept the running value)",
            ]
        );
    }
}
