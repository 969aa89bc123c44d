//! The node(s) under load: one started in-process (its runtime threads named `node-*`, so its
//! CPU can be read apart from the harness's), the real binary (`--node-bin`), or running remote
//! nodes; and how to read their CPU time and resident memory.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_node::credentials::dev::{self, DevPaths};
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
    Binary(Child),
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

fn config_text(dir: &Path, paths: &DevPaths, local: &LocalNode) -> String {
    format!(
        "[perspective]\nid = \"bench-node\"\nrir = \"ARIN\"\nlocation = \"loopback\"\n\
         [quic]\nlisten = [\"127.0.0.1:0\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nclient_ca = \"{}\"\n\
         max_streams_per_connection = 10000\n\
         [signing]\nkey = \"{}\"\n\
         [limits]\nmax_in_flight_requests = 100000\nmax_in_flight_per_primary = 100000\n\
         max_targets_per_request = 1000\nmax_deadline = \"60s\"\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n[logging]\nlevel = \"warn\"\n\
         [state]\ndirectory = \"{}\"\n\
         [dns]\nmode = \"forward\"\nupstreams = [\"{}\"]\ndnssec = \"off\"\n{}\
         server_max_in_flight = 10000\nserver_max_rate = 1000000\n\
         query_timeout = \"5s\"\n\
         [http]\nreuse_connections = {}\n\
         [dangerous]\nallow_private_targets = true\nhttp_port = {}\ndisable_audit_log = true\n",
        paths.node_certificate.display(),
        paths.node_key.display(),
        paths.ca_certificate.display(),
        paths.signing_key.display(),
        dir.display(),
        local.dns,
        if local.cache_answers {
            ""
        } else {
            "max_cache_ttl = \"0s\"\n"
        },
        local.reuse_connections,
        local.http_port,
    )
}

pub(crate) fn client_options(paths: &DevPaths) -> anyhow::Result<ClientOptions> {
    let roots = CertificateDer::pem_file_iter(&paths.ca_certificate)?.collect::<Result<_, _>>()?;
    let chain =
        CertificateDer::pem_file_iter(&paths.primary_certificate)?.collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&paths.primary_key)?;
    Ok(ClientOptions::new(roots, Some((chain, key))))
}

pub(crate) fn endpoint(address: SocketAddr, key: VerifyingKey) -> anyhow::Result<NodeEndpoint> {
    Ok(NodeEndpoint {
        perspective_id: PerspectiveId::new("bench-node".to_owned())?,
        rir: Rir::Arin,
        address,
        server_name: "localhost".into(),
        verifying_key: key,
    })
}

impl Subject {
    /// Starts a node in this process (threads `node-*`), with credentials made in `dir`.
    pub(crate) fn in_process(dir: &Path, local: &LocalNode) -> anyhow::Result<Self> {
        let paths = DevPaths::in_directory(&dir.join("credentials"));
        std::fs::create_dir_all(dir.join("credentials"))?;
        let key = dev::generate(&paths, "bench-primary")?;
        let config =
            mpic_node::config::Config::from_toml_str(&config_text(dir, &paths, local), dir)
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
            .recv_timeout(Duration::from_secs(60))
            .context("the in-process node did not start")??;
        let quic = quic.context("the node listens on no QUIC address")?;
        Ok(Self {
            endpoints: vec![endpoint(quic, key.verifying_key().clone())?],
            client: Some(client_options(&paths)?),
            probe: Probe::Threads,
            running: Running::InProcess(token, Some(thread)),
        })
    }

    /// Starts the real binary `bin` with credentials and config made in `dir`.
    pub(crate) fn binary(bin: &Path, dir: &Path, local: &LocalNode) -> anyhow::Result<Self> {
        let paths = DevPaths::in_directory(&dir.join("credentials"));
        std::fs::create_dir_all(dir.join("credentials"))?;
        let key = dev::generate(&paths, "bench-primary")?;
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, config_text(dir, &paths, local))?;
        let mut child = Command::new(bin)
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ready ") {
                    let _ = sender.send(line);
                }
            }
        });
        let Ok(ready) = receiver.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            bail!("{} did not print its ready line", bin.display());
        };
        let (quic, _metrics) = mpic_tests::node::parse_ready_line(&ready)?;
        Ok(Self {
            endpoints: vec![endpoint(quic, key.verifying_key().clone())?],
            client: Some(client_options(&paths)?),
            probe: Probe::Process(child.id()),
            running: Running::Binary(child),
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
            Running::Binary(child) => {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let _ = child.wait();
            }
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
    ca: &PathBuf,
    cert: &PathBuf,
    key: &PathBuf,
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
