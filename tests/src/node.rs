//! Starting and stopping a real `mpic-node` process, and the dev credentials it uses.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use mpic_protocol::client::{ClientOptions, NodeEndpoint, Primary};
use mpic_protocol::{PerspectiveId, Rir, VerifyingKey};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How long a node may take to print its ready line (a debug build on a busy 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of a binary built into the workspace target directory (`mpic-node`, or
/// `examples/primary`). `make test` builds them before the tests run.
pub fn binary_path(name: &str) -> PathBuf {
    // current_exe = <target>/<profile>/deps/<test>-<hash>
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join(name)
}

/// The first QUIC address and the metrics address from the node's
/// `ready quic=<addr>[,<addr>...] metrics=<addr> ...` line.
pub fn parse_ready_line(ready: &str) -> anyhow::Result<(SocketAddr, SocketAddr)> {
    let field = |name: &str| -> anyhow::Result<SocketAddr> {
        let value = ready
            .split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .with_context(|| format!("ready line has no {name}: {ready}"))?;
        Ok(value.split(',').next().unwrap_or(value).parse()?)
    };
    Ok((field("quic")?, field("metrics")?))
}

/// The node's `ready ...` line from its stdout, read on a thread of its own (which then keeps
/// draining stdout); `None` if none came within `timeout`.
pub fn ready_line(stdout: ChildStdout, timeout: Duration) -> Option<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("ready ") {
                let _ = sender.send(line);
            }
        }
    });
    receiver.recv_timeout(timeout).ok()
}

/// A set of dev credentials made by `mpic-node certs dev`.
#[derive(Debug)]
pub struct DevCredentials {
    /// The directory holding them.
    pub dir: PathBuf,
}

