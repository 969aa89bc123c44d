//! One request on one bidirectional stream: admit, read the frame under a timeout, validate,
//! run every target concurrently and write each signed result as soon as it is ready.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use mpic_protocol::frame::{self, FrameError};
use mpic_protocol::{Check, NodeMessage, ProtocolError, ProtocolErrorKind, Request, RequestError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::dispatch;
use crate::metrics::RequestOutcome;
use crate::service::admission::Shed;
use crate::service::auth::Primary;
use crate::service::tenants::{Tenant, TenantShed};
use crate::service::{Admitted, NodeState, Refusal, Service, unix_ms};
use crate::signing::CheckReport;

/// Cap on one result frame the node writes: evidence is bounded by the checks, this is a
/// backstop so a runaway result becomes an `internal` problem instead of an unbounded write.
const MAX_RESULT_FRAME_BYTES: usize = frame::DEFAULT_MAX_RESULT_BYTES;

/// How long writing one frame to a primary may take before the stream is abandoned (a primary
/// that stops reading must not pin a task forever).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a finished stream waits for the primary to acknowledge the last bytes.
const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn serve_request(
    service: Arc<Service>,
    primary: Primary,
    limit: Arc<Semaphore>,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let received_unix_ms = unix_ms();
    let state = service.state();
    let tenant = state.tenants.identify(&primary).cloned();
    let admitted = match service.admit(&limit, tenant.as_ref()) {
        Ok(admitted) => admitted,
        Err(refusal) => {
            let error = overloaded(&state, tenant.as_deref(), refusal);
            refuse_with(&service, &mut send, error).await;
            let _ = recv.stop(0u32.into());
            return;
        }
    };

    let mut request = match read_request(&state, &mut recv).await {
        Ok(request) => request,
        Err((kind, detail)) => {
            refuse_admitted(&service, &admitted, &mut send, kind, detail).await;
            return;
        }
    };
    let _ = recv.stop(0u32.into());
    if let Err(error) = request.validate(state.limits.max_targets_per_request, received_unix_ms) {
        let kind = match error {
            RequestError::UnsupportedVersion(_) => ProtocolErrorKind::UnsupportedVersion,
            RequestError::TooManyTargets { .. } => ProtocolErrorKind::TooManyTargets,
            RequestError::DeadlinePassed { .. } => ProtocolErrorKind::DeadlinePassed,
            _ => ProtocolErrorKind::BadRequest,
        };
        refuse_admitted(&service, &admitted, &mut send, kind, error.to_string()).await;
        return;
    }
    if let Some(tenant) = admitted.tenant()
        && let Err((kind, detail)) = apply_tenant(tenant, &mut request)
    {
        refuse_admitted(&service, &admitted, &mut send, kind, detail).await;
        return;
    }

    let tenant_name = admitted
        .tenant()
        .map_or("", |tenant| tenant.name().as_str());
    let span = tracing::info_span!("request", request_id = %request.request_id, primary = %primary.id, tenant = tenant_name, targets = request.targets.len());
    // `instrument`, not `span.enter()`: an entered guard held across `.await` corrupts the
    // subscriber's span stack when the task moves threads (tracing-subscriber then panicked
    // and the request was lost; found by the hostile-peers suite).
    let deadline = deadline_instant(&request, received_unix_ms, state.limits.max_deadline);
    let answer = Answering {
        service,
        state,
        primary,
        admitted: Arc::new(admitted),
        request: Arc::new(request),
        received_unix_ms,
        deadline,
    };
    answer.run(&mut send).instrument(span).await;
}

/// One validated, admitted request being answered.
struct Answering {
    service: Arc<Service>,
    state: Arc<NodeState>,
    primary: Primary,
    admitted: Arc<Admitted>,
    request: Arc<Request>,
    received_unix_ms: u64,
    deadline: Instant,
}

impl Answering {
    /// Runs every target concurrently; signs, audits and writes each result as it is ready.
    /// Signing happens here, not in the check tasks, so a result is signed only while the
    /// primary is still there to receive it.
    async fn run(self, send: &mut quinn::SendStream) {
        let mut written = Written::default();
        if self.request.targets.len() == 1 {
            // One target: run it in this task. A task of its own would run nothing beside it,
            // and its spawn, join and wake-up cost CPU on every check. A panic is contained
            // as the task's would be: the target goes unanswered, the request is abandoned.
            let check = self.service.run(
                &self.admitted,
                &self.state,
                &self.request.targets[0],
                self.deadline,
            );
            match AssertUnwindSafe(check).catch_unwind().await {
                Ok(report) => self.deliver(send, 0, report, &mut written).await,
                Err(_) => tracing::error!("check panicked"),
            }
        } else {
            let mut checks = JoinSet::new();
            for index in 0..self.request.targets.len() {
                let (service, state) = (Arc::clone(&self.service), Arc::clone(&self.state));
                let (request, admitted) = (Arc::clone(&self.request), Arc::clone(&self.admitted));
                let deadline = self.deadline;
                checks.spawn(
                    async move {
                        let target = &request.targets[index];
                        (
                            index,
                            service.run(&admitted, &state, target, deadline).await,
                        )
                    }
                    .in_current_span(),
                );
            }
            while let Some(joined) = checks.join_next().await {
                match joined {
                    Ok((index, report)) => self.deliver(send, index, report, &mut written).await,
                    Err(error) => tracing::error!(%error, "check task failed"),
                }
            }
        }
        let outcome = if written.answered == self.request.targets.len() {
            RequestOutcome::Answered
        } else {
            RequestOutcome::Abandoned
        };
        self.service.metrics().count_request(outcome);
        if let Some(tenant) = self.admitted.tenant() {
            self.service
                .metrics()
                .tenants
                .count_request(tenant.name(), outcome.as_str());
        }
        finish(send).await;
        tracing::debug!(answered = written.answered, "request done");
    }

    /// Signs, audits and writes target `index`'s result, unless the stream already broke.
    async fn deliver(
        &self,
        send: &mut quinn::SendStream,
        index: usize,
        report: CheckReport,
        written: &mut Written,
    ) {
        if written.broken {
            return;
        }
        let Ok(answer) = self
            .service
            .sign_and_audit(
                &self.state,
                &self.admitted,
                &self.primary,
                &self.request,
                index,
                self.received_unix_ms,
                report,
            )
            .await
        else {
            return;
        };
        match frame::encode(&NodeMessage::Result(answer.signed), MAX_RESULT_FRAME_BYTES) {
            Ok(bytes) => {
                if write(send, &bytes).await {
                    written.answered += 1;
                } else {
                    // The primary went away; finish the checks (they are bounded by the
                    // deadline) but stop writing.
                    written.broken = true;
                }
            }
            Err(error) => tracing::error!(%error, index, "result frame could not be encoded"),
        }
    }
}

/// What has been written on a request's stream so far.
#[derive(Default)]
struct Written {
    /// Results written.
    answered: usize,
    /// The stream broke (the primary went away): nothing more is written.
    broken: bool,
}

async fn read_request(
    state: &NodeState,
    recv: &mut quinn::RecvStream,
) -> Result<Request, (ProtocolErrorKind, String)> {
    let timeout = state.limits.request_read_timeout;
    let body = match tokio::time::timeout(
        timeout,
        frame::io::read_frame(recv, state.limits.max_request_bytes),
    )
    .await
    {
        Err(_) => {
            return Err((
                ProtocolErrorKind::BadFrame,
                format!("no complete request within {} ms", timeout.as_millis()),
            ));
        }
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => {
            return Err((
                ProtocolErrorKind::BadFrame,
                "stream ended before a request was sent".into(),
            ));
        }
        Ok(Err(error @ FrameError::TooLarge { .. })) => {
            return Err((ProtocolErrorKind::FrameTooLarge, error.to_string()));
        }
        Ok(Err(error)) => return Err((ProtocolErrorKind::BadFrame, error.to_string())),
    };
    frame::decode_body(&body).map_err(|error| {
        (
            ProtocolErrorKind::BadFrame,
            format!("not a version 1 request: {error}"),
        )
    })
}

/// The `overloaded` refusal for `refusal`, with the tenant's retry hint when a tenant is known.
fn overloaded(state: &NodeState, tenant: Option<&Tenant>, refusal: Refusal) -> ProtocolError {
    let detail = match (refusal, tenant) {
        (Refusal::Tenant(TenantShed::Rate), Some(tenant)) => format!(
            "tenant {} is over its rate of {} requests/s; retry later",
            tenant.name(),
            tenant.config.requests_per_second
        ),
        (Refusal::Tenant(_), Some(tenant)) => format!(
            "tenant {} has {} requests in flight, its limit; retry later",
            tenant.name(),
            tenant.config.max_in_flight_requests
        ),
        (Refusal::Shed(Shed::Primary), _) => format!(
            "this primary has {} requests in flight, the node's per-primary limit; retry later",
            state.limits.max_in_flight_per_primary
        ),
        _ => format!(
            "node is at its limit of {} requests in flight; retry later",
            state.limits.max_in_flight_requests
        ),
    };
    ProtocolError {
        kind: ProtocolErrorKind::Overloaded,
        detail,
        retry_after_ms: tenant
            .map(|tenant| u64::try_from(tenant.config.retry_after.as_millis()).unwrap_or(u64::MAX)),
    }
}

/// The tenant's own rules on a valid request: its target cap, its allowed checks and methods,
/// and its default CAA issuer domains for CAA targets that name none.
fn apply_tenant(tenant: &Tenant, request: &mut Request) -> Result<(), (ProtocolErrorKind, String)> {
    if let Some(max) = tenant.config.max_targets_per_request
        && request.targets.len() > max
    {
        return Err((
            ProtocolErrorKind::TooManyTargets,
            format!(
                "{} targets; tenant {} may send at most {max}",
                request.targets.len(),
                tenant.name()
            ),
        ));
    }
    for target in &mut request.targets {
        let (kind, method) = (
            dispatch::kind_label(&target.check),
            dispatch::method_label(&target.check),
        );
        if !tenant.config.permits(kind, method) {
            return Err((
                ProtocolErrorKind::NotPermitted,
                format!("tenant {} may not use {kind} check {method}", tenant.name()),
            ));
        }
        if let Check::Caa(caa) = &mut target.check
            && caa.issuer_domains.is_empty()
        {
            caa.issuer_domains.clone_from(&tenant.config.caa_domains);
        }
    }
    Ok(())
}

/// Refuses an admitted request, counting it for its tenant too.
async fn refuse_admitted(
    service: &Service,
    admitted: &Admitted,
    send: &mut quinn::SendStream,
    kind: ProtocolErrorKind,
    detail: String,
) {
    if let Some(tenant) = admitted.tenant() {
        service
            .metrics()
            .tenants
            .count_request(tenant.name(), RequestOutcome::Refused(kind).as_str());
    }
    refuse(service, send, kind, detail).await;
}

pub(super) async fn refuse(
    service: &Service,
    send: &mut quinn::SendStream,
    kind: ProtocolErrorKind,
    detail: String,
) {
    refuse_with(
        service,
        send,
        ProtocolError {
            kind,
            detail,
            retry_after_ms: None,
        },
    )
    .await;
}

async fn refuse_with(service: &Service, send: &mut quinn::SendStream, error: ProtocolError) {
    let (kind, detail) = (error.kind, &error.detail);
    tracing::info!(%kind, %detail, "request refused");
    service
        .metrics()
        .count_request(RequestOutcome::Refused(kind));
    let message = NodeMessage::Error(error);
    if let Ok(bytes) = frame::encode(&message, MAX_RESULT_FRAME_BYTES) {
        write(send, &bytes).await;
    }
    finish(send).await;
}

/// Ends the stream and waits (bounded) until the primary has every byte, so a drain that closes
/// the endpoint right after the last request cannot discard an answer still in flight.
async fn finish(send: &mut quinn::SendStream) {
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(FINISH_TIMEOUT, send.stopped()).await;
    }
}

