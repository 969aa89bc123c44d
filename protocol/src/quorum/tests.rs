use super::*;

fn remote(id: &str, rir: Rir, state: RemoteState) -> RemoteOutcome {
    RemoteOutcome {
        perspective_id: PerspectiveId::new(id).unwrap(),
        rir,
        state,
    }
}

use RemoteState::{Corroborated as Ok_, NotCorroborated as No, Pending as Wait};
use Rir::{Apnic, Arin, RipeNcc};

/// One remote in a compact case table.
type Spec = (Rir, RemoteState);

/// Remotes from a compact spec: (rir, state) per remote, ids r0, r1, ...
fn remotes(spec: &[(Rir, RemoteState)]) -> Vec<RemoteOutcome> {
    spec.iter()
        .enumerate()
        .map(|(i, (rir, state))| remote(&format!("r{i}"), *rir, *state))
        .collect()
}

const NO_DIVERSITY: QuorumPolicy = QuorumPolicy {
    min_remotes: 2,
    require_rir_diversity: false,
    enforcement: Enforcement::Enforced,
};
const WITH_DIVERSITY: QuorumPolicy = QuorumPolicy {
    min_remotes: 3,
    require_rir_diversity: true,
    enforcement: Enforcement::Enforced,
};

#[test]
fn br_table_allowed_non_corroborations() {
    let cases = [
        (0, None),
        (1, None),
        (2, Some(1)),
        (3, Some(1)),
        (4, Some(1)),
        (5, Some(1)),
        (6, Some(2)),
        (7, Some(2)),
        (10, Some(2)),
    ];
    for (used, allowed) in cases {
        assert_eq!(allowed_non_corroborations(used), allowed, "{used} remotes");
    }
}

#[test]
fn phase_in_dates_switch_at_midnight_utc() {
    let row = |min, diversity, enforcement| QuorumPolicy {
        min_remotes: min,
        require_rir_diversity: diversity,
        enforcement,
    };
    let cases = [
        (
            "before MPIC",
            PHASE_MONITORING - 1,
            row(2, false, Enforcement::ReportOnly),
        ),
        (
            "2025-03-15 monitoring",
            PHASE_MONITORING,
            row(2, false, Enforcement::ReportOnly),
        ),
        (
            "day before enforcement",
            PHASE_ENFORCED - 1,
            row(2, false, Enforcement::ReportOnly),
        ),
        (
            "2025-09-15 enforced",
            PHASE_ENFORCED,
            row(2, false, Enforcement::Enforced),
        ),
        (
            "day before 3 remotes",
            PHASE_THREE_REMOTES - 1,
            row(2, false, Enforcement::Enforced),
        ),
        (
            "2026-03-15 three + RIR",
            PHASE_THREE_REMOTES,
            row(3, true, Enforcement::Enforced),
        ),
        (
            "day before 4 remotes",
            PHASE_FOUR_REMOTES - 1,
            row(3, true, Enforcement::Enforced),
        ),
        (
            "2026-06-15 four",
            PHASE_FOUR_REMOTES,
            row(4, true, Enforcement::Enforced),
        ),
        (
            "day before 5 remotes",
            PHASE_FIVE_REMOTES - 1,
            row(4, true, Enforcement::Enforced),
        ),
        (
            "2026-12-15 five",
            PHASE_FIVE_REMOTES,
            row(5, true, Enforcement::Enforced),
        ),
        ("2030", 1_900_000_000, row(5, true, Enforcement::Enforced)),
    ];
    for (name, at, expected) in cases {
        assert_eq!(QuorumPolicy::in_force_at(at), expected, "{name}");
    }
}

fn decision(policy: &QuorumPolicy, spec: &[(Rir, RemoteState)]) -> Decision {
    evaluate(policy, &remotes(spec)).unwrap().decision
}

#[test]
fn every_row_of_the_table_at_its_failure_limit() {
    // n remotes, `allowed` failing: corroborated; one more failing: not.
    for used in 2..=8usize {
        let allowed = allowed_non_corroborations(used).unwrap();
        let at_limit: Vec<_> = (0..used)
            .map(|i| (Arin, if i < allowed { No } else { Ok_ }))
            .collect();
        assert_eq!(
            decision(&NO_DIVERSITY, &at_limit),
            Decision::Corroborated,
            "{used} remotes, {allowed} failed"
        );
        let over: Vec<_> = (0..used)
            .map(|i| (Arin, if i <= allowed { No } else { Ok_ }))
            .collect();
        assert_eq!(
            decision(&NO_DIVERSITY, &over),
            Decision::NotCorroborated(Shortfall::TooManyFailures {
                failed: allowed + 1,
                allowed
            }),
            "{used} remotes, {} failed",
            allowed + 1
        );
    }
}

#[test]
fn too_few_remotes_never_corroborate() {
    let five = QuorumPolicy::in_force_at(PHASE_FIVE_REMOTES);
    assert_eq!(
        decision(
            &five,
            &[(Arin, Ok_), (RipeNcc, Ok_), (Apnic, Ok_), (Arin, Ok_)]
        ),
        Decision::NotCorroborated(Shortfall::TooFewRemotes {
            used: 4,
            required: 5
        })
    );
    let lax = QuorumPolicy {
        min_remotes: 1,
        ..NO_DIVERSITY
    };
    assert_eq!(
        decision(&lax, &[(Arin, Ok_)]),
        Decision::NotCorroborated(Shortfall::TooFewRemotes {
            used: 1,
            required: 2
        })
    );
    assert_eq!(
        decision(&lax, &[]),
        Decision::NotCorroborated(Shortfall::TooFewRemotes {
            used: 0,
            required: 2
        })
    );
}

