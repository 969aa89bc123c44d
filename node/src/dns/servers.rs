//! What the node knows about each server it asks, by address (Unbound's infrastructure cache):
//! a query budget (a cap on queries in flight and a token-bucket rate, so a node validating
//! thousands of names a second never floods a provider's servers), a smoothed RTT (RFC 6298
//! §2, as Unbound keeps it) to ask the fastest of a zone's servers first with some exploration,
//! and backoff: a server that times out or answers REFUSED/SERVFAIL is asked last for an
//! exponentially growing, capped time; a lame one is remembered for a while. The table is a
//! bounded LRU, so a hostile zone naming a million server addresses cannot grow it.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use rand::seq::SliceRandom as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{DnsClient, transport, wire};

/// Default cap on queries in flight to one server address: far above what one busy zone
/// needs from a node (answers come in milliseconds), far below the concurrent-session caps
/// DNS providers enforce per source.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 100;
/// Default rate per server address, queries per second: the order of the per-source limits
/// large DNS hosts publish (and of Unbound's `ratelimit` default), so the node is never the
/// source a provider has to rate-limit.
pub const DEFAULT_MAX_RATE: u32 = 1_000;
/// Default number of server addresses remembered (Unbound's `infra-cache-numhosts`).
pub const DEFAULT_MAX_SERVERS: usize = 10_000;

/// The token bucket holds a tenth of a second of the rate: short bursts pass at once, and no
/// one-second window ever sees more than 1.1 × the rate.
const BURST_FRACTION: u32 = 10;
/// The RTT assumed for a server never asked (Unbound's `UNKNOWN_SERVER_NICENESS`, 376 ms):
/// slower than a nearby server, so one measured fast is preferred, fast enough to be tried.
const UNKNOWN_RTT: Duration = Duration::from_millis(376);
/// Servers whose RTTs are within this of the fastest are chosen among at random, spreading the
/// load over a zone's servers (Unbound's 400 ms band).
const RTT_BAND: Duration = Duration::from_millis(400);
/// Largest RTT kept (Unbound's `RTT_MAX_TIMEOUT`, 120 s).
const MAX_RTT: Duration = Duration::from_secs(120);
/// One lookup in this many asks a random other (not backed-off) server first: exploration,
/// so a server that became fast again is noticed.
const EXPLORE_ONE_IN: u32 = 20;
/// First backoff after a failure; each further failure in a row doubles it.
const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Longest backoff: a server is asked again (first, if it is the only one) within this.
const BACKOFF_CAP: Duration = Duration::from_secs(60);
/// How long a lame server is remembered (Unbound's `infra-lame-ttl`, 900 s).
const LAME_TTL: Duration = Duration::from_secs(900);
/// What is known of a server is forgotten after this long unused (Unbound's
/// `infra-host-ttl`, 900 s): a server backed off long ago starts afresh.
const HOST_TTL: Duration = Duration::from_secs(900);

/// The per-server budget and table size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Queries in flight to one address at most.
    pub max_in_flight: usize,
    /// Queries per second to one address at most.
    pub max_rate: u32,
    /// Server addresses remembered at most.
    pub max_servers: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            max_rate: DEFAULT_MAX_RATE,
            max_servers: DEFAULT_MAX_SERVERS,
        }
    }
}

/// Which part of a server's budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetLimit {
    /// The cap on queries in flight.
    InFlight,
    /// The rate.
    Rate,
}

impl BudgetLimit {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetLimit::InFlight => "in_flight",
            BudgetLimit::Rate => "rate",
        }
    }
}

impl fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BudgetLimit::InFlight => "in-flight cap",
            BudgetLimit::Rate => "query rate",
        })
    }
}

/// How one query to a server went, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A usable response after this long.
    Answered(Duration),
    /// No answer in time, or the socket failed.
    Timeout,
    /// REFUSED.
    Refused,
    /// SERVFAIL.
    ServFail,
    /// Not authoritative and no referral.
    Lame,
}

impl Outcome {
    /// The `reason` label of a backoff.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered(_) => "answered",
            Outcome::Timeout => "timeout",
            Outcome::Refused => "refused",
            Outcome::ServFail => "servfail",
            Outcome::Lame => "lame",
        }
    }
}

/// What is known about one server (pure: every method takes `now`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Smoothed RTT (RFC 6298 SRTT); `None` before the first answer.
    pub srtt: Option<Duration>,
    /// RTT variation (RFC 6298 RTTVAR).
    pub rttvar: Duration,
    /// Failures in a row.
    pub failures: u32,
    /// Asked last until then.
    pub backoff_until: Option<Instant>,
    /// Answered lame; asked last until then.
    pub lame_until: Option<Instant>,
    /// GCRA theoretical arrival time: when the bucket is full again.
    next_slot: Instant,
    /// Last time the server was asked about or heard from.
    pub last_used: Instant,
    /// Queries sent to it (admitted by its budget) since it was first remembered.
    pub queries: u64,
    /// The last failure, while it is failing (`None` after an answer).
    pub last_failure: Option<Outcome>,
    /// A probe of it (after a timeout backoff ended) is out until then: other lookups skip it.
    probe_until: Option<Instant>,
}

