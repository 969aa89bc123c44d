//! `[caa]`: the CAA choices BR 4.2.2.1.2 leaves to the CA (and that its CP/CPS must then state),
//! validated into [`CaaConfig`] and handed to the CAA policy as
//! [`PolicyOptions`].

use super::raw::RawCaa;
use crate::checks::caa::policy::{LabelCase, PolicyOptions};

/// The validated `[caa]` table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaaConfig {
    /// Match RFC 8657 `validationmethods` labels ignoring ASCII case (BR 4.2.2.1.2: labels are
    /// canonically lower case; a CA MAY match case-insensitively and MUST then say so in its
    /// CP/CPS). Default false: exact matching.
    pub case_insensitive_method_labels: bool,
}

impl CaaConfig {
    /// The CAA policy options this table selects.
    pub fn policy_options(&self) -> PolicyOptions {
        PolicyOptions {
            method_label_case: if self.case_insensitive_method_labels {
                LabelCase::Insensitive
            } else {
                LabelCase::Exact
            },
            ..PolicyOptions::default()
        }
    }
}

/// Every value is typed by serde (a bool), so nothing here can fail.
pub(super) fn validate(raw: RawCaa) -> CaaConfig {
    CaaConfig {
        case_insensitive_method_labels: raw.case_insensitive_method_labels.unwrap_or(false),
    }
}
