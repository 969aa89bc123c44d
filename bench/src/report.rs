//! How a run is shown: the summary table, the `--json` document and the `--svg` chart of a sweep.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::load::PhaseReport;

/// The summary table of one phase, as printed.
pub(crate) fn table(title: &str, report: &PhaseReport) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{title}");
    let level = if report.shape == "open" {
        format!("open loop, {:.0} requests/s offered", report.level)
    } else {
        format!("closed loop, {:.0} requests in flight", report.level)
    };
    let _ = writeln!(text, "  shape            {level}");
    let _ = writeln!(
        text,
        "  checks           {} in {:.1} s ({} requests), {} passed",
        report.checks, report.seconds, report.requests, report.passed
    );
    let _ = writeln!(text, "  checks/s         {:.0}", report.checks_per_second);
    let row = |map: &std::collections::BTreeMap<String, f64>| {
        ["p50", "p90", "p99", "p99.9", "max"]
            .iter()
            .map(|key| format!("{key} {:.3}", map.get(*key).copied().unwrap_or(0.0)))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(text, "  latency ms       {}", row(&report.latency_ms));
    if report.shape == "open" {
        let _ = writeln!(text, "  service ms       {}", row(&report.service_ms));
    }
    if report.errors.is_empty() {
        let _ = writeln!(text, "  failures         none");
    } else {
        for (kind, count) in &report.errors {
            let _ = writeln!(text, "  failures         {kind}: {count}");
        }
    }
    if let Some(us) = report.node_cpu_us_per_check {
        let _ = writeln!(text, "  node CPU         {us:.1} µs/check");
    }
    if let Some(us) = report.fixture_cpu_us_per_check {
        let _ = writeln!(text, "  fixture CPU      {us:.1} µs/check");
    }
    if let Some(bytes) = report.node_rss_peak_bytes {
        let _ = writeln!(
            text,
            "  node RSS peak    {:.1} MiB",
            bytes as f64 / 1048576.0
        );
    }
    if let Some(qps) = report.dns_queries_per_second {
        let _ = writeln!(text, "  DNS queries/s    {qps:.0}");
        // Queries the authoritative server saw per check: what politeness (coalescing,
        // caching) saves the DNS hosts, independent of the build's speed.
        if report.checks_per_second > 0.0 {
            let _ = writeln!(
                text,
                "  DNS queries/check {:.2}",
                qps / report.checks_per_second
            );
        }
    }
    if report.not_sent > 0 {
        let _ = writeln!(
            text,
            "  not sent         {} (too many outstanding)",
            report.not_sent
        );
    }
    text
}

/// Writes `value` as pretty JSON to `path`.
pub(crate) fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes a latency-vs-throughput chart of a sweep: p50 and p99 (ms, log scale) against
/// achieved checks/s.
pub(crate) fn write_svg(path: &Path, steps: &[PhaseReport], bound_ms: f64) -> anyhow::Result<()> {
    let (width, height, margin) = (720.0, 420.0, 60.0);
    let max_x = steps
        .iter()
        .map(|s| s.checks_per_second)
        .fold(1.0, f64::max)
        * 1.05;
    let max_ms = steps
        .iter()
        .map(PhaseReport::p99_ms)
        .filter(|v| v.is_finite())
        .fold(bound_ms, f64::max)
        * 2.0;
    let min_ms = 0.01_f64;
    let x = |v: f64| margin + v / max_x * (width - 2.0 * margin);
    let y = |ms: f64| {
        let ms = ms.clamp(min_ms, max_ms);
        height - margin - (ms / min_ms).ln() / (max_ms / min_ms).ln() * (height - 2.0 * margin)
    };
    let line = |key: &str| {
        steps
            .iter()
            .map(|s| {
                let v = s.latency_ms.get(key).copied().unwrap_or(0.0);
                format!("{:.1},{:.1}", x(s.checks_per_second), y(v))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{margin}\" y=\"24\" font-size=\"14\">mpic-bench sweep: latency vs throughput</text>\n\
         <line x1=\"{margin}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{margin}\" y1=\"{margin}\" x2=\"{margin}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\">checks/s (max {max_x:.0})</text>\n\
         <text x=\"14\" y=\"{cy}\" transform=\"rotate(-90 14 {cy})\" text-anchor=\"middle\">latency ms (log)</text>\n",
        b = height - margin,
        r = width - margin,
        cx = width / 2.0,
        xl = height - 20.0,
        cy = height / 2.0,
    );
    for tick in [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
        if tick <= max_ms {
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{tick}</text>",
                margin - 4.0,
                y(tick) + 4.0
            );
        }
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{margin}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"red\" stroke-dasharray=\"4\"/>\n\
         <text x=\"{1:.1}\" y=\"{2:.1}\" text-anchor=\"end\" fill=\"red\">p99 bound {bound_ms} ms</text>",
        y(bound_ms),
        width - margin,
        y(bound_ms) - 4.0
    );
    for (key, colour) in [("p50", "steelblue"), ("p99", "darkorange")] {
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{key}</text>",
            line(key),
            width - margin + 4.0,
            steps
                .last()
                .map(|s| y(s.latency_ms.get(key).copied().unwrap_or(0.0)))
                .unwrap_or(0.0)
        );
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}
