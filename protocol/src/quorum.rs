//! The BR 3.2.2.9 quorum rule: how many remote perspectives must corroborate, from how many RIR
//! regions, under the phase-in table in force. Pure: no clock, no I/O; the caller passes the
//! time and the outcomes, so every row of the table is tested exactly.

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::perspective::{PerspectiveId, Rir};

/// Whether a failed quorum stops issuance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// A failed quorum means the CA MUST NOT issue (BR 3.2.2.9 from 2025-09-15).
    Enforced,
    /// The verdict is computed and logged but does not stop issuance (the 2025-03-15 monitoring
    /// phase, or a CA trialling perspectives in shadow).
    ReportOnly,
}

/// The BR 3.2.2.9 phase-in row in force: minimum remotes, RIR diversity, enforcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumPolicy {
    /// Fewest distinct remote perspectives that must be used.
    pub min_remotes: usize,
    /// Corroborating remotes must span at least two RIR regions (from 2026-03-15).
    pub require_rir_diversity: bool,
    /// Whether a failure stops issuance.
    pub enforcement: Enforcement,
}

/// 2025-03-15T00:00:00Z: MPIC starts (monitoring; CAs MAY still issue).
pub const PHASE_MONITORING: u64 = 1_741_996_800;
/// 2025-09-15T00:00:00Z: the table MUST hold.
pub const PHASE_ENFORCED: u64 = 1_757_894_400;
/// 2026-03-15T00:00:00Z: 3 remotes, RIR diversity.
pub const PHASE_THREE_REMOTES: u64 = 1_773_532_800;
/// 2026-06-15T00:00:00Z: 4 remotes.
pub const PHASE_FOUR_REMOTES: u64 = 1_781_481_600;
/// 2026-12-15T00:00:00Z: 5 remotes.
pub const PHASE_FIVE_REMOTES: u64 = 1_797_292_800;

impl QuorumPolicy {
    /// The BR 3.2.2.9 phase-in row in force at `unix_seconds` (UTC). Before MPIC existed the
    /// rule is treated as monitoring with two remotes.
    pub fn in_force_at(unix_seconds: u64) -> QuorumPolicy {
        let (min_remotes, require_rir_diversity, enforcement) = match unix_seconds {
            t if t >= PHASE_FIVE_REMOTES => (5, true, Enforcement::Enforced),
            t if t >= PHASE_FOUR_REMOTES => (4, true, Enforcement::Enforced),
            t if t >= PHASE_THREE_REMOTES => (3, true, Enforcement::Enforced),
            t if t >= PHASE_ENFORCED => (2, false, Enforcement::Enforced),
            _ => (2, false, Enforcement::ReportOnly),
        };
        QuorumPolicy {
            min_remotes,
            require_rir_diversity,
            enforcement,
        }
    }

    /// The same rule, computed but never stopping issuance (shadow or report-only mode).
    pub fn report_only(self) -> QuorumPolicy {
        QuorumPolicy {
            enforcement: Enforcement::ReportOnly,
            ..self
        }
    }
}

/// BR 3.2.2.9 table: with 2–5 remotes used, 1 may fail to corroborate; with 6 or more, 2.
/// Fewer than 2 remotes can never form a quorum.
pub fn allowed_non_corroborations(remotes_used: usize) -> Option<usize> {
    match remotes_used {
        0 | 1 => None,
        2..=5 => Some(1),
        _ => Some(2),
    }
}

/// One remote's state in one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoteState {
    /// No answer yet.
    Pending,
    /// It corroborated (pass).
    Corroborated,
    /// It did not: a fail, an error, a timeout or an unsupported check (as Boulder counts them).
    NotCorroborated,
}

/// One remote perspective used in an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteOutcome {
    /// The perspective.
    pub perspective_id: PerspectiveId,
    /// Its RIR region.
    pub rir: Rir,
    /// What it said so far.
    pub state: RemoteState,
}

/// Why an attempt did not reach quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shortfall {
    /// Fewer remotes used than the phase-in row requires.
    TooFewRemotes {
        /// Remotes used.
        used: usize,
        /// Remotes required.
        required: usize,
    },
    /// More non-corroborations than the table allows.
    TooManyFailures {
        /// Remotes that did not corroborate.
        failed: usize,
        /// How many may fail.
        allowed: usize,
    },
    /// The corroborating remotes cannot span two RIR regions.
    RirDiversity {
        /// Distinct RIRs among the corroborating (and still possible) remotes.
        corroborating_rirs: usize,
    },
}

