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

/// A result could not be signed; the caller answers the request with an error instead.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The payload could not be serialized (cannot happen for well-formed payloads; reported,
    /// not panicked on).
    #[error("cannot serialize result payload: {0}")]
    Serialize(#[from] ciborium::ser::Error<std::io::Error>),
    /// The result names a target the request does not hold: signing it would echo a target
    /// that was never asked for.
    #[error("target index {index} is out of range: the request has {count} target(s)")]
    NoSuchTarget {
        /// The index asked for.
        index: usize,
        /// How many targets the request holds.
        count: usize,
    },
}

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
    /// it carries (for the audit log). An `index` the request does not hold is an error, never a
    /// signed empty target.
    pub fn sign(
        &self,
        request: &Request,
        index: usize,
        received_unix_ms: u64,
        completed_unix_ms: u64,
        report: &CheckReport,
        tenant: Option<&str>,
    ) -> Result<(SignedResult, ResultPayload), SignError> {
        let target = request
            .targets
            .get(index)
            .cloned()
            .ok_or(SignError::NoSuchTarget {
                index,
                count: request.targets.len(),
            })?;
        let target_index = u32::try_from(index).map_err(|_| SignError::NoSuchTarget {
            index,
            count: request.targets.len(),
        })?;
        let payload = ResultPayload {
            version: PROTOCOL_VERSION,
            request_id: request.request_id.clone(),
            nonce: request.nonce.clone(),
            target_index,
            target,
            perspective: self.perspective.clone(),
            received_unix_ms,
            completed_unix_ms,
            outcome: report.outcome,
            problem: report.problem.clone(),
            dnssec: report.dnssec,
            evidence: report.evidence.to_wire(),
            key_id: self.key.key_id().to_string(),
            tenant: tenant.map(str::to_owned),
        };
        let signed = self.key.sign(&payload)?;
        Ok((signed, payload))
    }
}

#[cfg(test)]
mod tests {
    use mpic_protocol::{
        CaaCheck, Check, Outcome, PerspectiveId, PerspectiveInfo, Request, Rir, SigningKey, Target,
    };

    use super::{CheckReport, ResultSigner, SignError};
    use crate::checks::Evidence;

    fn signer() -> ResultSigner {
        let (key, _) = SigningKey::generate().unwrap();
        let perspective = PerspectiveInfo {
            id: PerspectiveId::new("t").unwrap(),
            rir: Rir::Arin,
            location: "x".into(),
            shadow: false,
        };
        ResultSigner::new(key, perspective)
    }

    fn request() -> Request {
        Request {
            version: mpic_protocol::PROTOCOL_VERSION,
            request_id: "r1".into(),
            nonce: vec![7; 16],
            deadline_unix_ms: 0,
            targets: vec![Target {
                identifier: "example.com".into(),
                check: Check::Caa(CaaCheck::default()),
            }],
        }
    }

    fn report() -> CheckReport {
        CheckReport::from_verdict(Ok(()), None, Evidence::default())
    }

    #[test]
    fn a_target_in_the_request_is_signed_with_its_index() {
        let (_, payload) = signer().sign(&request(), 0, 1, 2, &report(), None).unwrap();
        assert_eq!(payload.target_index, 0);
        assert_eq!(payload.target.identifier, "example.com");
        assert_eq!(payload.outcome, Outcome::Pass);
        assert_eq!(payload.tenant, None);
    }

    #[test]
    fn the_tenant_is_signed_only_when_there_is_one() {
        let signer = signer();
        let (plain, _) = signer.sign(&request(), 0, 1, 2, &report(), None).unwrap();
        let (tenant, payload) = signer
            .sign(&request(), 0, 1, 2, &report(), Some("ca-one"))
            .unwrap();
        assert_eq!(payload.tenant.as_deref(), Some("ca-one"));
        let needle = b"tenant";
        let has = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!has(&plain.payload), "no tenant key without tenants");
        assert!(has(&tenant.payload));
    }

    #[test]
    fn an_index_past_the_targets_is_an_error_never_an_empty_target() {
        let error = signer()
            .sign(&request(), 1, 1, 2, &report(), None)
            .unwrap_err();
        assert!(
            matches!(error, SignError::NoSuchTarget { index: 1, count: 1 }),
            "{error:?}"
        );
    }
}
