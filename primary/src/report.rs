//! One validation run and its report: fan the targets out through the client library's
//! [`Primary`] (every signature and echoed field verified there), then turn the verified results
//! into a [`Report`]: per target the [`Verdict`], one [`Row`] per perspective and the
//! [`Finding`]s. [`build`] is pure; [`run`] does the I/O.

use std::time::Duration;

use mpic_protocol::client::{ClientError, ClientOptions, Primary, TargetVerdict, Validation};
use mpic_protocol::quorum::QuorumPolicy;
use mpic_protocol::{Check, PerspectiveId, ResultPayload, Rir, Target};
use serde::Serialize;

use crate::findings::{self, Finding, Observation, answer_summary, dnssec_name};
use crate::perspectives::Perspective;
use crate::verdict::{Verdict, rfc3339};

/// Everything one run found, ready to render.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The signed request id every result echoes.
    pub request_id: String,
    /// When the report was made (UTC, RFC 3339).
    pub generated_at: String,
    /// True when every target's verdict permits issuance.
    pub permitted: bool,
    /// One entry per target, in request order.
    pub targets: Vec<TargetReport>,
}

/// The verdict, the per-perspective table and the findings for one target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// The identifier checked.
    pub identifier: String,
    /// The check: `caa`, or `dcv <method>`.
    pub check: String,
    /// The quorum verdict.
    pub verdict: Verdict,
    /// One row per perspective, in perspectives-file order.
    pub rows: Vec<Row>,
    /// Why perspectives disagree (empty when they agree).
    pub findings: Vec<Finding>,
}

/// What one perspective said, in one table row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The perspective.
    pub perspective: PerspectiveId,
    /// Its RIR region.
    pub rir: Rir,
    /// Its location, from the perspectives file.
    pub location: Option<String>,
    /// `pass`, `fail`, `unsupported`, or `no result`.
    pub outcome: String,
    /// The problem kind, when it did not pass.
    pub problem: Option<String>,
    /// The DNSSEC status the verdict rests on.
    pub dnssec: Option<String>,
    /// Node time from receipt to result, milliseconds.
    pub elapsed_ms: Option<u64>,
    /// The key evidence (or why there is no result).
    pub evidence: String,
    /// The key id the result is signed (and was verified) under.
    pub key_id: Option<String>,
}

/// Why a run could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The client library failed (TLS setup, local endpoint, randomness).
    #[error("primary client: {0}")]
    Client(#[from] ClientError),
}

/// Runs a validation of `targets` through every perspective, waiting for every answer (or the
/// timeout) so each can be shown, under the rule in force at `rule_unix`.
pub async fn run(
    perspectives: &[Perspective],
    options: ClientOptions,
    targets: Vec<Target>,
    rule_unix: u64,
    timeout: Duration,
) -> Result<(Validation, QuorumPolicy), RunError> {
    let primary = Primary::new(
        perspectives.iter().map(Perspective::endpoint).collect(),
        options,
    )?;
    let policy = QuorumPolicy::in_force_at(rule_unix);
    let validation = primary.validate_all(targets, timeout, policy).await;
    primary.close().await;
    Ok((validation?, policy))
}

/// Turns a finished validation into the report. `perspectives` must be the list the
/// validation ran with, in the same order. Pure: `now_unix` is only printed.
pub fn build(
    perspectives: &[Perspective],
    validation: &Validation,
    policy: QuorumPolicy,
    rule_unix: u64,
    now_unix: u64,
) -> Report {
    let targets: Vec<TargetReport> = validation
        .targets
        .iter()
        .map(|target| target_report(perspectives, target, policy, rule_unix))
        .collect();
    Report {
        request_id: validation.request.request_id.clone(),
        generated_at: rfc3339(now_unix),
        permitted: targets.iter().all(|t| t.verdict.permitted),
        targets,
    }
}

/// The check's name as shown: `caa`, or `dcv <method>`.
pub fn check_name(check: &Check) -> String {
    match check {
        Check::Dcv(dcv) => format!("dcv {}", dcv.method),
        other => other.kind().to_owned(),
    }
}

fn target_report(
    perspectives: &[Perspective],
    target: &TargetVerdict,
    policy: QuorumPolicy,
    rule_unix: u64,
) -> TargetReport {
    // The client library reports in node order, which is the perspectives file's order.
    let (observations, locations): (Vec<Observation>, Vec<Option<String>>) = target
        .reports
        .iter()
        .zip(perspectives)
        .map(|(report, perspective)| {
            let observation = Observation {
                perspective_id: report.perspective_id.clone(),
                rir: perspective.rir,
                egress: perspective.egress.clone(),
                result: report.result.clone(),
                error: report.error.clone(),
            };
            (observation, perspective.location.clone())
        })
        .unzip();
    let rows = observations
        .iter()
        .zip(locations)
        .map(|(o, location)| row(o, location))
        .collect();
    TargetReport {
        identifier: target.target.identifier.clone(),
        check: check_name(&target.target.check),
        verdict: Verdict::new(&target.verdict, policy, rule_unix),
        rows,
        findings: findings::findings(&observations),
    }
}

