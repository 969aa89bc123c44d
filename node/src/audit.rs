//! The audit log: one JSON line per signed result, with what BR 5.4.1 asks a CA to keep about
//! each corroboration (who asked, which identifier and method, what this perspective saw and
//! decided, when, and under which key it signed). Lines go to stdout (the journal under
//! systemd) or are appended to a file that SIGHUP reopens, so logrotate can move it away.
//!
//! One writer thread owns the file: signers hand it serialised lines through a bounded queue and
//! wait (asynchronously, never blocking a tokio worker) until their line is written. A full queue
//! makes the signer wait, at most [`AUDIT_WAIT`] for queueing and writing together; a line not
//! confirmed by then is counted as an audit write error (`mpic_node_audit_write_errors_total`)
//! and logged, so a signed result never goes out with its line silently missing. At shutdown
//! [`AuditLog::close`] writes everything queued before the node exits.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use base64::Engine as _;
use mpic_protocol::{ResultPayload, SignedResult};
use serde::Serialize;

pub use crate::config::AuditDestination;

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
    /// The writer thread could not be started.
    #[error("cannot start the audit writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The writer thread has stopped (the node is shutting down).
    #[error("the audit writer has stopped")]
    Stopped,
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
    /// The tenant the result was issued for (absent when no tenants are configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<&'a str>,
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
            tenant: payload.tenant.as_deref(),
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

/// Lines that may wait for the writer: a burst of this many results is absorbed without making
/// a signer wait; beyond it signers wait for room (backpressure on the checks, not memory).
pub const AUDIT_QUEUE: usize = 1024;

/// How long a signer waits for its line to be queued and written before counting it as an
/// audit write error (a stuck disk must not hold every request forever; it must show).
pub const AUDIT_WAIT: Duration = Duration::from_secs(5);

/// A line that did not reach the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditWriteError {
    /// The entry could not be serialised.
    #[error("audit entry cannot be serialised: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The writer did not take and write the line within [`AUDIT_WAIT`].
    #[error("audit line not written within {} ms (queue full or disk stuck)", AUDIT_WAIT.as_millis())]
    TimedOut,
    /// The writer has stopped (the node is shutting down).
    #[error("the audit writer has stopped")]
    Closed,
    /// The write failed (the writer logged the I/O error).
    #[error("the audit line could not be written")]
    Write,
}

/// What the writer thread is asked to do.
enum Command {
    /// Write one line; say whether it was written.
    Line(Vec<u8>, oneshot::Sender<bool>),
    /// Reopen the file; say how it went.
    Reopen(oneshot::Sender<Result<(), AuditError>>),
    /// Write what is queued, then stop.
    Close(oneshot::Sender<()>),
}