#[test]
fn rir_diversity_is_over_the_corroborating_remotes() {
    // Digest §1 example: 3 remotes, 1 failure, the 2 passing in one RIR -> not corroborated.
    assert_eq!(
        decision(&WITH_DIVERSITY, &[(Arin, Ok_), (Arin, Ok_), (RipeNcc, No)]),
        Decision::NotCorroborated(Shortfall::RirDiversity {
            corroborating_rirs: 1
        })
    );
    assert_eq!(
        decision(
            &WITH_DIVERSITY,
            &[(Arin, Ok_), (RipeNcc, Ok_), (RipeNcc, No)]
        ),
        Decision::Corroborated
    );
    // Three passing in one region is still one region.
    assert_eq!(
        decision(&WITH_DIVERSITY, &[(Apnic, Ok_), (Apnic, Ok_), (Apnic, Ok_)]),
        Decision::NotCorroborated(Shortfall::RirDiversity {
            corroborating_rirs: 1
        })
    );
    // Without the rule (before 2026-03-15) the same set corroborates.
    assert_eq!(
        decision(
            &QuorumPolicy {
                min_remotes: 3,
                ..NO_DIVERSITY
            },
            &[(Apnic, Ok_), (Apnic, Ok_), (Apnic, Ok_)]
        ),
        Decision::Corroborated
    );
}

#[test]
fn early_decisions() {
    let cases: [(&str, &[Spec], Decision); 7] = [
        (
            "enough passes, one pending may fail",
            &[(Arin, Ok_), (RipeNcc, Ok_), (Apnic, Wait)],
            Decision::Corroborated,
        ),
        (
            "two failed already",
            &[(Arin, No), (RipeNcc, No), (Apnic, Wait), (Arin, Wait)],
            Decision::NotCorroborated(Shortfall::TooManyFailures {
                failed: 2,
                allowed: 1,
            }),
        ),
        (
            "one failed, two pending",
            &[(Arin, Ok_), (RipeNcc, No), (Apnic, Wait), (Arin, Wait)],
            Decision::Undecided,
        ),
        (
            "all pending",
            &[(Arin, Wait), (RipeNcc, Wait), (Apnic, Wait)],
            Decision::Undecided,
        ),
        (
            "diversity impossible with pending",
            &[(Arin, Ok_), (Arin, Wait), (RipeNcc, No)],
            Decision::NotCorroborated(Shortfall::RirDiversity {
                corroborating_rirs: 1,
            }),
        ),
        (
            "diversity still possible",
            &[(Arin, Ok_), (Arin, Ok_), (RipeNcc, Wait)],
            Decision::Undecided,
        ),
        (
            "failures beat diversity",
            &[(Arin, No), (Arin, No), (Arin, Ok_)],
            Decision::NotCorroborated(Shortfall::TooManyFailures {
                failed: 2,
                allowed: 1,
            }),
        ),
    ];
    for (name, spec, expected) in cases {
        assert_eq!(decision(&WITH_DIVERSITY, spec), expected, "{name}");
    }
}

#[test]
fn tally_counts_for_the_log() {
    let verdict = evaluate(
        &WITH_DIVERSITY,
        &remotes(&[(RipeNcc, Ok_), (Arin, Ok_), (Arin, No), (Apnic, Wait)]),
    )
    .unwrap();
    assert_eq!(
        verdict.tally,
        Tally {
            used: 4,
            corroborated: 2,
            failed: 1,
            pending: 1,
            allowed_failures: 1,
            corroborating_rirs: vec![Arin, RipeNcc]
        }
    );
    assert_eq!(
        verdict.decision,
        Decision::Undecided,
        "the pending one may fail too: 2 failures > 1"
    );
}

#[test]
fn a_perspective_listed_twice_is_an_error() {
    let twice = vec![
        remote("fra-1", RipeNcc, Ok_),
        remote("fra-1", RipeNcc, Ok_),
        remote("nyc-1", Arin, Ok_),
    ];
    assert_eq!(
        evaluate(&WITH_DIVERSITY, &twice),
        Err(QuorumError::DuplicatePerspective(
            PerspectiveId::new("fra-1").unwrap()
        ))
    );
}

#[test]
fn report_only_permits_a_final_verdict_either_way() {
    let report = WITH_DIVERSITY.report_only();
    let failing = evaluate(&report, &remotes(&[(Arin, No), (Arin, No), (RipeNcc, Ok_)])).unwrap();
    assert_eq!(
        failing.decision,
        Decision::NotCorroborated(Shortfall::TooManyFailures {
            failed: 2,
            allowed: 1
        })
    );
    assert!(failing.permits_issuance());
    let enforced = evaluate(
        &WITH_DIVERSITY,
        &remotes(&[(Arin, No), (Arin, No), (RipeNcc, Ok_)]),
    )
    .unwrap();
    assert!(!enforced.permits_issuance());
    let undecided = evaluate(
        &report,
        &remotes(&[(Arin, Wait), (RipeNcc, Wait), (Apnic, Wait)]),
    )
    .unwrap();
    assert!(
        !undecided.permits_issuance(),
        "nothing is permitted before the verdict is final"
    );
    let passing = evaluate(
        &WITH_DIVERSITY,
        &remotes(&[(Arin, Ok_), (RipeNcc, Ok_), (Apnic, Ok_)]),
    )
    .unwrap();
    assert!(passing.permits_issuance());
}
