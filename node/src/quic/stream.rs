//! One request on one bidirectional stream: admit, read the frame under a timeout, validate,
//! run every target concurrently and write each signed result as soon as it is ready.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mpic_protocol::frame::{self, FrameError};
use mpic_protocol::{NodeMessage, ProtocolError, ProtocolErrorKind, Request, RequestError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::auth::Primary;
use super::{GaugeGuard, Service};
use crate::audit::AuditEntry;
use crate::dispatch;
use crate::signing::{CheckReport, SignError};

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
    let metrics = &service.metrics;
    let _admitted = match service.admission.try_admit(&limit) {
        Ok(admitted) => admitted,
        Err(shed) => {
            metrics
                .shed_requests
                .with_label_values(&[shed.label()])
                .inc();
            let detail = match shed {
                super::admission::Shed::Global => format!(
                    "node is at its limit of {} requests in flight; retry later",
                    service.limits.max_in_flight_requests
                ),
                super::admission::Shed::Primary => format!(
                    "this primary has {} requests in flight, the node's per-primary limit; retry later",
                    service.limits.max_in_flight_per_primary
                ),
            };
            refuse(&service, &mut send, ProtocolErrorKind::Overloaded, detail).await;
            let _ = recv.stop(0u32.into());
            return;
        }
    };
    let _in_flight = GaugeGuard::new(&metrics.requests_in_flight);

    let request = match read_request(&service, &mut recv).await {
        Ok(request) => request,
        Err((kind, detail)) => {
            refuse(&service, &mut send, kind, detail).await;
            return;
        }
    };
    let _ = recv.stop(0u32.into());
    if let Err(error) = request.validate(service.limits.max_targets_per_request, received_unix_ms) {
        let kind = match error {
            RequestError::UnsupportedVersion(_) => ProtocolErrorKind::UnsupportedVersion,
            RequestError::TooManyTargets { .. } => ProtocolErrorKind::TooManyTargets,
            RequestError::DeadlinePassed { .. } => ProtocolErrorKind::DeadlinePassed,
            _ => ProtocolErrorKind::BadRequest,
        };
        refuse(&service, &mut send, kind, error.to_string()).await;
        return;
    }

    let span = tracing::info_span!("request", request_id = %request.request_id, primary = %primary.id, targets = request.targets.len());
    // `instrument`, not `span.enter()`: an entered guard held across `.await` corrupts the
    // subscriber's span stack when the task moves threads (tracing-subscriber then panicked
    // and the request was lost; found by the hostile-peers suite).
    async {
        let deadline = deadline_instant(&request, received_unix_ms, service.limits.max_deadline);
        let request = Arc::new(request);
        let mut checks = JoinSet::new();
        for index in 0..request.targets.len() {
            let service = Arc::clone(&service);
            let request = Arc::clone(&request);
            checks.spawn(
                async move {
                    let target = &request.targets[index];
                    let started = Instant::now();
                    let report = service.dispatcher.run(target, deadline).await;
                    record_check(&service, target, &report, started.elapsed());
                    (index, report)
                }
                .in_current_span(),
            );
        }
        let mut answered = 0;
        let mut broken = false;
        while let Some(joined) = checks.join_next().await {
            let (index, report) = match joined {
                Ok(done) => done,
                Err(error) => {
                    tracing::error!(%error, "check task failed");
                    continue;
                }
            };
            if broken {
                continue;
            }
            let Ok((signed, _)) = sign_and_audit(
                &service,
                &primary,
                &request,
                index,
                received_unix_ms,
                report,
            ) else {
                continue;
            };
            match frame::encode(&NodeMessage::Result(signed), MAX_RESULT_FRAME_BYTES) {
                Ok(bytes) => {
                    if !write(&mut send, &bytes).await {
                        // The primary went away; finish the checks (they are bounded by the deadline)
                        // but stop writing.
                        broken = true;
                        continue;
                    }
                    answered += 1;
                }
                Err(error) => tracing::error!(%error, index, "result frame could not be encoded"),
            }
        }
        let outcome = if answered == request.targets.len() {
            "answered"
        } else {
            "abandoned"
        };
        metrics.requests.with_label_values(&[outcome]).inc();
        finish(&mut send).await;
        tracing::debug!(answered, "request done");
    }
    .instrument(span)
    .await;
}

async fn read_request(
    service: &Service,
    recv: &mut quinn::RecvStream,
) -> Result<Request, (ProtocolErrorKind, String)> {
    let timeout = service.limits.request_read_timeout;
    let body = match tokio::time::timeout(
        timeout,
        frame::io::read_frame(recv, service.limits.max_request_bytes),
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

pub(super) async fn refuse(
    service: &Service,
    send: &mut quinn::SendStream,
    kind: ProtocolErrorKind,
    detail: String,
) {
    tracing::info!(%kind, %detail, "request refused");
    service
        .metrics
        .requests
        .with_label_values(&[&kind.to_string()])
        .inc();
    let message = NodeMessage::Error(ProtocolError { kind, detail });
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

/// Signs target `index`'s report, counts it and writes its audit line: what every answered
/// target goes through, on the QUIC and the Open MPIC path alike.
pub(crate) fn sign_and_audit(
    service: &Service,
    primary: &Primary,
    request: &Request,
    index: usize,
    received_unix_ms: u64,
    report: CheckReport,
) -> Result<(mpic_protocol::SignedResult, mpic_protocol::ResultPayload), SignError> {
    let (signed, payload) = service
        .signer()
        .sign(request, index, received_unix_ms, unix_ms(), report)
        .inspect_err(|error| tracing::error!(%error, "cannot sign result"))?;
    service.metrics.results_signed.inc();
    let entry = AuditEntry::new(&primary.name, primary.id.spki_sha256(), &payload, &signed);
    if !service.audit.record(&entry) {
        service.metrics.audit_write_errors.inc();
    }
    Ok((signed, payload))
}

pub(crate) fn record_check(
    service: &Service,
    target: &mpic_protocol::Target,
    report: &CheckReport,
    elapsed: Duration,
) {
    let kind = dispatch::kind_label(&target.check);
    let problem = report.problem.as_ref().map_or("none", |p| p.kind.as_str());
    service
        .metrics
        .checks
        .with_label_values(&[
            kind,
            dispatch::method_label(&target.check),
            report.outcome.as_str(),
            problem,
        ])
        .inc();
    service
        .metrics
        .check_duration
        .with_label_values(&[kind])
        .observe(dispatch::seconds(elapsed));
    tracing::info!(
        identifier = %target.identifier,
        kind,
        method = dispatch::method_label(&target.check),
        outcome = report.outcome.as_str(),
        problem,
        elapsed_ms = elapsed.as_millis() as u64,
        "check"
    );
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

/// Now in UNIX milliseconds (0 if the clock is before 1970, which the deadline check then refuses).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
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
