//! The report as plain text for a terminal: per target the verdict, the rule, a table with one
//! row per perspective, and the findings with each side's quoted evidence.

use std::fmt::Write as _;

use super::{printable, shorten};
use crate::report::{Report, Row, TargetReport};
use crate::verdict::rule_text;

/// Widest evidence cell in the table; the findings quote evidence in full.
const EVIDENCE_WIDTH: usize = 110;

/// Renders the whole report.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for target in &report.targets {
        render_target(&mut out, target);
    }
    let _ = writeln!(
        out,
        "verdict: issuance {} (request {})",
        if report.permitted {
            "permitted"
        } else {
            "REFUSED"
        },
        report.request_id
    );
    out
}

fn render_target(out: &mut String, target: &TargetReport) {
    let verdict = &target.verdict;
    let _ = writeln!(
        out,
        "{} [{}]: {}",
        printable(&target.identifier),
        target.check,
        verdict.summary
    );
    let _ = writeln!(
        out,
        "  rule: {}",
        rule_text(&verdict.policy, &verdict.rule_date)
    );
    let _ = writeln!(out);
    table(out, &target.rows);
    let _ = writeln!(out);
    if target.findings.is_empty() {
        let _ = writeln!(out, "  findings: none (the perspectives agree)");
    } else {
        let _ = writeln!(out, "  findings:");
    }
    for (number, finding) in target.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. [{}] {}",
            number + 1,
            finding.cause.as_str(),
            printable(&finding.title)
        );
        for side in &finding.sides {
            let names: Vec<&str> = side.perspectives.iter().map(|p| p.as_str()).collect();
            let _ = writeln!(out, "     {}: {}", printable(&side.label), names.join(", "));
            for line in &side.evidence {
                let _ = writeln!(out, "       > {}", printable(line));
            }
        }
        let _ = writeln!(out, "     what to do: {}", printable(&finding.advice));
    }
    let _ = writeln!(out);
}

fn table(out: &mut String, rows: &[Row]) {
    let header = [
        "PERSPECTIVE",
        "RIR",
        "OUTCOME",
        "PROBLEM",
        "DNSSEC",
        "ELAPSED",
        "EVIDENCE",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                row.perspective.to_string(),
                row.rir.to_string(),
                row.outcome.clone(),
                row.problem.clone().unwrap_or_else(|| "-".into()),
                row.dnssec.clone().unwrap_or_else(|| "-".into()),
                row.elapsed_ms
                    .map_or_else(|| "-".into(), |ms| format!("{ms} ms")),
                shorten(&printable(&row.evidence), EVIDENCE_WIDTH),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, row: &[&str]| {
        let mut text = String::from("  ");
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == row.len() {
                text.push_str(cell);
            } else {
                let _ = write!(text, "{cell:<width$}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(out, &header);
    for row in &cells {
        line(out, &row.each_ref().map(String::as_str));
    }
}
