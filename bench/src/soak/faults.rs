//! The faults a soak injects, each for a bounded window placed after warm-up, and the phase a
//! request is sent in: `clean`, a fault's name while it is active, or `settling` for a while
//! after one (requests sent then may still meet its effects). SIGHUP is not a fault: it comes
//! every `--hup-seconds` and clean requests must not notice it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mpic_tests::dns_server::Behaviour;
use tokio::time::Instant;

use super::node::SmallTmpfs;
use crate::fixture::Fixture;

/// A fault injected for a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The DNS fixture answers nothing.
    DnsSilent,
    /// The DNS fixture answers SERVFAIL to everything.
    DnsServfail,
    /// The HTTP fixture resets every new connection.
    HttpReset,
    /// 10× the soak rate, sent in clumps of a second's worth.
    Burst,
    /// The audit log's directory is a full 1 MiB tmpfs (root only).
    DiskFull,
}

impl Fault {
    /// The name in reports and on the plot.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::DnsSilent => "dns-silent",
            Fault::DnsServfail => "dns-servfail",
            Fault::HttpReset => "http-reset",
            Fault::Burst => "burst",
            Fault::DiskFull => "disk-full",
        }
    }
}

/// One fault's window, seconds since the soak started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// The fault.
    pub(crate) fault: Fault,
    /// Start.
    pub(crate) from: f64,
    /// End.
    pub(crate) to: f64,
}

/// The windows of a soak of `total` seconds whose first `warmup` seconds are left alone: DNS
/// silent then SERVFAIL back to back, HTTP resets, a 5 s burst and (with `disk`) the full
/// audit disk, spread over the rest; each lasts a twelfth of it (10 to 60 s).
pub(crate) fn schedule(total: f64, warmup: f64, disk: bool) -> Vec<Window> {
    let span = (total - warmup).max(0.0);
    let width = (span / 12.0).clamp(10.0, 60.0);
    let at = |share: f64| warmup + span * share;
    let mut windows = vec![
        Window {
            fault: Fault::DnsSilent,
            from: at(0.1),
            to: at(0.1) + width,
        },
        Window {
            fault: Fault::DnsServfail,
            from: at(0.1) + width,
            to: at(0.1) + 2.0 * width,
        },
        Window {
            fault: Fault::HttpReset,
            from: at(0.4),
            to: at(0.4) + width,
        },
        Window {
            fault: Fault::Burst,
            from: at(0.6),
            to: at(0.6) + 5.0,
        },
    ];
    if disk {
        windows.push(Window {
            fault: Fault::DiskFull,
            from: at(0.75),
            to: at(0.75) + width,
        });
    }
    windows.retain(|w| w.to + SETTLE_SECONDS < total);
    windows
}

/// How long after a fault requests may still meet its effects (a request timeout and a DNS
/// retry).
pub(crate) const SETTLE_SECONDS: f64 = 15.0;

/// How long before a fault a request may have been sent and still meet it (the default
/// request timeout).
pub(crate) const LEAD_SECONDS: f64 = 10.0;

impl Fault {
    /// Seconds after the window in which requests may still fail: a burst must be over at once
    /// (1 s), the others within [`SETTLE_SECONDS`].
    pub(crate) fn settle_seconds(self) -> f64 {
        match self {
            Fault::Burst => 1.0,
            _ => SETTLE_SECONDS,
        }
    }

    /// Seconds before the window in which a request sent may still be running when the fault
    /// starts (the default request timeout); a burst refuses only what arrives during it.
    pub(crate) fn lead_seconds(self) -> f64 {
        match self {
            Fault::Burst => 0.0,
            _ => LEAD_SECONDS,
        }
    }
}

