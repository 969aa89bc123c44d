//! DNSSEC against real servers: a hierarchy signed at test time (root `.`, TLD `lab.`, leaves
//! with NSEC, NSEC3 and NSEC3 opt-out, an unsigned delegation, an algorithm the node lacks,
//! bogus zones, a glueless delegation, a lame server) served by Knot DNS on loopback
//! (`mpic_tests::knot`). The real `mpic-node check` runs each case in iterative mode (root hints
//! plus the root DS) and in forward mode (an `unbound` resolver on the same root); each case
//! asserts the exact status and the check's outcome, and `unbound-host` (libunbound) confirms the
//! status independently in the same run.

use std::net::SocketAddr;
use std::process::Command;

use mpic_tests::knot::{Independent, KnotLab};

/// One case: the `check` arguments, the name and type the independent validator asks, and the
/// expectations (status, outcome, problem kind).
struct Case {
    args: Vec<String>,
    name: &'static str,
    record_type: &'static str,
    dnssec: &'static str,
    outcome: &'static str,
    problem: Option<&'static str>,
    /// For a bogus case: words the problem detail must contain (why it is bogus).
    reason: Option<&'static str>,
}

impl Case {
    fn because(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
}

fn caa(domain: &'static str, dnssec: &'static str, problem: Option<&'static str>) -> Case {
    Case {
        args: ["caa", domain, "--issuer-domain", "ca.example"]
            .map(String::from)
            .to_vec(),
        name: domain,
        record_type: "CAA",
        dnssec,
        outcome: if problem.is_none() { "pass" } else { "fail" },
        problem,
        reason: None,
    }
}

fn txt(
    domain: &'static str,
    expect: &'static str,
    dnssec: &'static str,
    problem: Option<&'static str>,
) -> Case {
    Case {
        args: [
            "dcv",
            domain,
            "--method",
            "dns-change",
            "--record-type",
            "TXT",
            "--expect",
            // Every TXT value of the lab ends so (a Random Value has at least 16 characters).
            &format!("{expect}-random-value-0123"),
        ]
        .map(String::from)
        .to_vec(),
        name: domain,
        record_type: "TXT",
        dnssec,
        outcome: if problem.is_none() { "pass" } else { "fail" },
        problem,
        reason: None,
    }
}

fn cases() -> Vec<Case> {
    let bogus = Some("dnssec");
    vec![
        // Secure answers, NSEC zone (its server also serves its signed child sub.sec.lab.).
        caa("caa.sec.lab", "secure", None),
        caa("deny.sec.lab", "secure", Some("caa")),
        txt("www.sec.lab", "secure-www", "secure", None),
        caa("www.sub.sec.lab", "secure", None),
        // NODATA and NXDOMAIN (NSEC), then the climb to the apex.
        caa("www.sec.lab", "secure", None),
        caa("nope.sec.lab", "secure", None),
        // Below an empty non-terminal (ent.sec.lab.: no zone cut, a validated NODATA says so).
        caa("a.ent.sec.lab", "secure", None),
        // Wildcard answer and wildcard NODATA (NSEC).
        txt("x.wild.sec.lab", "wild-txt", "secure", None),
        caa("x.wild.sec.lab", "secure", None),
        // NSEC3: answer, NXDOMAIN, wildcard answer, wildcard NODATA, empty non-terminal.
        caa("caa.n3.lab", "secure", None),
        caa("nope.n3.lab", "secure", None),
        txt("x.wild.n3.lab", "wild-n3", "secure", None),
        caa("x.wild.n3.lab", "secure", None),
        txt("a.ent.n3.lab", "below-ent-n3", "secure", None),
        // NSEC3 opt-out: an unsigned delegation in the span, NXDOMAIN and a wildcard in it.
        caa("www.unsig.optout.lab", "insecure", None),
        caa("nope.optout.lab", "insecure", None),
        txt("x.wild.optout.lab", "wild-optout", "insecure", None),
        // CNAME into a signed zone and into an unsigned one.
        txt("cname.sec.lab", "secure-n3", "secure", None),
        caa("cname.sec.lab", "secure", None),
        txt("tounsigned.sec.lab", "insecure-www", "insecure", None),
        // Unsigned delegation; a zone whose only DS algorithm (ED448) the node lacks.
        caa("www.insecure.lab", "insecure", None),
        txt("www.unsupported.lab", "ed448", "insecure", None),
        // Glueless delegation, and a child whose parent's servers are glueless; a delegation
        // with one lame server.
        caa("www.glueless.lab", "secure", None),
        txt("www.kid.glueless.lab", "secure-kid", "secure", None),
        txt("www.lame.lab", "secure-lame", "secure", None),
        // CAA tags over 15 octets (RFC 8659 §4.1): ignored unless critical.
        caa("longtag.sec.lab", "secure", None),
        caa("critlong.sec.lab", "secure", Some("caa")),
        // Bogus: expired, tampered RDATA, DS mismatch, signatures stripped, denial missing.
        caa("www.expired.lab", "bogus", bogus).because("expired"),
        txt("www.tampered.lab", "tampered", "bogus", bogus).because("does not verify"),
        caa("www.dsmismatch.lab", "bogus", bogus).because("no DNSKEY matches the DS"),
        caa("www.stripped.lab", "bogus", bogus).because("no RRSIG"),
        caa("nope.nodenial.lab", "bogus", bogus).because("denial not validated"),
        // A wildcard expansion without the NSEC proving no closer name exists.
        txt("x.wild.nodenial.lab", "wild-bogus", "bogus", bogus)
            .because("wildcard answer without proof"),
    ]
}

/// Where the node's queries go.
enum Via<'a> {
    Iterative(&'a KnotLab),
    Forward(SocketAddr),
}

fn run(lab: &KnotLab, via: &Via<'_>, case: &Case) -> (Option<i32>, serde_json::Value) {
    let mut command = Command::new(mpic_tests::binary_path("mpic-node"));
    command
        .arg("check")
        .args(&case.args)
        .args(["--json", "--timeout", "10s", "--dnssec", "validate"])
        .arg("--trust-anchor")
        .arg(lab.anchor());
    match via {
        Via::Iterative(lab) => {
            command.arg("--root-hints").arg(lab.root_hints());
        }
        Via::Forward(resolver) => {
            command.args(["--resolver", &resolver.to_string()]);
        }
    }
    let output = command.output().unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{:?}: {}{}",
            case.args,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), json)
}