impl Health {
    fn new(now: Instant) -> Self {
        Self {
            srtt: None,
            rttvar: Duration::ZERO,
            failures: 0,
            backoff_until: None,
            lame_until: None,
            next_slot: now,
            last_used: now,
            queries: 0,
            last_failure: None,
            probe_until: None,
        }
    }

    /// The RTT used to rank the server.
    pub fn rtt(&self) -> Duration {
        self.srtt.unwrap_or(UNKNOWN_RTT)
    }

    /// Whether the server is asked last at `now`.
    pub fn backed_off(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|until| now < until)
            || self.lame_until.is_some_and(|until| now < until)
    }

    /// Records an outcome at `now` (RFC 6298 §2.2-2.3 for an answer, doubling for a timeout).
    pub fn record(&mut self, outcome: Outcome, now: Instant) {
        self.last_used = now;
        self.probe_until = None;
        match outcome {
            Outcome::Answered(rtt) => {
                match self.srtt {
                    None => {
                        self.srtt = Some(rtt);
                        self.rttvar = rtt / 2;
                    }
                    Some(srtt) => {
                        let delta = srtt.abs_diff(rtt);
                        self.rttvar = self.rttvar * 3 / 4 + delta / 4;
                        self.srtt = Some(srtt * 7 / 8 + rtt / 8);
                    }
                }
                self.failures = 0;
                self.backoff_until = None;
                self.last_failure = None;
            }
            Outcome::Lame => self.lame_until = Some(now + LAME_TTL),
            Outcome::Timeout | Outcome::Refused | Outcome::ServFail => {
                if outcome == Outcome::Timeout {
                    self.srtt = Some((self.rtt() * 2).min(MAX_RTT));
                }
                self.failures = self.failures.saturating_add(1);
                self.backoff_until = Some(now + backoff(self.failures));
                self.last_failure = Some(outcome);
            }
        }
    }

    /// Whether a lookup starting at `now` asks this server (Unbound's fast failure): a server
    /// backed off after a timeout is skipped until its backoff ends; then one lookup probes it
    /// (the probe is held for `probe_hold`, the query timeout, so others keep skipping it) and
    /// the outcome clears or renews the backoff. A server backed off for REFUSED or SERVFAIL
    /// is still asked (last): it answers at once, so asking costs no waiting.
    pub fn gate(&mut self, now: Instant, probe_hold: Duration) -> Gate {
        if self.failures == 0 || self.last_failure != Some(Outcome::Timeout) {
            return Gate::Ask;
        }
        let held = [self.backoff_until, self.probe_until]
            .into_iter()
            .flatten()
            .filter(|until| now < *until)
            .max();
        if let Some(until) = held {
            return Gate::Skip {
                failures: self.failures,
                probe_in: until - now,
            };
        }
        self.probe_until = Some(now + probe_hold);
        Gate::Probe
    }

    /// Reserves the next send slot of a bucket of `rate` per second (GCRA): the time the query
    /// may go, or `None` when that is after `deadline` (then nothing is reserved).
    pub fn reserve(&mut self, rate: u32, now: Instant, deadline: Instant) -> Option<Instant> {
        let rate = rate.max(1);
        let interval = Duration::from_secs(1) / rate;
        let tolerance = interval * (rate / BURST_FRACTION).max(1).saturating_sub(1);
        let arrival = self.next_slot.max(now);
        let send_at = arrival.checked_sub(tolerance).unwrap_or(now).max(now);
        if send_at > deadline {
            return None;
        }
        self.next_slot = arrival + interval;
        self.queries = self.queries.saturating_add(1);
        Some(send_at)
    }
}

/// What a lookup does with one of a zone's servers (see [`Health::gate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Ask it (and retry it within the lookup if it fails).
    Ask,
    /// Ask it once: it is probed after a timeout backoff.
    Probe,
    /// Skip it: it is backed off after timing out, or another lookup's probe is out.
    Skip {
        /// Timeouts in a row.
        failures: u32,
        /// Time until it may be probed.
        probe_in: Duration,
    },
}

/// The backoff after `failures` failures in a row: 1 s, 2 s, 4 s, ... at most a minute.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (BACKOFF_BASE * 2_u32.pow(doublings)).min(BACKOFF_CAP)
}

