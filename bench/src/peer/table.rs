//! The side-by-side table of `mpic-bench peer`, its JSON rows, and the run's verdict (no wrong
//! answer, no subject that answered nothing).

use std::fmt::Write as _;

use anyhow::bail;

/// One subject on one check kind.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    /// `caa`, `dns-01` or `http-01`.
    pub(crate) kind: &'static str,
    /// Who checked: Open MPIC, our engine, our binary.
    pub(crate) subject: String,
    /// Checks answered, warm-up included (the names used).
    pub(crate) checks: u64,
    /// Checks answered in the measured run.
    pub(crate) measured_checks: u64,
    /// Seconds the measured run took.
    pub(crate) seconds: f64,
    /// Checks per second in the measured run.
    pub(crate) checks_per_second: f64,
    /// The subject's CPU µs per check (the Python process; this process for the engine; the
    /// node process for the binary).
    pub(crate) cpu_us_per_check: Option<f64>,
    /// Median check latency, ms.
    pub(crate) p50_ms: f64,
    /// 99th percentile check latency, ms.
    pub(crate) p99_ms: f64,
    /// Checks whose verdict was not the expected pass (warm-up included).
    pub(crate) wrong: u64,
    /// Knot's and nginx's CPU µs per check.
    pub(crate) servers_cpu_us_per_check: Option<f64>,
    /// Open MPIC's CPU per check over this subject's.
    pub(crate) cpu_ratio_to_open_mpic: Option<f64>,
}

fn optional(value: Option<f64>, precision: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.precision$}"))
}

/// The table as printed.
pub(crate) fn render(rows: &[Row]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "{:<8} {:<34} {:>9} {:>12} {:>8} {:>8} {:>6} {:>14} {:>15}",
        "kind",
        "subject",
        "checks/s",
        "CPU µs/check",
        "p50 ms",
        "p99 ms",
        "wrong",
        "Knot+nginx µs",
        "CPU vs Open MPIC"
    );
    for row in rows {
        let ratio = match row.cpu_ratio_to_open_mpic {
            Some(ratio) if row.subject.starts_with("Open MPIC") => format!("{ratio:.1}×"),
            Some(ratio) => format!("{ratio:.1}× less"),
            None => "-".to_owned(),
        };
        let _ = writeln!(
            text,
            "{:<8} {:<34} {:>9.0} {:>12} {:>8.2} {:>8.2} {:>6} {:>14} {:>15}",
            row.kind,
            row.subject,
            row.checks_per_second,
            optional(row.cpu_us_per_check, 1),
            row.p50_ms,
            row.p99_ms,
            row.wrong,
            optional(row.servers_cpu_us_per_check, 1),
            ratio
        );
    }
    text
}

/// Fails naming every row with a wrong answer or no answered check.
pub(crate) fn verdict(rows: &[Row]) -> anyhow::Result<()> {
    let bad: Vec<String> = rows
        .iter()
        .filter(|row| row.wrong > 0 || row.measured_checks == 0)
        .map(|row| {
            format!(
                "{} {}: {} wrong, {} checks",
                row.kind, row.subject, row.wrong, row.measured_checks
            )
        })
        .collect();
    if !bad.is_empty() {
        bail!("{}", bad.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(subject: &str, wrong: u64, checks: u64, ratio: Option<f64>) -> Row {
        Row {
            kind: "caa",
            subject: subject.to_owned(),
            checks,
            measured_checks: checks,
            seconds: 1.0,
            checks_per_second: checks as f64,
            cpu_us_per_check: Some(891.0),
            p50_ms: 1.5,
            p99_ms: 9.25,
            wrong,
            servers_cpu_us_per_check: None,
            cpu_ratio_to_open_mpic: ratio,
        }
    }

    #[test]
    fn table_shows_the_ratio_and_the_verdict_fails_on_wrong_or_silent_rows() {
        let rows = vec![
            row("Open MPIC (open-mpic-core, uvloop)", 0, 1102, Some(1.0)),
            row("engine in-process", 0, 5000, Some(17.46)),
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "caa      Open MPIC (open-mpic-core, uvloop)      1102        891.0     1.50     9.25      0              -            1.0×"
        );
        assert!(
            lines[2].ends_with("     0              -      17.5× less"),
            "{text}"
        );
        assert!(verdict(&rows).is_ok());
        let wrong = verdict(&[row("engine in-process", 2, 10, None)]).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "caa engine in-process: 2 wrong, 10 checks"
        );
        let silent = verdict(&[row("binary over QUIC, signed", 0, 0, None)]).unwrap_err();
        assert_eq!(
            silent.to_string(),
            "caa binary over QUIC, signed: 0 wrong, 0 checks"
        );
    }
}
