//! The node(s) under load: one started in-process (its runtime threads named `node-*`, so its
//! CPU can be read apart from the harness's), the real binary (`--node-bin`), or running remote
//! nodes; and how to read their CPU time and resident memory. The one launcher of the real
//! binary ([`NodeProcess`]: credentials, config from [`NodeConfig`], spawn, ready line, stop)
//! serves the loopback run, the peer comparison and the soak alike.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::credentials::dev::{self, DevPaths};
use mpic_node::http::fetch::FetchOptions;
use mpic_protocol::client::{ClientOptions, NodeEndpoint};
use mpic_protocol::{PerspectiveId, Rir, VerifyingKey};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

/// How the local node is configured for a run.
#[derive(Debug, Clone)]
pub(crate) struct LocalNode {
    /// The fixture DNS server the node forwards to.
    pub(crate) dns: SocketAddr,
    /// The port the node dials for http-01 (the fixture's).
    pub(crate) http_port: u16,
    /// `http.reuse_connections`.
    pub(crate) reuse_connections: bool,
    /// Worker threads of the in-process node's runtime.
    pub(crate) workers: usize,
    /// Whether the node caches answers (`dns.max_cache_ttl` at its default, else `"0s"`).
    pub(crate) cache_answers: bool,
    /// The port the node dials for tls-alpn-01 (the fixture's), if any.
    pub(crate) https_port: Option<u16>,
}

/// A node being measured.
pub(crate) struct Subject {
    /// Endpoints the primary talks to.
    pub(crate) endpoints: Vec<NodeEndpoint>,
    /// The primary's TLS material (taken once by the harness).
    pub(crate) client: Option<ClientOptions>,
    /// Where the node's CPU and memory can be read, if local.
    pub(crate) probe: Probe,
    running: Running,
}

enum Running {
    InProcess(CancellationToken, Option<std::thread::JoinHandle<()>>),
    Binary(Box<NodeProcess>),
}

/// Reads a local node's CPU seconds and resident bytes.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    /// Threads of this process whose name starts with `node-`.
    Threads,
    /// Another process.
    Process(u32),
}

impl Probe {
    /// CPU seconds (user + system) so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        match self {
            Probe::Threads => {
                let mut total = 0.0;
                for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
                    let path = entry.path();
                    let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                    if name.starts_with("node-") {
                        total += stat_cpu(&path.join("stat")).unwrap_or(0.0);
                    }
                }
                Some(total)
            }
            Probe::Process(pid) => stat_cpu(Path::new(&format!("/proc/{pid}/stat"))),
        }
    }

    /// Resident set size in bytes (for `Threads`, the whole harness process).
    pub(crate) fn rss_bytes(&self) -> Option<u64> {
        let path = match self {
            Probe::Threads => "/proc/self/status".to_owned(),
            Probe::Process(pid) => format!("/proc/{pid}/status"),
        };
        let status = std::fs::read_to_string(path).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// CPU seconds from a `/proc/.../stat` file (utime + stime, fields 14 and 15).
pub(crate) fn stat_cpu(path: &Path) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

impl LocalNode {
    /// The node config of a loopback or peer run: admission wide open, a DNS client tuned for
    /// load, no audit log.
    pub(crate) fn config(&self) -> NodeConfig {
        NodeConfig {
            location: "loopback",
            dns: self.dns,
            http_port: self.http_port,
            https_port: self.https_port,
            admitted: 100_000,
            max_targets: 1000,
            audit: None,
            dns_keys: format!(
                "{}server_max_in_flight = 10000\nserver_max_rate = 1000000\nquery_timeout = \"5s\"\n",
                if self.cache_answers {
                    ""
                } else {
                    "max_cache_ttl = \"0s\"\n"
                },
            ),
            tables: format!("[http]\nreuse_connections = {}\n", self.reuse_connections),
        }
    }

    /// The fetcher's options as the node's config gives them, for the engine run in-process.
    pub(crate) fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            allow_private: true,
            http_port: Some(self.http_port),
            https_port: self.https_port,
            reuse_connections: self.reuse_connections,
            ..FetchOptions::default()
        }
    }
}

