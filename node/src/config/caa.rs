//! `[caa]`: the CAA choices BR 4.2.2.1.2 leaves to the CA (and that its CP/CPS must then state),
//! validated into [`CaaConfig`] (the CAA policy reads it: `checks::caa::policy::PolicyOptions`).

use super::raw::RawCaa;

/// The validated `[caa]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaaConfig {
    /// Match RFC 8657 `validationmethods` labels ignoring ASCII case (BR 4.2.2.1.2: labels are
    /// canonically lower case; a CA MAY match case-insensitively and MUST then say so in its
    /// CP/CPS). Default false: exact matching.
    pub case_insensitive_method_labels: bool,
}

/// Every value is typed by serde (a bool), so nothing here can fail.
pub(super) fn validate(raw: RawCaa) -> CaaConfig {
    CaaConfig {
        case_insensitive_method_labels: raw.case_insensitive_method_labels.unwrap_or(false),
    }
}
