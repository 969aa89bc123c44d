//! The systemd notification protocol (`sd_notify(3)`), for `Type=notify` units: `READY=1` once
//! every listener is bound, `STOPPING=1` when a drain begins, `WATCHDOG=1` at half the
//! `WatchdogSec=` interval while serving. Without `$NOTIFY_SOCKET` (not under systemd) every
//! call does nothing. The protocol is one datagram per message on a Unix socket (a path, or an
//! abstract name written with a leading `@`).

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Where notifications go, read once from the environment.
#[derive(Debug, Default)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`. A malformed value is logged
    /// and ignored: the node serves either way.
    pub fn from_env() -> Self {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let address = if let Some(name) = path.strip_prefix('@') {
                use std::os::linux::net::SocketAddrExt as _;
                std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            } else {
                std::os::unix::net::SocketAddr::from_pathname(&path)
            };
            match (UnixDatagram::unbound(), address) {
                (Ok(socket), Ok(address)) => Some((socket, address)),
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, path, "NOTIFY_SOCKET is unusable; not notifying systemd");
                    None
                }
            }
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|pid| pid.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.trim().parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// Whether a service manager is listening.
    pub fn enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1` (half the manager's interval), if a watchdog is set.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.filter(|_| self.enabled()).map(|w| w / 2)
    }

    /// Sends one notification (`READY=1`, `STOPPING=1`, `STATUS=...`, `WATCHDOG=1`); failures
    /// are logged, never fatal.
    pub fn notify(&self, state: &str) {
        if let Some((socket, address)) = &self.socket
            && let Err(error) = socket.send_to_addr(state.as_bytes(), address)
        {
            tracing::warn!(%error, state, "cannot notify systemd");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_datagrams_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                std::os::unix::net::SocketAddr::from_pathname(&path).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        notifier.notify("READY=1\nSTATUS=serving");
        let mut buffer = [0u8; 64];
        let n = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..n], b"READY=1\nSTATUS=serving");
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn without_a_socket_nothing_happens() {
        let notifier = Notifier::default();
        assert!(!notifier.enabled());
        assert_eq!(notifier.watchdog_interval(), None);
        notifier.notify("READY=1");
    }
}