/// Runs every case and collects each mismatch, so one run shows them all.
fn check_all(lab: &KnotLab, via: &Via<'_>, mode: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    for case in cases() {
        let (code, json) = run(lab, via, &case);
        let got = (
            json["dnssec"].as_str().unwrap_or("-").to_string(),
            json["outcome"].as_str().unwrap_or("-").to_string(),
            json["problem"]["kind"].as_str().map(str::to_string),
            code,
        );
        let expected = (
            case.dnssec.to_string(),
            case.outcome.to_string(),
            case.problem.map(str::to_string),
            Some(if case.outcome == "pass" { 0 } else { 1 }),
        );
        let detail = json["problem"]["detail"].as_str().unwrap_or_default();
        let reason_missing = case.reason.is_some_and(|reason| !detail.contains(reason));
        if got != expected || reason_missing {
            wrong.push(format!(
                "{mode} {:?}: got {got:?}, expected {expected:?} because {:?}; detail {detail}",
                case.args, case.reason
            ));
        }
    }
    wrong
}

// One test per mode, each on its own block of loopback addresses (port 53), so they may run
// in parallel.
#[test]
fn knot_hierarchy_iterative_mode_matches_unbound() {
    let lab = KnotLab::start(1).unwrap();
    let mut wrong = Vec::new();
    for case in cases() {
        let independent = lab.unbound_host(case.name, case.record_type).unwrap();
        let expected = match case.dnssec {
            "secure" => Independent::Secure,
            "insecure" => Independent::Insecure,
            _ => Independent::Bogus,
        };
        if independent != expected {
            wrong.push(format!(
                "unbound-host {} {}: {independent:?}, our table says {}",
                case.name, case.record_type, case.dnssec
            ));
        }
    }
    wrong.extend(check_all(&lab, &Via::Iterative(&lab), "iterative"));
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn knot_hierarchy_forward_mode_through_unbound() {
    let mut lab = KnotLab::start(2).unwrap();
    let resolver = lab.start_forwarder().unwrap();
    let wrong = check_all(&lab, &Via::Forward(resolver), "forward");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// BR 3.2.2.8 against real servers, iterative mode: `deadins.lab.` and `deadsig.lab.` are
/// served only by the lame Knot on `.4`, which answers REFUSED. Under the unsigned delegation
/// the lookup (asked twice) passes with `--allow-lookup-failure`, proven insecure by `lab.`'s
/// validated NSEC denial of DS, and fails without it; under the signed one (a DS in `lab.`) it
/// fails either way (the zone's keys cannot be fetched: indeterminate, never insecure).
#[test]
fn knot_carve_out_passes_a_refused_caa_lookup_only_under_an_unsigned_delegation() {
    let lab = KnotLab::start(3).unwrap();
    let check = |domain: &str, allow: bool| {
        let mut command = Command::new(mpic_tests::binary_path("mpic-node"));
        command
            .args(["check", "caa", domain, "--issuer-domain", "ca.example"])
            .args(["--json", "--timeout", "10s", "--dnssec", "validate"])
            .arg("--trust-anchor")
            .arg(lab.anchor())
            .arg("--root-hints")
            .arg(lab.root_hints());
        if allow {
            command.arg("--allow-lookup-failure");
        }
        let output = command.output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (output.status.code(), json)
    };
    let (code, json) = check("www.deadins.lab", true);
    assert_eq!(
        (code, json["outcome"].as_str()),
        (Some(0), Some("pass")),
        "{json}"
    );
    assert_eq!(
        json["outcome_detail"], "permitted_by_lookup_failure",
        "{json}"
    );
    let failed = &json["evidence"]["permitted_by_lookup_failure"]["failed_lookups"];
    // The name and its parent both failed; each needed its own retry and proof.
    let names: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["www.deadins.lab.", "deadins.lab."], "{json}");
    for lookup in failed.as_array().unwrap() {
        assert_eq!(lookup["failure"], "refused", "{json}");
        assert_eq!(lookup["attempts"], 2, "{json}");
        assert_eq!(lookup["resolution"], "iterative", "{json}");
        assert_eq!(
            lookup["proof"], "deadins.lab. is a delegation from lab. without DS (validated denial)",
            "{json}"
        );
    }
    let cases = [
        ("www.deadins.lab", false, "not ask"),
        (
            "www.deadsig.lab",
            true,
            "is Indeterminate, not proven insecure",
        ),
        ("www.deadsig.lab", false, "not ask"),
    ];
    for (domain, allow, words) in cases {
        let (code, json) = check(domain, allow);
        let case = format!("{domain} allow={allow}: {json}");
        assert_eq!(code, Some(1), "{case}");
        assert_eq!(json["outcome"], "fail", "{case}");
        assert_eq!(json["problem"]["kind"], "dns", "{case}");
        assert_eq!(json["outcome_detail"], serde_json::Value::Null, "{case}");
        let detail = json["problem"]["detail"].as_str().unwrap();
        assert!(detail.contains("answered REFUSED"), "{case}");
        if allow {
            assert!(detail.contains(words), "{case}");
        }
    }
}