async fn write(send: &mut quinn::SendStream, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, send.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Longest time kept back from the primary's deadline for signing and sending the answer: a
/// check that runs out of time still reaches the primary as a signed `timeout` before the
/// primary stops waiting, instead of arriving just after it.
const REPLY_MARGIN: Duration = Duration::from_millis(250);

/// The instant the checks must finish by: the request's deadline, capped to
/// `now + max_deadline`, less a reply margin (a tenth of the time, at most [`REPLY_MARGIN`]).
fn deadline_instant(request: &Request, now_unix_ms: u64, max_deadline: Duration) -> Instant {
    let requested = Duration::from_millis(request.deadline_unix_ms.saturating_sub(now_unix_ms));
    let budget = requested.min(max_deadline);
    Instant::now() + budget.saturating_sub((budget / 10).min(REPLY_MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(deadline_unix_ms: u64) -> Request {
        Request {
            version: mpic_protocol::PROTOCOL_VERSION,
            request_id: "r".into(),
            nonce: vec![0; 16],
            deadline_unix_ms,
            targets: Vec::new(),
        }
    }

    /// How long after `before` the checks' deadline falls, in milliseconds.
    fn budget_ms(requested_ms: u64, max_deadline: Duration) -> u128 {
        let now = 1_000_000;
        let before = Instant::now();
        let deadline = deadline_instant(&request(now + requested_ms), now, max_deadline);
        deadline.saturating_duration_since(before).as_millis()
    }

    #[test]
    fn checks_end_before_the_primary_stops_waiting() {
        let cap = Duration::from_secs(30);
        // (requested ms, expected budget ms): a tenth is kept back, at most 250 ms.
        for (requested, expected) in [(5_000, 4_750), (10_000, 9_750), (1_000, 900), (0, 0)] {
            let budget = budget_ms(requested, cap);
            assert!(
                (expected..expected + 20).contains(&budget),
                "{requested} ms requested: {budget} ms budget, expected {expected}"
            );
        }
        // The config cap applies first: 60 s requested, 30 s allowed, 250 ms kept back.
        let budget = budget_ms(60_000, cap);
        assert!((29_750..29_770).contains(&budget), "{budget}");
    }
}
