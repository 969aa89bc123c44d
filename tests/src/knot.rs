//! A signed DNS hierarchy served by real Knot DNS servers on loopback, with an independent
//! validator beside it: `tests/knot/lab.sh` signs root `.`, TLD `lab.` and the leaves now with
//! ldns-signzone, one `knotd` per address answers on port 53 of `127.53.<block>.1-4`, and
//! `unbound-host` (libunbound, from the same root hints and anchor) says what each name's status
//! is, so a test's expectation is not only ours. `unbound` can also run as the forwarder the
//! node's forward mode asks. Every server is a child process killed on drop.
//!
//! Port 53 because libunbound asks authoritative servers on port 53 only; each lab takes its own
//! block of addresses so labs of parallel tests never collide. Binding port 53 needs root (CI
//! runs as root). A missing tool fails with the Debian package to install, never a skip.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

/// The script that writes and signs the zones and the knotd configs.
const LAB_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/knot/lab.sh");

/// How long the servers get to load their zones (knotd loads them in the background).
const READY_WITHIN: Duration = Duration::from_secs(20);

/// Last address octet of the root server, the TLD server, the leaf server, the lame server,
/// and the forwarder.
const ROOT: u8 = 1;
const TLD: u8 = 2;
const LEAVES: u8 = 3;
const LAME: u8 = 4;
const FORWARDER: u8 = 53;

/// Each tool the lab runs, with the Debian package that ships it.
const TOOLS: [(&str, &str); 6] = [
    ("knotd", "knot"),
    ("ldns-signzone", "ldnsutils"),
    ("ldns-keygen", "ldnsutils"),
    ("unbound-host", "unbound-host"),
    ("unbound", "unbound"),
    ("od", "coreutils"),
];

/// What the independent validator said about one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Independent {
    /// `(secure)`.
    Secure,
    /// `(insecure)`.
    Insecure,
    /// `(BOGUS ...)`.
    Bogus,
}

/// A running lab.
#[derive(Debug)]
pub struct KnotLab {
    dir: tempfile::TempDir,
    block: u8,
    servers: Vec<Child>,
    forwarder: Option<Child>,
}

/// Fails naming the Debian package when a tool is not on PATH (or in /usr/sbin).
pub fn require_tools() -> anyhow::Result<()> {
    for (tool, package) in TOOLS {
        if find_tool(tool).is_none() {
            bail!(
                "`{tool}` not found: install the Debian package `{package}` (apt-get install {package})"
            );
        }
    }
    Ok(())
}

fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

fn tool(name: &str) -> anyhow::Result<PathBuf> {
    find_tool(name).with_context(|| format!("`{name}` not found"))
}

impl KnotLab {
    /// Signs the hierarchy and starts its servers on `127.53.<block>.1-4`, port 53.
    pub fn start(block: u8) -> anyhow::Result<Self> {
        require_tools()?;
        let dir = tempfile::Builder::new().prefix("knot-lab").tempdir()?;
        let prefix = format!("127.53.{block}");
        let output = Command::new("sh")
            .arg(LAB_SCRIPT)
            .arg(dir.path())
            .arg(&prefix)
            .output()
            .context("running tests/knot/lab.sh")?;
        if !output.status.success() {
            bail!(
                "tests/knot/lab.sh failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut lab = Self {
            dir,
            block,
            servers: Vec::new(),
            forwarder: None,
        };
        let knotd = tool("knotd")?;
        for server in [ROOT, TLD, LEAVES, LAME] {
            let config = lab.dir.path().join(format!("k{server}/knot.conf"));
            let log = std::fs::File::create(lab.dir.path().join(format!("k{server}/log")))?;
            let child = Command::new(&knotd)
                .arg("-c")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting knotd")?;
            lab.servers.push(child);
        }
        for (server, zone) in [
            (ROOT, "."),
            (TLD, "lab."),
            (LEAVES, "sec.lab."),
            (LEAVES, "nodenial.lab."),
            (LEAVES, "unsig.optout.lab."),
        ] {
            lab.wait_for_zone(server, zone)?;
        }
        Ok(lab)
    }

    /// The address of server `host` of this lab.
    pub fn address(&self, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, 53, self.block, host)
    }

    /// The root hints file (the lab's root server).
    pub fn root_hints(&self) -> PathBuf {
        self.dir.path().join("root.hints")
    }

    /// The trust anchor: the DS of the lab's root key.
    pub fn anchor(&self) -> PathBuf {
        self.dir.path().join("root.ds")
    }

    /// The lab's directory (zones, keys, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What each server logged, for a failure message.
    pub fn logs(&self) -> String {
        [ROOT, TLD, LEAVES, LAME]
            .iter()
            .map(|n| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("k{n}/log")));
                format!("k{n}: {}", log.unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls `zone`'s SOA at `host` until the server answers it authoritatively.
    fn wait_for_zone(&mut self, host: u8, zone: &str) -> anyhow::Result<()> {
        let server = SocketAddr::from((self.address(host), 53));
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Some(exited) = self.servers.iter_mut().find_map(|c| c.try_wait().ok()?) {
                bail!(
                    "knotd exited ({exited}) before serving {zone} (port 53 needs root or CAP_NET_BIND_SERVICE): {}",
                    self.logs()
                );
            }
            if soa_answered(server, zone).unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{server} did not serve {zone} within {READY_WITHIN:?}: {}",
            self.logs()
        )
    }

