//! The soak's time series: one [`Sample`] every interval (node RSS and descriptors, requests in
//! flight, p50/p99 of what completed in it, errors by kind), the verdict on it (growth after
//! warm-up, p99 drift between windows) and the SVG plot of memory and p99 over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

/// What was seen in one sampling interval.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Sample {
    /// Seconds since the soak started (the end of the interval).
    pub(crate) at_seconds: f64,
    /// The fault active at the end of the interval (`clean` if none).
    pub(crate) phase: String,
    /// Node resident memory, bytes.
    pub(crate) rss_bytes: Option<u64>,
    /// Node open file descriptors.
    pub(crate) open_fds: Option<u64>,
    /// `mpic_node_requests_in_flight` at the end of the interval.
    pub(crate) node_in_flight: Option<f64>,
    /// Requests the harness had sent and not yet seen answered.
    pub(crate) client_in_flight: u64,
    /// Requests completed in the interval.
    pub(crate) completed: u64,
    /// p50 latency of those, milliseconds.
    pub(crate) p50_ms: f64,
    /// p99 latency of those, milliseconds.
    pub(crate) p99_ms: f64,
    /// Checks that did not pass, and requests not answered, by kind, in the interval.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Checks sent so far.
    pub(crate) sent_checks: u64,
    /// Checks whose signed result verified so far.
    pub(crate) verified_checks: u64,
    /// `mpic_node_audit_write_errors_total` at the end of the interval.
    pub(crate) audit_write_errors: Option<f64>,
}

/// The bounds a soak must stay within after warm-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    /// Seconds of warm-up (not judged; the first sample after it is the baseline).
    pub(crate) warmup_seconds: f64,
    /// Most RSS growth over the baseline, bytes.
    pub(crate) rss_growth_bytes: u64,
    /// Most descriptor growth over the baseline.
    pub(crate) fd_growth: u64,
    /// A clean window's p99 may be at most this factor times the first clean window's ...
    pub(crate) p99_factor: f64,
    /// ... plus this many milliseconds (timer noise on a shared machine).
    pub(crate) p99_slack_ms: f64,
}

/// Per-window p99 (milliseconds) of requests sent while no fault was active, in window order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WindowP99 {
    /// The window's start, seconds since the soak started.
    pub(crate) from_seconds: f64,
    /// Its p99, milliseconds (`None` when nothing clean completed in it).
    pub(crate) p99_ms: Option<f64>,
    /// Clean requests completed in it.
    pub(crate) requests: u64,
}

