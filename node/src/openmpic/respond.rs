//! Our signed verdict in Open MPIC's response shape (`CaaCheckResponse` / `DcvCheckResponse`),
//! with the signed result itself in the extra field `mpic_node` (pydantic ignores extra fields,
//! so Open MPIC's models read the response unchanged).
//!
//! Mapping of outcomes:
//! - pass → `check_completed: true, check_passed: true`;
//! - a CAA pass under the BR 3.2.2.8 lookup-failure carve-out → the same, but (as open-mpic-core
//!   does for its `allow_lookup_failure` pass) `errors` keeps the lookup failure, here as
//!   `mpic_node:permitted_by_lookup_failure` naming each failed lookup, its retries and the
//!   insecure proof; `details` has no record and says `outcome_detail:
//!   "permitted_by_lookup_failure"`, as does `mpic_node.outcome_detail`;
//! - a fail that is a finding about the target (CAA forbids, value absent, refused redirect,
//!   malformed parameters) → `check_completed: true, check_passed: false` with an error naming it;
//! - a fail that means the check could not be made (DNS, DNSSEC, connection, TLS, timeout,
//!   internal) and `unsupported` → `check_completed: false, check_passed: false` with an error.

use base64::Engine as _;
use mpic_protocol::{
    Check, DcvMethod, DnssecStatus, LookupFailurePermit, Outcome, ProblemKind, ResultPayload,
    SignedResult,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::checks::evidence::DnsLookupEvidence;

/// `MpicValidationError`.
#[derive(Debug, Clone, Serialize)]
pub struct ValidationError {
    /// `mpic_node:<problem kind>`.
    pub error_type: String,
    /// The problem's detail.
    pub error_message: String,
}

/// The response body.
#[derive(Debug, Serialize)]
pub struct CheckResponse {
    /// `caa` or `dcv`.
    pub check_type: &'static str,
    /// Whether the check could be made.
    pub check_completed: bool,
    /// Whether it passed.
    pub check_passed: bool,
    /// Why not, when it did not pass.
    pub errors: Option<Vec<ValidationError>>,
    /// When the check completed, UNIX nanoseconds.
    pub timestamp_ns: u64,
    /// Method-specific details (Open MPIC's `*ResponseDetails`).
    pub details: Value,
    /// Our signed statement of the same verdict.
    pub mpic_node: Attestation,
}

/// The extra field: who answered and the signed result, verifiable with the node's public key.
#[derive(Debug, Serialize)]
pub struct Attestation {
    /// Perspective id.
    pub perspective: String,
    /// RIR of the perspective.
    pub rir: String,
    /// `pass`, `fail` or `unsupported`.
    pub outcome: &'static str,
    /// The problem kind, when not a pass.
    pub problem: Option<&'static str>,
    /// `permitted_by_lookup_failure` on a pass under the BR 3.2.2.8 carve-out, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome_detail: Option<&'static str>,
    /// The weakest DNSSEC status the verdict rests on.
    pub dnssec: Option<DnssecStatus>,
    /// The signed request id (the trace identifier when it was usable).
    pub request_id: String,
    /// Base64 of the CBOR [`ResultPayload`].
    pub payload: String,
    /// Base64 of the Ed25519 signature.
    pub signature: String,
    /// The signing key's id.
    pub key_id: String,
}

/// Builds the response for one signed result; the DNS details come from `dns`, the typed
/// evidence of the check that was signed.
pub fn build(
    payload: &ResultPayload,
    signed: &SignedResult,
    dns: &[DnsLookupEvidence],
) -> CheckResponse {
    let lookups: Vec<LookupView<'_>> = dns.iter().map(LookupView::typed).collect();
    respond(payload, signed, &lookups)
}

/// A DNS lookup as the details show it.
struct LookupView<'a> {
    /// The name queried, in presentation form.
    name: &'a str,
    /// The type queried.
    record_type: String,
    /// The response code's number (`None`: no response).
    rcode: Option<u16>,
    /// Each record's type and rdata, in presentation form.
    records: Vec<(String, String)>,
}

impl<'a> LookupView<'a> {
    fn typed(lookup: &'a DnsLookupEvidence) -> Self {
        Self {
            name: &lookup.name,
            record_type: lookup.record_type.to_string(),
            rcode: lookup.rcode(),
            records: lookup
                .records()
                .iter()
                .map(|record| (record.record_type().to_string(), record.rdata.to_string()))
                .collect(),
        }
    }

    /// Records of `record_type`, as rdata text.
    fn rdata_of(&self, record_type: &str) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(t, _)| t == record_type)
            .map(|(_, rdata)| rdata.as_str())
            .collect()
    }
}

