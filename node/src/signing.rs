//! Turns a check's report into a signed result: builds the payload that echoes the request, the
//! target and this perspective, serializes it once and signs those bytes (Ed25519).

use mpic_protocol::{
    PROTOCOL_VERSION, PerspectiveInfo, Request, ResultPayload, SignedResult, SigningKey,
};

pub use crate::checks::CheckReport;

/// Signs results as this perspective.
#[derive(Debug)]
pub struct ResultSigner {
    key: SigningKey,
    perspective: PerspectiveInfo,
}

/// A payload could not be serialized (cannot happen for well-formed payloads; reported, not
/// panicked on).
#[derive(Debug, thiserror::Error)]
#[error("cannot serialize result payload: {0}")]
pub struct SignError(#[from] ciborium::ser::Error<std::io::Error>);

impl ResultSigner {
    /// A signer for this key and perspective.
    pub fn new(key: SigningKey, perspective: PerspectiveInfo) -> Self {
        Self { key, perspective }
    }

    /// The signing key.
    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// The perspective results are signed as.
    pub fn perspective(&self) -> &PerspectiveInfo {
        &self.perspective
    }

    /// Signs the result for `request.targets[index]`; returns the signed result and the payload
    /// it carries (for the audit log).
    pub fn sign(
        &self,
        request: &Request,
        index: usize,
        received_unix_ms: u64,
        completed_unix_ms: u64,
        report: CheckReport,
    ) -> Result<(SignedResult, ResultPayload), SignError> {
        let target = request
            .targets
            .get(index)
            .cloned()
            .unwrap_or_else(|| mpic_protocol::Target {
                identifier: String::new(),
                check: mpic_protocol::Check::Unknown {
                    kind: String::new(),
                },
            });
        let payload = ResultPayload {
            version: PROTOCOL_VERSION,
            request_id: request.request_id.clone(),
            nonce: request.nonce.clone(),
            target_index: u32::try_from(index).unwrap_or(u32::MAX),
            target,
            perspective: self.perspective.clone(),
            received_unix_ms,
            completed_unix_ms,
            outcome: report.outcome,
            problem: report.problem,
            dnssec: report.dnssec,
            evidence: report.evidence,
            key_id: self.key.key_id().to_string(),
        };
        let signed = self.key.sign(&payload)?;
        Ok((signed, payload))
    }
}