/// The phase of a request sent `at` seconds into the soak: `settling` covers both the lead-in
/// to a fault and its aftermath.
pub(crate) fn phase(windows: &[Window], at: f64) -> &'static str {
    if let Some(window) = windows.iter().find(|w| w.from <= at && at < w.to) {
        return window.fault.name();
    }
    if windows.iter().any(|w| {
        (w.to <= at && at < w.to + w.fault.settle_seconds())
            || (w.from - w.fault.lead_seconds() <= at && at < w.from)
    }) {
        return "settling";
    }
    "clean"
}

/// Applies the schedule: switches fixtures, mounts and unmounts the full tmpfs, sends SIGHUP
/// every `hup` (and around the disk window, so the node reopens its audit log there and back).
/// Returns how many SIGHUPs it sent.
pub(crate) async fn control(
    fixture: Arc<Fixture>,
    windows: Vec<Window>,
    started: Instant,
    total: f64,
    hup: Duration,
    pid: u32,
    audit_dir: PathBuf,
) -> anyhow::Result<u64> {
    let mut events: Vec<(f64, Option<(Fault, bool)>)> = Vec::new();
    for window in &windows {
        events.push((window.from, Some((window.fault, true))));
        events.push((window.to, Some((window.fault, false))));
    }
    let mut t = hup.as_secs_f64().max(1.0);
    while t < total {
        events.push((t, None));
        t += hup.as_secs_f64().max(1.0);
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut hups = 0u64;
    let mut tmpfs = None;
    for (at, event) in events {
        tokio::time::sleep_until(started + Duration::from_secs_f64(at)).await;
        match event {
            None => {
                crate::subject::signal(pid, "HUP")?;
                hups += 1;
            }
            Some((Fault::DnsSilent, on)) => {
                fixture.set_dns_behaviour(on.then_some(Behaviour::Drop))
            }
            Some((Fault::DnsServfail, on)) => {
                fixture.set_dns_behaviour(on.then_some(Behaviour::ServFail))
            }
            Some((Fault::HttpReset, on)) => fixture.set_http_resets(on),
            Some((Fault::Burst, _)) => {}
            Some((Fault::DiskFull, on)) => {
                tmpfs = if on {
                    Some(SmallTmpfs::mount_full(&audit_dir)?)
                } else {
                    None
                };
                crate::subject::signal(pid, "HUP")?;
                hups += 1;
            }
        }
    }
    drop(tmpfs);
    Ok(hups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_minutes_fit_every_fault_after_warmup() {
        let windows = schedule(180.0, 30.0, true);
        let names: Vec<&str> = windows.iter().map(|w| w.fault.name()).collect();
        assert_eq!(
            names,
            [
                "dns-silent",
                "dns-servfail",
                "http-reset",
                "burst",
                "disk-full"
            ]
        );
        assert_eq!((windows[0].from, windows[0].to), (45.0, 57.5));
        assert_eq!((windows[1].from, windows[1].to), (57.5, 70.0));
        assert_eq!((windows[3].from, windows[3].to), (120.0, 125.0));
        assert_eq!(phase(&windows, 10.0), "clean");
        assert_eq!(phase(&windows, 34.9), "clean");
        assert_eq!(phase(&windows, 36.0), "settling");
        assert_eq!(phase(&windows, 119.5), "clean");
        assert_eq!(phase(&windows, 50.0), "dns-silent");
        assert_eq!(phase(&windows, 60.0), "dns-servfail");
        assert_eq!(phase(&windows, 80.0), "settling");
        assert_eq!(phase(&windows, 121.0), "burst");
        assert_eq!(phase(&windows, 125.5), "settling");
        assert_eq!(phase(&windows, 126.5), "clean");
        assert_eq!(phase(&windows, 131.0), "clean");
        assert_eq!(phase(&windows, 141.0), "settling");
        assert_eq!(phase(&windows, 150.0), "disk-full");
    }

    #[test]
    fn no_disk_window_without_disk_and_none_that_cannot_settle() {
        let windows = schedule(180.0, 30.0, false);
        assert!(windows.iter().all(|w| w.fault != Fault::DiskFull));
        assert!(schedule(40.0, 30.0, true).is_empty());
    }
}
