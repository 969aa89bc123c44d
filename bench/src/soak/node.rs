//! The real `mpic-node` binary under soak: started with an audit log on a path of the soak's
//! choosing and a small admission limit (so a burst sheds), read through `/proc/<pid>` (RSS,
//! open descriptors) and its metrics endpoint, signalled (SIGHUP, SIGTERM) and waited for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_protocol::client::{ClientOptions, NodeEndpoint};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::subject::{self, NodeConfig, NodeProcess};

/// How the soaked node is configured.
#[derive(Debug, Clone)]
pub(crate) struct NodeSetup {
    /// The binary.
    pub(crate) bin: PathBuf,
    /// Credentials, config and state go here.
    pub(crate) dir: PathBuf,
    /// The fixture DNS server.
    pub(crate) dns: SocketAddr,
    /// The fixture HTTP server's port.
    pub(crate) http_port: u16,
    /// The fixture TLS-ALPN server's port (`dangerous.https_port`: tls-alpn-01 dials it).
    pub(crate) https_port: u16,
    /// The audit log file.
    pub(crate) audit: PathBuf,
    /// `limits.max_in_flight_requests` and `max_in_flight_per_primary`.
    pub(crate) admitted: usize,
}

/// A running node; killed when dropped unless it has exited (the soak's end sends SIGTERM itself).
pub(crate) struct SoakNode {
    /// The endpoint the primary talks to.
    pub(crate) endpoint: NodeEndpoint,
    /// The primary's TLS material (taken once).
    pub(crate) client: Option<ClientOptions>,
    /// The metrics listener.
    pub(crate) metrics: SocketAddr,
    /// The process id.
    pub(crate) pid: u32,
    process: NodeProcess,
}

impl NodeSetup {
    /// The soak's node config: a small admission limit, an audit log, the TLS-ALPN fixture.
    fn config(&self) -> NodeConfig {
        NodeConfig {
            location: "loopback soak",
            dns: self.dns,
            http_port: self.http_port,
            https_port: Some(self.https_port),
            admitted: self.admitted,
            max_targets: 100,
            audit: Some(self.audit.clone()),
            dns_keys: String::new(),
            tables: String::new(),
        }
    }
}

impl SoakNode {
    /// Starts the binary (its stderr to `node.log` in the node's directory) and waits (60 s at
    /// most) for its ready line.
    pub(crate) fn start(setup: &NodeSetup) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&setup.dir)?;
        let log = std::fs::File::create(setup.dir.join("node.log"))?;
        let mut process =
            NodeProcess::start(&setup.bin, &setup.dir, &setup.config(), Stdio::from(log))?;
        Ok(Self {
            endpoint: process.endpoint.clone(),
            client: process.client.take(),
            metrics: process.metrics,
            pid: process.pid(),
            process,
        })
    }

    /// Resident set size in bytes.
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        subject::Probe::Process(self.pid).rss_bytes()
    }

    /// Open file descriptors.
    pub(crate) fn open_fds(&self) -> Option<u64> {
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.pid)).ok()?;
        Some(entries.count() as u64)
    }

    /// Sends `signal` (`HUP`, `TERM`) to the node.
    pub(crate) fn signal(&self, signal: &str) -> anyhow::Result<()> {
        subject::signal(self.pid, signal)
    }

    /// Waits up to `timeout` for the node to exit.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait_exit(timeout).await
    }

    /// The metrics page (5 s at most).
    pub(crate) async fn scrape(&self) -> anyhow::Result<String> {
        scrape(self.metrics).await
    }
}

impl Drop for SoakNode {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// `GET /metrics` over plain HTTP/1.0, 5 s at most.
pub(crate) async fn scrape(address: SocketAddr) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut body = Vec::new();
        stream.read_to_end(&mut body).await?;
        anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("metrics did not answer within 5 s")?
}

/// The sum of every sample of metric `name` whose labels contain `filter` (`""` for all).
pub(crate) fn metric_sum(page: &str, name: &str, filter: &str) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let bare = series.split('{').next()?;
            (bare == name && series.contains(filter)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// A 1 MiB tmpfs mounted (by root) over a directory for the audit-disk-full window; unmounted
/// (lazily: the node may still hold a file open on it) when dropped.
pub(crate) struct SmallTmpfs {
    path: PathBuf,
}

impl SmallTmpfs {
    /// Mounts a 1 MiB tmpfs on `path` and fills it, so every further write fails with ENOSPC.
    pub(crate) fn mount_full(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path)?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "mpic-soak"])
            .arg(path)
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("mount -t tmpfs on {} failed (needs root)", path.display());
        }
        let mounted = Self {
            path: path.to_owned(),
        };
        fill(&path.join("filler"))?;
        Ok(mounted)
    }
}

/// Writes `path` until the filesystem is full (1 MiB tmpfs: at most 256 writes of 4 KiB).
fn fill(path: &Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path)?;
    let block = [0u8; 4096];
    for _ in 0..1024 {
        if file.write_all(&block).and_then(|()| file.flush()).is_err() {
            return Ok(());
        }
    }
    bail!("{} did not fill up", path.display())
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sum_adds_matching_series_only() {
        let page = "# HELP x\nmpic_node_config_reloads_total{result=\"applied\"} 3\n\
                    mpic_node_config_reloads_total{result=\"rejected\"} 1\n\
                    mpic_node_config_reloads_total_other 9\nmpic_node_audit_write_errors_total 7\n";
        assert_eq!(metric_sum(page, "mpic_node_config_reloads_total", ""), 4.0);
        assert_eq!(
            metric_sum(page, "mpic_node_config_reloads_total", "\"applied\""),
            3.0
        );
        assert_eq!(
            metric_sum(page, "mpic_node_audit_write_errors_total", ""),
            7.0
        );
        assert_eq!(metric_sum(page, "absent", ""), 0.0);
    }
}
