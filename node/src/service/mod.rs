//! The transport-neutral core of the node: its state ([`NodeState`], swapped whole by a reload)
//! and the one path every target takes, whatever transport brought it: admit → run → record →
//! sign → audit. `quic`, `openmpic` and the `check` CLI are thin adapters over it.

pub mod admission;
pub mod auth;
pub mod tenants;
pub mod tls;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use mpic_protocol::{Request, ResultPayload, SignedResult, Target};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::audit::{AuditEntry, AuditLog};
use crate::config::{Config, LimitsConfig};
use crate::dispatch::{self, Dispatcher};
use crate::metrics::Metrics;
use crate::signing::{CheckReport, ResultSigner, SignError};

use admission::{Admission, Shed};
use auth::Primary;
use tenants::{Tenant, TenantShed, Tenants};

/// Everything a request needs that a reload may replace. Held in an [`ArcSwap`]: readers take a
/// snapshot (`Arc`) that stays consistent for the whole request; a reload builds a new state and
/// swaps it in one step, so no reader ever sees half of a reload and no lock can be poisoned.
#[derive(Clone)]
pub struct NodeState {
    /// The configuration in force (restart-only tables keep their running values).
    pub config: Arc<Config>,
    /// Signs results as this perspective (replaced when a reload rotates the key).
    pub signer: Arc<ResultSigner>,
    /// SPKI pins (empty: any certificate from the client CA).
    pub pins: Arc<Vec<[u8; 32]>>,
    /// The QUIC listener's server configuration (applied to the endpoints after a swap).
    pub quic_server: quinn::ServerConfig,
    /// The Open MPIC listener's TLS configuration (`None` when `[openmpic]` is off); new
    /// connections use the one in force.
    pub openmpic_tls: Option<Arc<rustls::ServerConfig>>,
    /// Runs checks.
    pub dispatcher: Arc<Dispatcher>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Request limits (restart-only).
    pub limits: LimitsConfig,
    /// The tenants served and their quotas (empty: no tenants).
    pub tenants: Arc<Tenants>,
}

impl std::fmt::Debug for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeState")
            .field("key_id", &self.signer.key().key_id().to_string())
            .field("pins", &self.pins.len())
            .field("tenants", &self.tenants.len())
            .field("openmpic", &self.openmpic_tls.is_some())
            .finish_non_exhaustive()
    }
}

impl NodeState {
    /// Whether `primary` is admitted by the pins in force and, when tenants are configured,
    /// is one tenant's.
    pub fn admits(&self, primary: &Primary) -> bool {
        auth::admitted(&primary.id, &self.pins) && self.tenants.admits(primary)
    }
}

/// A target could not be answered (the node's fault, never the target's: answered as an
/// internal error).
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The request has no target at this index.
    #[error("the request has no target at index {index}")]
    NoTarget {
        /// The index asked for.
        index: usize,
    },
    /// The result could not be signed.
    #[error("the result could not be signed: {0}")]
    Sign(#[from] SignError),
}

/// The node's core, shared by every listener: the swappable state, admission and metrics.
pub struct Service {
    state: ArcSwap<NodeState>,
    admission: Admission,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("state", &self.state.load())
            .finish_non_exhaustive()
    }
}

/// A request admitted under every limit; dropping it releases them and the in-flight gauge.
#[derive(Debug)]
pub struct Admitted {
    _permits: admission::Admitted,
    _in_flight: GaugeGuard,
    _tenant_permit: Option<OwnedSemaphorePermit>,
    tenant: Option<Arc<Tenant>>,
}

impl Admitted {
    /// The tenant the request is served for (`None` when no tenants are configured).
    pub fn tenant(&self) -> Option<&Arc<Tenant>> {
        self.tenant.as_ref()
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A node or primary in-flight limit is full.
    Shed(Shed),
    /// The tenant is over one of its quotas.
    Tenant(TenantShed),
}

/// A target answered: the signed result and the payload it carries.
#[derive(Debug)]
pub struct Answer {
    /// The signed result, as sent.
    pub signed: SignedResult,
    /// Its payload (for the Open MPIC response).
    pub payload: ResultPayload,
    /// The check's report with its typed evidence (the Open MPIC response reads the DNS
    /// details from it rather than from the presentation strings signed).
    pub report: CheckReport,
}

impl Service {
    /// The core over `state`; admission limits come from `state.limits`.
    pub fn new(state: NodeState, metrics: Arc<Metrics>) -> Self {
        let admission = Admission::new(
            state.limits.max_in_flight_requests,
            state.limits.max_in_flight_per_primary,
        );
        Self {
            state: ArcSwap::from_pointee(state),
            admission,
            metrics,
        }
    }

    /// A snapshot of the state in force.
    pub fn state(&self) -> Arc<NodeState> {
        self.state.load_full()
    }

