//! The audit log: one JSON line per signed result, with what BR 5.4.1 asks a CA to keep about
//! each corroboration (who asked, which identifier and method, what this perspective saw and
//! decided, when, and under which key it signed). Lines go to stdout (the journal under
//! systemd) or are appended to a file that SIGHUP reopens, so logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine as _;
use mpic_protocol::{ResultPayload, SignedResult};
use serde::Serialize;

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

/// Why the audit log cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file cannot be opened for appending.
    #[error("cannot open the audit log {path} for appending: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One audit line.
#[derive(Debug, Serialize)]
pub struct AuditEntry<'a> {
    /// When the result was signed, RFC 3339 UTC.
    pub time: String,
    /// The primary's request id.
    pub request_id: &'a str,
    /// The request nonce, hex.
    pub nonce: String,
    /// The primary: its client certificate's subject common name.
    pub primary: &'a str,
    /// The primary: SHA-256 of its client certificate's SubjectPublicKeyInfo, base64.
    pub primary_spki_sha256: String,
    /// This perspective's id.
    pub perspective: &'a str,
    /// The identifier checked.
    pub identifier: &'a str,
    /// Position of the target in the request.
    pub target_index: u32,
    /// `caa`, `dcv` or the unknown kind.
    pub kind: &'a str,
    /// The DCV method or CAA (`caa`), as in the metrics.
    pub method: &'a str,
    /// `pass`, `fail`, `unsupported`, ...
    pub outcome: &'a str,
    /// The problem kind, if any.
    pub problem: Option<&'a str>,
    /// The problem detail, if any.
    pub detail: Option<&'a str>,
    /// The weakest DNSSEC status the verdict rests on.
    pub dnssec: Option<mpic_protocol::DnssecStatus>,
    /// What was seen (DNS answers, HTTP hops, TLS handshake).
    pub evidence: &'a mpic_protocol::Evidence,
    /// When the request was received, UNIX ms.
    pub received_unix_ms: u64,
    /// When the check finished, UNIX ms.
    pub completed_unix_ms: u64,
    /// The signing key's id.
    pub key_id: &'a str,
    /// The signature, base64.
    pub signature: String,
}

impl<'a> AuditEntry<'a> {
    /// The entry for one signed result.
    pub fn new(
        primary: &'a str,
        primary_spki_sha256: &[u8; 32],
        payload: &'a ResultPayload,
        signed: &'a SignedResult,
    ) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            request_id: &payload.request_id,
            nonce: hex::encode(&payload.nonce),
            primary,
            primary_spki_sha256: b64.encode(primary_spki_sha256),
            perspective: payload.perspective.id.as_str(),
            identifier: &payload.target.identifier,
            target_index: payload.target_index,
            kind: payload.target.check.kind(),
            method: crate::dispatch::method_label(&payload.target.check),
            outcome: payload.outcome.as_str(),
            problem: payload.problem.as_ref().map(|p| p.kind.as_str()),
            detail: payload.problem.as_ref().map(|p| p.detail.as_str()),
            dnssec: payload.dnssec,
            evidence: &payload.evidence,
            received_unix_ms: payload.received_unix_ms,
            completed_unix_ms: payload.completed_unix_ms,
            key_id: &signed.key_id,
            signature: b64.encode(&signed.signature),
        }
    }
}

/// The open audit log.
#[derive(Debug)]
pub struct AuditLog {
    destination: AuditDestination,
    file: Mutex<Option<File>>,
}

fn open(path: &PathBuf) -> Result<File, AuditError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })
}

impl AuditLog {
    /// Opens the destination (creating the file if needed).
    pub fn open(destination: AuditDestination) -> Result<Self, AuditError> {
        let file = match &destination {
            AuditDestination::File(path) => Some(open(path)?),
            _ => None,
        };
        Ok(Self {
            destination,
            file: Mutex::new(file),
        })
    }

    /// Reopens the file (after logrotate moved it); stdout and off need nothing.
    pub fn reopen(&self) -> Result<(), AuditError> {
        if let AuditDestination::File(path) = &self.destination {
            let file = open(path)?;
            if let Ok(mut slot) = self.file.lock() {
                *slot = Some(file);
            }
        }
        Ok(())
    }

    /// Writes one entry as one line (a single `write` in append mode, so lines never
    /// interleave). Returns false if it could not be written.
    pub fn record(&self, entry: &AuditEntry<'_>) -> bool {
        if self.destination == AuditDestination::Off {
            return true;
        }
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(%error, "audit entry cannot be serialised");
                return false;
            }
        };
        line.push(b'\n');
        let written = match &self.destination {
            AuditDestination::Stdout => std::io::stdout().lock().write_all(&line),
            AuditDestination::File(_) => match self.file.lock() {
                Ok(mut file) => match file.as_mut() {
                    Some(file) => file.write_all(&line),
                    None => Err(std::io::Error::other("audit log not open")),
                },
                Err(_) => Err(std::io::Error::other("audit log lock poisoned")),
            },
            AuditDestination::Off => Ok(()),
        };
        if let Err(error) = written {
            tracing::error!(%error, "audit line could not be written");
            return false;
        }
        true
    }
}
