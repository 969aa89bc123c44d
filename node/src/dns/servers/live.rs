//! The running node's server table as the metrics listener serves it at `/dns-servers.json`:
//! the rows `mpic-node doctor --dns-servers` shows (address, smoothed RTT, queries, failures,
//! backoff, lameness, queries in flight), the [`MAX_LIVE_ROWS`] busiest first, with how many
//! were left out. Server addresses never go into metric labels; they are here instead.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::time::Instant;

use super::{ServerReport, Servers};

/// Rows served at most: the busiest servers. The table itself holds up to
/// `dns.server_table_entries` (10,000 by default); a page of a thousand rows stays small
/// (about 200 KB) and holds every server a node talks to often.
pub const MAX_LIVE_ROWS: usize = 1_000;

/// The table served at `/dns-servers.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveTable {
    /// Servers remembered.
    pub total: usize,
    /// Servers left out (the least busy), past [`MAX_LIVE_ROWS`].
    pub truncated: usize,
    /// The busiest servers, most queries first.
    pub servers: Vec<LiveRow>,
}

/// One server's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveRow {
    /// The server's address.
    pub address: SocketAddr,
    /// Smoothed RTT in milliseconds (RFC 6298 SRTT); `null` before its first answer.
    pub srtt_ms: Option<u64>,
    /// RTT variation in milliseconds.
    pub rttvar_ms: u64,
    /// Queries sent to it since it was remembered.
    pub queries: u64,
    /// Failures (timeout, REFUSED, SERVFAIL) in a row.
    pub failures: u32,
    /// Whether it is backed off now (asked last, or probed only).
    pub backed_off: bool,
    /// When its backoff ends, UNIX milliseconds; `null` when not backed off.
    pub backoff_until_unix_ms: Option<u64>,
    /// Whether it is remembered as lame now.
    pub lame: bool,
    /// Queries to it in flight now.
    pub in_flight: usize,
}

impl crate::metrics::ServerTable for Servers {
    fn live_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(&self.live(MAX_LIVE_ROWS))
    }
}

impl Servers {
    /// The table as `/dns-servers.json` serves it: the `max_rows` busiest servers.
    pub fn live(&self, max_rows: usize) -> LiveTable {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut rows: Vec<ServerReport> = self.report();
        rows.sort_by_key(|row| std::cmp::Reverse(row.health.queries));
        let total = rows.len();
        rows.truncate(max_rows);
        LiveTable {
            total,
            truncated: total - rows.len(),
            servers: rows.iter().map(|row| live_row(row, now, wall)).collect(),
        }
    }
}

fn live_row(row: &ServerReport, now: Instant, wall: SystemTime) -> LiveRow {
    let health = &row.health;
    let backoff = health.backoff_until.filter(|until| *until > now);
    LiveRow {
        address: row.server,
        srtt_ms: health.srtt.map(millis),
        rttvar_ms: millis(health.rttvar),
        queries: health.queries,
        failures: health.failures,
        backed_off: backoff.is_some(),
        backoff_until_unix_ms: backoff.map(|until| {
            let at = wall + until.saturating_duration_since(now);
            millis(at.duration_since(UNIX_EPOCH).unwrap_or_default())
        }),
        lame: health.lame_until.is_some_and(|until| until > now),
        in_flight: row.in_flight,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
