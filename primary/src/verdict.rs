//! The verdict on one target: the BR 3.2.2.9 quorum rule of the phase in force at a given
//! date, its decision and counts, and one sentence a domain owner can read. Pure.

use std::time::{Duration, UNIX_EPOCH};

use mpic_protocol::quorum::{self, Decision, Enforcement, QuorumPolicy, Shortfall, Tally};
use serde::Serialize;

/// The quorum verdict on one target, with the rule it was decided under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// True when issuance may proceed for this target.
    pub permitted: bool,
    /// The decision of the quorum rule.
    pub decision: Decision,
    /// The counts behind it.
    pub tally: Tally,
    /// The phase-in row applied.
    pub policy: QuorumPolicy,
    /// The date whose row was applied (UTC, RFC 3339).
    pub rule_date: String,
    /// One sentence: what was decided and why.
    pub summary: String,
}

impl Verdict {
    /// Wraps the client library's quorum verdict with the rule applied at `rule_unix` seconds.
    pub fn new(verdict: &quorum::Verdict, policy: QuorumPolicy, rule_unix: u64) -> Self {
        let tally = &verdict.tally;
        let reason = match &verdict.decision {
            Decision::Corroborated => format!(
                "{} of {} remote perspectives corroborate ({} may fail)",
                tally.corroborated, tally.used, tally.allowed_failures
            ),
            Decision::NotCorroborated(Shortfall::TooManyFailures { failed, allowed }) => format!(
                "{failed} of {} remote perspectives did not corroborate; at most {allowed} may",
                tally.used
            ),
            Decision::NotCorroborated(Shortfall::TooFewRemotes { used, required }) => {
                format!("{used} remote perspectives used; the rule requires {required}")
            }
            Decision::NotCorroborated(Shortfall::RirDiversity { corroborating_rirs }) => format!(
                "the corroborating perspectives are in {corroborating_rirs} RIR region(s); the \
                 rule requires two"
            ),
            Decision::Undecided => "no decision before the deadline".to_owned(),
        };
        let permitted = verdict.permits_issuance();
        let report_only = if verdict.enforcement == Enforcement::ReportOnly
            && !matches!(verdict.decision, Decision::Corroborated)
        {
            " (report-only phase: not enforced)"
        } else {
            ""
        };
        Self {
            permitted,
            decision: verdict.decision.clone(),
            tally: tally.clone(),
            policy,
            rule_date: rfc3339(rule_unix),
            summary: format!(
                "issuance {}: {reason}{report_only}",
                if permitted { "permitted" } else { "refused" }
            ),
        }
    }
}

/// The rule text of a policy: "BR 3.2.2.9 at 2026-04-01: at least 3 remotes, 2 RIRs".
pub fn rule_text(policy: &QuorumPolicy, rule_date: &str) -> String {
    format!(
        "BR 3.2.2.9 as in force at {}: at least {} remote perspectives{}, {}",
        rule_date.get(..10).unwrap_or(rule_date),
        policy.min_remotes,
        if policy.require_rir_diversity {
            " in two or more RIR regions"
        } else {
            ""
        },
        match policy.enforcement {
            Enforcement::Enforced => "enforced",
            Enforcement::ReportOnly => "report-only",
        }
    )
}

/// `--at` was not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a date (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC)")]
pub struct DateError {
    /// The text given.
    pub text: String,
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 UTC time into UNIX seconds.
pub fn parse_date(text: &str) -> Result<u64, DateError> {
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_secs())
        .ok_or_else(|| DateError {
            text: text.to_owned(),
        })
}

/// UNIX seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix_seconds: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix_seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpic_protocol::quorum::{PHASE_THREE_REMOTES, RemoteOutcome, RemoteState};
    use mpic_protocol::{PerspectiveId, Rir};

    #[test]
    fn dates() {
        let cases = [
            ("day", "2026-03-15", Some(PHASE_THREE_REMOTES)),
            (
                "time",
                "2026-03-15T00:00:01Z",
                Some(PHASE_THREE_REMOTES + 1),
            ),
            ("garbage", "next tuesday", None),
        ];
        for (name, text, expected) in cases {
            assert_eq!(parse_date(text).ok(), expected, "case {name}");
        }
        assert_eq!(rfc3339(PHASE_THREE_REMOTES), "2026-03-15T00:00:00Z");
    }

    #[test]
    fn summaries() {
        let remote = |id: &str, rir, state| RemoteOutcome {
            perspective_id: PerspectiveId::new(id).unwrap_or_else(|_| unreachable!()),
            rir,
            state,
        };
        let policy = QuorumPolicy::in_force_at(PHASE_THREE_REMOTES);
        let cases = [
            (
                "two_of_three_in_two_rirs",
                vec![
                    remote("a", Rir::Arin, RemoteState::Corroborated),
                    remote("b", Rir::RipeNcc, RemoteState::Corroborated),
                    remote("c", Rir::Apnic, RemoteState::NotCorroborated),
                ],
                true,
                "issuance permitted: 2 of 3 remote perspectives corroborate (1 may fail)",
            ),
            (
                "two_failures",
                vec![
                    remote("a", Rir::Arin, RemoteState::Corroborated),
                    remote("b", Rir::RipeNcc, RemoteState::NotCorroborated),
                    remote("c", Rir::Apnic, RemoteState::NotCorroborated),
                ],
                false,
                "issuance refused: 2 of 3 remote perspectives did not corroborate; at most 1 may",
            ),
        ];
        for (name, remotes, permitted, summary) in cases {
            let Ok(quorum) = quorum::evaluate(&policy, &remotes) else {
                panic!("case {name}: evaluate failed");
            };
            let verdict = Verdict::new(&quorum, policy, PHASE_THREE_REMOTES);
            assert_eq!(verdict.permitted, permitted, "case {name}");
            assert_eq!(verdict.summary, summary, "case {name}");
        }
    }
}
