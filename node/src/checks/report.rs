//! What a check found about one target: its verdict (pass, fail with a [`Problem`], or
//! `unsupported`), the weakest DNSSEC status it rests on and the evidence seen; signed later by
//! `signing`.

use mpic_protocol::{DnssecStatus, Outcome, Problem, ProblemKind};

use super::Evidence;

/// What a check found about one target, before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The verdict.
    pub outcome: Outcome,
    /// Why it did not pass.
    pub problem: Option<Problem>,
    /// Weakest DNSSEC status the verdict rests on.
    pub dnssec: Option<DnssecStatus>,
    /// What was seen (rendered to the wire form when signed).
    pub evidence: Evidence,
}

impl CheckReport {
    /// The report of a check that passed (`Ok`) or failed with a problem (`Err`).
    pub fn from_verdict(
        verdict: Result<(), Problem>,
        dnssec: Option<DnssecStatus>,
        evidence: Evidence,
    ) -> Self {
        let (outcome, problem) = match verdict {
            Ok(()) => (Outcome::Pass, None),
            Err(problem) => (Outcome::Fail, Some(problem)),
        };
        Self {
            outcome,
            problem,
            dnssec,
            evidence,
        }
    }

    /// A failure found before anything was looked up (no evidence, no DNSSEC status).
    pub fn fail(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self::from_verdict(Err(problem(kind, detail.into())), None, Evidence::default())
    }

    /// A check kind or method this node does not run: `unsupported`, never a pass.
    pub fn unsupported(detail: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Unsupported,
            problem: Some(problem(ProblemKind::Unsupported, detail.into())),
            dnssec: None,
            evidence: Evidence::default(),
        }
    }
}

/// A problem of this kind with this detail (the one constructor the checks share).
pub fn problem(kind: ProblemKind, detail: String) -> Problem {
    Problem { kind, detail }
}