/// The order to ask servers in: those not backed off first, chosen at random among the ones
/// within 400 ms (`RTT_BAND`) of the fastest (one lookup in 20 starts with a random
/// one), then the slower ones by RTT, then the backed-off ones, soonest back first. Every
/// server stays in the list: backoff reorders, it never removes the only way to an answer.
pub fn rank(
    mut servers: Vec<(SocketAddr, Health)>,
    now: Instant,
    rng: &mut impl rand::Rng,
) -> Vec<SocketAddr> {
    servers.shuffle(rng);
    let (mut usable, mut backed_off): (Vec<_>, Vec<_>) = servers
        .into_iter()
        .partition(|(_, health)| !health.backed_off(now));
    usable.sort_by_key(|(_, health)| health.rtt());
    backed_off.sort_by_key(|(_, health)| {
        health
            .backoff_until
            .into_iter()
            .chain(health.lame_until)
            .max()
    });
    if let Some(fastest) = usable.first().map(|(_, health)| health.rtt()) {
        let in_band = usable
            .iter()
            .take_while(|(_, health)| health.rtt() <= fastest + RTT_BAND)
            .count();
        let pick = if usable.len() > 1 && rng.random_ratio(1, EXPLORE_ONE_IN) {
            rng.random_range(0..usable.len())
        } else {
            rng.random_range(0..in_band.max(1))
        };
        usable.swap(0, pick);
    }
    usable
        .into_iter()
        .chain(backed_off)
        .map(|(server, _)| server)
        .collect()
}

/// One server's state: its in-flight slots and its health.
#[derive(Debug)]
struct ServerState {
    in_flight: Arc<Semaphore>,
    health: Mutex<Health>,
}

impl ServerState {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A query's permission to go to a server; holding it holds one in-flight slot.
#[derive(Debug)]
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    /// Whether the query had to wait for the budget.
    pub queued: bool,
}

/// A server's state, as `mpic-node doctor --dns-servers` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReport {
    /// The address.
    pub server: SocketAddr,
    /// What is known.
    pub health: Health,
    /// Queries in flight now.
    pub in_flight: usize,
}

/// Every server's state, bounded.
#[derive(Debug)]
pub struct Servers {
    limits: ServerLimits,
    table: Mutex<HashMap<SocketAddr, Arc<ServerState>>>,
}