impl DevCredentials {
    /// Generates a fresh set in `dir` with the real binary.
    pub fn generate(dir: &Path) -> anyhow::Result<Self> {
        let output = Command::new(binary_path("mpic-node"))
            .args(["certs", "dev", "--out"])
            .arg(dir)
            .output()
            .context("running mpic-node certs dev (did `make build` run?)")?;
        if !output.status.success() {
            bail!(
                "mpic-node certs dev failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// Issues a second primary certificate (`<name>.pem` / `<name>.key`) from the same dev CA.
    pub fn issue_primary(&self, name: &str) -> anyhow::Result<()> {
        let output = Command::new(binary_path("mpic-node"))
            .args(["certs", "client", "--dir"])
            .arg(&self.dir)
            .args(["--name", name])
            .output()?;
        if !output.status.success() {
            bail!(
                "mpic-node certs client failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// A file in the set (`ca.pem`, `primary.key`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The CA certificate.
    pub fn ca(&self) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        Ok(CertificateDer::pem_file_iter(self.path("ca.pem"))?.collect::<Result<_, _>>()?)
    }

    /// The primary's client identity (or another pair of files in the set).
    pub fn identity(
        &self,
        cert: &str,
        key: &str,
    ) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let chain = CertificateDer::pem_file_iter(self.path(cert))?.collect::<Result<_, _>>()?;
        let key = PrivateKeyDer::from_pem_file(self.path(key))?;
        Ok((chain, key))
    }
}

/// What differs between test nodes.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Perspective id.
    pub id: String,
    /// RIR.
    pub rir: Rir,
    /// Extra TOML appended to tables, as `(table, lines)`.
    pub extra: Vec<(String, String)>,
    /// Extra environment variables of the node process.
    pub env: Vec<(String, String)>,
}

impl NodeOptions {
    /// A node with this id and RIR and default limits.
    pub fn new(id: &str, rir: Rir) -> Self {
        Self {
            id: id.into(),
            rir,
            extra: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of the node process.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Adds `lines` to `[table]`.
    pub fn with(mut self, table: &str, lines: &str) -> Self {
        self.extra.push((table.into(), lines.into()));
        self
    }
}

/// A running `mpic-node run` process; SIGTERM and wait on drop.
#[derive(Debug)]
pub struct NodeProcess {
    child: Option<Child>,
    /// The perspective id.
    pub id: PerspectiveId,
    /// The RIR.
    pub rir: Rir,
    /// QUIC address (port chosen by the OS).
    pub quic: SocketAddr,
    /// Metrics address.
    pub metrics: SocketAddr,
    /// The Open MPIC listener's address, when `[openmpic]` is on.
    pub openmpic: Option<SocketAddr>,
    /// The node's signing key.
    pub verifying_key: VerifyingKey,
    /// The config file used.
    pub config_path: PathBuf,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl NodeProcess {
    /// Writes a config for `options` into `work_dir` (using `credentials` for TLS and a signing
    /// key of its own) and starts the node, waiting for its ready line.
    pub fn start(
        work_dir: &Path,
        credentials: &DevCredentials,
        options: &NodeOptions,
    ) -> anyhow::Result<Self> {
        let dir = work_dir.join(&options.id);
        std::fs::create_dir_all(&dir)?;
        let signing_key = dir.join("signing.key");
        let keygen = Command::new(binary_path("mpic-node"))
            .args(["keygen", "--out"])
            .arg(&signing_key)
            .output()?;
        if !keygen.status.success() {
            bail!("keygen failed: {}", String::from_utf8_lossy(&keygen.stderr));
        }
        let public_key = String::from_utf8_lossy(&keygen.stdout)
            .lines()
            .find_map(|line| {
                line.strip_prefix("public_key = \"")
                    .map(|rest| rest.trim_end_matches('"').to_owned())
            })
            .context("keygen printed no public key")?;
        let mut tables: Vec<(String, String)> = vec![
            (
                "perspective".into(),
                format!(
                    "id = \"{}\"\nrir = \"{}\"\nlocation = \"loopback\"",
                    options.id, options.rir
                ),
            ),
            (
                "quic".into(),
                format!(
                    "listen = [\"127.0.0.1:0\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\nclient_ca = \"{}\"",
                    credentials.path("node.pem").display(),
                    credentials.path("node.key").display(),
                    credentials.path("ca.pem").display()
                ),
            ),
            (
                "signing".into(),
                format!("key = \"{}\"", signing_key.display()),
            ),
            ("limits".into(), String::new()),
            ("metrics".into(), "listen = \"127.0.0.1:0\"".into()),
            ("shutdown".into(), "grace_period = \"5s\"".into()),
            ("logging".into(), "level = \"info\"".into()),
            ("state".into(), format!("directory = \"{}\"", dir.display())),
            ("dangerous".into(), "allow_private_targets = true".into()),
        ];
        // Never resolve off loopback: unless a test configures DNS, forward to a closed
        // loopback port so any lookup fails at once.
        if !options.extra.iter().any(|(table, _)| table == "dns") {
            tables.push((
                "dns".into(),
                "mode = \"forward\"\nupstreams = [\"127.0.0.1:9\"]\nquery_timeout = \"500ms\""
                    .into(),
            ));
        }
        for (table, lines) in &options.extra {
            match tables.iter_mut().find(|(name, _)| name == table) {
                Some((_, body)) => {
                    body.push('\n');
                    body.push_str(lines);
                }
                None => tables.push((table.clone(), lines.clone())),
            }
        }
        let text: String = tables
            .iter()
            .map(|(name, body)| format!("[{name}]\n{body}\n\n"))
            .collect();
        let config_path = dir.join("node.toml");
        std::fs::write(&config_path, text)?;
        Self::spawn(
            &config_path,
            options,
            VerifyingKey::from_base64(&public_key)?,
        )
    }

    fn spawn(
        config_path: &Path,
        options: &NodeOptions,
        verifying_key: VerifyingKey,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(binary_path("mpic-node"))
            .arg("run")
            .arg("--config")
            .arg(config_path)
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting mpic-node")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let stderr = child.stderr.take().context("no stderr")?;
        let captured = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&captured);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(mut text) = sink.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let Some(ready) = ready_line(stdout, READY_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            let log = captured.lock().map(|text| text.clone()).unwrap_or_default();
            bail!("node {} did not become ready; stderr:\n{log}", options.id);
        };
        let (quic, metrics) = parse_ready_line(&ready)?;
        let openmpic = ready
            .split_whitespace()
            .find_map(|part| part.strip_prefix("openmpic="))
            .map(|list| list.split(',').next().unwrap_or(list).parse())
            .transpose()?;
        Ok(Self {
            quic,
            metrics,
            openmpic,
            child: Some(child),
            id: PerspectiveId::new(options.id.clone())?,
            rir: options.rir,
            verifying_key,
            config_path: config_path.to_owned(),
            stderr: captured,
        })
    }

    /// This node as a primary sees it.
    pub fn endpoint(&self) -> NodeEndpoint {
        NodeEndpoint {
            perspective_id: self.id.clone(),
            rir: self.rir,
            address: self.quic,
            server_name: "localhost".into(),
            verifying_key: self.verifying_key.clone(),
        }
    }

    /// What the node has logged so far.
    pub fn log(&self) -> String {
        self.stderr
            .lock()
            .map(|text| text.clone())
            .unwrap_or_default()
    }

    /// Fetches `/metrics` and returns the value of one sample (exact name with labels).
    pub fn metric(&self, sample: &str) -> anyhow::Result<f64> {
        let text = http_get(self.metrics, "/metrics")?;
        text.lines()
            .find_map(|line| {
                line.strip_prefix(sample)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .with_context(|| format!("no sample {sample} in metrics"))?
            .trim()
            .parse()
            .context("metric value")
    }

    /// Polls `/metrics` until `sample` has `value` (events are counted asynchronously, e.g. a
    /// failed handshake after the client already saw it fail); errors after 5 s with the last
    /// value seen.
    pub fn wait_for_metric(&self, sample: &str, value: f64) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..100 {
            last = self.metric(sample).ok();
            if last == Some(value) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("{sample} is {last:?}, expected {value}")
    }

    /// The node's process id (`None` once it was stopped).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The node's resident memory now and at its peak, from `/proc/<pid>/status` (Linux).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let pid = self.pid().context("already stopped")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kib = |field: &str| -> anyhow::Result<u64> {
            let line = status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
            let value = line.trim().trim_end_matches("kB").trim();
            Ok(value.parse::<u64>()? * 1024)
        };
        Ok(Memory {
            rss_bytes: kib("VmRSS:")?,
            peak_bytes: kib("VmHWM:")?,
        })
    }

    /// Sends `signal` (e.g. `HUP`) to the node process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let child = self.child.as_ref().context("already stopped")?;
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -{signal} failed");
        }
        Ok(())
    }

    /// Sends SIGTERM and waits for the exit status on a thread, so async tests can keep talking
    /// to the node while it drains.
    pub fn terminate_async(
        &mut self,
    ) -> std::thread::JoinHandle<anyhow::Result<std::process::ExitStatus>> {
        let mut detached = self.clone_without_child();
        detached.child = self.child.take();
        std::thread::spawn(move || detached.terminate())
    }

    fn clone_without_child(&self) -> Self {
        Self {
            child: None,
            id: self.id.clone(),
            rir: self.rir,
            quic: self.quic,
            metrics: self.metrics,
            openmpic: self.openmpic,
            verifying_key: self.verifying_key.clone(),
            config_path: self.config_path.clone(),
            stderr: std::sync::Arc::clone(&self.stderr),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("already stopped")?;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill failed");
        }
        for _ in 0..200 {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        bail!("node did not exit within 10 s of SIGTERM")
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A process's resident memory (`VmRSS`) and its high-water mark (`VmHWM`), in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_bytes: u64,
    /// The largest resident set size so far.
    pub peak_bytes: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "VmRSS {:.1} MiB, VmHWM {:.1} MiB",
            mib(self.rss_bytes),
            mib(self.peak_bytes)
        )
    }
}

/// A primary for `nodes` using the dev primary certificate.
pub fn primary(credentials: &DevCredentials, nodes: &[&NodeProcess]) -> anyhow::Result<Primary> {
    let options = ClientOptions::new(
        credentials.ca()?,
        Some(credentials.identity("primary.pem", "primary.key")?),
    );
    Ok(Primary::new(
        nodes.iter().map(|node| node.endpoint()).collect(),
        options,
    )?)
}

/// A minimal HTTP/1.0 GET over loopback (for the metrics listener).
pub fn http_get(address: SocketAddr, path: &str) -> anyhow::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default())
}