fn respond(
    payload: &ResultPayload,
    signed: &SignedResult,
    dns: &[LookupView<'_>],
) -> CheckResponse {
    let b64 = base64::engine::general_purpose::STANDARD;
    let problem = payload.problem.as_ref();
    let completed = match payload.outcome {
        Outcome::Pass => true,
        Outcome::Fail => problem.is_some_and(|p| {
            matches!(
                p.kind,
                ProblemKind::Caa
                    | ProblemKind::Unauthorized
                    | ProblemKind::Redirect
                    | ProblemKind::Malformed
            )
        }),
        _ => false,
    };
    let passed = payload.outcome == Outcome::Pass;
    let carve_out = payload
        .evidence
        .permitted_by_lookup_failure
        .as_ref()
        .filter(|_| passed);
    let errors = if let Some(permit) = carve_out {
        Some(vec![carve_out_notice(permit)])
    } else {
        failure_errors(payload)
    };
    let (check_type, details) = match &payload.target.check {
        Check::Caa(_) if carve_out.is_some() => ("caa", carve_out_details()),
        Check::Caa(_) => ("caa", caa_details(dns, completed)),
        Check::Dcv(dcv) => ("dcv", dcv_details(&dcv.method, payload, dns)),
        _ => ("dcv", json!({})),
    };
    CheckResponse {
        check_type,
        check_completed: completed,
        check_passed: passed,
        errors,
        timestamp_ns: payload.completed_unix_ms.saturating_mul(1_000_000),
        details,
        mpic_node: Attestation {
            perspective: payload.perspective.id.as_str().to_owned(),
            rir: payload.perspective.rir.as_str().to_owned(),
            outcome: payload.outcome.as_str(),
            problem: problem.map(|p| p.kind.as_str()),
            outcome_detail: carve_out.map(|_| PERMITTED_BY_LOOKUP_FAILURE),
            dnssec: payload.dnssec,
            request_id: payload.request_id.clone(),
            payload: b64.encode(&signed.payload),
            signature: b64.encode(&signed.signature),
            key_id: signed.key_id.clone(),
        },
    }
}

/// The outcome detail of a pass under the BR 3.2.2.8 lookup-failure carve-out.
const PERMITTED_BY_LOOKUP_FAILURE: &str = "permitted_by_lookup_failure";

/// The error list of a result that did not pass.
fn failure_errors(payload: &ResultPayload) -> Option<Vec<ValidationError>> {
    let problem = payload.problem.as_ref();
    (payload.outcome != Outcome::Pass).then(|| {
        vec![ValidationError {
            error_type: format!(
                "mpic_node:{}",
                problem.map_or(payload.outcome.as_str(), |p| p.kind.as_str())
            ),
            error_message: problem.map_or_else(
                || format!("outcome {}", payload.outcome.as_str()),
                |p| p.detail.clone(),
            ),
        }]
    })
}

/// The lookup failures a carve-out pass rests on, as Open MPIC keeps its lookup error.
fn carve_out_notice(permit: &LookupFailurePermit) -> ValidationError {
    let lookups: Vec<String> = permit
        .failed_lookups
        .iter()
        .map(|f| {
            format!(
                "CAA lookup for {} failed ({}, {} attempts: {}); zone {:?}: {}",
                f.name,
                f.failure,
                f.attempts,
                f.attempt_details.join("; "),
                f.dnssec,
                f.proof
            )
        })
        .collect();
    ValidationError {
        error_type: format!("mpic_node:{PERMITTED_BY_LOOKUP_FAILURE}"),
        error_message: format!(
            "treated as permission under the BR 3.2.2.8 lookup-failure carve-out: {}",
            lookups.join(" | ")
        ),
    }
}

/// `CaaCheckResponseDetails` of a carve-out pass: no record was seen.
fn carve_out_details() -> Value {
    json!({
        "caa_record_present": null,
        "found_at": null,
        "records_seen": null,
        "outcome_detail": PERMITTED_BY_LOOKUP_FAILURE,
    })
}

fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_owned()
}

/// `CaaCheckResponseDetails`: the closest name holding CAA records, and those records.
fn caa_details(dns: &[LookupView<'_>], completed: bool) -> Value {
    if !completed {
        return json!({ "caa_record_present": null, "found_at": null, "records_seen": null });
    }
    let found = dns
        .iter()
        .find(|lookup| lookup.record_type == "CAA" && !lookup.rdata_of("CAA").is_empty());
    match found {
        Some(lookup) => json!({
            "caa_record_present": true,
            "found_at": bare(lookup.name),
            "records_seen": lookup.rdata_of("CAA"),
        }),
        None => json!({ "caa_record_present": false, "found_at": null, "records_seen": null }),
    }
}

/// `DcvDnsCheckResponseDetails`, `DcvHttpCheckResponseDetails` or
/// `DcvTlsAlpnCheckResponseDetails`, by method.
fn dcv_details(method: &DcvMethod, payload: &ResultPayload, dns: &[LookupView<'_>]) -> Value {
    let method_name = open_mpic_method(method);
    match method {
        DcvMethod::AcmeHttp01 | DcvMethod::WebsiteChange => {
            let hops = &payload.evidence.http;
            let history: Vec<Value> = hops
                .windows(2)
                .map(|pair| json!({ "status_code": pair[0].status, "url": pair[1].url }))
                .collect();
            let last = hops.last();
            json!({
                "validation_method": method_name,
                "response_history": if history.is_empty() { Value::Null } else { Value::from(history) },
                "response_url": last.map(|hop| hop.url.clone()),
                "response_status_code": last.and_then(|hop| hop.status),
                "response_page": null,
            })
        }
        DcvMethod::AcmeTlsAlpn01 => json!({
            "validation_method": method_name,
            "common_name": null,
        }),
        _ => {
            // The last lookup is the one the verdict rests on (or the one that failed).
            let Some(lookup) = dns.last() else {
                return json!({ "validation_method": method_name });
            };
            let records: Vec<&str> = lookup.rdata_of(&lookup.record_type);
            let chain: Vec<String> = lookup
                .rdata_of("CNAME")
                .into_iter()
                .filter(|_| lookup.record_type != "CNAME")
                .map(bare)
                .collect();
            json!({
                "validation_method": method_name,
                "records_seen": records,
                "response_code": lookup.rcode,
                "ad_flag": payload.dnssec == Some(DnssecStatus::Secure),
                "found_at": bare(lookup.name),
                "cname_chain": chain,
            })
        }
    }
}

/// Open MPIC's name for a method (`dns-persistent` for our `dns-persist-01`).
fn open_mpic_method(method: &DcvMethod) -> &str {
    match method {
        DcvMethod::DnsPersist01 => "dns-persistent",
        DcvMethod::AcmeDnsAccount01 => "dns-account-01",
        other => other.as_str(),
    }
}

#[cfg(test)]
mod tests;