impl Servers {
    /// An empty table.
    pub fn new(limits: ServerLimits) -> Self {
        Self {
            limits,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    /// Addresses remembered now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no address is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Arc<ServerState>>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self, server: SocketAddr, now: Instant) -> Arc<ServerState> {
        let mut table = self.lock();
        if let Some(state) = table.get(&server) {
            let state = Arc::clone(state);
            drop(table);
            let mut health = state.health();
            if now.saturating_duration_since(health.last_used) > HOST_TTL {
                *health = Health::new(now);
            }
            health.last_used = now;
            drop(health);
            return state;
        }
        if table.len() >= self.limits.max_servers.max(1) {
            evict(&mut table, self.limits.max_servers.max(1));
        }
        let state = Arc::new(ServerState {
            in_flight: Arc::new(Semaphore::new(self.limits.max_in_flight.max(1))),
            health: Mutex::new(Health::new(now)),
        });
        table.insert(server, Arc::clone(&state));
        state
    }

    /// `servers` in the order to ask them (see [`rank`]).
    pub fn order(&self, servers: &[SocketAddr]) -> Vec<SocketAddr> {
        let now = Instant::now();
        let known: Vec<(SocketAddr, Health)> = {
            let table = self.lock();
            servers
                .iter()
                .map(|server| {
                    let health = table
                        .get(server)
                        .map(|state| state.health().clone())
                        .filter(|health| {
                            now.saturating_duration_since(health.last_used) <= HOST_TTL
                        })
                        .unwrap_or_else(|| Health::new(now));
                    (*server, health)
                })
                .collect()
        };
        rank(known, now, &mut rand::rng())
    }

    /// Each of `servers` (in the order given) with what a lookup starting now does with it
    /// (see [`Health::gate`]); a server not remembered is asked.
    pub fn gate(&self, servers: &[SocketAddr], probe_hold: Duration) -> Vec<(SocketAddr, Gate)> {
        let now = Instant::now();
        let table = self.lock();
        servers
            .iter()
            .map(|server| {
                let gate = table.get(server).map_or(Gate::Ask, |state| {
                    let mut health = state.health();
                    if now.saturating_duration_since(health.last_used) > HOST_TTL {
                        Gate::Ask
                    } else {
                        health.gate(now, probe_hold)
                    }
                });
                (*server, gate)
            })
            .collect()
    }

    /// Waits, up to `deadline`, for a slot in `server`'s in-flight cap and then for its rate;
    /// fails naming the limit that could not be met in time (nothing is sent then).
    pub async fn admit(
        &self,
        server: SocketAddr,
        deadline: Instant,
    ) -> Result<Admission, BudgetLimit> {
        let state = self.state(server, Instant::now());
        let (slot, mut queued) = match Arc::clone(&state.in_flight).try_acquire_owned() {
            Ok(slot) => (slot, false),
            Err(_) => {
                let waiting = Arc::clone(&state.in_flight).acquire_owned();
                match tokio::time::timeout_at(deadline, waiting).await {
                    Ok(Ok(slot)) => (slot, true),
                    // Closed never happens (the semaphore is never closed); either way: no slot.
                    Ok(Err(_)) | Err(_) => return Err(BudgetLimit::InFlight),
                }
            }
        };
        let now = Instant::now();
        let send_at = state
            .health()
            .reserve(self.limits.max_rate, now, deadline)
            .ok_or(BudgetLimit::Rate)?;
        if send_at > now {
            queued = true;
            tokio::time::sleep_until(send_at).await;
        }
        Ok(Admission {
            _slot: slot,
            queued,
        })
    }

    /// Records how a query to `server` went.
    pub fn record(&self, server: SocketAddr, outcome: Outcome) {
        let now = Instant::now();
        self.state(server, now).health().record(outcome, now);
    }

    /// Every remembered server, most recently used first.
    pub fn report(&self) -> Vec<ServerReport> {
        let max_in_flight = self.limits.max_in_flight.max(1);
        let mut report: Vec<ServerReport> = self
            .lock()
            .iter()
            .map(|(server, state)| ServerReport {
                server: *server,
                health: state.health().clone(),
                in_flight: max_in_flight.saturating_sub(state.in_flight.available_permits()),
            })
            .collect();
        report.sort_by_key(|entry| std::cmp::Reverse(entry.health.last_used));
        report
    }
}

/// Makes room in a full table: drops the least recently used tenth of the servers with no
/// query in flight (batching keeps eviction amortised O(log n) per insert).
fn evict(table: &mut HashMap<SocketAddr, Arc<ServerState>>, max: usize) {
    let mut idle: Vec<(Instant, SocketAddr)> = table
        .iter()
        .filter(|(_, state)| Arc::strong_count(state) == 1)
        .map(|(server, state)| (state.health().last_used, *server))
        .collect();
    idle.sort_unstable();
    let excess = table.len().saturating_sub(max) + (max / 10).max(1);
    for (_, server) in idle.into_iter().take(excess) {
        table.remove(&server);
    }
}

impl DnsClient {
    /// Sends one query to `server` within its budget: waits (up to `deadline`) for a slot in
    /// its in-flight cap and its rate, then exchanges under the query timeout, and records how
    /// the server did. `Err` names the budget that could not be met in time (nothing was sent).
    pub(crate) async fn ask(
        &self,
        server: SocketAddr,
        spec: &wire::QuerySpec,
        deadline: Instant,
    ) -> Result<Result<transport::Exchange, transport::TransportError>, BudgetLimit> {
        let metrics = &self.inner.metrics;
        let admission = match self.inner.servers.admit(server, deadline).await {
            Ok(admission) => admission,
            Err(limit) => {
                metrics
                    .rate_limited
                    .with_label_values(&[limit.as_str()])
                    .inc();
                return Err(limit);
            }
        };
        if admission.queued {
            metrics.queued.inc();
        }
        let query_deadline = deadline.min(Instant::now() + self.inner.limits.query_timeout);
        let result = self
            .inner
            .transport
            .exchange(server, spec, query_deadline)
            .await;
        drop(admission);
        let outcome = match &result {
            Ok(exchange) => match exchange.message.metadata.response_code {
                ResponseCode::Refused => Some(Outcome::Refused),
                ResponseCode::ServFail => Some(Outcome::ServFail),
                _ => Some(Outcome::Answered(exchange.elapsed)),
            },
            Err(
                transport::TransportError::Timeout { .. }
                | transport::TransportError::NoValidAnswer { .. }
                | transport::TransportError::Network { .. },
            ) => Some(Outcome::Timeout),
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            self.record(server, outcome);
        }
        Ok(result)
    }

    /// Records how `server` did (a failure backs it off).
    pub(crate) fn record(&self, server: SocketAddr, outcome: Outcome) {
        if !matches!(outcome, Outcome::Answered(_)) {
            self.inner
                .metrics
                .backed_off
                .with_label_values(&[outcome.as_str()])
                .inc();
        }
        self.inner.servers.record(server, outcome);
    }
}

mod live;
#[cfg(test)]
mod tests;

pub use live::{LiveTable, MAX_LIVE_ROWS};
