//! Starting, configuring and stopping the real binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use mpic_protocol::{NodeMessage, ProtocolErrorKind, Rir};
use mpic_tests::{NodeOptions, NodeProcess, binary_path, node::primary};

use crate::support::{Lab, encode, exchange, probe_target, read_all, request};

#[tokio::test]
async fn sigterm_drains_in_flight_requests_refuses_new_ones_and_exits_zero() {
    let lab = Lab::new();
    let options =
        NodeOptions::new("drain", Rir::Arin).with("limits", "request_read_timeout = \"20s\"");
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let primary = primary(&lab.credentials, &[&node]).unwrap();
    let connection = primary.connect(0).await.unwrap();
    let good = encode(&request(vec![probe_target("example.com")]));
    let (head, tail) = good.split_at(good.len() - 3);
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(head).await.unwrap();
    for _ in 0..100 {
        if node.metric("mpic_node_requests_in_flight").unwrap() == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = node.terminate_async();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A new request during the drain is refused with a typed answer ...
    let refused = exchange(&connection, &good, true).await;
    assert!(
        matches!(refused.as_slice(), [NodeMessage::Error(e)] if e.kind == ProtocolErrorKind::ShuttingDown),
        "{refused:?}"
    );
    // ... while the one in flight completes.
    send.write_all(tail).await.unwrap();
    send.finish().unwrap();
    let messages = read_all(&mut recv).await;
    assert!(
        matches!(messages.as_slice(), [NodeMessage::Result(_)]),
        "{messages:?}"
    );
    let status = pid.join().unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{}", node.log());
}

#[test]
fn an_invalid_config_exits_2_and_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[perspective]\nid = \"x\"\nrir = \"MARS\"\nlocation = \"here\"\n[quic]\ncertificate = \"a\"\nprivate_key = \"b\"\nclient_ca = \"c\"\n[signing]\nkey = \"k\"\n",
    )
    .unwrap();
    let output = Command::new(binary_path("mpic-node"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("perspective.rir"), "{stderr}");

    std::fs::write(
        &path,
        "[perspective]\nid = \"x\"\nrir = \"ARIN\"\nlocation = \"here\"\nbogus = 1\n",
    )
    .unwrap();
    let output = Command::new(binary_path("mpic-node"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("perspective.bogus"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = Command::new(binary_path("mpic-node"))
        .arg("run")
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn run_without_a_config_uses_the_embedded_loopback_default() {
    // Uses the fixed default ports (4433/udp, 9464/tcp); no other test does.
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary_path("mpic-node"))
        .arg("run")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = std::thread::spawn(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.starts_with("ready "))
    });
    let ready = line.join().unwrap().unwrap_or_default();
    assert!(
        ready.starts_with("ready quic=127.0.0.1:4433 metrics=127.0.0.1:9464"),
        "{ready}"
    );
    for file in [
        "ca.pem",
        "ca.key",
        "node.pem",
        "node.key",
        "primary.pem",
        "primary.key",
        "signing.key",
    ] {
        assert!(
            dir.path().join("mpic-node-state/dev").join(file).exists(),
            "{file} not generated"
        );
    }
    let health = mpic_tests::node::http_get("127.0.0.1:9464".parse().unwrap(), "/healthz").unwrap();
    assert_eq!(health, "ok\n");
    let info = Command::new(binary_path("mpic-node"))
        .args(["info", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["perspective_id"], "loopback-1");
    assert_eq!(info["rir"], "ARIN");
    assert_eq!(info["quic_listen"][0], "127.0.0.1:4433");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// Receives notifications until one contains `wanted` (or the socket's read timeout).
fn wait_for_notification(socket: &std::os::unix::net::UnixDatagram, wanted: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 512];
    while let Ok(n) = socket.recv(&mut buffer) {
        let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
        let found = message.lines().any(|line| line == wanted);
        seen.push(message);
        if found {
            return seen;
        }
    }
    panic!("no {wanted} notification; saw {seen:?}");
}

#[test]
fn systemd_notify_ready_watchdog_stopping_and_readyz() {
    let lab = Lab::new();
    let path = lab.dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let options = NodeOptions::new("notify-node", Rir::Arin)
        .with_env("NOTIFY_SOCKET", &path.to_string_lossy())
        .with_env("WATCHDOG_USEC", "200000");
    let mut node = NodeProcess::start(lab.dir.path(), &lab.credentials, &options).unwrap();
    let first = wait_for_notification(&socket, "READY=1");
    assert_eq!(first.len(), 1, "READY=1 comes first: {first:?}");
    assert_eq!(
        mpic_tests::node::http_get(node.metrics, "/readyz").unwrap(),
        "ready\n"
    );
    assert_eq!(node.metric("mpic_node_ready").unwrap(), 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for certificate in ["node", "client_ca"] {
        let expiry = node
            .metric(&format!(
                "mpic_node_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}}"
            ))
            .unwrap();
        assert!(expiry > now + 86400.0, "{certificate} expires at {expiry}");
    }
    // WatchdogSec=200ms: a ping at least every 100 ms.
    wait_for_notification(&socket, "WATCHDOG=1");
    let status = node.terminate().unwrap();
    assert!(status.success(), "{status:?}");
    let stopping = wait_for_notification(&socket, "STOPPING=1");
    assert!(
        stopping.iter().any(|m| m.contains("STATUS=draining")),
        "{stopping:?}"
    );
}