/// Why the series breaks its bounds (empty when it does not). Growth is judged on the clean
/// samples after warm-up, floor against floor: a fault may hold memory and descriptors for its
/// window (a silent upstream keeps a socket open per outstanding query), but they must come
/// back.
pub(crate) fn judge(samples: &[Sample], windows: &[WindowP99], bounds: &Bounds) -> Vec<String> {
    let mut problems = Vec::new();
    let judged: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at_seconds > bounds.warmup_seconds && s.phase == "clean")
        .collect();
    // The floor of the first and of the last three clean samples: a transient spike (a CPU
    // stall on a shared machine) lifts neither, a leak lifts the last.
    let floor = |samples: &[&Sample], value: fn(&Sample) -> Option<u64>| {
        samples.iter().filter_map(|s| value(s)).min()
    };
    let first = &judged[..judged.len().min(3)];
    let last = &judged[judged.len().saturating_sub(3)..];
    let rss = |s: &Sample| s.rss_bytes;
    let fds = |s: &Sample| s.open_fds;
    if let (Some(base), Some(end)) = (floor(first, rss), floor(last, rss))
        && end > base + bounds.rss_growth_bytes
    {
        problems.push(format!(
            "RSS grew from {:.1} MiB to {:.1} MiB after warm-up (bound +{:.1} MiB)",
            mib(base),
            mib(end),
            mib(bounds.rss_growth_bytes)
        ));
    }
    if let (Some(base), Some(end)) = (floor(first, fds), floor(last, fds))
        && end > base + bounds.fd_growth
    {
        problems.push(format!(
            "open descriptors grew from {base} to {end} after warm-up (bound +{})",
            bounds.fd_growth
        ));
    }
    let measured: Vec<(f64, f64)> = windows
        .iter()
        .filter_map(|w| Some((w.from_seconds, w.p99_ms?)))
        .collect();
    if let Some(&(_, first)) = measured.first() {
        let bound = first * bounds.p99_factor + bounds.p99_slack_ms;
        for &(from, p99) in &measured[1..] {
            if p99 > bound {
                problems.push(format!(
                    "p99 drifted: {p99:.2} ms in the window from {from:.0} s, first window {first:.2} ms (bound {bound:.2} ms)"
                ));
            }
        }
    }
    problems
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// Writes the plot: RSS (MiB, left axis) and p99 (ms, right axis) against time, fault windows
/// shaded. Drawn like bench's sweep chart (`report::write_svg`): plain SVG, no dependency.
pub(crate) fn write_svg(
    path: &Path,
    samples: &[Sample],
    faults: &[(String, f64, f64)],
) -> anyhow::Result<()> {
    let (width, height, margin) = (760.0, 420.0, 64.0);
    let max_t = samples.last().map_or(1.0, |s| s.at_seconds).max(1.0);
    let max_mib = samples
        .iter()
        .filter_map(|s| s.rss_bytes)
        .map(mib)
        .fold(1.0, f64::max)
        * 1.2;
    let max_ms = samples.iter().map(|s| s.p99_ms).fold(1.0, f64::max) * 1.2;
    let x = |t: f64| margin + t / max_t * (width - 2.0 * margin);
    let y = |v: f64, max: f64| height - margin - v / max * (height - 2.0 * margin);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{margin}\" y=\"24\" font-size=\"14\">mpic-bench soak: node RSS and p99 over time</text>\n\
         <line x1=\"{margin}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{margin}\" y1=\"{margin}\" x2=\"{margin}\" y2=\"{b}\" stroke=\"steelblue\"/>\n\
         <line x1=\"{r}\" y1=\"{margin}\" x2=\"{r}\" y2=\"{b}\" stroke=\"darkorange\"/>\n\
         <text x=\"{cx}\" y=\"{xl}\" text-anchor=\"middle\">seconds (of {max_t:.0})</text>\n\
         <text x=\"14\" y=\"{cy}\" transform=\"rotate(-90 14 {cy})\" text-anchor=\"middle\" fill=\"steelblue\">RSS MiB (max {max_mib:.0})</text>\n\
         <text x=\"{rl}\" y=\"{cy}\" transform=\"rotate(90 {rl} {cy})\" text-anchor=\"middle\" fill=\"darkorange\">p99 ms (max {max_ms:.0})</text>\n",
        b = height - margin,
        r = width - margin,
        rl = width - 14.0,
        cx = width / 2.0,
        xl = height - 20.0,
        cy = height / 2.0,
    );
    for (name, from, to) in faults {
        let _ = writeln!(
            svg,
            "<rect x=\"{:.1}\" y=\"{margin}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"grey\" opacity=\"0.15\"/>\n\
             <text x=\"{3:.1}\" y=\"{4:.1}\" font-size=\"10\" transform=\"rotate(90 {3:.1} {4:.1})\">{name}</text>",
            x(*from),
            (x(*to) - x(*from)).max(1.0),
            height - 2.0 * margin,
            x(*from) + 3.0,
            margin + 4.0,
        );
    }
    let rss: Vec<String> = samples
        .iter()
        .filter_map(|s| {
            Some(format!(
                "{:.1},{:.1}",
                x(s.at_seconds),
                y(mib(s.rss_bytes?), max_mib)
            ))
        })
        .collect();
    let p99: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s.at_seconds), y(s.p99_ms, max_ms)))
        .collect();
    for (points, colour) in [(rss, "steelblue"), (p99, "darkorange")] {
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    svg.push_str("</svg>\n");
    std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: Bounds = Bounds {
        warmup_seconds: 10.0,
        rss_growth_bytes: 10 << 20,
        fd_growth: 8,
        p99_factor: 2.0,
        p99_slack_ms: 5.0,
    };

    fn sample(at: f64, rss_mib: u64, fds: u64) -> Sample {
        Sample {
            at_seconds: at,
            phase: "clean".into(),
            rss_bytes: Some(rss_mib << 20),
            open_fds: Some(fds),
            ..Sample::default()
        }
    }

    fn window(from: f64, p99: f64) -> WindowP99 {
        WindowP99 {
            from_seconds: from,
            p99_ms: Some(p99),
            requests: 100,
        }
    }

    #[test]
    fn flat_series_passes() {
        let samples = [
            sample(10.0, 100, 40),
            sample(20.0, 30, 20),
            sample(30.0, 39, 27),
        ];
        assert_eq!(
            judge(&samples, &[window(0.0, 4.0), window(60.0, 12.9)], &BOUNDS),
            Vec::<String>::new()
        );
    }

    #[test]
    fn growth_after_warmup_fails_but_warmup_is_not_judged() {
        // The 10 s sample is warm-up (100 MiB, 40 fds); the baseline is the floor of the
        // first three after it, and the floor of the last three has grown.
        let samples = [
            sample(10.0, 100, 40),
            sample(20.0, 30, 20),
            sample(30.0, 35, 25),
            sample(40.0, 30, 20),
            sample(50.0, 42, 30),
            sample(60.0, 41, 29),
            sample(70.0, 43, 31),
        ];
        let problems = judge(&samples, &[], &BOUNDS);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("RSS grew from 30.0 MiB to 41.0 MiB"));
        assert!(problems[1].starts_with("open descriptors grew from 20 to 29"));
    }

    #[test]
    fn growth_inside_a_fault_window_is_not_judged() {
        let mut during = sample(30.0, 90, 640);
        during.phase = "dns-silent".into();
        let samples = [sample(20.0, 30, 20), during, sample(40.0, 31, 22)];
        assert_eq!(judge(&samples, &[], &BOUNDS), Vec::<String>::new());
        // A clean spike between flat samples is not growth; a raised floor is.
        let spike = [
            sample(20.0, 30, 20),
            sample(30.0, 31, 90),
            sample(40.0, 30, 21),
        ];
        assert_eq!(judge(&spike, &[], &BOUNDS), Vec::<String>::new());
        let leaked = [
            sample(20.0, 30, 20),
            sample(30.0, 30, 21),
            sample(40.0, 30, 20),
            sample(50.0, 31, 29),
            sample(60.0, 31, 30),
            sample(70.0, 31, 29),
        ];
        let problems = judge(&leaked, &[], &BOUNDS);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("open descriptors grew from 20 to 29"));
    }

    #[test]
    fn p99_drift_fails() {
        let windows = [
            window(0.0, 4.0),
            window(60.0, 13.1),
            WindowP99 {
                from_seconds: 120.0,
                p99_ms: None,
                requests: 0,
            },
        ];
        let problems = judge(&[], &windows, &BOUNDS);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("p99 drifted: 13.10 ms in the window from 60 s"));
    }

    #[test]
    fn svg_has_both_lines_and_fault_windows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("soak.svg");
        let samples = [sample(10.0, 30, 20), sample(20.0, 31, 20)];
        write_svg(&path, &samples, &[("dns-silent".into(), 12.0, 15.0)]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(">dns-silent</text>"));
    }
}