/// The decision so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Pending answers could still go either way.
    Undecided,
    /// Quorum holds whatever the pending answers say.
    Corroborated,
    /// Quorum cannot hold whatever the pending answers say.
    NotCorroborated(Shortfall),
}

/// Counts behind a verdict, for logs (BR 5.4.1 2.8: "3/4").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Remotes used (attempted), pending included.
    pub used: usize,
    /// Remotes that corroborated.
    pub corroborated: usize,
    /// Remotes that did not.
    pub failed: usize,
    /// Remotes not yet answered.
    pub pending: usize,
    /// Non-corroborations allowed for `used` (0 when fewer than 2 remotes).
    pub allowed_failures: usize,
    /// Distinct RIRs of the corroborating remotes, sorted.
    pub corroborating_rirs: Vec<Rir>,
}

/// The quorum verdict of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The decision.
    pub decision: Decision,
    /// The counts.
    pub tally: Tally,
    /// The enforcement of the policy used.
    pub enforcement: Enforcement,
}

impl Verdict {
    /// True when issuance may proceed: quorum holds, or the policy is report-only and the
    /// decision is final (the caller still logs the shortfall).
    pub fn permits_issuance(&self) -> bool {
        matches!(
            (&self.decision, self.enforcement),
            (Decision::Corroborated, _) | (Decision::NotCorroborated(_), Enforcement::ReportOnly)
        )
    }
}

/// The same perspective was listed twice: each remote counts once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// A perspective id appears twice.
    #[error("perspective {0} is listed twice in one attempt")]
    DuplicatePerspective(PerspectiveId),
}

/// Evaluates an attempt, possibly before every remote has answered (early decision).
///
/// BR 3.2.2.9: "used" means attempted, so pending remotes count toward the table row;
/// a remote that errors or times out is a non-corroboration. Diversity is over the remotes that
/// corroborate (standards digest §1: 3 remotes, 1 failure → the 2 passing must be in different
/// RIRs).
pub fn evaluate(policy: &QuorumPolicy, remotes: &[RemoteOutcome]) -> Result<Verdict, QuorumError> {
    let mut seen = HashSet::new();
    for remote in remotes {
        if !seen.insert(&remote.perspective_id) {
            return Err(QuorumError::DuplicatePerspective(
                remote.perspective_id.clone(),
            ));
        }
    }
    let count = |state| remotes.iter().filter(|r| r.state == state).count();
    let used = remotes.len();
    let corroborated = count(RemoteState::Corroborated);
    let failed = count(RemoteState::NotCorroborated);
    let pending = count(RemoteState::Pending);
    let allowed = allowed_non_corroborations(used);
    let rirs_of = |states: &[RemoteState]| -> BTreeSet<Rir> {
        remotes
            .iter()
            .filter(|r| states.contains(&r.state))
            .map(|r| r.rir)
            .collect()
    };
    let corroborating_rirs = rirs_of(&[RemoteState::Corroborated]);
    let tally = Tally {
        used,
        corroborated,
        failed,
        pending,
        allowed_failures: allowed.unwrap_or(0),
        corroborating_rirs: corroborating_rirs.iter().copied().collect(),
    };
    let verdict = |decision| Verdict {
        decision,
        tally: tally.clone(),
        enforcement: policy.enforcement,
    };

    let required = policy.min_remotes.max(2);
    let Some(allowed) = allowed.filter(|_| used >= required) else {
        return Ok(verdict(Decision::NotCorroborated(
            Shortfall::TooFewRemotes { used, required },
        )));
    };
    if failed > allowed {
        return Ok(verdict(Decision::NotCorroborated(
            Shortfall::TooManyFailures { failed, allowed },
        )));
    }
    if policy.require_rir_diversity {
        // Even if every pending remote corroborates, could the set span two regions?
        let possible = rirs_of(&[RemoteState::Corroborated, RemoteState::Pending]);
        if possible.len() < 2 {
            return Ok(verdict(Decision::NotCorroborated(
                Shortfall::RirDiversity {
                    corroborating_rirs: possible.len(),
                },
            )));
        }
    }
    let diverse_now = !policy.require_rir_diversity || corroborating_rirs.len() >= 2;
    if failed + pending <= allowed && diverse_now {
        return Ok(verdict(Decision::Corroborated));
    }
    if pending == 0 {
        // Everything answered, failures within the table, but not diverse enough.
        return Ok(verdict(Decision::NotCorroborated(
            Shortfall::RirDiversity {
                corroborating_rirs: corroborating_rirs.len(),
            },
        )));
    }
    Ok(verdict(Decision::Undecided))
}

#[cfg(test)]
mod tests;
