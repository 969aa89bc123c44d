//! The real servers of `mpic-bench peer`, on loopback at unprivileged ports: one Knot DNS
//! (`knotd`) serving the bench zone `bench.test.` and its empty parent `test.`, and one nginx
//! answering the http-01 challenge. Each is a child process in its own temporary directory,
//! killed on drop; its CPU time is read from `/proc`.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::subject::stat_cpu;
use crate::workload::{KEY_AUTHORIZATION, ORIGIN, TLD_ZONE, TOKEN};

/// How long a server gets to start and load its zones.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A child server process and its work directory.
struct Server {
    name: &'static str,
    child: Child,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn spawn(
        name: &'static str,
        dir: tempfile::TempDir,
        program: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        let log = dir.path().join("stderr.log");
        let child = Command::new(find_program(program)?)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {program}"))?;
        Ok(Self {
            name,
            child,
            dir,
            log,
        })
    }

    /// Fails with the server's log when it has exited.
    fn still_running(&mut self) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.child.try_wait() {
            bail!(
                "{} exited ({status}): {}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        Ok(())
    }

    fn cpu_seconds(&self) -> Option<f64> {
        stat_cpu(Path::new(&format!("/proc/{}/stat", self.child.id())))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` on PATH or in /usr/sbin (where Debian puts knotd and nginx).
fn find_program(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{program}` not found: run `make tools` (tools/setup)"))
}

/// A port free on 127.0.0.1 for both UDP and TCP (at the time of asking).
fn free_port() -> anyhow::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port")
}

fn work_dir(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a work directory")
}

/// Knot DNS serving `zone` (origin [`ORIGIN`]) and the empty TLD `test.`.
pub(crate) struct Knot {
    server: Server,
    /// Where it answers, UDP and TCP.
    pub(crate) address: SocketAddr,
}

impl Knot {
    /// Writes the zones and config, starts knotd and waits until it answers the zone's SOA.
    pub(crate) fn start(zone: &str) -> anyhow::Result<Self> {
        let dir = work_dir("mpic-bench-knot-")?;
        let root = dir.path().to_owned();
        let port = free_port()?;
        for sub in ["zones", "db", "run"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        std::fs::write(root.join("zones/bench.test.zone"), zone)?;
        std::fs::write(
            root.join("zones/test.zone"),
            format!("$ORIGIN test.\n{TLD_ZONE}"),
        )?;
        let config = root.join("knot.conf");
        std::fs::write(
            &config,
            format!(
                "server:\n    listen: 127.0.0.1@{port}\n    rundir: \"{run}\"\n    tcp-workers: 1\n    background-workers: 1\n\
                 database:\n    storage: \"{db}\"\n\
                 log:\n  - target: stderr\n    any: warning\n\
                 template:\n  - id: default\n    storage: \"{zones}\"\n    file: \"%s.zone\"\n    zonefile-sync: -1\n    journal-content: none\n    semantic-checks: off\n\
                 zone:\n  - domain: \"test.\"\n  - domain: \"{ORIGIN}\"\n",
                run = root.join("run").display(),
                db = root.join("db").display(),
                zones = root.join("zones").display(),
            ),
        )?;
        let config = config.to_string_lossy().into_owned();
        let server = Server::spawn("knotd", dir, "knotd", &["-c", &config])?;
        let mut knot = Self {
            server,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        knot.wait_for_zone()?;
        Ok(knot)
    }

    fn wait_for_zone(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            self.server.still_running()?;
            if soa_answered(self.address, ORIGIN).unwrap_or(false) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "knotd at {} did not serve {ORIGIN} within {READY_WITHIN:?}: {}",
            self.address,
            std::fs::read_to_string(&self.server.log).unwrap_or_default()
        )
    }

    /// knotd's CPU seconds so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.server.cpu_seconds()
    }
}

/// Whether `server` answers `zone`'s SOA authoritatively.
fn soa_answered(server: SocketAddr, zone: &str) -> anyhow::Result<bool> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut query = Message::new(0x4242, MessageType::Query, OpCode::Query);
    query.add_query(Query::query(Name::from_ascii(zone)?, RecordType::SOA));
    socket.send_to(&query.to_vec()?, server)?;
    let mut buffer = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buffer)?;
    let response = Message::from_vec(buffer.get(..len).unwrap_or_default())?;
    Ok(response.metadata.authoritative && !response.answers.is_empty())
}

/// nginx (one process, no master) answering the http-01 challenge of [`TOKEN`].
pub(crate) struct Nginx {
    server: Server,
    /// Its HTTP port on 127.0.0.1.
    pub(crate) port: u16,
}

impl Nginx {
    /// Writes the config, starts nginx and waits until it accepts connections.
    pub(crate) fn start() -> anyhow::Result<Self> {
        let dir = work_dir("mpic-bench-nginx-")?;
        let root = dir.path().to_owned();
        let port = free_port()?;
        let config = root.join("nginx.conf");
        std::fs::write(
            &config,
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {root}/nginx.pid;\n\
                 error_log {root}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
                 http {{\n    access_log off;\n    client_body_temp_path {root};\n    proxy_temp_path {root};\n\
                 fastcgi_temp_path {root};\n    uwsgi_temp_path {root};\n    scgi_temp_path {root};\n\
                 default_type text/plain;\n    keepalive_requests 1000000;\n\
                 server {{\n        listen 127.0.0.1:{port};\n        server_name _;\n\
                 location = /.well-known/acme-challenge/{TOKEN} {{ return 200 \"{KEY_AUTHORIZATION}\"; }}\n\
                 location / {{ return 404; }}\n    }}\n}}\n",
                root = root.display(),
            ),
        )?;
        let prefix = root.to_string_lossy().into_owned();
        let config = config.to_string_lossy().into_owned();
        let server = Server::spawn("nginx", dir, "nginx", &["-p", &prefix, "-c", &config])?;
        let mut nginx = Self { server, port };
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            nginx.server.still_running()?;
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            if TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok() {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "nginx did not listen on 127.0.0.1:{port} within {READY_WITHIN:?}: {}",
            std::fs::read_to_string(nginx.server.dir.path().join("error.log")).unwrap_or_default()
        )
    }

    /// nginx's CPU seconds so far.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        self.server.cpu_seconds()
    }
}