/// The config of a node the bench starts (in-process or the binary): [`NodeConfig::text`]
/// writes what every run shares; each caller (the loopback harness, the peer comparison, the
/// soak) fills in its own values and adds its own keys.
#[derive(Debug, Clone)]
pub(crate) struct NodeConfig {
    /// `perspective.location`.
    pub(crate) location: &'static str,
    /// The DNS server the node forwards to (`dns.upstreams`).
    pub(crate) dns: SocketAddr,
    /// `dangerous.http_port`: the port http-01 dials.
    pub(crate) http_port: u16,
    /// `dangerous.https_port`: the port tls-alpn-01 (and https) dials; `None`: 443.
    pub(crate) https_port: Option<u16>,
    /// `limits.max_in_flight_requests` and `max_in_flight_per_primary`.
    pub(crate) admitted: usize,
    /// `limits.max_targets_per_request`.
    pub(crate) max_targets: usize,
    /// `audit.path`; `None`: `dangerous.disable_audit_log`.
    pub(crate) audit: Option<PathBuf>,
    /// More `[dns]` keys, each line ending in `\n`.
    pub(crate) dns_keys: String,
    /// More tables (`[http]`, ...), whole, each line ending in `\n`.
    pub(crate) tables: String,
}

impl NodeConfig {
    /// The config file's text for a node whose credentials and state are in `dir`.
    pub(crate) fn text(&self, dir: &Path, paths: &DevPaths) -> String {
        let audit = match &self.audit {
            Some(path) => format!("[audit]\npath = \"{}\"\n", path.display()),
            None => String::new(),
        };
        let https_port = match self.https_port {
            Some(port) => format!("https_port = {port}\n"),
            None => String::new(),
        };
        let no_audit = if self.audit.is_none() {
            "disable_audit_log = true\n"
        } else {
            ""
        };
        format!(
            "[perspective]\nid = \"bench-node\"\nrir = \"ARIN\"\nlocation = \"{location}\"\n\
             [quic]\nlisten = [\"127.0.0.1:0\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nclient_ca = \"{}\"\n\
             max_streams_per_connection = 10000\n\
             [signing]\nkey = \"{}\"\n\
             [limits]\nmax_in_flight_requests = {admitted}\nmax_in_flight_per_primary = {admitted}\n\
             max_targets_per_request = {}\nmax_deadline = \"60s\"\n\
             [metrics]\nlisten = \"127.0.0.1:0\"\n[logging]\nlevel = \"warn\"\n\
             {audit}\
             [state]\ndirectory = \"{}\"\n\
             [dns]\nmode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"\n{}\
             {}\
             [dangerous]\nallow_private_targets = true\nhttp_port = {}\n{https_port}{no_audit}",
            paths.node_certificate.display(),
            paths.node_key.display(),
            paths.ca_certificate.display(),
            paths.signing_key.display(),
            self.max_targets,
            dir.display(),
            self.dns,
            self.dns_keys,
            self.tables,
            self.http_port,
            location = self.location,
            admitted = self.admitted,
        )
    }
}

/// A node's and its primary's credentials, made in `<dir>/credentials`.
pub(crate) struct Credentials {
    /// Where the files are.
    pub(crate) paths: DevPaths,
    /// The node's signing key's public half.
    key: VerifyingKey,
}

impl Credentials {
    /// Makes a fresh CA, node certificate, signing key and primary certificate in
    /// `<dir>/credentials`.
    pub(crate) fn make(dir: &Path) -> anyhow::Result<Self> {
        let paths = DevPaths::in_directory(&dir.join("credentials"));
        std::fs::create_dir_all(dir.join("credentials"))?;
        let key = dev::generate(&paths, "bench-primary")?;
        Ok(Self {
            paths,
            key: key.verifying_key().clone(),
        })
    }