    /// Replaces the state in one step (a reload); requests already running keep their snapshot.
    pub fn swap(&self, state: NodeState) {
        self.state.store(Arc::new(state));
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Admission control (per-primary registration).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Admits one request under `tenant`'s quotas (first, so a flooding tenant takes no node
    /// capacity), then the global and the primary's limit (`limit`, from
    /// [`Admission::connect`]), counting a refusal by the limit hit. Never waits.
    pub fn admit(
        &self,
        limit: &Arc<Semaphore>,
        tenant: Option<&Arc<Tenant>>,
    ) -> Result<Admitted, Refusal> {
        let tenant_permit = match tenant.map(|tenant| tenant.try_admit()).transpose() {
            Ok(permit) => permit,
            Err(shed) => {
                self.metrics.count_shed(crate::metrics::ShedScope::Tenant);
                if let Some(tenant) = tenant {
                    self.metrics
                        .tenants
                        .count_request(tenant.name(), "overloaded");
                }
                return Err(Refusal::Tenant(shed));
            }
        };
        match self.admission.try_admit(limit) {
            Ok(permits) => Ok(Admitted {
                _permits: permits,
                _in_flight: GaugeGuard::new(&self.metrics.requests_in_flight),
                _tenant_permit: tenant_permit,
                tenant: tenant.cloned(),
            }),
            Err(shed) => {
                self.metrics.count_shed(shed.scope());
                if let Some(tenant) = tenant {
                    self.metrics
                        .tenants
                        .count_request(tenant.name(), "overloaded");
                }
                Err(Refusal::Shed(shed))
            }
        }
    }

    /// Answers target `index` of an admitted request: run it under `deadline`, record it, sign
    /// it, audit it. The QUIC adapter calls the two halves ([`Service::run`],
    /// [`Service::sign_and_audit`]) itself so it signs only what it will still send.
    pub async fn answer(
        &self,
        admitted: &Admitted,
        primary: &Primary,
        request: &Request,
        index: usize,
        received_unix_ms: u64,
        deadline: Instant,
    ) -> Result<Answer, AnswerError> {
        let state = self.state();
        let target = request
            .targets
            .get(index)
            .ok_or(AnswerError::NoTarget { index })?;
        let report = self.run(admitted, &state, target, deadline).await;
        Ok(self
            .sign_and_audit(
                &state,
                admitted,
                primary,
                request,
                index,
                received_unix_ms,
                report,
            )
            .await?)
    }

    /// Runs one target of an admitted request and records it (metrics, log line).
    pub async fn run(
        &self,
        admitted: &Admitted,
        state: &NodeState,
        target: &Target,
        deadline: Instant,
    ) -> CheckReport {
        let ran = run(&state.dispatcher, target, deadline).await;
        record(&self.metrics, target, &ran.report, ran.elapsed);
        if let Some(tenant) = admitted.tenant() {
            self.metrics.tenants.count_check(
                tenant.name(),
                dispatch::kind_label(&target.check),
                ran.report.outcome.as_str(),
            );
        }
        ran.report
    }

    /// Signs target `index`'s report (naming the admitted request's tenant, if any), counts it
    /// and writes its audit line. A line that cannot be written is counted
    /// (`audit_write_errors`) and logged, never skipped silently.
    #[allow(
        clippy::too_many_arguments,
        reason = "the one step every adapter calls"
    )]
    pub async fn sign_and_audit(
        &self,
        state: &NodeState,
        admitted: &Admitted,
        primary: &Primary,
        request: &Request,
        index: usize,
        received_unix_ms: u64,
        report: CheckReport,
    ) -> Result<Answer, SignError> {
        let (signed, payload) = state
            .signer
            .sign(
                request,
                index,
                received_unix_ms,
                unix_ms(),
                &report,
                admitted.tenant().map(|tenant| tenant.name().as_str()),
            )
            .inspect_err(|error| tracing::error!(%error, "cannot sign result"))?;
        self.metrics.results_signed.inc();
        let entry = AuditEntry::new(&primary.name, primary.id.spki_sha256(), &payload, &signed);
        if let Err(error) = state.audit.record(&entry).await {
            tracing::error!(%error, request_id = %payload.request_id, "audit line not written");
            self.metrics.audit_write_errors.inc();
        }
        Ok(Answer {
            signed,
            payload,
            report,
        })
    }
}

/// A check that ran: its report and how long it took.
#[derive(Debug)]
pub struct Ran {
    /// What the check found.
    pub report: CheckReport,
    /// Time taken.
    pub elapsed: Duration,
}

/// Runs one target through the dispatcher under `deadline`: the run step every path shares
/// (the daemon's listeners and the `check` CLI).
pub async fn run(dispatcher: &Dispatcher, target: &Target, deadline: Instant) -> Ran {
    let started = std::time::Instant::now();
    let report = dispatcher.run(target, deadline).await;
    Ran {
        report,
        elapsed: started.elapsed(),
    }
}

/// Counts one check (`checks_total`, `check_duration_seconds`) and logs it.
fn record(metrics: &Metrics, target: &Target, report: &CheckReport, elapsed: Duration) {
    let kind = dispatch::kind_label(&target.check);
    let method = dispatch::method_label(&target.check);
    let problem = report.problem.as_ref().map(|p| p.kind);
    metrics.count_check(kind, method, report.outcome, problem, elapsed);
    tracing::info!(
        identifier = %target.identifier,
        kind,
        method,
        outcome = report.outcome.as_str(),
        problem = problem.map_or("none", |kind| kind.as_str()),
        elapsed_ms = elapsed.as_millis() as u64,
        "check"
    );
}

/// Increments a gauge now and decrements it when dropped, so no return path skips the decrement.
#[derive(Debug)]
pub struct GaugeGuard {
    gauge: prometheus::IntGauge,
}

impl GaugeGuard {
    /// Increments `gauge` until the guard is dropped.
    pub fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        Self {
            gauge: gauge.clone(),
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Now in UNIX milliseconds (0 if the clock is before 1970, which the deadline check then refuses).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
