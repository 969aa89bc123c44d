//! `mpic-bench summary DIR`: the performance table of `make bench`, read back from the JSON
//! files the standard runs wrote into `DIR` (`target/bench`), with each figure's goal and whether
//! it is met. Printed as Markdown, so the README's table is this output pasted.
#![allow(clippy::print_stdout, reason = "bench output")]

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// `mpic-bench summary`.
#[derive(Debug, clap::Args)]
pub(crate) struct SummaryArgs {
    /// The directory `make bench` wrote its JSON files into.
    #[arg(default_value = "target/bench")]
    dir: PathBuf,
}

/// Whether a smaller or a larger figure is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Lower,
    Higher,
}

/// One row of the table: where the figure is, how it reads, its goal.
struct Row {
    figure: &'static str,
    file: &'static str,
    /// JSON pointer of the figure inside the file.
    pointer: &'static str,
    unit: &'static str,
    /// Multiplies the stored value (e.g. bytes → KiB).
    scale: f64,
    goal: f64,
    better: Better,
}

const ROWS: &[Row] = &[
    Row {
        figure: "engine CAA, node CPU per check",
        file: "engine-caa.json",
        pointer: "/run/node_cpu_us_per_check",
        unit: "µs",
        scale: 1.0,
        goal: 20.0,
        better: Better::Lower,
    },
    Row {
        figure: "real binary over QUIC, CAA, signed and verified: node CPU per check",
        file: "quic-caa.json",
        pointer: "/run/node_cpu_us_per_check",
        unit: "µs",
        scale: 1.0,
        goal: 40.0,
        better: Better::Lower,
    },
    Row {
        figure: "same, checks/s with the harness on the same cores",
        file: "quic-caa.json",
        pointer: "/run/checks_per_second",
        unit: "/s",
        scale: 1.0,
        goal: 20_000.0,
        better: Better::Higher,
    },
    Row {
        figure: "memory per in-flight validation (10,000 in flight, 100 SANs)",
        file: "memory.json",
        pointer: "/memory/bytes_per_validation",
        unit: "KiB",
        scale: 1.0 / 1024.0,
        goal: 4.0,
        better: Better::Lower,
    },
    Row {
        figure: "p99 service latency at half the best rate (open loop, 1 SAN)",
        file: "sweep.json",
        pointer: "/sweep/half/service_ms/p99",
        unit: "ms",
        scale: 1.0,
        goal: 1.0,
        better: Better::Lower,
    },
    Row {
        figure: "DNSSEC validated / unvalidated lookups/s, ECDSA P-256",
        file: "dnssec-p256.json",
        pointer: "/ratio",
        unit: "",
        scale: 1.0,
        goal: 0.6,
        better: Better::Higher,
    },
    Row {
        figure: "DNSSEC validated / unvalidated lookups/s, Ed25519",
        file: "dnssec-ed25519.json",
        pointer: "/ratio",
        unit: "",
        scale: 1.0,
        goal: 0.6,
        better: Better::Higher,
    },
];

/// Prints the table; fails when a file or figure is missing (a run did not happen).
pub(crate) fn run(args: &SummaryArgs) -> anyhow::Result<()> {
    let mut lines = vec![
        "| figure | measured | goal | met |".to_string(),
        "|---|---|---|---|".to_string(),
    ];
    for row in ROWS {
        let value = figure(&args.dir, row)? * row.scale;
        let met = match row.better {
            Better::Lower => value <= row.goal,
            Better::Higher => value >= row.goal,
        };
        let bound = match row.better {
            Better::Lower => "≤",
            Better::Higher => "≥",
        };
        lines.push(format!(
            "| {} | {} {} | {bound} {} {} | {} |",
            row.figure,
            format_value(value),
            row.unit,
            format_value(row.goal),
            row.unit,
            if met { "yes" } else { "no" }
        ));
    }
    println!("{}", lines.join("\n"));
    Ok(())
}

fn figure(dir: &Path, row: &Row) -> anyhow::Result<f64> {
    let path = dir.join(row.file);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match json.pointer(row.pointer).and_then(Value::as_f64) {
        Some(value) if value.is_finite() => Ok(value),
        _ => bail!("{} has no number at {}", path.display(), row.pointer),
    }
}

/// Three significant figures for small values, whole numbers for large ones.
fn format_value(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, json: &Value) {
        std::fs::write(dir.join(file), json.to_string()).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn reads_every_figure_and_judges_it_against_its_goal() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let closed = |cpu: f64, rate: f64| serde_json::json!({"run": {"node_cpu_us_per_check": cpu, "checks_per_second": rate}});
        write(dir.path(), "engine-caa.json", &closed(19.5, 1.0));
        write(dir.path(), "quic-caa.json", &closed(95.0, 7000.0));
        write(
            dir.path(),
            "memory.json",
            &serde_json::json!({"memory": {"bytes_per_validation": 8192.0}}),
        );
        write(
            dir.path(),
            "sweep.json",
            &serde_json::json!({"sweep": {"half": {"service_ms": {"p99": 0.9}}}}),
        );
        write(
            dir.path(),
            "dnssec-p256.json",
            &serde_json::json!({"ratio": 0.79}),
        );
        let args = SummaryArgs {
            dir: dir.path().to_path_buf(),
        };
        // One file missing: the summary fails, naming it.
        let error = run_error(&args);
        assert!(error.contains("dnssec-ed25519.json"), "{error}");
        write(
            dir.path(),
            "dnssec-ed25519.json",
            &serde_json::json!({"ratio": 0.5}),
        );
        let values: Vec<f64> = ROWS
            .iter()
            .map(|row| figure(dir.path(), row).unwrap_or(f64::NAN) * row.scale)
            .collect();
        assert_eq!(values, vec![19.5, 95.0, 7000.0, 8.0, 0.9, 0.79, 0.5]);
        assert!(run(&args).is_ok());
    }

    fn run_error(args: &SummaryArgs) -> String {
        match run(args) {
            Ok(()) => String::from("no error"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn a_figure_that_is_not_a_number_is_an_error() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(
            dir.path(),
            "engine-caa.json",
            &serde_json::json!({"run": {}}),
        );
        let error = match figure(dir.path(), &ROWS[0]) {
            Ok(value) => panic!("read {value} from an empty run"),
            Err(error) => format!("{error}"),
        };
        assert!(error.contains("/run/node_cpu_us_per_check"), "{error}");
    }
}
