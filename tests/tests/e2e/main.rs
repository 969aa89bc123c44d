//! End-to-end tests: the real `mpic-node` binary on loopback, driven by real primaries.
//! `make test` builds the binaries first (`make build`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed set-up step must fail the test loudly"
)]

mod audit;
mod auth;
mod bench;
mod caa;
mod carve_out;
mod dcv;
mod deploy;
mod dns;
mod dnssec;
mod dnssec_hostile;
mod doctor;
mod failover;
mod hostile_dns;
mod hostile_primary;
mod hostile_web;
mod ip_methods;
mod knot_dnssec;
mod lifecycle;
mod manifest;
mod openmpic;
mod overload;
mod polite;
mod primary_report;
mod protocol;
mod reload;
mod support;
mod tenants;
mod web;
mod web_paths;
