//! `mpic-primary`: run one validation across remote perspectives, apply the BR 3.2.2.9 quorum
//! rule, and explain why perspectives disagree (split-horizon DNS, propagation, firewalls,
//! IPv6-only targets, WAFs, DNSSEC). The same [`report::TargetReport`] and
//! [`findings::findings`] a CA's own primary can log.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod findings;
pub mod perspectives;
pub mod render;
pub mod report;
pub mod verdict;

pub use findings::{Cause, Finding, Observation, Side, findings};
pub use perspectives::Perspective;
pub use report::{Report, Row, TargetReport};
pub use verdict::Verdict;