/// The audit log: a handle on the writer thread (none when the destination is `Off`).
#[derive(Debug)]
pub struct AuditLog {
    queue: Option<mpsc::Sender<Command>>,
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
    /// Opens the destination (creating the file if needed) and starts its writer thread.
    pub fn open(destination: AuditDestination) -> Result<Self, AuditError> {
        let sink = match destination {
            AuditDestination::Off => return Ok(Self { queue: None }),
            AuditDestination::Stdout => Sink::Stdout,
            AuditDestination::File(path) => Sink::File {
                file: open(&path)?,
                path,
            },
        };
        let (sender, receiver) = mpsc::channel(AUDIT_QUEUE);
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || sink.serve(receiver))
            .map_err(AuditError::Thread)?;
        Ok(Self {
            queue: Some(sender),
        })
    }

    /// Reopens the file (after logrotate moved it); stdout and off need nothing.
    pub async fn reopen(&self) -> Result<(), AuditError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let (reply, done) = oneshot::channel();
        if queue.send(Command::Reopen(reply)).await.is_err() {
            return Err(AuditError::Stopped);
        }
        done.await.unwrap_or(Err(AuditError::Stopped))
    }

    /// Writes one entry as one line and waits until it is written (see the module doc for a
    /// full queue).
    pub async fn record(&self, entry: &AuditEntry<'_>) -> Result<(), AuditWriteError> {
        if self.queue.is_none() {
            return Ok(());
        }
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        self.write_line(line).await
    }

    /// Queues one serialised line (with its newline) and waits until it is written.
    async fn write_line(&self, line: Vec<u8>) -> Result<(), AuditWriteError> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let written = async {
            let (reply, done) = oneshot::channel();
            queue
                .send(Command::Line(line, reply))
                .await
                .map_err(|_| AuditWriteError::Closed)?;
            match done.await {
                Ok(true) => Ok(()),
                Ok(false) => Err(AuditWriteError::Write),
                Err(_) => Err(AuditWriteError::Closed),
            }
        };
        tokio::time::timeout(AUDIT_WAIT, written)
            .await
            .unwrap_or(Err(AuditWriteError::TimedOut))
    }

    /// Writes every line queued so far, then stops the writer (at shutdown, before exit). Lines
    /// recorded afterwards fail as [`AuditWriteError::Closed`].
    pub async fn close(&self) {
        let Some(queue) = &self.queue else { return };
        let (reply, done) = oneshot::channel();
        if queue.send(Command::Close(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// Where the writer thread writes.
enum Sink {
    Stdout,
    File { path: PathBuf, file: File },
}

impl Sink {
    /// The writer thread: one command at a time, in queue order, until closed.
    fn serve(mut self, mut receiver: mpsc::Receiver<Command>) {
        while let Some(command) = receiver.blocking_recv() {
            match command {
                Command::Line(line, reply) => {
                    let _ = reply.send(self.write(&line));
                }
                Command::Reopen(reply) => {
                    let _ = reply.send(self.reopen());
                }
                Command::Close(reply) => {
                    receiver.close();
                    while let Ok(command) = receiver.try_recv() {
                        if let Command::Line(line, written) = command {
                            let _ = written.send(self.write(&line));
                        }
                    }
                    let _ = reply.send(());
                    return;
                }
            }
        }
    }

    /// One line in a single `write` (append mode, so lines never interleave).
    fn write(&mut self, line: &[u8]) -> bool {
        let written = match self {
            Sink::Stdout => std::io::stdout().lock().write_all(line),
            Sink::File { file, .. } => file.write_all(line),
        };
        if let Err(error) = &written {
            tracing::error!(%error, "audit line could not be written");
        }
        written.is_ok()
    }

    fn reopen(&mut self) -> Result<(), AuditError> {
        if let Sink::File { path, file } = self {
            *file = open(path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(path: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn one_writer_writes_every_line_reopens_and_flushes_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log =
            std::sync::Arc::new(AuditLog::open(AuditDestination::File(path.clone())).unwrap());
        let mut writers = tokio::task::JoinSet::new();
        for n in 0..50 {
            let log = std::sync::Arc::clone(&log);
            writers.spawn(async move {
                log.write_line(format!("{{\"n\":{n}}}\n").into_bytes())
                    .await
            });
        }
        while let Some(written) = writers.join_next().await {
            written.unwrap().unwrap();
        }
        // Confirmed lines are on disk already, whole.
        let first = lines(&path);
        assert_eq!(first.len(), 50);
        assert!(
            first
                .iter()
                .all(|line| line.starts_with("{\"n\":") && line.ends_with('}'))
        );

        let rotated = dir.path().join("audit.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen().await.unwrap();
        log.write_line(b"{\"after\":1}\n".to_vec()).await.unwrap();
        assert_eq!(lines(&rotated).len(), 50);
        assert_eq!(lines(&path), ["{\"after\":1}"]);

        log.close().await;
        assert!(matches!(
            log.write_line(b"{}\n".to_vec()).await,
            Err(AuditWriteError::Closed)
        ));
        assert_eq!(lines(&path).len(), 1);
    }

    #[tokio::test]
    async fn off_writes_nothing_and_never_fails() {
        let log = AuditLog::open(AuditDestination::Off).unwrap();
        log.write_line(b"{}\n".to_vec()).await.unwrap();
        log.reopen().await.unwrap();
        log.close().await;
    }
}