    fn unbound_config(&self, listen: Option<Ipv4Addr>) -> anyhow::Result<PathBuf> {
        let dir = self.dir.path().display();
        let (name, interface) = match listen {
            Some(address) => (
                "unbound.conf",
                format!(
                    "    interface: {address}@53\n    access-control: 127.0.0.0/8 allow\n    num-threads: 1\n    logfile: \"{dir}/unbound.log\"\n"
                ),
            ),
            None => ("unbound-host.conf", String::new()),
        };
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "server:\n{interface}    do-ip6: no\n    do-not-query-localhost: no\n    root-hints: \"{dir}/root.hints\"\n    trust-anchor-file: \"{dir}/root.ds\"\n    qname-minimisation: no\n    username: \"\"\n    chroot: \"\"\n    directory: \"{dir}\"\n    pidfile: \"\"\n    use-syslog: no\n    verbosity: 0\nremote-control:\n    control-enable: no\n"
            ),
        )?;
        Ok(path)
    }

    /// Asks `unbound-host` (libunbound: its own iterator and validator from the same root hints
    /// and anchor) for the status of `name`/`record_type`.
    pub fn unbound_host(&self, name: &str, record_type: &str) -> anyhow::Result<Independent> {
        let config = self.unbound_config(None)?;
        let output = Command::new(tool("unbound-host")?)
            .arg("-C")
            .arg(&config)
            .args(["-v", "-t", record_type, name])
            .output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if text.contains("(BOGUS") {
            Ok(Independent::Bogus)
        } else if text.contains("(insecure)") {
            Ok(Independent::Insecure)
        } else if text.contains("(secure)") {
            Ok(Independent::Secure)
        } else {
            bail!(
                "unbound-host {name} {record_type}: no status in {text:?} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        }
    }

    /// Starts an `unbound` recursive resolver on `127.53.<block>.53:53` iterating from the lab's
    /// root (for the node's forward mode) and returns its address.
    pub fn start_forwarder(&mut self) -> anyhow::Result<SocketAddr> {
        let address = self.address(FORWARDER);
        let config = self.unbound_config(Some(address))?;
        let child = Command::new(tool("unbound")?)
            .args(["-d", "-c"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting unbound")?;
        self.forwarder = Some(child);
        let server = SocketAddr::from((address, 53));
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if soa_answered_recursive(server).unwrap_or(false) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("unbound at {server} did not answer within {READY_WITHIN:?}")
    }
}

impl Drop for KnotLab {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().chain(self.forwarder.as_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn exchange(server: SocketAddr, zone: &str, recursive: bool) -> anyhow::Result<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut query = Message::new(0x4242, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = recursive;
    query.add_query(Query::query(Name::from_ascii(zone)?, RecordType::SOA));
    socket.send_to(&query.to_vec()?, server)?;
    let mut buffer = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buffer)?;
    Ok(Message::from_vec(buffer.get(..len).unwrap_or_default())?)
}

fn soa_answered(server: SocketAddr, zone: &str) -> anyhow::Result<bool> {
    let response = exchange(server, zone, false)?;
    Ok(response.metadata.authoritative && !response.answers.is_empty())
}

fn soa_answered_recursive(server: SocketAddr) -> anyhow::Result<bool> {
    let response = exchange(server, "sec.lab.", true)?;
    Ok(!response.answers.is_empty())
}

/// One `knotd` serving one unsigned zone on any loopback address and port (for load tests of
/// the node's transport against a real server; the signed lab above needs port 53).
#[derive(Debug)]
pub struct KnotServer {
    dir: tempfile::TempDir,
    address: SocketAddr,
    child: Child,
}

impl KnotServer {
    /// Writes `zone_text` as zone `origin` and serves it on `address` (UDP and TCP), with
    /// `extra_config` (top-level sections such as `mod-rrl:` and a `template:` naming it as a
    /// `global-module`) added to the configuration. knotd logs at `info` (RRL decisions show).
    pub fn start(
        address: SocketAddr,
        origin: &str,
        zone_text: &str,
        extra_config: &str,
    ) -> anyhow::Result<Self> {
        let knotd = tool("knotd")?;
        let dir = tempfile::Builder::new().prefix("knot-one").tempdir()?;
        let path = dir.path().display().to_string();
        std::fs::write(dir.path().join("zone"), zone_text)?;
        std::fs::write(
            dir.path().join("knot.conf"),
            format!(
                "server:\n    rundir: \"{path}\"\n    listen: {ip}@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
                 database:\n    storage: \"{path}\"\ncontrol:\n    listen: \"{path}/knot.sock\"\n\
                 log:\n  - target: stderr\n    any: info\n{extra_config}\
                 zone:\n  - domain: \"{origin}\"\n    storage: \"{path}\"\n    file: \"zone\"\n    zonefile-sync: -1\n    journal-content: none\n",
                ip = address.ip(),
                port = address.port(),
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("log"))?;
        let child = Command::new(knotd)
            .arg("-c")
            .arg(dir.path().join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting knotd")?;
        let mut server = Self {
            dir,
            address,
            child,
        };
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if let Ok(Some(exited)) = server.child.try_wait() {
                bail!("knotd exited ({exited}): {}", server.log());
            }
            if soa_answered(address, origin).unwrap_or(false) {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "{address} did not serve {origin} within {READY_WITHIN:?}: {}",
            server.log()
        )
    }

    /// Where it listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What knotd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for KnotServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
