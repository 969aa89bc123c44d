//! The report as one self-contained HTML page for a domain owner: no external assets (inline
//! CSS, no scripts), and every string that came from the network HTML-escaped.

use std::fmt::Write as _;

use crate::findings::Finding;
use crate::report::{Report, Row, TargetReport};
use crate::verdict::rule_text;

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;\
padding:0 1rem;color:#1d2430;background:#fafbfc;line-height:1.45}\
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin:2rem 0 .4rem}\
.meta{color:#5a6372;font-size:.9rem}\
.verdict{padding:.8rem 1rem;border-radius:.5rem;font-weight:600;margin:.6rem 0}\
.permitted{background:#e3f6e8;border:1px solid #7cc48e;color:#14532d}\
.refused{background:#fde8e8;border:1px solid #e08a8a;color:#7f1d1d}\
table{border-collapse:collapse;width:100%;font-size:.88rem;background:#fff}\
th,td{border:1px solid #d8dde5;padding:.35rem .5rem;text-align:left;vertical-align:top}\
th{background:#eef1f5}td.pass{color:#14532d;font-weight:600}\
td.fail,td.noresult{color:#7f1d1d;font-weight:600}\
code,.evidence{font-family:ui-monospace,'SFMono-Regular',Menlo,monospace;font-size:.82rem;\
word-break:break-all}\
.finding{background:#fff;border:1px solid #d8dde5;border-left:5px solid #d97706;\
border-radius:.4rem;padding:.6rem 1rem;margin:.8rem 0}\
.cause{display:inline-block;background:#fef3c7;color:#78350f;border-radius:.3rem;\
padding:0 .4rem;font-size:.8rem;font-family:ui-monospace,monospace;margin-right:.4rem}\
.sides{display:flex;gap:1rem;flex-wrap:wrap}.side{flex:1 1 20rem}\
.side h4{margin:.5rem 0 .2rem;font-size:.9rem}.side ul{margin:0;padding-left:1.1rem}\
.advice{margin-top:.5rem;font-size:.9rem}.none{color:#5a6372}";

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Renders the whole report as one page.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let names: Vec<String> = report
        .targets
        .iter()
        .map(|t| escape(&t.identifier))
        .collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>MPIC report: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Multi-perspective validation report</h1>\n\
         <p class=\"meta\">{} &middot; request <code>{}</code> &middot; generated {}</p>\n\
         <div class=\"verdict {}\">Overall: issuance {}</div>\n",
        names.join(", "),
        names.join(", "),
        escape(&report.request_id),
        escape(&report.generated_at),
        if report.permitted {
            "permitted"
        } else {
            "refused"
        },
        if report.permitted {
            "permitted"
        } else {
            "refused"
        },
    );
    for target in &report.targets {
        render_target(&mut out, target);
    }
    out.push_str(
        "<p class=\"meta\">Every row is a result signed by the perspective (Ed25519) and \
         verified by the primary before it was counted.</p>\n</body></html>\n",
    );
    out
}

fn render_target(out: &mut String, target: &TargetReport) {
    let verdict = &target.verdict;
    let _ = write!(
        out,
        "<section><h2>{} <span class=\"meta\">{}</span></h2>\n\
         <div class=\"verdict {}\">{}</div>\n<p class=\"meta\">{}</p>\n",
        escape(&target.identifier),
        escape(&target.check),
        if verdict.permitted {
            "permitted"
        } else {
            "refused"
        },
        escape(&verdict.summary),
        escape(&rule_text(&verdict.policy, &verdict.rule_date)),
    );
    table(out, &target.rows);
    out.push_str("<h3>Findings</h3>\n");
    if target.findings.is_empty() {
        out.push_str("<p class=\"none\">None: the perspectives agree.</p>\n");
    }
    for finding in &target.findings {
        render_finding(out, finding);
    }
    out.push_str("</section>\n");
}

fn table(out: &mut String, rows: &[Row]) {
    out.push_str(
        "<table><thead><tr><th>Perspective</th><th>RIR</th><th>Location</th><th>Outcome</th>\
         <th>Problem</th><th>DNSSEC</th><th>Elapsed</th><th>Key evidence</th></tr></thead><tbody>\n",
    );
    for row in rows {
        let class = row.outcome.replace(' ', "");
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"evidence\">{}</td></tr>",
            escape(row.perspective.as_str()),
            row.rir,
            escape(row.location.as_deref().unwrap_or("")),
            escape(&class),
            escape(&row.outcome),
            escape(row.problem.as_deref().unwrap_or("")),
            escape(row.dnssec.as_deref().unwrap_or("")),
            row.elapsed_ms
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_default(),
            escape(&row.evidence),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn render_finding(out: &mut String, finding: &Finding) {
    let _ = write!(
        out,
        "<div class=\"finding\"><p><span class=\"cause\">{}</span><strong>{}</strong></p>\
         <div class=\"sides\">",
        finding.cause.as_str(),
        escape(&finding.title)
    );
    for side in &finding.sides {
        let names: Vec<String> = side
            .perspectives
            .iter()
            .map(|p| escape(p.as_str()))
            .collect();
        let _ = write!(
            out,
            "<div class=\"side\"><h4>{}: {}</h4><ul>",
            escape(&side.label),
            names.join(", ")
        );
        for line in &side.evidence {
            let _ = write!(out, "<li class=\"evidence\">{}</li>", escape(line));
        }
        out.push_str("</ul></div>");
    }
    let _ = writeln!(
        out,
        "</div><p class=\"advice\"><strong>What to do:</strong> {}</p></div>",
        escape(&finding.advice)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        let cases = [
            (
                "tags",
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            ("quotes", "a\"b'c&d", "a&quot;b&#39;c&amp;d"),
            ("control", "x\u{1b}[31m", "x\u{fffd}[31m"),
        ];
        for (name, text, expected) in cases {
            assert_eq!(escape(text), expected, "case {name}");
        }
    }
}