fn row(observation: &Observation, location: Option<String>) -> Row {
    match &observation.result {
        Some(result) => Row {
            perspective: observation.perspective_id.clone(),
            rir: result.perspective.rir,
            location,
            outcome: result.outcome.as_str().to_owned(),
            problem: result.problem.as_ref().map(|p| p.kind.as_str().to_owned()),
            dnssec: result.dnssec.map(|d| dnssec_name(d).to_owned()),
            elapsed_ms: Some(
                result
                    .completed_unix_ms
                    .saturating_sub(result.received_unix_ms),
            ),
            evidence: key_evidence(result),
            key_id: Some(result.key_id.clone()),
        },
        None => Row {
            perspective: observation.perspective_id.clone(),
            rir: observation.rir,
            location,
            outcome: "no result".into(),
            problem: None,
            dnssec: None,
            elapsed_ms: None,
            evidence: observation
                .error
                .clone()
                .unwrap_or_else(|| "no answer".into()),
            key_id: None,
        },
    }
}

/// The one piece of evidence that best explains a result: the problem detail when it failed,
/// else what it saw.
fn key_evidence(result: &ResultPayload) -> String {
    match &result.problem {
        Some(problem) => problem.detail.clone(),
        None => answer_summary(result),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render;
    use mpic_protocol::client::PerspectiveReport;
    use mpic_protocol::quorum::{self, PHASE_THREE_REMOTES, RemoteOutcome, RemoteState};
    use mpic_protocol::{
        CaaCheck, DnsEvidence, Evidence, Outcome, PerspectiveInfo, Problem, ProblemKind, Request,
    };

    fn perspective(id: &str, rir: Rir, egress: &str) -> Perspective {
        let Ok(perspectives) = crate::perspectives::parse(&format!(
            "[[perspective]]\nid = \"{id}\"\nrir = \"{rir}\"\naddress = \"127.0.0.1:4433\"\n\
             public_key = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"\negress = [\"{egress}\"]\n"
        )) else {
            unreachable!("valid test perspective")
        };
        perspectives[0].clone()
    }

    fn result(target: &Target, id: &PerspectiveId, rir: Rir, ca: &str) -> ResultPayload {
        let pass = ca == "ca.example";
        ResultPayload {
            version: 1,
            request_id: "r".into(),
            nonce: vec![0; 16],
            target_index: 0,
            target: target.clone(),
            perspective: PerspectiveInfo {
                id: id.clone(),
                rir,
                location: String::new(),
                shadow: false,
            },
            received_unix_ms: 10,
            completed_unix_ms: 25,
            outcome: if pass { Outcome::Pass } else { Outcome::Fail },
            problem: (!pass).then(|| Problem {
                kind: ProblemKind::Caa,
                detail: format!("CAA names <{ca}>"),
            }),
            dnssec: None,
            evidence: Evidence {
                dns: vec![DnsEvidence {
                    name: "shop.test.".into(),
                    record_type: "CAA".into(),
                    rcode: "NOERROR".into(),
                    records: vec![format!("shop.test. 60 IN CAA 0 issue \"{ca}\"")],
                    dnssec: None,
                    server: None,
                }],
                ..Evidence::default()
            },
            key_id: "key-1".into(),
            tenant: None,
        }
    }

    #[test]
    fn build_and_render_a_split_horizon_report() {
        let perspectives = [
            perspective("a", Rir::Arin, "192.0.2.1"),
            perspective("b", Rir::RipeNcc, "192.0.2.2"),
            perspective("c", Rir::Apnic, "192.0.2.3"),
        ];
        let target = Target {
            identifier: "shop.test".into(),
            check: Check::Caa(CaaCheck::default()),
        };
        let cas = ["ca.example", "ca.example", "<script>evil</script>"];
        let reports: Vec<PerspectiveReport> = perspectives
            .iter()
            .zip(cas)
            .map(|(p, ca)| PerspectiveReport {
                perspective_id: p.id.clone(),
                result: Some(result(&target, &p.id, p.rir, ca)),
                error: None,
            })
            .collect();
        let policy = QuorumPolicy::in_force_at(PHASE_THREE_REMOTES);
        let remotes: Vec<RemoteOutcome> = reports
            .iter()
            .zip(&perspectives)
            .map(|(r, p)| RemoteOutcome {
                perspective_id: p.id.clone(),
                rir: p.rir,
                state: match r.result.as_ref().map(|r| r.outcome) {
                    Some(Outcome::Pass) => RemoteState::Corroborated,
                    _ => RemoteState::NotCorroborated,
                },
            })
            .collect();
        let Ok(verdict) = quorum::evaluate(&policy, &remotes) else {
            unreachable!("distinct perspectives")
        };
        let validation = Validation {
            request: Request {
                version: 1,
                request_id: "req-1".into(),
                nonce: vec![0; 16],
                deadline_unix_ms: 0,
                targets: vec![target.clone()],
            },
            targets: vec![TargetVerdict {
                target,
                verdict,
                reports,
            }],
        };
        let report = build(&perspectives, &validation, policy, PHASE_THREE_REMOTES, 0);
        assert!(report.permitted);
        let first = &report.targets[0];
        assert_eq!(first.rows[2].problem.as_deref(), Some("caa"));
        assert_eq!(first.rows[2].elapsed_ms, Some(15));
        assert_eq!(first.findings[0].cause, crate::Cause::SplitHorizon);

        let human = render::human::render(&report);
        assert!(human.contains("issuance permitted: 2 of 3 remote perspectives corroborate"));
        assert!(human.contains("[split_horizon] shop.test CAA"));
        let json = render::json(&report).unwrap_or_default();
        assert!(json.contains("\"cause\": \"split_horizon\""));
        let html = render::html::render(&report);
        assert!(html.contains("&lt;script&gt;evil&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
    }
}
