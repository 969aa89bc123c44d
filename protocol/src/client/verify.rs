//! Checks that a signed result verifies and belongs to this attempt (request id, nonce, target,
//! perspective, time window): a replayed or mis-routed answer must never count (BR 3.2.2.9).

use std::time::Duration;

use crate::request::Request;
use crate::result::{ResultPayload, SignedResult};

use super::{ClientError, NodeEndpoint};

/// The times a result must fall within.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the primary sent the request, UNIX ms.
    pub sent_unix_ms: u64,
    /// Now, UNIX ms.
    pub now_unix_ms: u64,
    /// Tolerated clock difference.
    pub skew: Duration,
}

/// Verifies `signed` under `node`'s key and checks every echoed field against `request`.
/// `seen` tracks answered target indexes so a duplicate is refused.
pub fn verify_result(
    node: &NodeEndpoint,
    request: &Request,
    signed: &SignedResult,
    window: Window,
    seen: &mut [bool],
) -> Result<ResultPayload, ClientError> {
    let id = || node.perspective_id.clone();
    let mismatch = |field: &'static str, detail: String| ClientError::Mismatch {
        node: id(),
        field,
        detail,
    };
    let payload = node
        .verifying_key
        .verify(signed)
        .map_err(|source| ClientError::Verify { node: id(), source })?;
    if payload.request_id != request.request_id {
        return Err(mismatch(
            "request_id",
            format!("{:?} is not {:?}", payload.request_id, request.request_id),
        ));
    }
    if payload.nonce != request.nonce {
        return Err(mismatch(
            "nonce",
            "differs from the nonce sent (replayed result?)".into(),
        ));
    }
    let index = payload.target_index as usize;
    let Some(target) = request.targets.get(index) else {
        return Err(mismatch("target_index", format!("{index} is out of range")));
    };
    if &payload.target != target {
        return Err(mismatch(
            "target",
            format!(
                "result is for {:?}, request has {:?}",
                payload.target.identifier, target.identifier
            ),
        ));
    }
    if payload.perspective.id != node.perspective_id {
        return Err(mismatch(
            "perspective.id",
            format!(
                "{} answered for {}",
                payload.perspective.id, node.perspective_id
            ),
        ));
    }
    if payload.perspective.rir != node.rir {
        return Err(mismatch(
            "perspective.rir",
            format!(
                "{} is not the configured {}",
                payload.perspective.rir, node.rir
            ),
        ));
    }
    let skew = u64::try_from(window.skew.as_millis()).unwrap_or(u64::MAX);
    let earliest = window.sent_unix_ms.saturating_sub(skew);
    let latest = window.now_unix_ms.saturating_add(skew);
    let in_window = payload.received_unix_ms >= earliest
        && payload.received_unix_ms <= payload.completed_unix_ms
        && payload.completed_unix_ms <= latest;
    if !in_window {
        return Err(mismatch(
            "time window",
            format!(
                "{}..{} is outside {earliest}..{latest}",
                payload.received_unix_ms, payload.completed_unix_ms
            ),
        ));
    }
    match seen.get_mut(index) {
        Some(slot) if !*slot => *slot = true,
        _ => return Err(mismatch("target_index", format!("{index} answered twice"))),
    }
    Ok(payload)
}

/// Checks that a result was issued for `expected` tenant (when the primary names one): a result
/// a node signed for another CA must not count for this one.
pub fn check_tenant(
    node: &NodeEndpoint,
    expected: Option<&str>,
    payload: &ResultPayload,
) -> Result<(), ClientError> {
    match expected {
        Some(expected) if payload.tenant.as_deref() != Some(expected) => {
            Err(ClientError::Mismatch {
                node: node.perspective_id.clone(),
                field: "tenant",
                detail: format!("{:?} is not {expected:?}", payload.tenant),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
