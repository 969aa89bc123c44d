//! Renderings of a [`crate::report::Report`]: human text (the default), JSON, and a
//! self-contained HTML page.

pub mod html;
pub mod human;

use crate::report::Report;

/// The report as pretty-printed JSON (the shape of [`Report`]).
pub fn json(report: &Report) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(report)
}

/// Network text made safe for a terminal: control characters become `?`.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// At most `max` characters, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}