    /// The node as the primary sees it, listening on `address`.
    pub(crate) fn endpoint(&self, address: SocketAddr) -> anyhow::Result<NodeEndpoint> {
        Ok(NodeEndpoint {
            perspective_id: PerspectiveId::new("bench-node".to_owned())?,
            rir: Rir::Arin,
            address,
            server_name: "localhost".into(),
            verifying_key: self.key.clone(),
        })
    }

    /// The primary's TLS material.
    pub(crate) fn client(&self) -> anyhow::Result<ClientOptions> {
        client_from_files(
            &self.paths.ca_certificate,
            &self.paths.primary_certificate,
            &self.paths.primary_key,
        )
    }
}

/// How long a started binary may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node is given to drain and exit after SIGTERM when dropped, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The real `mpic-node` binary, started by [`NodeProcess::start`]; if it has not exited, sent
/// SIGTERM when dropped and killed if it is still running [`STOP_GRACE`] later.
pub(crate) struct NodeProcess {
    /// The node as the primary sees it.
    pub(crate) endpoint: NodeEndpoint,
    /// The primary's TLS material (taken once).
    pub(crate) client: Option<ClientOptions>,
    /// The metrics listener.
    pub(crate) metrics: SocketAddr,
    child: Child,
    exited: Option<ExitStatus>,
}

impl NodeProcess {
    /// Makes credentials in `dir`, writes `config` to `dir/node.toml`, starts `bin run` with
    /// its stderr to `stderr` and waits ([`READY_TIMEOUT`] at most) for its ready line.
    pub(crate) fn start(
        bin: &Path,
        dir: &Path,
        config: &NodeConfig,
        stderr: Stdio,
    ) -> anyhow::Result<Self> {
        let credentials = Credentials::make(dir)?;
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config.text(dir, &credentials.paths))?;
        let mut child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let Some(ready) = mpic_tests::node::ready_line(stdout, READY_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{} did not print its ready line", bin.display());
        };
        let (quic, metrics) = mpic_tests::node::parse_ready_line(&ready)?;
        Ok(Self {
            endpoint: credentials.endpoint(quic)?,
            client: Some(credentials.client()?),
            metrics,
            child,
            exited: None,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the node to exit.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// SIGKILL, unless it has exited.
    pub(crate) fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }

    /// SIGTERM, unless it has exited, then waits for it to drain and exit ([`STOP_GRACE`] at
    /// most, then SIGKILL).
    pub(crate) fn stop(&mut self) {
        if self.exited.is_some() {
            return;
        }
        let _ = signal(self.pid(), "TERM");
        let end = std::time::Instant::now() + STOP_GRACE;
        while std::time::Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = Some(status);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `signal` (`HUP`, `TERM`) to process `pid`.
pub(crate) fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed");
    }
    Ok(())
}

impl Subject {
    /// Starts a node in this process (threads `node-*`), with credentials made in `dir`.
    pub(crate) fn in_process(dir: &Path, local: &LocalNode) -> anyhow::Result<Self> {
        let credentials = Credentials::make(dir)?;
        let config = mpic_node::config::Config::from_toml_str(
            &local.config().text(dir, &credentials.paths),
            dir,
        )
        .context("the bench's node config")?;
        let token = CancellationToken::new();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown, workers) = (token.clone(), local.workers.max(1));
        let thread = std::thread::Builder::new()
            .name("node-main".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers)
                    .thread_name("node-worker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("node runtime: {error}")));
                        return;
                    }
                };
                let ready = ready_tx.clone();
                let result = runtime.block_on(mpic_node::daemon::run(config, shutdown, move |l| {
                    let _ = ready.send(Ok((l.quic.first().copied(), l.metrics)));
                }));
                if let Err(error) = result {
                    let _ = ready_tx.send(Err(error));
                }
            })?;
        let (quic, _metrics) = ready_rx
            .recv_timeout(READY_TIMEOUT)
            .context("the in-process node did not start")??;
        let quic = quic.context("the node listens on no QUIC address")?;
        Ok(Self {
            endpoints: vec![credentials.endpoint(quic)?],
            client: Some(credentials.client()?),
            probe: Probe::Threads,
            running: Running::InProcess(token, Some(thread)),
        })
    }

    /// Starts the real binary `bin` with credentials and config made in `dir`.
    pub(crate) fn binary(bin: &Path, dir: &Path, local: &LocalNode) -> anyhow::Result<Self> {
        let mut process = NodeProcess::start(bin, dir, &local.config(), Stdio::inherit())?;
        Ok(Self {
            endpoints: vec![process.endpoint.clone()],
            client: process.client.take(),
            probe: Probe::Process(process.pid()),
            running: Running::Binary(Box::new(process)),
        })
    }
}

