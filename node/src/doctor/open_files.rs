//! The open-file limit (`RLIMIT_NOFILE`) against what the admission limits may need. Every
//! admitted request holds sockets for its targets — one UDP socket per DNS query in flight, a
//! TCP connection per web fetch — and under a silent DNS upstream they all stay open until the
//! query timeout: the soak measured about 10 descriptors per request of 5.5 targets on average.
//! So the node may need `max_in_flight_requests × max_targets_per_request ×`
//! [`DESCRIPTORS_PER_TARGET`] plus [`BASE_DESCRIPTORS`]. At start the daemon raises its soft
//! limit to the hard one ([`raise_soft_to_hard`]) and warns below the need; `doctor` reports it.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::LimitsConfig;

/// Descriptors one target may hold at once (the soak's 10 per 5.5-target request, rounded up).
pub const DESCRIPTORS_PER_TARGET: u64 = 2;

/// Descriptors the node holds whatever its load: listeners, the audit and log files, the
/// metrics listener, the runtime's own (epoll, eventfd), with room to spare.
pub const BASE_DESCRIPTORS: u64 = 64;

/// A limit as the kernel reports it; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit: what the process may open now.
    pub soft: Option<u64>,
    /// The hard limit: how far the process may raise its soft limit.
    pub hard: Option<u64>,
}

impl NofileLimit {
    /// This process's limit now.
    pub fn current() -> Self {
        let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
        Self {
            soft: current,
            hard: maximum,
        }
    }
}

/// Why the soft limit could not be raised.
#[derive(Debug, thiserror::Error)]
#[error("setrlimit(RLIMIT_NOFILE, {soft:?}) failed: {source}")]
pub struct RaiseError {
    /// The soft limit asked for (`None`: unlimited).
    pub soft: Option<u64>,
    /// The system's answer.
    pub source: std::io::Error,
}

/// Raises this process's soft open-file limit to its hard limit; returns the limit before and
/// after (equal when the soft limit already was the hard one).
pub fn raise_soft_to_hard() -> Result<(NofileLimit, NofileLimit), RaiseError> {
    let before = NofileLimit::current();
    if before.soft == before.hard {
        return Ok((before, before));
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: before.hard,
            maximum: before.hard,
        },
    )
    .map_err(|errno| RaiseError {
        soft: before.hard,
        source: errno.into(),
    })?;
    Ok((before, NofileLimit::current()))
}

/// Descriptors the admission limits may need at once.
pub fn needed(limits: &LimitsConfig) -> u64 {
    let requests = limits.max_in_flight_requests as u64;
    let targets = limits.max_targets_per_request as u64;
    requests
        .saturating_mul(targets)
        .saturating_mul(DESCRIPTORS_PER_TARGET)
        .saturating_add(BASE_DESCRIPTORS)
}

/// How the need was computed, for messages.
pub fn need_detail(limits: &LimitsConfig) -> String {
    format!(
        "{} (= limits.max_in_flight_requests {} × limits.max_targets_per_request {} × {DESCRIPTORS_PER_TARGET} + {BASE_DESCRIPTORS})",
        needed(limits),
        limits.max_in_flight_requests,
        limits.max_targets_per_request
    )
}

/// When `limit` (`None`: unlimited) is below what `limits` may need: the shortfall's message.
pub fn shortfall(limit: Option<u64>, limits: &LimitsConfig) -> Option<String> {
    let limit = limit?;
    (limit < needed(limits)).then(|| {
        format!(
            "open-file limit {limit} is below the descriptors the admission limits may need under a silent DNS upstream, {}: raise LimitNOFILE (ulimit -n) or lower the limits",
            need_detail(limits)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(requests: usize, targets: usize) -> LimitsConfig {
        LimitsConfig {
            max_in_flight_requests: requests,
            max_in_flight_per_primary: requests,
            max_targets_per_request: targets,
            max_request_bytes: 65_536,
            request_read_timeout: std::time::Duration::from_secs(5),
            max_deadline: std::time::Duration::from_secs(30),
        }
    }

    #[test]
    fn need_is_requests_times_targets_times_two_plus_the_base() {
        assert_eq!(needed(&limits(64, 10)), 64 * 10 * 2 + 64);
        assert_eq!(needed(&limits(1024, 100)), 204_864);
        assert_eq!(needed(&limits(usize::MAX, 1000)), u64::MAX);
        assert!(
            need_detail(&limits(64, 10)).starts_with("1344 (= limits.max_in_flight_requests 64")
        );
    }

    #[test]
    fn shortfall_only_below_the_need() {
        let limits = limits(64, 10);
        assert_eq!(shortfall(Some(1344), &limits), None);
        assert_eq!(shortfall(None, &limits), None);
        let message = shortfall(Some(1343), &limits).unwrap();
        assert!(message.contains(", 1344 (= "), "{message}");
        assert!(
            message.starts_with("open-file limit 1343 is below the descriptors"),
            "{message}"
        );
    }

    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let (before, after) = raise_soft_to_hard().unwrap();
        assert_eq!(after.soft, before.hard);
        assert_eq!(after.hard, before.hard);
        assert_eq!(NofileLimit::current(), after);
    }
}