impl Drop for Subject {
    fn drop(&mut self) {
        match &mut self.running {
            Running::InProcess(token, thread) => {
                token.cancel();
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
            Running::Binary(process) => process.stop(),
        }
    }
}

/// A node given on the command line: `id=ID,addr=IP:PORT,key=BASE64[,name=SNI][,rir=RIR]`.
pub(crate) fn parse_node(text: &str) -> Result<NodeEndpoint, String> {
    let mut id = None;
    let mut address = None;
    let mut key = None;
    let mut name = "localhost".to_owned();
    let mut rir = Rir::Arin;
    for part in text.split(',') {
        let (field, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected field=value"))?;
        match field {
            "id" => id = Some(PerspectiveId::new(value.to_owned()).map_err(|e| e.to_string())?),
            "addr" => {
                address = Some(
                    value
                        .parse()
                        .map_err(|_| format!("addr {value:?}: expected IP:PORT"))?,
                )
            }
            "key" => key = Some(VerifyingKey::from_base64(value).map_err(|e| e.to_string())?),
            "name" => name = value.to_owned(),
            "rir" => rir = value.parse().map_err(|e| format!("rir {value:?}: {e}"))?,
            other => {
                return Err(format!(
                    "unknown field {other:?} (id, addr, key, name, rir)"
                ));
            }
        }
    }
    Ok(NodeEndpoint {
        perspective_id: id.ok_or("id= is required")?,
        rir,
        address: address.ok_or("addr= is required")?,
        server_name: name,
        verifying_key: key.ok_or("key= is required")?,
    })
}

/// The primary's TLS material from files: the CA the nodes' certificates chain to, and the
/// client certificate and key.
pub(crate) fn client_from_files(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<ClientOptions> {
    let roots = CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading {}", ca.display()))?
        .collect::<Result<_, _>>()?;
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<_, _>>()?;
    let key =
        PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    Ok(ClientOptions::new(roots, Some((chain, key))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loopback run's config is one the node accepts, and dials the given TLS-ALPN port.
    #[test]
    fn loopback_config_is_valid_and_names_the_tls_port() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = Credentials::make(dir.path()).unwrap();
        for (https_port, cache_answers) in [(Some(4443), true), (None, false)] {
            let local = LocalNode {
                dns: "127.0.0.1:5353".parse().unwrap(),
                http_port: 8080,
                reuse_connections: false,
                workers: 1,
                cache_answers,
                https_port,
            };
            let text = local.config().text(dir.path(), &credentials.paths);
            let config = mpic_node::config::Config::from_toml_str(&text, dir.path()).unwrap();
            assert_eq!(config.dangerous.https_port, https_port);
            assert_eq!(config.dangerous.http_port, Some(8080));
            assert!(config.dangerous.disable_audit_log);
            assert!(!config.http.reuse_connections);
            let fetch = local.fetch_options();
            assert_eq!(
                (fetch.http_port, fetch.https_port, fetch.reuse_connections),
                (Some(8080), https_port, false)
            );
        }
    }
}
